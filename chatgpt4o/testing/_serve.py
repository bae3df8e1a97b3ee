"""``python -m chatgpt4o.testing``: run the site emulator until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import ssl
import sys
from collections.abc import Sequence

from ._emulator import SiteEmulator
from ._pages import PAGE_VARIANTS, WIDGET_KINDS

__all__ = ["build_parser", "serve"]


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
        "--plugin-version", default="1.8.91", metavar="V", help="AI Power version (1.8.91)"
    )
    parser.add_argument("--page-variant", default="standard", choices=PAGE_VARIANTS)
    parser.add_argument("--widget", default="shortcode", choices=WIDGET_KINDS)
    parser.add_argument("--post-id", type=int, default=11)
    parser.add_argument("--bot-id", type=int, default=0)
    parser.add_argument("--token-limit", type=int, default=None, metavar="N")
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


def _ssl_context(args: argparse.Namespace) -> ssl.SSLContext | None:
    if args.certfile is None:
        if args.keyfile is not None:
            raise ValueError("--keyfile needs --certfile")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.certfile, args.keyfile)
    return context


def _make_emulator(args: argparse.Namespace) -> SiteEmulator:
    emulator = SiteEmulator(
        host=args.host,
        port=args.port,
        stream=args.stream,
        stream_chunks=args.stream_chunks,
        chunk_delay=args.chunk_delay,
        plugin_version=args.plugin_version,
        page_variant=args.page_variant,
        widget=args.widget,
        post_id=args.post_id,
        bot_id=args.bot_id,
        token_limit=args.token_limit,
        ssl_context=_ssl_context(args),
    )
    if args.reply is not None:
        emulator.reply = args.reply
    return emulator


async def _run_until_signalled(emulator: SiteEmulator, *, stats: bool = False) -> None:
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


def serve(argv: Sequence[str] | None = None, *, prog: str = "python -m chatgpt4o.testing") -> int:
    """Run the emulator until SIGINT/SIGTERM (Ctrl-C); print its URL first. Returns 0."""
    args = build_parser(prog).parse_args(argv)
    try:
        emulator = _make_emulator(args)
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
