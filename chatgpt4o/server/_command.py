"""`chatgpt4o serve`: the OpenAI-compatible server, under uvicorn, until SIGINT or SIGTERM.

    chatgpt4o serve --local                  # in front of the bundled emulator
    chatgpt4o serve --url https://example.org/chat/ --api-key sk-local

The first line on stdout is the base URL for OpenAI clients (`http://127.0.0.1:1337/v1`),
printed once the server accepts connections; the access log (one line per request) and
uvicorn's warnings go to stderr. SIGINT or SIGTERM stops it: no new connections, the
requests in flight get `--shutdown-timeout` seconds to finish and are then cancelled
(which closes their upstream transfers), and the command exits with 0 (130 after
SIGINT), without a traceback.

The site options (--url, --proxy, --timeout, --retries, --cookie, and their environment
defaults) are every command's (`_options`); errors and exit codes are `_command`'s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import gc
import importlib.util
import ipaddress
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .._command import CommandParser, run_command
from .._options import (
    add_bot_option,
    add_local_options,
    add_site_options,
    bot_option,
    emulator_argv,
    env_value,
    site_options,
)
from .._terminal import (
    ENV_PROXY,
    ENV_TIMEOUT,
    ENV_URL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    LOCAL_INSTALL_HINT,
    PROG,
    Scrubber,
    UsageError,
    parse_seconds,
    write,
)
from ._settings import DEFAULT_MAX_BODY_SIZE, ENV_API_KEY, ServerConfig

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "SERVER_INSTALL_HINT", "build_parser", "main"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1337
#: Seconds the requests in flight get to finish once a stop is asked for.
DEFAULT_SHUTDOWN_TIMEOUT = 5.0
SERVER_INSTALL_HINT = 'pip install starlette uvicorn httptools (the extra "server")'

_USAGE = f"{PROG} serve [--host HOST] [--port PORT] [--url URL | --local] [options]"

_EPILOG = f"""\
examples:
  {PROG} serve --local                        in front of the bundled emulator (aiohttp)
  {PROG} serve --url https://example.org/chat/ --api-key sk-local
  {PROG} serve --host 0.0.0.0 --port 8000     reachable from other machines
  uvicorn --factory chatgpt4o.server:create_app --workers 4   several processes

The first line on stdout is the base URL for OpenAI clients, e.g.
http://127.0.0.1:1337/v1; the access log goes to stderr.

environment:
  {ENV_API_KEY}  default for --api-key
  {ENV_URL}      default for --url (ignored with --local)
  {ENV_PROXY}    default for --proxy (ignored with --local)
  {ENV_TIMEOUT}  default for --timeout
  Flags win over the environment.
"""


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port from 0 to 65535, got {text!r}")
    return value


def _size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number of bytes >= 1, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        return parse_seconds(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def build_parser() -> argparse.ArgumentParser:
    """The parser of `chatgpt4o serve`."""
    parser = CommandParser(
        prog=f"{PROG} serve",
        usage=_USAGE,
        description=(
            "Serve OpenAI's chat completions API (/v1/chat/completions, /v1/models) in "
            "front of a site's chatbot, for any OpenAI client."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "--host", default=DEFAULT_HOST,
        help=f"the interface to listen on (default {DEFAULT_HOST}: this machine only)",
    )
    parser.add_argument(
        "--port", type=_port, default=DEFAULT_PORT,
        help=f"the port (default {DEFAULT_PORT}; 0: a free one)",
    )
    add_site_options(parser)
    add_local_options(parser, doing="serve it", example=False)
    add_bot_option(parser)
    parser.add_argument(
        "--api-key", metavar="KEY",
        help=f"clients must send 'Authorization: Bearer KEY' (env {ENV_API_KEY}; "
        "default: no key needed)",
    )
    parser.add_argument(
        "--max-body-size", type=_size, default=DEFAULT_MAX_BODY_SIZE, metavar="BYTES",
        help=f"larger request bodies are refused with 413 (default {DEFAULT_MAX_BODY_SIZE})",
    )
    parser.add_argument(
        "--shutdown-timeout", type=_seconds, default=DEFAULT_SHUTDOWN_TIMEOUT,
        metavar="SECONDS",
        help="on SIGINT or SIGTERM, how long requests in flight may take to finish "
        f"before they are cancelled (default {DEFAULT_SHUTDOWN_TIMEOUT:g})",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="debug logs of the library and of uvicorn on stderr",
    )
    return parser


def main(argv: Sequence[str]) -> int:
    """Run `chatgpt4o serve` with `argv` (the words after "serve"); the exit code."""
    return run_command(argv, build_parser(), _serve)


# -- the work ----------------------------------------------------------------------------


def _need(module: str, hint: str, what: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise UsageError(f"{what} needs {module}, which is not installed: {hint}")


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to `host` and `port` (0: a free one); UsageError if it cannot be."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as err:
        raise UsageError(f"cannot listen on {host}:{port}: {err}") from None
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.set_inheritable(True)
    return sock


def base_url(sock: socket.socket) -> str:
    """The base URL for OpenAI clients of a server listening on `sock`."""
    host, port = sock.getsockname()[:2]
    address = ipaddress.ip_address(host)
    if address.is_unspecified:  # listening everywhere: this machine reaches it so
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    shown = f"[{address}]" if address.version == 6 else str(address)
    return f"http://{shown}:{port}/v1"


class _Formatter(logging.Formatter):
    """Log lines without the command line's secrets.

    The time is logging's own (`2026-12-01 10:00:00,123`), its date and seconds written
    once a second rather than for every line: one line per request adds up.
    """

    def __init__(self, scrub: Scrubber) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._scrub = scrub
        self._second = -1
        self._stamp = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            # (the handler's lock is held: one thread at a time)
            self._stamp = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        return f"{self._stamp},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        return self._scrub(super().format(record), redact_fields=False)


@contextlib.contextmanager
def _console_logging(scrub: Scrubber, verbose: bool) -> Iterator[None]:
    """The access log (and uvicorn's warnings, or all its logs with `verbose`) on
    stderr. With `verbose`, the library's DEBUG handler (`run_command`'s) shows the
    access lines already.

    The lines show no thread or process, so log records do not look them up while the
    server runs (the process id is a system call, for every line)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter(scrub))
    loggers: list[tuple[logging.Logger, int]] = [
        (logging.getLogger("uvicorn"), logging.DEBUG if verbose else logging.WARNING),
    ]
    if not verbose:
        loggers.append((logging.getLogger("chatgpt4o.server"), logging.INFO))
    saved = []
    for logger, level in loggers:
        saved.append((logger, logger.level, logger.propagate))
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    looked_up = logging.logThreads, logging.logProcesses, logging.logMultiprocessing
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    try:
        yield
    finally:
        logging.logThreads, logging.logProcesses, logging.logMultiprocessing = looked_up
        for logger, level, propagate in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


def _serve(args: argparse.Namespace, scrub: Scrubber) -> int:
    _need("starlette", SERVER_INSTALL_HINT, f"{PROG} serve")
    _need("uvicorn", SERVER_INSTALL_HINT, f"{PROG} serve")
    emulator_options = emulator_argv(args)
    if args.local:
        _need("aiohttp", LOCAL_INSTALL_HINT, "--local")
    site = site_options(args, os.environ, scrub, local=args.local)
    api_key: str | None = args.api_key
    if api_key is None:
        api_key = env_value(os.environ, ENV_API_KEY)
    scrub.add(api_key)
    bot = bot_option(args)
    config = ServerConfig(
        site=site,
        api_key=api_key or None,
        bot_id=bot,
        max_body_size=args.max_body_size,
        scrub=scrub,
    )
    emulator: Any = None
    if args.local:
        from ..testing._serve import emulator_from_argv

        try:
            emulator = emulator_from_argv(emulator_options, stream=True)
        except ValueError as err:
            raise UsageError(str(err)) from None
    sock = _bind(args.host, args.port)
    with _console_logging(scrub, args.verbose):
        stopped_by = asyncio.run(_run(config, sock, emulator, args))
    return EXIT_INTERRUPTED if stopped_by == signal.SIGINT else EXIT_OK


#: The cyclic garbage collector's first threshold while the command serves (Python's
#: default: 700). See `_collector_for_serving`.
GC_YOUNG_THRESHOLD = 10_000


@contextlib.contextmanager
def _collector_for_serving() -> Iterator[Callable[[], None]]:
    """The cyclic garbage collector as a server wants it; yields the function to call
    once the server is up (`gc.freeze()` after a last collection).

    The requests in flight hold thousands of young container objects between them
    (2,500 or so at 50 concurrent calls), more than Python's default first threshold of
    700 allocations: the collector then scanned the young generation every 16 requests
    or so, and the old one every 2,000, about 25 µs of CPU per request in all, for
    almost nothing (a request's objects are freed by reference counting). With a first
    threshold of 10,000 it runs every few thousand requests; frozen, the objects of the
    application and the modules loaded at start-up are left out of the old generation's
    scans. Cyclic garbage, of which there is little, waits longer to be freed.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *thresholds[1:])
    try:
        yield _freeze
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def _freeze() -> None:
    gc.collect()
    gc.freeze()


async def _run(
    config: ServerConfig, sock: socket.socket, emulator: Any, args: argparse.Namespace
) -> int | None:
    """Serve until a signal; the signal's number (None if the server stopped by itself)."""
    import uvicorn

    from ._app import build_app
    from ._uvicorn import HTTP_PROTOCOL, ReadyServer

    if emulator is not None:
        await emulator.start()
        config = dataclasses.replace(
            config, site=dataclasses.replace(config.site, url=emulator.url)
        )
    try:
        with sock, _collector_for_serving() as settle:

            def ready() -> None:
                settle()
                write(sys.stdout, base_url(sock) + "\n")

            server = ReadyServer(
                uvicorn.Config(
                    build_app(config),
                    http=HTTP_PROTOCOL,
                    log_config=None,
                    access_log=False,  # the application's own access log instead
                    lifespan="on",
                    # The application uses neither the client's address nor the
                    # scheme, which is all X-Forwarded-For and -Proto would change.
                    proxy_headers=False,
                    server_header=False,
                    timeout_graceful_shutdown=args.shutdown_timeout,
                    log_level=logging.DEBUG if args.verbose else logging.WARNING,
                ),
                on_ready=ready,
            )
            await server.serve(sockets=[sock])
        return server.stopped_by
    finally:
        if emulator is not None:
            await emulator.stop()
