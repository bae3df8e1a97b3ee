"""``python -m chatgpt4o.testing``: run the site emulator until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from ._emulator import SiteEmulator
from ._fault_base import parse_fault_text
from ._faults import Fault
from ._i18n import LANGUAGES
from ._output import PHP_WARNING_MODES
from ._pages import PAGE_VARIANTS, PARAMS_STYLES, WIDGET_KINDS
from ._site import ssl_context_from

__all__ = ["PLUGINS", "build_parser", "emulator_from_argv", "parse_fault", "plugin_parser", "serve"]


def build_parser(prog: str = "python -m chatgpt4o.testing") -> argparse.ArgumentParser:
    """The command-line options of :func:`serve`."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Run a local emulator of chatgpt4o.one (WordPress + AI Power chat). "
            "The first line printed is the site URL."
        ),
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
    parser.add_argument("--stream", action="store_true", help="answer with event streams")
    parser.add_argument("--reply", metavar="TEXT", help="answer every message with TEXT")
    parser.add_argument(
        "--chunk-delay", type=float, default=0.0, metavar="S", help="seconds between chunks"
    )
    parser.add_argument(
        "--stream-chunks", type=int, default=None, metavar="N", help="chunks per reply"
    )
    parser.add_argument(
        "--plugin-version",
        default="1.8.91",
        metavar="V",
        help="AI Power version, 1.8.79 to 2.2 (default 1.8.91); 2.3+ has no legacy chat",
    )
    parser.add_argument(
        "--language", default="en", choices=LANGUAGES, help="the site's language (en)"
    )
    parser.add_argument(
        "--assistant",
        action="store_true",
        help="the bot is an OpenAI Assistant (1.8.95+): thread_id, Assistant streams",
    )
    parser.add_argument(
        "--php-warnings",
        default="off",
        choices=PHP_WARNING_MODES,
        metavar="MODE",
        help="PHP display_errors: off, buffered (output buffering on) or unbuffered",
    )
    parser.add_argument(
        "--php-version", default="8.2", metavar="V", help="PHP version of the warnings (8.2)"
    )
    parser.add_argument(
        "--other-notices",
        action="store_true",
        help="another plugin prints a PHP notice before every answer (with --php-warnings)",
    )
    parser.add_argument(
        "--no-remember-conversation",
        dest="remember_conversation",
        action="store_false",
        help="the bot ignores wpaicg_chat_history",
    )
    parser.add_argument(
        "--memory-limit", type=int, default=10, metavar="N", help="data-memory-limit (10)"
    )
    parser.add_argument("--page-variant", default="standard", choices=PAGE_VARIANTS)
    parser.add_argument(
        "--params-style",
        default="inline",
        choices=PARAMS_STYLES,
        help="how wpaicgParams is printed (base64: an optimiser's data: script)",
    )
    parser.add_argument(
        "--foreign-params",
        action="store_true",
        help="a theme object with its own ajax_url and search_nonce before the chat",
    )
    parser.add_argument(
        "--page-padding", type=int, default=0, metavar="BYTES", help="CSS before the chat"
    )
    parser.add_argument(
        "--footer-padding",
        type=int,
        default=0,
        metavar="BYTES",
        help="markup between the content and wpaicgParams",
    )
    parser.add_argument("--widget", default="shortcode", choices=WIDGET_KINDS)
    parser.add_argument("--post-id", type=int, default=11)
    parser.add_argument("--bot-id", type=int, default=0)
    parser.add_argument("--token-limit", type=int, default=None, metavar="N")
    parser.add_argument(
        "--banned-word", action="append", default=[], metavar="WORD", help="(repeatable)"
    )
    parser.add_argument(
        "--banned-ip", action="append", default=[], metavar="IP", help="(repeatable)"
    )
    parser.add_argument(
        "--fail",
        action="append",
        default=[],
        type=parse_fault,
        metavar="FAULT[=ARG]",
        help="queue a fault for the next request, e.g. upstream_error or "
        "stream_error_event=messageFlagged (a Fault factory with at most one argument; "
        "repeatable, in order)",
    )
    parser.add_argument(
        "--certfile",
        metavar="PEM",
        help="serve HTTPS with this certificate chain (PEM; may hold the key too)",
    )
    parser.add_argument(
        "--keyfile", metavar="PEM", help="the private key of --certfile, if not inside it"
    )
    parser.add_argument(
        "--stats",
        action="store_true",
        help="on shutdown, print one JSON line of counters (page_loads, posts, connections)",
    )
    return parser


def parse_fault(text: str) -> Fault:
    """``NAME`` or ``NAME=ARG``: the :class:`Fault` factory ``NAME``, called with no
    argument or with ``ARG`` (converted to a number where the factory takes one)."""
    return parse_fault_text(Fault, text)


def _make_emulator(args: argparse.Namespace) -> SiteEmulator:
    emulator = SiteEmulator(
        host=args.host,
        port=args.port,
        stream=args.stream,
        stream_chunks=args.stream_chunks,
        chunk_delay=args.chunk_delay,
        plugin_version=args.plugin_version,
        language=args.language,
        assistant=args.assistant,
        php_warnings=args.php_warnings,
        php_version=args.php_version,
        other_notices=args.other_notices,
        remember_conversation=args.remember_conversation,
        memory_limit=args.memory_limit,
        page_variant=args.page_variant,
        params_style=args.params_style,
        foreign_params=args.foreign_params,
        page_padding=args.page_padding,
        footer_padding=args.footer_padding,
        widget=args.widget,
        post_id=args.post_id,
        bot_id=args.bot_id,
        token_limit=args.token_limit,
        banned_words=args.banned_word,
        banned_ips=args.banned_ip,
        ssl_context=ssl_context_from(args.certfile, args.keyfile),
    )
    if args.reply is not None:
        emulator.reply = args.reply
    for fault in args.fail:
        emulator.fail_next(fault)
    return emulator


def emulator_from_argv(argv: Sequence[str], *, stream: bool | None = None) -> SiteEmulator:
    """A `SiteEmulator` configured by the options of ``python -m chatgpt4o.testing``.

    Raises ValueError naming what is wrong with ``argv`` (never exits). ``stream``, when
    given, overrides ``--stream``.
    """
    plugin = _plugin_of(argv)
    parser = plugin_parser(plugin, "--emulator")

    def refuse(message: str) -> NoReturn:
        raise ValueError(f"emulator options {' '.join(argv)!r}: {message}")

    parser.error = refuse  # type: ignore[method-assign]  # a ValueError, not an exit
    try:
        args = parser.parse_args(list(argv))
    except SystemExit:  # --help or --version: printed already
        raise ValueError("emulator options: --help is for python -m chatgpt4o.testing") from None
    if stream is not None and plugin == "wpaicg":
        args.stream = stream  # (the others stream whenever a request asks)
    emulator: SiteEmulator = _emulator_for(plugin, args)
    return emulator


async def _run_until_signalled(emulator: Any, *, stats: bool = False) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    installed: list[signal.Signals] = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not main thread
            continue
        installed.append(signum)
    try:
        async with emulator:
            with contextlib.suppress(BrokenPipeError):
                print(emulator.url, flush=True)
            await stop.wait()
        if stats:
            counters = {
                "page_loads": emulator.page_loads,
                "posts": emulator.posts,
                "connections": emulator.connections,
            }
            with contextlib.suppress(BrokenPipeError):
                print(json.dumps(counters), flush=True)
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


#: The plugins the emulator plays: `--plugin NAME`.
PLUGINS = ("wpaicg", "aipkit", "aiengine")


def _plugin_of(argv: Sequence[str]) -> str:
    """The `--plugin` among `argv` (default wpaicg); the rest is the plugin's own."""
    chooser = argparse.ArgumentParser(add_help=False)
    chooser.add_argument("--plugin", choices=PLUGINS, default="wpaicg")
    known, _ = chooser.parse_known_args(list(argv))
    return str(known.plugin)


def plugin_parser(
    plugin: str, prog: str = "python -m chatgpt4o.testing"
) -> argparse.ArgumentParser:
    """The options of the emulator of `plugin` (all of them take `--plugin`)."""
    if plugin == "wpaicg":
        parser = build_parser(prog)
    else:
        parser = argparse.ArgumentParser(
            prog=prog,
            description=f"Run a local emulator of a WordPress site with {_TITLES[plugin]}. "
            "The first line printed is the site URL.",
        )
        parser.add_argument("--stats", action="store_true",
                            help="print the counters as JSON when stopped")
        _module(plugin).build_parser_arguments(parser)
    parser.add_argument(
        "--plugin", choices=PLUGINS, default="wpaicg",
        help="which plugin the site runs: wpaicg (AI Power <= 2.2, the default), aipkit "
        "(AI Power 2.3+) or aiengine (Meow Apps' AI Engine); each has options of its own "
        "(see --plugin NAME --help)",
    )
    return parser


_TITLES = {"aipkit": "AI Power 2.3+ (AIPKit)", "aiengine": "Meow Apps' AI Engine"}


def _module(plugin: str) -> Any:
    if plugin == "aiengine":
        from . import _aiengine

        return _aiengine
    from . import _aipkit  # type: ignore[attr-defined,unused-ignore]

    return _aipkit


def _emulator_for(plugin: str, args: argparse.Namespace) -> Any:
    if plugin == "wpaicg":
        return _make_emulator(args)
    return _module(plugin).emulator_from_args(args)


def serve(argv: Sequence[str] | None = None, *, prog: str = "python -m chatgpt4o.testing") -> int:
    """Run the emulator until SIGINT/SIGTERM (Ctrl-C); print its URL first. Returns 0."""
    argv = list(sys.argv[1:] if argv is None else argv)
    plugin = _plugin_of(argv)
    args = plugin_parser(plugin, prog).parse_args(argv)
    try:
        emulator = _emulator_for(plugin, args)
    except (ValueError, OSError) as exc:  # a bad option, or unreadable certificate files
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_run_until_signalled(emulator, stats=args.stats))
    except KeyboardInterrupt:  # signal handlers unavailable (Windows)
        pass
    except OSError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 1
    return 0
