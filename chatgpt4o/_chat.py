"""The work of the `chatgpt4o` command: settings, the prompt, asking, the interactive
chat, and logging every exchange.

`_cli` parses the command line and hands over to `run`; this module is imported only
then, because it brings the event loop, the provider and (on the first request)
curl_cffi. It imports `_terminal` for what it shares with `_cli`, never `_cli` itself.

The prompt is the PROMPT words, then piped stdin, then each `-f FILE`, joined by blank
lines (`git diff | chatgpt4o "Review this"` sends the instruction, then the diff).
Every exchange goes to the conversation log (`_history`) unless `--no-log` or
`CHATGPT4O_NO_LOG`; `-c` and `--cid` replay a logged conversation as the history of
the next call.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import importlib.util
import itertools
import json
import os
import stat
import sys
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from ._command import exit_code_for
from ._constants import DEFAULT_SITE_URL
from ._discover import discover
from ._exceptions import (
    CloudflareError,
    ModelNotSupportedError,
    ProviderConnectionError,
    ProviderError,
    ScrapeError,
)
from ._history import Exchange, HistoryError, Log, logs_path, new_id
from ._messages import format_prompt
from ._options import SiteOptions, bot_option, emulator_argv, env_value, site_options
from ._provider import Chatgpt4o, WordPressChat
from ._runner import Runner
from ._session import aclose_shared_sessions
from ._terminal import (
    ENV_COOKIE,
    ENV_NO_LOG,
    EXIT_INTERRUPTED,
    EXIT_OK,
    LOCAL_INSTALL_HINT,
    PROG,
    PROMPT,
    Scrubber,
    UsageError,
    add_hint,
    describe,
    encodable,
    error_json,
    isatty,
    report,
    write,
)
from ._version import __version__

if TYPE_CHECKING:
    from .testing import SiteEmulator

__all__ = ["run"]


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
    bot: str | None
    stream: bool
    json: bool
    local: bool
    verbose: bool
    site: SiteOptions = field(repr=False)
    #: Where exchanges are logged; None with --no-log or CHATGPT4O_NO_LOG.
    log: Log | None = None


def _logging_off(environ: Mapping[str, str]) -> bool:
    value = env_value(environ, ENV_NO_LOG)
    return value is not None and value.lower() not in ("0", "false", "no")


def _settings(
    args: argparse.Namespace, environ: Mapping[str, str], scrub: Scrubber
) -> _Settings:
    site = site_options(args, environ, scrub, local=args.local)
    try:
        model = Chatgpt4o.get_model(args.model)
    except ModelNotSupportedError as err:
        raise UsageError(str(err)) from None

    return _Settings(
        model=model,
        system=args.system,
        proxy=site.proxy,
        timeout=site.timeout,
        retries=site.retries,
        cookies=site.cookies,
        url=site.url,
        bot=bot_option(args),
        stream=True if args.stream is None else args.stream,
        json=args.json,
        local=args.local,
        verbose=args.verbose,
        site=site,
        log=None if args.no_log or _logging_off(environ) else Log(logs_path(environ)),
    )


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
            write(self._stream, "\r" + " " * self._width + "\r")
            self._width = 0

    async def aclose(self) -> None:
        self.stop()
        task, self._task = self._task, None
        if task is not None:
            await asyncio.wait({task})

    async def _spin(self) -> None:
        await asyncio.sleep(self.DELAY)
        frames = self.FRAMES if encodable(self._stream, self.FRAMES) else self.ASCII_FRAMES
        for frame in itertools.cycle(frames):
            text = f"{frame} {self._label}"
            self._width = max(self._width, len(text))
            write(self._stream, "\r" + text)
            await asyncio.sleep(self.INTERVAL)


# -- the conversation ------------------------------------------------------------------


@dataclass
class _Conversation:
    """The conversation being held: its log id, its system message and its turns."""

    id: str
    system: str | None
    turns: list[dict[str, str]] = field(default_factory=list)

    def messages(self, prompt: str) -> list[dict[str, str]]:
        """What the provider is given for `prompt`: the whole conversation."""
        start = [{"role": "system", "content": self.system}] if self.system else []
        return [*start, *self.turns, {"role": "user", "content": prompt}]

    def add(self, prompt: str, reply: str) -> None:
        self.turns += [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": reply},
        ]


def _conversation(args: argparse.Namespace, settings: _Settings) -> _Conversation:
    """A new conversation, or with -c / --cid the logged one, whose exchanges that got
    a reply become the turns and whose last system message stays (unless --system)."""
    if not args.continue_ and args.cid is None:
        return _Conversation(new_id(), settings.system)
    log = Log(logs_path(os.environ))  # read even with --no-log: only writing is off
    try:
        cid = args.cid if args.cid is not None else log.last_conversation_id()
        exchanges = log.conversation(cid) if cid is not None else []
    except HistoryError as err:
        raise UsageError(str(err)) from None
    if cid is None:
        raise UsageError(
            f"-c: there is no conversation to continue; the log {str(log.path)!r} is empty"
        )
    if not exchanges:
        raise UsageError(f"--cid: no conversation {cid!r} in the log {str(log.path)!r}")
    conversation = _Conversation(cid, settings.system)
    if settings.system is None:
        conversation.system = exchanges[-1].system
    for exchange in exchanges:
        if exchange.reply is not None:
            conversation.add(exchange.prompt, exchange.reply)
    return conversation


# -- asking ----------------------------------------------------------------------------

_TRY_INSTEAD = (
    "try --local (the bundled emulator, offline) or --url with a page of a site that "
    "runs AI Power or AI Engine"
)


def _hint(error: BaseException, settings: _Settings) -> str | None:
    """What to do when the site cannot be reached, blocks us or has no chat: another
    site, or the emulator. (Not for a proxy's failure, nor with --local.)"""
    if settings.local:
        return None
    if isinstance(error, ProviderConnectionError) and "proxy" in str(error).lower():
        return None
    if not isinstance(error, (ProviderConnectionError, CloudflareError, ScrapeError)):
        return None
    if settings.url is None:
        return f"The default site, chatgpt4o.one, stopped answering in late 2024: {_TRY_INSTEAD}"
    if isinstance(error, CloudflareError):
        return f"Pass the cookie with --cookie-file or {ENV_COOKIE}, or {_TRY_INSTEAD}"
    return _TRY_INSTEAD[0].upper() + _TRY_INSTEAD[1:]


@dataclass
class _Asker:
    """Sends a conversation and shows the reply the way the settings ask; logs each
    exchange.

    With a site of the user's (`--url`, `--local`) the provider is found on the first
    question, by `discover()`: whatever supported plugin the page runs.
    """

    settings: _Settings
    provider: type[WordPressChat] | None
    out: IO[str]
    err: IO[str]
    scrub: Scrubber
    site_url: str = DEFAULT_SITE_URL
    _log_failed: bool = False

    async def _provider(self) -> type[WordPressChat]:
        if self.provider is None:
            settings = self.settings
            self.provider = await discover(
                self.site_url,
                bot_id=settings.bot,
                proxy=settings.proxy,
                timeout=settings.timeout,
                cookies=settings.cookies,
                max_retries=settings.retries,
            )
        return self.provider

    def exchange(self, runner: Runner, conversation: _Conversation, prompt: str) -> str:
        """Ask `prompt` in `conversation`, show the reply, log the exchange (failed
        ones too) and add it to the conversation; the error, with its hint, if any."""
        messages = conversation.messages(prompt)
        format_prompt(messages)  # TypeError or ValueError now, not after the page is loaded
        started = time.monotonic()
        when = Exchange.now()
        try:
            reply = runner.run(self._ask(messages, conversation.id, started))
        except BaseException as error:
            hint = _hint(error, self.settings)
            if hint:
                add_hint(error, hint)
            self._record(conversation, prompt, when, started, None, error)
            raise
        self._record(conversation, prompt, when, started, reply, None)
        conversation.add(prompt, reply)
        return reply

    def _record(
        self,
        conversation: _Conversation,
        prompt: str,
        when: str,
        started: float,
        reply: str | None,
        error: BaseException | None,
    ) -> None:
        log = self.settings.log
        if log is None:
            return
        error_type = error_message = None
        if isinstance(error, KeyboardInterrupt):
            error_type, error_message = "KeyboardInterrupt", "interrupted"
        elif isinstance(error, BrokenPipeError):
            error_type = "BrokenPipeError"
            error_message = "the output was closed before the whole reply was shown"
        elif error is not None:
            error_type = type(error).__name__
            error_message = describe(error, self.scrub)
        exchange = Exchange(
            id=new_id(),
            conversation_id=conversation.id,
            datetime_utc=when,
            duration_ms=round((time.monotonic() - started) * 1000),
            model=self.settings.model,
            site=self.scrub(self.site_url),
            system=conversation.system,
            prompt=prompt,
            reply=reply,
            error_type=error_type,
            error_message=error_message,
        )
        try:
            log.record(exchange)
        except HistoryError as err:
            if not self._log_failed:  # say it once; the exchange itself went well
                self._log_failed = True
                write(self.err, f"{PROG}: warning: {self.scrub(str(err))}\n")

    async def _ask(self, messages: list[dict[str, str]], cid: str, started: float) -> str:
        settings = self.settings
        show_pieces = settings.stream and not settings.json
        known = self.provider
        label = known.label if known is not None else urlsplit(self.site_url).netloc
        spinner = _Spinner(
            self.err,
            f"waiting for {label}",
            enabled=isatty(self.err) and not settings.verbose,
        )
        received: list[str] = []
        spinner.start()
        try:
            provider = await self._provider()
            pieces = provider.create_async_generator(
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
                        write(self.out, piece)
            finally:
                if isinstance(pieces, AsyncGenerator):
                    await pieces.aclose()
        finally:
            await spinner.aclose()
            if show_pieces and received and not received[-1].endswith("\n"):
                write(self.out, "\n")  # also after an interrupted reply
        reply = "".join(received)
        elapsed = time.monotonic() - started
        if settings.json:
            answer = {
                "reply": reply,
                "model": settings.model,
                "site": self.scrub(self.site_url),
                "elapsed": round(elapsed, 3),
                "conversation_id": cid if settings.log is not None else None,
            }
            write(self.out, json.dumps(answer, ensure_ascii=False) + "\n")
        elif not show_pieces:
            write(self.out, reply if reply.endswith("\n") else reply + "\n")
        return reply


# -- the prompt ------------------------------------------------------------------------


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise UsageError(
            f"{source} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset "
            f"{err.start}); convert it first, e.g. with iconv -t utf-8"
        ) from None


def _read_stdin() -> str:
    stdin = sys.stdin
    if stdin is None:
        raise UsageError("no PROMPT given, and there is no stdin to read one from")
    buffer = getattr(stdin, "buffer", None)
    if buffer is None:  # a text stream without bytes under it
        return stdin.read()
    data: bytes = buffer.read()
    return _decode(data, "stdin")


def _stdin_is_piped() -> bool:
    """Whether stdin is a pipe or a file: read along with a PROMPT. A terminal, the null
    device, a socket or no stdin at all is not (reading them would wait or find
    nothing)."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (AttributeError, OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode)


def _read_file(path: str) -> str:
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise UsageError(f"-f: cannot read {path!r}: {err.strerror or err}") from None
    return _decode(data, f"-f {path!r}")


def _prompt(args: argparse.Namespace) -> str | None:
    """The PROMPT words, piped stdin and the -f files, joined by blank lines; None for
    the interactive chat (nothing given, stdin a terminal)."""
    words = " ".join(args.prompt) if args.prompt else None
    stdin_read = False
    parts: list[str] = []
    # stdin is the prompt when nothing else is given and it is not a terminal (the
    # null device gives an empty prompt); along with words or files, only a pipe or a
    # file is read, since a socket or a terminal would wait.
    alone = words is None and not args.file and not isatty(sys.stdin)
    along = (words is not None or bool(args.file)) and _stdin_is_piped()
    if words == "-" or alone or along:
        stdin_read = True
        piped = _read_stdin()
        if words is not None and words != "-":
            parts.append(words)
        parts.append(piped)
    elif words is not None:
        parts.append(words)
    for path in args.file:
        if path == "-":
            if stdin_read:
                continue
            stdin_read = True
            parts.append(_read_stdin())
        else:
            parts.append(_read_file(path))
    if not parts and not stdin_read:
        return None
    joined = "\n\n".join(part.strip("\n") for part in parts if part.strip())
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in argv, as Python keeps them
        raise UsageError("the PROMPT is not valid UTF-8 text") from None
    return joined


def _one_shot(
    runner: Runner, asker: _Asker, conversation: _Conversation, prompt: str
) -> int:
    if not prompt.strip():
        raise UsageError("the prompt is empty")
    asker.exchange(runner, conversation, prompt)
    return EXIT_OK


# -- the interactive chat ----------------------------------------------------------------

_MULTILINE = '"""'

_CHAT_HELP = f"""\
commands:
  /system TEXT  set the system message (/system alone shows it, /system - clears it)
  /reset        start a new conversation (the system message stays)
  /exit         quit (also /quit, Ctrl-D)
  /help         this list
  //text        send a message that starts with '/text'
several lines: paste them (one message), or type {_MULTILINE} on a line, the lines, and
{_MULTILINE} again.
Ctrl-C stops a reply; at the prompt, twice in a row quits."""


def _enable_line_editing(environ: Mapping[str, str]) -> bool:
    """Arrow keys and history in `input()`, where the readline module exists; with GNU
    readline on a capable terminal, bracketed paste too (a paste of several lines is
    one input, ended by Enter). Returns whether bracketed paste is on."""
    try:
        readline = importlib.import_module("readline")
    except ImportError:
        return False
    backend = getattr(readline, "backend", "")  # Python 3.13+; libedit says so in __doc__
    editline = backend == "editline" or "libedit" in (readline.__doc__ or "")
    if editline or environ.get("TERM", "dumb") in ("", "dumb"):
        return False
    # Python turns it off (for its own REPL); readline 8.1 and newer know it.
    readline.parse_and_bind("set enable-bracketed-paste on")
    return True


def _read_message(read: Callable[[str], str]) -> str:
    """One message from the user: a line, a paste of several (bracketed paste gives
    them in one `read`), or the lines of a \"\"\" block. EOFError and KeyboardInterrupt
    pass through; a block is dropped with them."""
    line = read(PROMPT)
    if not line.lstrip().startswith(_MULTILINE) or "\n" in line:
        return line
    first = line.lstrip()[len(_MULTILINE):]
    if first.rstrip().endswith(_MULTILINE):  # \"\"\"all on one line\"\"\"
        return first.rstrip()[: -len(_MULTILINE)]
    lines = [first] if first.strip() else []
    while True:
        line = read("... ")
        if line.rstrip().endswith(_MULTILINE):
            lines.append(line.rstrip()[: -len(_MULTILINE)])
            return "\n".join(lines)
        lines.append(line)


def _chat_command(
    text: str, conversation: _Conversation, err: IO[str]
) -> tuple[bool, _Conversation]:
    """Run the /command `text`; (whether to go on, the conversation now)."""
    command, _, rest = text.partition(" ")
    command = command.lower()
    rest = rest.strip()
    if command in ("/exit", "/quit"):
        return False, conversation
    if command == "/reset":
        conversation = _Conversation(new_id(), conversation.system)
        write(err, "(the conversation is cleared)\n")
    elif command == "/system":
        if rest == "-":
            conversation.system = None
            write(err, "(no system message)\n")
        elif rest:
            conversation.system = rest
            write(err, "(the system message is set)\n")
        else:
            shown = conversation.system or "(none)"
            write(err, f"system message: {shown}\n")
    elif command == "/help":
        write(err, _CHAT_HELP + "\n")
    else:
        write(err, f"unknown command {command}; /help lists them\n")
    return True, conversation


def _chat(
    runner: Runner, asker: _Asker, scrub: Scrubber, conversation: _Conversation
) -> int:
    settings = asker.settings
    err = asker.err
    pasting = _enable_line_editing(os.environ)
    several = "paste them, or put" if pasting else "put"
    continued = f" (continuing, {len(conversation.turns) // 2} earlier exchanges)" if (
        conversation.turns
    ) else ""
    write(
        err,
        f"{PROG} {__version__}: {settings.model} at {scrub(asker.site_url)}{continued}\n"
        f"Type a message; for several lines, {several} {_MULTILINE} before and after them.\n"
        "/reset starts over, /system TEXT sets the system message, /exit or Ctrl-D quits, "
        "/help lists commands.\n",
    )
    interrupted_at_prompt = False
    while True:
        try:
            message = _read_message(input)
        except EOFError:
            write(err, "\n")
            return EXIT_OK
        except KeyboardInterrupt:
            if interrupted_at_prompt:
                write(err, "\n")
                return EXIT_INTERRUPTED
            interrupted_at_prompt = True
            write(err, "\n(press Ctrl-C again, Ctrl-D or type /exit to quit)\n")
            continue
        interrupted_at_prompt = False
        text = message.strip()
        if not text:
            continue
        if text.startswith("/") and not text.startswith("//") and "\n" not in text:
            go_on, conversation = _chat_command(text, conversation, err)
            if not go_on:
                return EXIT_OK
            continue
        if text.startswith("//"):
            text = text[1:]
        try:
            asker.exchange(runner, conversation, text)
        except KeyboardInterrupt:
            write(err, "(interrupted)\n")
            continue
        except (ProviderError, TypeError, ValueError) as error:
            shown = report(error, err, scrub, verbose=settings.verbose)
            if settings.json:
                write(asker.out, error_json(error, shown, exit_code_for(error)))
            continue
        if not settings.json:
            write(asker.out, "\n")


# -- --local and --serve-emulator --------------------------------------------------------


def _import_testing(name: str) -> Any:
    """`chatgpt4o.testing.<name>`, or a UsageError telling how to install aiohttp."""
    try:
        found = importlib.util.find_spec("aiohttp") is not None
    except (ImportError, ValueError):  # a broken install, or one that blocks it
        found = False
    if not found:
        raise UsageError(f"--local needs aiohttp, which is not installed: {LOCAL_INSTALL_HINT}")
    try:
        return getattr(importlib.import_module("chatgpt4o.testing"), name)
    except ImportError as err:
        raise UsageError(f"--local: {err}") from None


def _start_emulator(runner: Runner, args: argparse.Namespace, *, stream: bool) -> SiteEmulator:
    _import_testing("SiteEmulator")  # the install hint, if aiohttp is missing
    from .testing._serve import emulator_from_argv

    try:
        emulator = emulator_from_argv(emulator_argv(args), stream=stream)
    except ValueError as err:
        raise UsageError(str(err)) from None
    runner.run(emulator.start())
    runner.on_close(emulator.stop)
    return emulator


def _serve_emulator(args: argparse.Namespace) -> int:
    if args.prompt:
        raise UsageError("--serve-emulator takes no PROMPT")
    serve: Callable[..., int] = _import_testing("serve")
    options = emulator_argv(args) + (["--stream"] if args.stream else [])
    return serve(options, prog=f"{PROG} --local --serve-emulator")


def run(args: argparse.Namespace, scrub: Scrubber) -> int:
    """Do what the parsed command line asks; return the exit code."""
    if args.serve_emulator:
        return _serve_emulator(args)
    emulator_argv(args)  # checked before anything starts
    settings = _settings(args, os.environ, scrub)
    conversation = _conversation(args, settings)
    prompt = _prompt(args)
    # One loop for the whole run: the chat keeps its HTTP session (and the emulator)
    # between turns, while input() waits outside the loop.
    with Runner() as runner:
        site_url = settings.url
        if settings.local:
            site_url = _start_emulator(runner, args, stream=settings.stream).url
            settings.cookies = settings.site.cookies_for(site_url)
            for value in settings.cookies.values():
                scrub.add(value)
        runner.on_close(aclose_shared_sessions)  # before the emulator stops
        if site_url is None:  # the default site: AI Power, as chatgpt4o.one ran it
            default = Chatgpt4o if settings.bot is None else Chatgpt4o.for_site(
                DEFAULT_SITE_URL, bot_id=settings.bot
            )
            asker = _Asker(settings, default, sys.stdout, sys.stderr, scrub)
        else:
            asker = _Asker(settings, None, sys.stdout, sys.stderr, scrub, site_url)
        if prompt is None:
            return _chat(runner, asker, scrub, conversation)
        return _one_shot(runner, asker, conversation, prompt)
