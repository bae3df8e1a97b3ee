"""`chatgpt4o logs`: the conversation log (`_history`), newest exchange last.

    chatgpt4o logs                 # the last 3 exchanges, as text
    chatgpt4o logs -n 0 --json     # all of them, as a JSON array
    chatgpt4o logs --cid ID        # one conversation
    chatgpt4o logs --path          # where the log is

An empty log (or none yet) is not an error: nothing is printed (`[]` with --json)
and the exit code is 0. It runs in `_command.run_command`, like every command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import IO

from ._command import CommandParser, run_command
from ._history import Exchange, HistoryError, Log, logs_path
from ._options import whole_number
from ._terminal import ENV_LOGS_PATH, EXIT_OK, PROG, Scrubber, UsageError, isatty, write

__all__ = ["DEFAULT_COUNT", "build_parser", "main"]

#: How many exchanges `chatgpt4o logs` shows without -n.
DEFAULT_COUNT = 3


def build_parser() -> argparse.ArgumentParser:
    """The parser of `chatgpt4o logs`."""
    parser = CommandParser(
        prog=f"{PROG} logs",
        description="Show the logged exchanges of the chatgpt4o command, newest last.",
        epilog=(
            f"The log is a SQLite file in the user data directory, or {ENV_LOGS_PATH}. "
            f"{PROG} --no-log (or CHATGPT4O_NO_LOG=1) logs nothing; -c and --cid continue a "
            "logged conversation."
        ),
        allow_abbrev=False,
    )
    parser.add_argument(
        "-n", "--count", type=whole_number, default=DEFAULT_COUNT, metavar="N",
        help=f"how many of the newest exchanges to show; 0: all (default {DEFAULT_COUNT})",
    )
    parser.add_argument("--cid", metavar="ID", help="only the exchanges of conversation ID")
    parser.add_argument(
        "--json", action="store_true",
        help="a JSON array of the exchanges: id, conversation_id, datetime_utc, "
        "duration_ms, model, site, system, prompt, reply, error ({type, message} or null)",
    )
    parser.add_argument("--path", action="store_true", help="print the log's file and exit")
    return parser


def _show_text(exchanges: Sequence[Exchange], out: IO[str]) -> None:
    for number, exchange in enumerate(exchanges):
        when = exchange.datetime_utc.replace("T", " ").split(".")[0]
        lines = [
            *([""] if number else []),
            f"# {when} UTC  {exchange.id}",
            "",
            f"conversation: {exchange.conversation_id}",
            f"model: {exchange.model}  site: {exchange.site}  "
            f"time: {exchange.duration_ms / 1000:.2f} s",
        ]
        if exchange.system:
            lines += ["", "## System", "", exchange.system]
        lines += ["", "## Prompt", "", exchange.prompt]
        if exchange.reply is not None:
            lines += ["", "## Reply", "", exchange.reply]
        else:
            lines += ["", "## Error", "", f"{exchange.error_type}: {exchange.error_message}"]
        write(out, "\n".join(lines).rstrip("\n") + "\n")


def _logs(args: argparse.Namespace, scrub: Scrubber) -> int:
    log = Log(logs_path(os.environ))
    if args.path:
        write(sys.stdout, f"{log.path}\n")
        return EXIT_OK
    try:
        exchanges = log.recent(args.count, args.cid)
    except HistoryError as err:
        raise UsageError(str(err)) from None
    if args.json:
        body = [exchange.to_json() for exchange in exchanges]
        write(sys.stdout, json.dumps(body, ensure_ascii=False, indent=2) + "\n")
    elif exchanges:
        _show_text(exchanges, sys.stdout)
    elif isatty(sys.stderr):
        what = f"conversation {args.cid!r}" if args.cid else "exchanges"
        write(sys.stderr, f"(no {what} logged in {str(log.path)!r})\n")
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Run `chatgpt4o logs` with `argv`; return the exit code."""
    return run_command(list(sys.argv[2:] if argv is None else argv), build_parser(), _logs)
