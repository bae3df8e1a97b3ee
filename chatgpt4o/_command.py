"""The frame every `chatgpt4o` command runs in: parsing, logging, errors and exit codes.

`run_command` parses the command line, turns on `--verbose` logging, runs the work, and
turns whatever it raises into one scrubbed line on stderr and an exit code
(`exit_code_for`). The chat (`_cli`) and the first-word commands (`check`, `logs`,
`models`, `serve`) all run in it, so they exit alike.

A command whose parser has `--json` gets, on failure, the JSON error object on stdout
as well (`{"error": {"type", "message", "exit_code"}}`, one line), for scripts that read
stdout only. A closed stdout (`chatgpt4o ... | head -1`) ends the command quietly
with exit 0: the reader had what it wanted.

Exit codes:

* 0 - done;
* 1 - an unexpected error (a bug);
* 2 - usage: a bad option or value, an empty prompt, an unknown model, a missing extra
  (the library's ImportErrors that name the `pip install` to run), an unreadable log;
* 3 - network: `ProviderConnectionError` and `ProviderTimeoutError`;
* 4 - blocked or rate-limited: `CloudflareError`, `RateLimitError` (HTTP 429), a
  `ServiceError` of kind "token_limit" (the plugin's usage limit) or "ip_banned";
* 5 - a bad answer from the site: every other `ProviderError` (other HTTP errors, the
  plugin's other error messages, a rejected nonce, an unreadable page or reply);
* 130 - interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, NoReturn, TypeVar

from ._exceptions import (
    CloudflareError,
    ModelNotSupportedError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ServiceError,
)
from ._terminal import (
    EXIT_BLOCKED,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_NETWORK,
    EXIT_OK,
    EXIT_SERVER,
    EXIT_USAGE,
    Scrubber,
    UsageError,
    error_json,
    isatty,
    report,
    write,
)

__all__ = [
    "CommandParser",
    "Work",
    "configure_logging",
    "exit_code_for",
    "run_async",
    "run_command",
]

_T = TypeVar("_T")


class CommandParser(argparse.ArgumentParser):
    """The parser of a `chatgpt4o` command: a bad command line is a UsageError (exit 2,
    one line pointing to the command's `--help`), not argparse's exit."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {self.prog} --help)")

    def parse_intermixed_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        words = list(sys.argv[1:] if args is None else args)
        self._refuse_glued_flags(words[: words.index("--")] if "--" in words else words)
        return super().parse_intermixed_args(words, namespace)

    def _refuse_glued_flags(self, words: Sequence[str]) -> None:
        # "-hello" is -h with "ello" glued on: Python 3.12 and older refuse it, 3.13 runs
        # -h (help, exit 0) and the letters after it as flags. Refused here on every
        # Python, in the older Pythons' words, unless every letter is a flag without a
        # value ("-vc"); a flag that takes a value may have it glued on ("-mgpt-4o").
        flags = {
            option[1]: action.nargs == 0
            for action in self._actions
            for option in action.option_strings
            if len(option) == 2 and option[0] == "-" and option[1] != "-"
        }
        for word in words:
            if len(word) < 3 or word[0] != "-" or word[1] == "-" or not flags.get(word[1]):
                continue
            if not all(flags.get(letter) for letter in word[1:]):
                self.error(f"argument -{word[1]}: ignored explicit argument {word[2:]!r}")

#: A command's work: the parsed arguments and the run's scrubber in, the exit code out.
Work = Callable[[argparse.Namespace, Scrubber], int]


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
    if isinstance(error, ImportError) and "pip install" in str(error):
        return EXIT_USAGE  # a missing extra: no HTTP backend, httpx without SOCKS, g4f
    return EXIT_FAILURE


def run_async(work: Coroutine[Any, Any, _T]) -> _T:
    """Run a command's one coroutine on an event loop of its own, and close the HTTP
    sessions it opened before the loop goes."""
    # Imported here: `--help` must not pay for the event loop and the HTTP stack.
    from ._runner import Runner
    from ._session import aclose_shared_sessions

    with Runner() as runner:
        runner.on_close(aclose_shared_sessions)
        return runner.run(work)


def configure_logging(verbose: bool) -> Callable[[], None]:
    """With `verbose`, DEBUG logs of the library on stderr; returns the undo."""
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


def _json_asked(argv: Sequence[str]) -> bool:
    """Whether `argv` has --json before any `--`: for errors the parser itself raises."""
    for token in argv:
        if token == "--":
            return False
        if token == "--json":
            return True
    return False


def _quiet_stdout() -> None:
    """Point stdout at the null device: Python's final flush must not fail again."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _print_json_error(error: BaseException, message: str, code: int) -> None:
    try:
        write(sys.stdout, error_json(error, message, code))
    except BrokenPipeError:
        _quiet_stdout()
    except (OSError, ValueError):  # no stdout to write to: the stderr line stands
        pass


def _parse(
    parser: argparse.ArgumentParser, argv: Sequence[str], rest: str | None
) -> argparse.Namespace:
    # parse_intermixed_args reads options after "--" as options on some Pythons
    # (3.11: `chatgpt4o -- -x` is refused); with `rest`, what follows "--" is
    # appended to that positional list instead, as "--" promises.
    argv = list(argv)
    if rest is None or "--" not in argv:
        return parser.parse_intermixed_args(argv)
    cut = argv.index("--")
    args = parser.parse_intermixed_args(argv[:cut])
    setattr(args, rest, [*(getattr(args, rest) or []), *argv[cut + 1 :]])
    return args


def run_command(
    argv: Sequence[str],
    parser: argparse.ArgumentParser,
    work: Work,
    *,
    rest: str | None = None,
) -> int:
    """Parse `argv` with `parser` (whose `error` raises UsageError), run `work`, and
    return the exit code; errors are reported on stderr, scrubbed of the secrets on the
    command line, and with `--json` also as a JSON object on stdout. The parser may
    define `--verbose` and `--json`. `rest` names a positional of `nargs="*"` that
    takes every word after `--`."""
    scrub = Scrubber()
    scrub.add_from_argv(argv)
    verbose = False
    as_json = _json_asked(argv)
    undo_logging: Callable[[], None] = lambda: None  # noqa: E731
    try:
        try:
            args = _parse(parser, argv, rest)
        except SystemExit as done:  # --help, --version
            return done.code if isinstance(done.code, int) else EXIT_OK
        verbose = bool(getattr(args, "verbose", False))
        as_json = bool(getattr(args, "json", False))
        undo_logging = configure_logging(verbose)
        return work(args, scrub)
    except KeyboardInterrupt as interrupt:
        if isatty(sys.stderr):
            write(sys.stderr, "\n")
        if as_json:
            _print_json_error(interrupt, "interrupted", EXIT_INTERRUPTED)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`chatgpt4o ... | head -1`): it had what it wanted.
        _quiet_stdout()
        return EXIT_OK
    except Exception as error:
        code = exit_code_for(error)
        message = report(
            error, sys.stderr, scrub, verbose=verbose, unexpected=code == EXIT_FAILURE
        )
        if as_json:
            _print_json_error(error, message, code)
        return code
    finally:
        undo_logging()
