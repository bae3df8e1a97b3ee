"""What the `chatgpt4o` command's two halves share: its names, its exit codes, and
printing to a terminal without leaking secrets.

`_cli` (parsing) and `_chat` (the work) both import this module and it imports
neither, so the command has no import cycle. It stays free of asyncio and the HTTP
stack: `chatgpt4o --help` imports it.
"""

from __future__ import annotations

import contextlib
import html
import json
import math
import re
from collections.abc import Sequence
from typing import IO
from urllib.parse import unquote, urlsplit

from ._exceptions import HTTPStatusError, ResponseError, redact

__all__ = [
    "ENV_COOKIE",
    "ENV_LOGS_PATH",
    "ENV_NO_LOG",
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
    "add_hint",
    "describe",
    "encodable",
    "error_json",
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
#: Cookies for the site, as a Cookie header writes them: `NAME=VALUE; NAME2=VALUE2`.
ENV_COOKIE = "CHATGPT4O_COOKIE"
#: Set (to anything but 0, false or no) to log nothing.
ENV_NO_LOG = "CHATGPT4O_NO_LOG"
#: The conversation log's file, instead of the one in the user's data directory.
ENV_LOGS_PATH = "CHATGPT4O_LOGS_PATH"

LOCAL_INSTALL_HINT = 'pip install aiohttp (the extra "local")'

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


_HINT = "_chatgpt4o_hint"


def add_hint(error: BaseException, hint: str) -> None:
    """Attach what the user can do about `error`; `describe` appends it."""
    setattr(error, _HINT, hint)


_TITLE = re.compile(r"<title[^>]{0,200}>(?P<title>[^<]{0,300})</title", re.I)


def _without_page(error: BaseException, message: str) -> str:
    """An HTML page quoted in an error, replaced by its title: the page's first 200
    characters of markup tell a reader nothing."""
    body = getattr(error, "body", None)
    if not isinstance(error, (HTTPStatusError, ResponseError)) or not body:
        return message
    if not body.lstrip().startswith("<"):
        return message
    match = _TITLE.search(body)
    title = " ".join(html.unescape(match["title"]).split()) if match else ""
    page = f"a page titled {title!r}" if title else "an HTML page"
    for quoted in (f": {body}", f" (got: {body!r})"):
        if message.endswith(quoted):
            return message[: -len(quoted)] + (f": {page}" if quoted[0] == ":" else f" (got {page})")
    return message


_CURL_PREFIX = re.compile(r"Failed to perform, curl: \(\d+\) ")
_SOCKS_REFUSED = re.compile(
    r"rejected by the SOCKS\d? server|No authentication method was acceptable", re.I
)


def _tidy(message: str) -> str:
    """curl's wording made to read as one sentence: no "Failed to perform, curl: (97)"
    in front of what it says, no doubled full stop; a SOCKS proxy refusing the
    credentials says what to check."""
    message = _CURL_PREFIX.sub("", message)
    while message.endswith(".."):
        message = message[:-1]
    if _SOCKS_REFUSED.search(message):
        message = message.rstrip(".") + ": check its user name and password"
    return message


def describe(
    error: BaseException, scrub: Scrubber, *, verbose: bool = False, unexpected: bool = False
) -> str:
    """`error` as one line without secrets, with its hint (see `add_hint`). An
    `unexpected` error (a bug) is named by its type, and without `verbose` points to
    the traceback."""
    message = " ".join(_tidy(_without_page(error, str(error))).split()) or type(error).__name__
    if unexpected:
        message = f"unexpected {type(error).__name__}: {message}"
        if not verbose:
            message += " (--verbose shows the traceback)"
    hint = getattr(error, _HINT, None)
    if hint:
        message = f"{message.rstrip('.')}. {hint}"
    # A usage error quotes the command line, whose secrets are all known by now; the
    # field redaction would blank out words such as "--cookie: expected".
    return scrub(message, redact_fields=not isinstance(error, UsageError))


def error_json(error: BaseException, message: str, exit_code: int) -> str:
    """The JSON error object `--json` prints on stdout: one line."""
    name = "KeyboardInterrupt" if isinstance(error, KeyboardInterrupt) else type(error).__name__
    body = {"error": {"type": name, "message": message, "exit_code": exit_code}}
    return json.dumps(body, ensure_ascii=False) + "\n"


def report(
    error: BaseException,
    err: IO[str],
    scrub: Scrubber,
    *,
    verbose: bool,
    unexpected: bool = False,
) -> str:
    """One line on stderr (after the traceback, with `verbose`), as `describe` makes
    it; returns the line's message."""
    if verbose and not isinstance(error, UsageError):
        import traceback

        write(err, scrub("".join(traceback.format_exception(error))))
    shown = describe(error, scrub, verbose=verbose, unexpected=unexpected)
    write(err, f"{PROG}: error: {shown}\n")
    return shown
