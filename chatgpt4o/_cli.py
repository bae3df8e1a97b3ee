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
* 4 - blocked or rate-limited: `CloudflareError`, `RateLimitError`, a `ServiceError` of
  kind "ip_banned";
* 5 - a bad answer from the site: every other `ProviderError` (HTTP errors, the
  plugin's error messages, a rejected nonce, an unreadable page or reply);
* 130 - interrupted (Ctrl-C).

Secrets (the proxy password, cookie values) are never printed: the library's messages
are redacted already, and everything this module prints goes through `redact` again.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import itertools
import json
import logging
import math
import os
import signal
import sys
import time
import traceback
from collections.abc import AsyncGenerator, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar
from urllib.parse import unquote, urlsplit

from ._constants import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from ._exceptions import (
    CloudflareError,
    ModelNotSupportedError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    ServiceError,
    redact,
)
from ._messages import format_prompt
from ._provider import Chatgpt4o
from ._session import aclose_shared_sessions, check_proxy
from ._version import __version__

if TYPE_CHECKING:
    from .testing import SiteEmulator

__all__ = [
    "EXIT_BLOCKED",
    "EXIT_FAILURE",
    "EXIT_INTERRUPTED",
    "EXIT_NETWORK",
    "EXIT_OK",
    "EXIT_SERVER",
    "EXIT_USAGE",
    "build_parser",
    "exit_code_for",
    "main",
]

PROG = "chatgpt4o"

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NETWORK = 3
EXIT_BLOCKED = 4
EXIT_SERVER = 5
EXIT_INTERRUPTED = 130

ENV_PROXY = "CHATGPT4O_PROXY"
ENV_URL = "CHATGPT4O_URL"
ENV_TIMEOUT = "CHATGPT4O_TIMEOUT"

#: The interactive chat's prompt.
PROMPT = "> "

_LOCAL_INSTALL_HINT = "pip install 'chatgpt4o[local]'"

_T = TypeVar("_T")

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
  4    blocked or rate-limited: Cloudflare challenge, HTTP 429, the site's token limit,
       a banned IP
  5    bad answer from the site: HTTP error, the plugin's error message (banned words,
       upstream error), nonce rejected, page without the chat, unreadable reply,
       plugin without the chat action (AI Power 2.3+)
  130  interrupted (Ctrl-C)
"""


# -- errors and exit codes ---------------------------------------------------------------


class UsageError(Exception):
    """The command line (or the environment) asks for something that cannot be done."""


def exit_code_for(error: BaseException) -> int:
    """The exit code for `error` (see the module docstring)."""
    if isinstance(error, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(error, (UsageError, ModelNotSupportedError)):
        return EXIT_USAGE
    if isinstance(error, ProviderConnectionError):
        return EXIT_NETWORK
    if isinstance(error, (CloudflareError, RateLimitError)):
        return EXIT_BLOCKED
    if isinstance(error, ServiceError) and error.kind == "ip_banned":
        return EXIT_BLOCKED
    if isinstance(error, ProviderError):
        return EXIT_SERVER
    if isinstance(error, (TypeError, ValueError)):
        return EXIT_USAGE  # the library's checks of its arguments, before any I/O
    return EXIT_FAILURE


class _Scrubber:
    """Makes text safe to print: redacted, and free of the secrets given on the command
    line even where they would not be recognised as such."""

    def __init__(self) -> None:
        self._secrets: list[str] = []

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 3:
            self._secrets.extend({secret, unquote(secret)})
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


# -- the command line --------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see {PROG} --help)")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected seconds >= 0 (0: no limit), got {text!r}")
    return value


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
    aliases = ", ".join(f"{alias} = {model}" for alias, model in Chatgpt4o.model_aliases.items())
    parser.add_argument(
        "-m", "--model", metavar="MODEL",
        help=f"model name or alias (default: {Chatgpt4o.default_model}; {aliases})",
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
        help=f"another site running the same plugin (env {ENV_URL}; default {Chatgpt4o.url})",
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
        f"(needs aiohttp: {_LOCAL_INSTALL_HINT})",
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


@dataclass
class _Settings:
    """What one run asks for, checked before any I/O."""

    model: str
    system: str | None
    proxy: str | None = field(repr=False)
    timeout: float | None
    retries: int
    cookies: dict[str, str] = field(repr=False)
    url: str | None
    stream: bool
    json: bool
    local: bool
    verbose: bool


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _settings(
    args: argparse.Namespace, environ: Mapping[str, str], scrub: _Scrubber
) -> _Settings:
    cookies = dict(args.cookie)
    for value in cookies.values():
        scrub.add(value)

    proxy: str | None = args.proxy
    if proxy is None and not args.local:
        proxy = _env(environ, ENV_PROXY)
    if proxy:
        scrub.add(urlsplit(proxy).password)
    try:
        proxy = check_proxy(proxy)
    except (TypeError, ValueError) as err:
        raise UsageError(f"--proxy: {err}") from None

    timeout: float | None = args.timeout
    if timeout is None:
        text = _env(environ, ENV_TIMEOUT)
        timeout = DEFAULT_TIMEOUT
        if text is not None:
            try:
                timeout = _seconds(text)
            except argparse.ArgumentTypeError as err:
                raise UsageError(f"{ENV_TIMEOUT}: {err}") from None

    url: str | None = args.url
    if args.local:
        if url is not None:
            raise UsageError("--local and --url cannot be used together")
    else:
        if url is None:
            url = _env(environ, ENV_URL)
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise UsageError(f"--url must be an http:// or https:// URL, got {redact(url)!r}")

    try:
        model = Chatgpt4o.get_model(args.model)
    except ModelNotSupportedError as err:
        raise UsageError(str(err)) from None

    return _Settings(
        model=model,
        system=args.system,
        proxy=proxy,
        timeout=timeout or None,
        retries=DEFAULT_MAX_RETRIES if args.retries is None else args.retries,
        cookies=cookies,
        url=url,
        stream=True if args.stream is None else args.stream,
        json=args.json,
        local=args.local,
        verbose=args.verbose,
    )


# -- terminal output ---------------------------------------------------------------------


def _write(stream: IO[str], text: str) -> None:
    """Write and flush; characters the stream's encoding lacks become '?'."""
    try:
        stream.write(text)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "ascii"
        stream.write(text.encode(encoding, "replace").decode(encoding, "replace"))
    stream.flush()


def _isatty(stream: IO[str] | None) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError):  # a stream without a file, or a closed one
        return False


class _Spinner:
    """A spinner on a terminal while the first piece of the reply is awaited."""

    FRAMES: ClassVar[str] = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
    ASCII_FRAMES: ClassVar[str] = "|/-\\"
    DELAY: ClassVar[float] = 0.15  # replies faster than this show no spinner at all
    INTERVAL: ClassVar[float] = 0.08

    def __init__(self, stream: IO[str], label: str, *, enabled: bool) -> None:
        self._stream = stream
        self._label = label
        self._enabled = enabled
        self._task: asyncio.Task[None] | None = None
        self._width = 0

    def start(self) -> None:
        if self._enabled and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._spin())

    def stop(self) -> None:
        """Stop spinning and clear the line; safe to call more than once."""
        if self._task is not None:
            self._task.cancel()
        if self._width:
            _write(self._stream, "\r" + " " * self._width + "\r")
            self._width = 0

    async def aclose(self) -> None:
        self.stop()
        task, self._task = self._task, None
        if task is not None:
            await asyncio.wait({task})

    def _frames(self) -> str:
        encoding = getattr(self._stream, "encoding", None) or "ascii"
        try:
            self.FRAMES.encode(encoding)
        except (UnicodeEncodeError, LookupError):
            return self.ASCII_FRAMES
        return self.FRAMES

    async def _spin(self) -> None:
        await asyncio.sleep(self.DELAY)
        for frame in itertools.cycle(self._frames()):
            text = f"{frame} {self._label}"
            self._width = max(self._width, len(text))
            _write(self._stream, "\r" + text)
            await asyncio.sleep(self.INTERVAL)


# -- the event loop ----------------------------------------------------------------------


class _Loop:
    """One event loop for the whole run, so that the interactive chat keeps its HTTP
    session (and the emulator) between turns while `input()` runs outside the loop.

    `run` turns Ctrl-C into a cancellation of the work in progress, then raises
    KeyboardInterrupt once it has unwound.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._cleanups: list[Callable[[], Coroutine[Any, Any, None]]] = []

    def on_close(self, cleanup: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._cleanups.append(cleanup)

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        task = self.loop.create_task(coro)
        interrupted = False

        def interrupt() -> None:
            nonlocal interrupted
            interrupted = True
            task.cancel()

        handled = False
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            try:
                self.loop.add_signal_handler(signal.SIGINT, interrupt)
                handled = True
            except (NotImplementedError, RuntimeError, ValueError):  # Windows, a thread
                pass
        try:
            return self.loop.run_until_complete(task)
        except asyncio.CancelledError:
            if interrupted:
                raise KeyboardInterrupt from None
            raise
        finally:
            if handled:
                self.loop.remove_signal_handler(signal.SIGINT)
            if not task.done():  # KeyboardInterrupt raised inside the loop itself
                task.cancel()
                with contextlib.suppress(BaseException):
                    self.loop.run_until_complete(task)

    def close(self) -> None:
        try:
            for cleanup in reversed(self._cleanups):
                self.loop.run_until_complete(cleanup())
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.run_until_complete(self.loop.shutdown_default_executor())
        finally:
            self.loop.close()


# -- asking ------------------------------------------------------------------------------


def _provider_for(site_url: str | None, name: str) -> type[Chatgpt4o]:
    """`Chatgpt4o`, or a subclass of it (with a cache of its own) for another site."""
    if site_url is None:
        return Chatgpt4o
    address: str = site_url
    host: str = urlsplit(address).netloc

    class Site(Chatgpt4o):
        url = address
        label = host

    Site.__name__ = Site.__qualname__ = name
    return Site


@dataclass
class _Asker:
    """Sends a conversation and shows the reply the way the settings ask."""

    settings: _Settings
    provider: type[Chatgpt4o]
    out: IO[str]
    err: IO[str]

    async def ask(self, messages: list[dict[str, str]]) -> str:
        settings = self.settings
        show_pieces = settings.stream and not settings.json
        spinner = _Spinner(
            self.err,
            f"waiting for {urlsplit(self.provider.url).netloc}",
            enabled=_isatty(self.err) and not settings.verbose,
        )
        started = time.monotonic()
        received: list[str] = []
        spinner.start()
        try:
            pieces = self.provider.create_async_generator(
                settings.model,
                messages,
                stream=settings.stream,
                proxy=settings.proxy,
                timeout=settings.timeout,
                cookies=settings.cookies,
                max_retries=settings.retries,
            )
            try:
                async for piece in pieces:
                    if not piece:
                        continue
                    spinner.stop()
                    received.append(piece)
                    if show_pieces:
                        _write(self.out, piece)
            finally:
                if isinstance(pieces, AsyncGenerator):
                    await pieces.aclose()
        finally:
            await spinner.aclose()
            if show_pieces and received and not received[-1].endswith("\n"):
                _write(self.out, "\n")  # also after an interrupted reply
        reply = "".join(received)
        elapsed = time.monotonic() - started
        if settings.json:
            answer = {
                "reply": reply,
                "model": settings.model,
                "site": self.provider.url,
                "elapsed": round(elapsed, 3),
            }
            _write(self.out, json.dumps(answer, ensure_ascii=False) + "\n")
        elif not show_pieces:
            _write(self.out, reply if reply.endswith("\n") else reply + "\n")
        return reply


def _conversation_start(settings: _Settings) -> list[dict[str, str]]:
    return [{"role": "system", "content": settings.system}] if settings.system else []


def _read_stdin() -> str:
    if sys.stdin is None:
        raise UsageError("no PROMPT given, and there is no stdin to read one from")
    try:
        return sys.stdin.read()
    except UnicodeDecodeError as err:
        raise UsageError(f"stdin is not valid text: {err.reason}") from None


def _one_shot(loop: _Loop, asker: _Asker, prompt: str) -> int:
    if not prompt.strip():
        raise UsageError("the prompt is empty")
    messages = [*_conversation_start(asker.settings), {"role": "user", "content": prompt}]
    format_prompt(messages)  # TypeError or ValueError now, not after the page is loaded
    loop.run(asker.ask(messages))
    return EXIT_OK


# -- the interactive chat ----------------------------------------------------------------

_CHAT_HELP = """\
commands:
  /reset   forget the conversation (the --system message stays)
  /exit    quit (also /quit, Ctrl-D)
  /help    this list
  //text   send a message that starts with '/text'
Ctrl-C stops a reply; at the prompt, twice in a row quits."""


def _enable_line_editing() -> None:
    """Arrow keys and history in `input()`, where the readline module exists."""
    with contextlib.suppress(ImportError):
        importlib.import_module("readline")


def _chat(loop: _Loop, asker: _Asker, scrub: _Scrubber) -> int:
    settings = asker.settings
    err = asker.err
    _enable_line_editing()
    history = _conversation_start(settings)
    _write(
        err,
        f"{PROG} {__version__}: {settings.model} at {asker.provider.url}\n"
        "Type a message. /reset starts over, /exit or Ctrl-D quits, /help lists commands.\n",
    )
    interrupted_at_prompt = False
    while True:
        try:
            line = input(PROMPT)
        except EOFError:
            _write(err, "\n")
            return EXIT_OK
        except KeyboardInterrupt:
            if interrupted_at_prompt:
                _write(err, "\n")
                return EXIT_INTERRUPTED
            interrupted_at_prompt = True
            _write(err, "\n(press Ctrl-C again, Ctrl-D or type /exit to quit)\n")
            continue
        interrupted_at_prompt = False
        text = line.strip()
        if not text:
            continue
        if text.startswith("/") and not text.startswith("//"):
            command = text.split()[0].lower()
            if command in ("/exit", "/quit"):
                return EXIT_OK
            if command == "/reset":
                history = _conversation_start(settings)
                _write(err, "(the conversation is cleared)\n")
            elif command == "/help":
                _write(err, _CHAT_HELP + "\n")
            else:
                _write(err, f"unknown command {command}; /help lists them\n")
            continue
        if text.startswith("//"):
            text = text[1:]
        history.append({"role": "user", "content": text})
        try:
            reply = loop.run(asker.ask(history))
        except KeyboardInterrupt:
            history.pop()
            _write(err, "(interrupted)\n")
            continue
        except (ProviderError, TypeError, ValueError) as error:
            history.pop()
            _report(error, err, scrub, verbose=settings.verbose)
            continue
        history.append({"role": "assistant", "content": reply})
        if not settings.json:
            _write(asker.out, "\n")


# -- --local and --serve-emulator --------------------------------------------------------


def _import_testing(name: str) -> Any:
    """`chatgpt4o.testing.<name>`, or a UsageError telling how to install aiohttp."""
    if importlib.util.find_spec("aiohttp") is None:
        raise UsageError(f"--local needs aiohttp, which is not installed: {_LOCAL_INSTALL_HINT}")
    testing = importlib.import_module("chatgpt4o.testing")
    return getattr(testing, name)


def _start_emulator(loop: _Loop, *, stream: bool) -> SiteEmulator:
    emulator_class: type[SiteEmulator] = _import_testing("SiteEmulator")
    emulator = emulator_class(stream=stream)
    loop.run(emulator.start())
    loop.on_close(emulator.stop)
    return emulator


def _serve_emulator(args: argparse.Namespace) -> int:
    if args.prompt:
        raise UsageError("--serve-emulator takes no PROMPT")
    serve: Callable[..., int] = _import_testing("serve")
    return serve(["--stream"] if args.stream else [], prog=f"{PROG} --local --serve-emulator")


# -- main --------------------------------------------------------------------------------


def _report(error: BaseException, err: IO[str], scrub: _Scrubber, *, verbose: bool) -> None:
    """One line on stderr (after the traceback, with --verbose)."""
    if verbose and not isinstance(error, UsageError):
        _write(err, scrub("".join(traceback.format_exception(error))))
    message = " ".join(str(error).split()) or type(error).__name__
    if exit_code_for(error) == EXIT_FAILURE:
        message = f"unexpected {type(error).__name__}: {message}"
        if not verbose:
            message += " (--verbose shows the traceback)"
    # A usage error quotes the command line, whose secrets are all known by now; the
    # field redaction would blank out words such as "--cookie: expected".
    shown = scrub(message, redact_fields=not isinstance(error, UsageError))
    _write(err, f"{PROG}: error: {shown}\n")


def _configure_logging(verbose: bool) -> Callable[[], None]:
    """DEBUG logs of the library on stderr; returns the undo."""
    if not verbose:
        return lambda: None
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


def _run(args: argparse.Namespace, scrub: _Scrubber) -> int:
    if args.serve_emulator:
        return _serve_emulator(args)
    settings = _settings(args, os.environ, scrub)
    prompt: str | None = " ".join(args.prompt) if args.prompt else None
    if prompt == "-" or (prompt is None and not _isatty(sys.stdin)):
        prompt = _read_stdin()
    loop = _Loop()
    try:
        site_url = settings.url
        if settings.local:
            site_url = _start_emulator(loop, stream=settings.stream).url
        loop.on_close(aclose_shared_sessions)  # before the emulator stops
        name = "LocalSite" if settings.local else "Chatgpt4oSite"
        asker = _Asker(settings, _provider_for(site_url, name), sys.stdout, sys.stderr)
        if prompt is None:
            return _chat(loop, asker, scrub)
        return _one_shot(loop, asker, prompt)
    finally:
        loop.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `chatgpt4o` command with `argv` (default: `sys.argv[1:]`); return the exit
    code. The console script passes it to `sys.exit`."""
    if argv is None:
        argv = sys.argv[1:]
    scrub = _Scrubber()
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
        return _run(args, scrub)
    except KeyboardInterrupt:
        if _isatty(sys.stderr):
            _write(sys.stderr, "\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`chatgpt4o ... | head -1`): say nothing more.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE
    except Exception as error:
        _report(error, sys.stderr, scrub, verbose=verbose)
        return exit_code_for(error)
    finally:
        undo_logging()
