"""What the `chatgpt4o` command's two halves share: its names, its exit codes, and
printing to a terminal without leaking secrets.

`_cli` (parsing) and `_chat` (the work) both import this module and it imports
neither, so the command has no import cycle. It stays free of asyncio and the HTTP
stack: `chatgpt4o --help` imports it.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Sequence
from typing import IO
from urllib.parse import unquote, urlsplit

from ._exceptions import redact

__all__ = [
    "ENV_PROXY",
    "ENV_TIMEOUT",
    "ENV_URL",
    "EXIT_BLOCKED",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_NETWORK",
    "EXIT_OK",
    "EXIT_SERVER",
    "EXIT_USAGE",
    "LOCAL_INSTALL_HINT",
    "PROG",
    "PROMPT",
    "Scrubber",
    "UsageError",
    "encodable",
    "isatty",
    "parse_seconds",
    "report",
    "write",
]

PROG = "chatgpt4o"

#: The interactive chat's prompt.
PROMPT = "> "

ENV_PROXY = "CHATGPT4O_PROXY"
ENV_URL = "CHATGPT4O_URL"
ENV_TIMEOUT = "CHATGPT4O_TIMEOUT"

LOCAL_INSTALL_HINT = "pip install 'chatgpt4o[local]'"

# Which error gets which code is `_cli.exit_code_for`; the numbers are here because
# the work returns some of them itself.
EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NETWORK = 3
EXIT_BLOCKED = 4
EXIT_SERVER = 5
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """The command line (or the environment) asks for something that cannot be done."""


def parse_seconds(text: str) -> float:
    """A number of seconds >= 0 (0: no limit); ValueError with a message to show."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"expected seconds >= 0 (0: no limit), got {text!r}")
    return value


class Scrubber:
    """Makes text safe to print: redacted, and free of the secrets given on the command
    line even where they would not be recognised as such."""

    def __init__(self) -> None:
        self._secrets: list[str] = []

    def add(self, secret: str | None) -> None:
        # Shorter ones would blank out ordinary words.
        if secret and len(secret) >= 3:
            self._secrets.extend({secret, unquote(secret)})
            # Longest first, so that a secret containing another goes whole.
            self._secrets.sort(key=len, reverse=True)

    def add_from_argv(self, argv: Sequence[str]) -> None:
        """Note the cookie values and URL passwords in `argv`, before it is parsed (the
        parser's own error messages may quote it)."""
        after_cookie = False
        for token in argv:
            if after_cookie or token.startswith("--cookie="):
                value = token.removeprefix("--cookie=")
                self.add(value.partition("=")[2] or value)
            after_cookie = token == "--cookie"
            for word in token.split():
                with contextlib.suppress(ValueError):
                    self.add(urlsplit(word).password)

    def __call__(self, text: str, *, redact_fields: bool = True) -> str:
        """`text` without the known secrets; with `redact_fields`, also without anything
        that looks like a nonce, cookie or password field (the library's `redact`)."""
        if redact_fields:
            text = redact(text)
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def write(stream: IO[str], text: str) -> None:
    """Write and flush; characters the stream's encoding lacks become '?'."""
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(encoding, "replace").decode(encoding, "replace"))
    stream.flush()


def encodable(stream: IO[str], text: str) -> bool:
    """Whether `stream` can show `text` as it is (a spinner's frames, say)."""
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def isatty(stream: IO[str] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # a stream without a file, or a closed one
        return False


def report(
    error: BaseException,
    err: IO[str],
    scrub: Scrubber,
    *,
    verbose: bool,
    unexpected: bool = False,
) -> None:
    """One line on stderr (after the traceback, with `verbose`). An `unexpected` error
    (a bug) is named by its type, and without `verbose` points to it."""
    if verbose and not isinstance(error, UsageError):
        import traceback

        write(err, scrub("".join(traceback.format_exception(error))))
    message = " ".join(str(error).split()) or type(error).__name__
    if unexpected:
        message = f"unexpected {type(error).__name__}: {message}"
        if not verbose:
            message += " (--verbose shows the traceback)"
    # A usage error quotes the command line, whose secrets are all known by now; the
    # field redaction would blank out words such as "--cookie: expected".
    shown = scrub(message, redact_fields=not isinstance(error, UsageError))
    write(err, f"{PROG}: error: {shown}\n")
