"""The `chatgpt4o` command: one question, a piped prompt, or an interactive chat.

    chatgpt4o "What is HTTP?"          # print the reply
    echo "What is HTTP?" | chatgpt4o   # the prompt from stdin
    chatgpt4o                          # an interactive chat (on a terminal)
    chatgpt4o --local "Привет!"        # the bundled emulator, through the real protocol

A first word `check`, `logs`, `models` or `serve` runs that command instead (`COMMANDS`);
`chatgpt4o -- serve` asks the word. Every command runs in `_command.run_command`, which
holds the exit codes (the table is also in `--help`).

Secrets (the proxy password, cookie values) are never printed: the library's messages
are redacted already, and every error line goes through `_terminal.Scrubber` again.

This module parses the command line and reports errors; the work is done by `_chat`,
imported only once there is work, so that `--help` and `--version` start at once.
What both need (names, exit code numbers, printing) is in `_terminal`; `_chat` never
imports this module.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from ._command import exit_code_for, run_command
from ._constants import DEFAULT_MODEL, MODEL_ALIASES
from ._options import add_site_options
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
)
from ._version import __version__

__all__ = [
    "COMMANDS",
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


# -- the command line --------------------------------------------------------------------

#: The first words that select a command, and the module whose `main(argv)` runs it.
COMMANDS: dict[str, str] = {
    "check": "chatgpt4o._check",
    "logs": "chatgpt4o._logs",
    "models": "chatgpt4o._models",
    "serve": "chatgpt4o.server._command",
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {PROG} --help)")


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
    add_site_options(parser)
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


def _chat(args: argparse.Namespace, scrub: Scrubber) -> int:
    from ._chat import run  # the event loop, the provider and curl_cffi: only now

    return run(args, scrub)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `chatgpt4o` command with `argv` (default: `sys.argv[1:]`); return the exit
    code. The console script passes it to `sys.exit`.

    A first word in `COMMANDS` runs that command with the rest of `argv`; anything else
    (`chatgpt4o -- check` included) is the chat."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in COMMANDS:
        command = importlib.import_module(COMMANDS[argv[0]])
        code: int = command.main(argv[1:])
        return code
    return run_command(argv, build_parser(), _chat)
