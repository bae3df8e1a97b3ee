"""The `chatgpt4o` command: one question, a piped prompt, or an interactive chat.

    chatgpt4o "What is HTTP?"          # print the reply
    echo "What is HTTP?" | chatgpt4o   # the prompt from stdin
    chatgpt4o                          # an interactive chat (on a terminal)
    chatgpt4o --local "Привет!"        # the bundled emulator, through the real protocol

Exit codes (the table is also in `--help`):

* 0 - done;
* 1 - an unexpected error (a bug);
* 2 - usage: a bad option or value, an empty prompt, an unknown model, `--local`
  without aiohttp;
* 3 - network: `ProviderConnectionError` and `ProviderTimeoutError`;
* 4 - blocked or rate-limited: `CloudflareError`, `RateLimitError` (HTTP 429), a
  `ServiceError` of kind "token_limit" (the plugin's usage limit) or "ip_banned";
* 5 - a bad answer from the site: every other `ProviderError` (other HTTP errors, the
  plugin's other error messages, a rejected nonce, an unreadable page or reply);
* 130 - interrupted (Ctrl-C).

Secrets (the proxy password, cookie values) are never printed: the library's messages
are redacted already, and every error line goes through `_terminal.Scrubber` again.

This module parses the command line and reports errors; the work is done by `_chat`,
imported only once there is work, so that `--help` and `--version` start at once.
What both need (names, exit code numbers, printing) is in `_terminal`; `_chat` never
imports this module.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from ._constants import (
    DEFAULT_MAX_RETRIES,
    DEFAULT_MODEL,
    DEFAULT_SITE_URL,
    DEFAULT_TIMEOUT,
    MODEL_ALIASES,
)
from ._exceptions import (
    CloudflareError,
    ModelNotSupportedError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ServiceError,
)
from ._terminal import (
    ENV_PROXY,
    ENV_TIMEOUT,
    ENV_URL,
    EXIT_BLOCKED,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_SERVER,
    EXIT_USAGE,
    LOCAL_INSTALL_HINT,
    PROG,
    Scrubber,
    UsageError,
    isatty,
    parse_seconds,
    report,
    write,
)
from ._version import __version__

__all__ = [
    "EXIT_BLOCKED",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_NETWORK",
    "EXIT_OK",
    "EXIT_SERVER",
    "EXIT_USAGE",
    "UsageError",
    "build_parser",
    "exit_code_for",
    "main",
]

_EPILOG = f"""\
examples:
  chatgpt4o --local "Привет!"               try it offline, against the bundled emulator
  chatgpt4o "Explain HTTP keep-alive in two sentences"
  git diff | chatgpt4o --system "Review this patch"
  chatgpt4o --json "2+2?" | jq -r .reply
  chatgpt4o --proxy socks5://127.0.0.1:9050 --timeout 60 "Hello"
  chatgpt4o --url https://example.org --cookie cf_clearance=... "Hello"
  chatgpt4o -- "-1 times -1?"               a prompt that starts with a dash
  chatgpt4o                                 interactive chat on a terminal
  chatgpt4o --local --serve-emulator        only run the emulator, for your own tests

interactive chat:
  The whole conversation is sent with every message. /reset starts over,
  /exit or Ctrl-D quits; Ctrl-C stops a reply, and twice at the prompt quits.

environment:
  {ENV_PROXY}    default for --proxy (ignored with --local)
  {ENV_URL}      default for --url (ignored with --local)
  {ENV_TIMEOUT}  default for --timeout
  Flags win over the environment.

exit codes:
  0    done
  1    unexpected error (a bug; please report it with the --verbose output)
  2    usage: bad option or value, empty prompt, unknown model, --local without aiohttp
  3    network: connection, DNS, TLS or proxy failure, or the --timeout passed
  4    blocked or rate-limited: Cloudflare challenge, HTTP 429, the plugin's token
       limit, a banned IP
  5    bad answer from the site: any other HTTP error, the plugin's other error
       messages (banned words, upstream error), nonce rejected, page without the
       chat, unreadable reply, plugin without the chat action (AI Power 2.3+)
  130  interrupted (Ctrl-C)
"""


# -- errors and exit codes ---------------------------------------------------------------


def exit_code_for(error: BaseException) -> int:
    """The exit code for `error` (see the module docstring)."""
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, (UsageError, ModelNotSupportedError)):
        return EXIT_USAGE
    if isinstance(error, ProviderConnectionError):
        return EXIT_NETWORK
    # Both are HTTPStatusErrors: they must be sorted out before the rule for the rest.
    if isinstance(error, (CloudflareError, RateLimitError)):
        return EXIT_BLOCKED
    if isinstance(error, ServiceError) and error.kind in ("ip_banned", "token_limit"):
        return EXIT_BLOCKED
    if isinstance(error, ProviderError):
        return EXIT_SERVER
    if isinstance(error, (TypeError, ValueError)):
        return EXIT_USAGE  # the library's checks of its arguments, before any I/O
    return EXIT_FAILURE


# -- the command line --------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {PROG} --help)")


def _seconds(text: str) -> float:
    try:
        return parse_seconds(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return value


def _cookie(text: str) -> tuple[str, str]:
    # The message must not repeat the argument: it may be a secret.
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return name, value


def build_parser() -> argparse.ArgumentParser:
    """The parser of the `chatgpt4o` command."""
    parser = _Parser(
        prog=PROG,
        usage=f"{PROG} [options] [PROMPT ...]",
        description=(
            "Ask gpt-4o-mini through chatgpt4o.one, or through another site running the "
            "AI Power chat plugin. With a PROMPT, print the reply. Without one, read the "
            "prompt from stdin when it is piped, or start an interactive chat on a terminal."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "prompt", nargs="*", metavar="PROMPT",
        help="the message; several words are joined with spaces; '-' reads stdin",
    )
    aliases = ", ".join(f"{alias} = {model}" for alias, model in MODEL_ALIASES.items())
    parser.add_argument(
        "-m", "--model", metavar="MODEL",
        help=f"model name or alias (default: {DEFAULT_MODEL}; {aliases})",
    )
    parser.add_argument(
        "-s", "--system", metavar="TEXT", help="a system message to send first"
    )
    parser.add_argument(
        "--proxy", metavar="URL",
        help=f"proxy URL: http, https, socks4, socks4a, socks5 or socks5h, with "
        f"user:password@ if needed (env {ENV_PROXY})",
    )
    parser.add_argument(
        "--timeout", type=_seconds, metavar="SECONDS",
        help=f"limit for the whole call, retries included; 0: none "
        f"(env {ENV_TIMEOUT}; default {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument(
        "--retries", type=_count, metavar="N",
        help=f"retries after network errors, HTTP 408, 409, 429 and 5xx "
        f"(default {DEFAULT_MAX_RETRIES})",
    )
    parser.add_argument(
        "--cookie", type=_cookie, action="append", default=[], metavar="NAME=VALUE",
        help="a cookie for the site, e.g. cf_clearance=...; repeatable",
    )
    parser.add_argument(
        "--url", metavar="URL",
        help="a page with the chatbot of another site: AI Power (any version) or AI Engine, "
        f"found on the page (env {ENV_URL}; default {DEFAULT_SITE_URL})",
    )
    parser.add_argument(
        "--bot", metavar="ID",
        help="which chatbot of the page to talk to, by its id there (default: the first)",
    )
    parser.add_argument(
        "--stream", action=argparse.BooleanOptionalAction, default=None,
        help="print the reply as it arrives (the default), or all at once; with --local, "
        "the emulator streams or not to match",
    )
    parser.add_argument(
        "--json", action="store_true",
        help="print one JSON object: reply, model, site, elapsed (seconds)",
    )
    parser.add_argument(
        "--local", action="store_true",
        help="start the bundled site emulator on a free local port and talk to it "
        f"(needs aiohttp: {LOCAL_INSTALL_HINT})",
    )
    parser.add_argument(
        "--emulator", metavar="OPTIONS", default="",
        help="with --local: options for the emulator, as python -m chatgpt4o.testing takes "
        "them, in one string, e.g. --emulator='--plugin-version 1.8.84 --language de'",
    )
    parser.add_argument(
        "--serve-emulator", action="store_true",
        help="with --local: only run the emulator and print its URL, until Ctrl-C "
        "(more options: python -m chatgpt4o.testing --help)",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="debug logs, and tracebacks of errors, on stderr",
    )
    parser.add_argument(
        "-V", "--version", action="version", version=f"{PROG} {__version__}"
    )
    return parser


# -- main ------------------------------------------------------------------------------


def _configure_logging(verbose: bool) -> Callable[[], None]:
    """DEBUG logs of the library on stderr; returns the undo."""
    if not verbose:
        return lambda: None
    import logging

    logger = logging.getLogger("chatgpt4o")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    previous_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)

    def undo() -> None:
        logger.removeHandler(handler)
        logger.setLevel(previous_level)

    return undo


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `chatgpt4o` command with `argv` (default: `sys.argv[1:]`); return the exit
    code. The console script passes it to `sys.exit`."""
    if argv is None:
        argv = sys.argv[1:]
    scrub = Scrubber()
    scrub.add_from_argv(argv)
    parser = build_parser()
    verbose = False
    undo_logging: Callable[[], None] = lambda: None  # noqa: E731
    try:
        try:
            args = parser.parse_intermixed_args(argv)
        except SystemExit as done:  # --help, --version
            return done.code if isinstance(done.code, int) else EXIT_OK
        verbose = args.verbose
        undo_logging = _configure_logging(verbose)
        from ._chat import run  # the event loop, the provider and curl_cffi: only now

        return run(args, scrub)
    except KeyboardInterrupt:
        if isatty(sys.stderr):
            write(sys.stderr, "\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`chatgpt4o ... | head -1`): say nothing more.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as error:
        code = exit_code_for(error)
        report(error, sys.stderr, scrub, verbose=verbose, unexpected=code == EXIT_FAILURE)
        return code
    finally:
        undo_logging()
