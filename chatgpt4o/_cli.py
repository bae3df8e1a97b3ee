"""The `chatgpt4o` command: one question, a piped prompt, or an interactive chat.

    chatgpt4o "What is HTTP?"          # print the reply
    echo "What is HTTP?" | chatgpt4o   # the prompt from stdin
    git diff | chatgpt4o "Review this" # the prompt, then what is piped
    chatgpt4o -c "And in Go?"          # continue the last (logged) conversation
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
import re
import shlex
import sys
from collections.abc import Sequence
from typing import NoReturn

from ._command import CommandParser, exit_code_for, run_command
from ._constants import DEFAULT_MODEL, MODEL_ALIASES
from ._options import add_bot_option, add_local_options, add_site_options
from ._terminal import (
    ENV_COOKIE,
    ENV_LOGS_PATH,
    ENV_NO_LOG,
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
  chatgpt4o --url https://example.org/chat/ "Hello"
  git diff | chatgpt4o "Review this patch"  the PROMPT, then the piped text
  chatgpt4o -f notes.txt "Summarise"        the PROMPT, then the file
  chatgpt4o -c "And in Go?"                 continue the last conversation
  chatgpt4o --json "2+2?" | jq -r .reply
  chatgpt4o --proxy socks5://127.0.0.1:9050 --timeout 60 "Hello"
  chatgpt4o --cookie-file cookies.txt --url https://example.org "Hello"
  chatgpt4o -- "-1 times -1?"               a PROMPT that starts with a dash
  chatgpt4o logs -n 5                       the last five exchanges
  chatgpt4o                                 interactive chat on a terminal
  chatgpt4o --local --serve-emulator        only run the emulator, for your own tests

the prompt:
  The PROMPT words, then piped stdin, then each -f FILE, separated by blank lines
  (stdin and files are read as UTF-8). '-' as the PROMPT reads only stdin.

interactive chat:
  The whole conversation is sent with every message. A paste of several lines is
  one message (on terminals with bracketed paste, under GNU readline); or type \"\"\"
  on a line, the lines, and \"\"\" again. /system TEXT sets the system message,
  /reset starts over, /exit or Ctrl-D quits; Ctrl-C stops a reply, and twice at
  the prompt quits.

conversation log:
  Every exchange (prompt, system message, reply or error, model, site, time) is
  logged to a SQLite file; chatgpt4o logs --path shows where, chatgpt4o logs shows
  them. Cookies, nonces and proxies are never logged. -c continues the last
  conversation, --cid ID another; the site and model are this run's options.

environment:
  {ENV_PROXY}      default for --proxy (ignored with --local)
  {ENV_URL}        default for --url (ignored with --local)
  {ENV_TIMEOUT}    default for --timeout
  {ENV_COOKIE}     cookies as a Cookie header writes them, NAME=VALUE; NAME2=VALUE2
                       (ignored with --local); --cookie-file and --cookie win
  {ENV_NO_LOG}     set to 1 to log nothing (as --no-log)
  {ENV_LOGS_PATH}  the log's file, instead of logs.db in the user data directory
  Flags win over the environment.

exit codes:
  0    done (also when the reader of the output went away: | head)
  1    unexpected error (a bug; please report it with the --verbose output)
  2    usage: bad option or value, empty prompt, unknown model, unreadable stdin or
       file, nothing to continue (-c, --cid), a missing package (aiohttp for
       --local, an HTTP backend)
  3    network: connection, DNS, TLS or proxy failure, or the --timeout passed
  4    blocked or rate-limited: Cloudflare challenge, HTTP 429, the plugin's token
       limit, a banned IP
  5    bad answer from the site: any other HTTP error, the plugin's other error
       messages (banned words, upstream error), nonce rejected, page without the
       chat, unreadable reply, plugin without the chat action (AI Power 2.3+)
  130  interrupted (Ctrl-C)
  With --json, an error is also printed on stdout as
  {{"error": {{"type": ..., "message": ..., "exit_code": ...}}}}.
"""


# -- the command line --------------------------------------------------------------------

#: The first words that select a command, and the module whose `main(argv)` runs it.
COMMANDS: dict[str, str] = {
    "check": "chatgpt4o._check",
    "logs": "chatgpt4o._logs",
    "models": "chatgpt4o._models",
    "serve": "chatgpt4o.server._command",
}


_GLUED = re.compile(r"argument (?P<option>-\w)[/\w-]*: ignored explicit argument (?P<rest>'.*')")


def _dash_prompt(word: str) -> str:
    return (
        f"unrecognized option {word!r}; a PROMPT that starts with '-' goes after '--', "
        f"as in: {PROG} -- {shlex.quote(word)}"
    )


class _Parser(CommandParser):
    def error(self, message: str) -> NoReturn:
        glued = _GLUED.match(message)
        unknown = message.removeprefix("unrecognized arguments: ")
        if glued:  # -hello: -h with "ello"
            message = _dash_prompt(glued["option"] + glued["rest"][1:-1])
        elif unknown != message and unknown.startswith("-") and not unknown.startswith("--"):
            message = _dash_prompt(unknown.split()[0])
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    """The parser of the `chatgpt4o` command."""
    parser = _Parser(
        prog=PROG,
        usage=f"{PROG} [options] [PROMPT ...]",
        description=(
            "Ask gpt-4o-mini through a WordPress site's AI chat plugin (AI Power or AI "
            "Engine): another site with --url, the bundled emulator with --local, or "
            "chatgpt4o.one, the default, which stopped answering in late 2024. With a "
            "PROMPT, print the reply. Without one, read the prompt from stdin when it is "
            "piped, or start an interactive chat on a terminal."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "prompt", nargs="*", metavar="PROMPT",
        help="the message; several words are joined with spaces; piped stdin and -f "
        "files are added after it; '-' reads only stdin",
    )
    parser.add_argument(
        "-f", "--file", action="append", default=[], metavar="FILE",
        help="add the text of FILE to the prompt (UTF-8; '-' for stdin); repeatable",
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
        "-c", "--continue", dest="continue_", action="store_true",
        help="continue the last logged conversation: its exchanges are sent as the "
        "history (and its system message, unless --system)",
    )
    parser.add_argument(
        "--cid", metavar="ID",
        help="continue the logged conversation ID (chatgpt4o logs shows the ids)",
    )
    parser.add_argument(
        "--no-log", action="store_true",
        help=f"do not log this exchange (env {ENV_NO_LOG}=1 for every run)",
    )
    add_site_options(parser)
    add_bot_option(parser)
    parser.add_argument(
        "--stream", action=argparse.BooleanOptionalAction, default=None,
        help="print the reply as it arrives (the default), or all at once; with --local, "
        "the emulator streams or not to match",
    )
    parser.add_argument(
        "--json", action="store_true",
        help="print one JSON object: reply, model, site, elapsed (seconds), "
        "conversation_id; on failure {\"error\": {type, message, exit_code}}",
    )
    add_local_options(parser)
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
    return run_command(argv, build_parser(), _chat, rest="prompt")
