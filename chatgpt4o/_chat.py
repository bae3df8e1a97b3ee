"""The work of the `chatgpt4o` command: settings, asking, the interactive chat.

`_cli` parses the command line and hands over to `run`; this module is imported only
then, because it brings the event loop, the provider and (on the first request)
curl_cffi. It imports `_terminal` for what it shares with `_cli`, never `_cli` itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import importlib.util
import itertools
import json
import os
import shlex
import sys
import time
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from ._constants import DEFAULT_SITE_URL
from ._discover import discover
from ._exceptions import ModelNotSupportedError, ProviderError
from ._messages import format_prompt
from ._options import site_options
from ._provider import Chatgpt4o, WordPressChat
from ._runner import Runner
from ._session import aclose_shared_sessions
from ._terminal import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    LOCAL_INSTALL_HINT,
    PROG,
    PROMPT,
    Scrubber,
    UsageError,
    encodable,
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


def _bot(value: str | None) -> str | None:
    if value is None:
        return None
    if not value.strip() or len(value) > 200:
        raise UsageError(f"--bot must be a chatbot's id on the page, got {value!r}")
    return value.strip()


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
        bot=_bot(args.bot),
        stream=True if args.stream is None else args.stream,
        json=args.json,
        local=args.local,
        verbose=args.verbose,
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


# -- asking ----------------------------------------------------------------------------


@dataclass
class _Asker:
    """Sends a conversation and shows the reply the way the settings ask.

    With a site of the user's (`--url`, `--local`) the provider is found on the first
    question, by `discover()`: whatever supported plugin the page runs.
    """

    settings: _Settings
    provider: type[WordPressChat] | None
    out: IO[str]
    err: IO[str]
    site_url: str = DEFAULT_SITE_URL

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

    async def ask(self, messages: list[dict[str, str]]) -> str:
        settings = self.settings
        show_pieces = settings.stream and not settings.json
        known = self.provider
        label = known.label if known is not None else urlsplit(self.site_url).netloc
        spinner = _Spinner(
            self.err,
            f"waiting for {label}",
            enabled=isatty(self.err) and not settings.verbose,
        )
        started = time.monotonic()
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
                "site": self.site_url,
                "elapsed": round(elapsed, 3),
            }
            write(self.out, json.dumps(answer, ensure_ascii=False) + "\n")
        elif not show_pieces:
            write(self.out, reply if reply.endswith("\n") else reply + "\n")
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


def _one_shot(runner: Runner, asker: _Asker, prompt: str) -> int:
    if not prompt.strip():
        raise UsageError("the prompt is empty")
    messages = [*_conversation_start(asker.settings), {"role": "user", "content": prompt}]
    format_prompt(messages)  # TypeError or ValueError now, not after the page is loaded
    runner.run(asker.ask(messages))
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


def _chat(runner: Runner, asker: _Asker, scrub: Scrubber) -> int:
    settings = asker.settings
    err = asker.err
    _enable_line_editing()
    history = _conversation_start(settings)
    write(
        err,
        f"{PROG} {__version__}: {settings.model} at {asker.site_url}\n"
        "Type a message. /reset starts over, /exit or Ctrl-D quits, /help lists commands.\n",
    )
    interrupted_at_prompt = False
    while True:
        try:
            line = input(PROMPT)
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
        text = line.strip()
        if not text:
            continue
        if text.startswith("/") and not text.startswith("//"):
            command = text.split()[0].lower()
            if command in ("/exit", "/quit"):
                return EXIT_OK
            if command == "/reset":
                history = _conversation_start(settings)
                write(err, "(the conversation is cleared)\n")
            elif command == "/help":
                write(err, _CHAT_HELP + "\n")
            else:
                write(err, f"unknown command {command}; /help lists them\n")
            continue
        if text.startswith("//"):
            text = text[1:]
        history.append({"role": "user", "content": text})
        try:
            reply = runner.run(asker.ask(history))
        except KeyboardInterrupt:
            history.pop()
            write(err, "(interrupted)\n")
            continue
        except (ProviderError, TypeError, ValueError) as error:
            history.pop()
            report(error, err, scrub, verbose=settings.verbose)
            continue
        history.append({"role": "assistant", "content": reply})
        if not settings.json:
            write(asker.out, "\n")


# -- --local and --serve-emulator --------------------------------------------------------


def _import_testing(name: str) -> Any:
    """`chatgpt4o.testing.<name>`, or a UsageError telling how to install aiohttp."""
    if importlib.util.find_spec("aiohttp") is None:
        raise UsageError(f"--local needs aiohttp, which is not installed: {LOCAL_INSTALL_HINT}")
    testing = importlib.import_module("chatgpt4o.testing")
    return getattr(testing, name)


def _emulator_options(args: argparse.Namespace) -> list[str]:
    if args.emulator and not args.local:
        raise UsageError("--emulator configures the emulator of --local; add --local")
    try:
        return shlex.split(args.emulator)
    except ValueError as err:
        raise UsageError(f"--emulator: {err}") from None


def _start_emulator(runner: Runner, args: argparse.Namespace, *, stream: bool) -> SiteEmulator:
    _import_testing("SiteEmulator")  # the install hint, if aiohttp is missing
    from .testing._serve import emulator_from_argv

    try:
        emulator = emulator_from_argv(_emulator_options(args), stream=stream)
    except ValueError as err:
        raise UsageError(str(err)) from None
    runner.run(emulator.start())
    runner.on_close(emulator.stop)
    return emulator


def _serve_emulator(args: argparse.Namespace) -> int:
    if args.prompt:
        raise UsageError("--serve-emulator takes no PROMPT")
    serve: Callable[..., int] = _import_testing("serve")
    options = _emulator_options(args) + (["--stream"] if args.stream else [])
    return serve(options, prog=f"{PROG} --local --serve-emulator")


def run(args: argparse.Namespace, scrub: Scrubber) -> int:
    """Do what the parsed command line asks; return the exit code."""
    if args.serve_emulator:
        return _serve_emulator(args)
    _emulator_options(args)  # checked before anything starts
    settings = _settings(args, os.environ, scrub)
    prompt: str | None = " ".join(args.prompt) if args.prompt else None
    if prompt == "-" or (prompt is None and not isatty(sys.stdin)):
        prompt = _read_stdin()
    # One loop for the whole run: the chat keeps its HTTP session (and the emulator)
    # between turns, while input() waits outside the loop.
    with Runner() as runner:
        site_url = settings.url
        if settings.local:
            site_url = _start_emulator(runner, args, stream=settings.stream).url
        runner.on_close(aclose_shared_sessions)  # before the emulator stops
        if site_url is None:  # the default site: AI Power, as chatgpt4o.one ran it
            default = Chatgpt4o if settings.bot is None else Chatgpt4o.for_site(
                DEFAULT_SITE_URL, bot_id=settings.bot
            )
            asker = _Asker(settings, default, sys.stdout, sys.stderr)
        else:
            asker = _Asker(settings, None, sys.stdout, sys.stderr, site_url)
        if prompt is None:
            return _chat(runner, asker, scrub)
        return _one_shot(runner, asker, prompt)
