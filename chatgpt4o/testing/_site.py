"""What the emulated WordPress sites share, whichever chat plugin they run.

:class:`WordPressSite` is the base of ``SiteEmulator`` (AI Power up to 2.2),
``AipkitEmulator`` (AI Power 2.3+) and ``AIEngineEmulator``: an aiohttp low-level server
on loopback (or any interface, over TLS with an ``ssl_context``), with

- the lifecycle: :meth:`~WordPressSite.start`, :meth:`~WordPressSite.stop`,
  ``async with``, :attr:`~WordPressSite.url`, :attr:`~WordPressSite.running`;
- an emulated clock (:meth:`~WordPressSite.now`, :meth:`~WordPressSite.advance`) and
  WordPress nonces on it (docs/protocol.md §1): :meth:`~WordPressSite.current_nonce`,
  :meth:`~WordPressSite.rotate_nonce`;
- the fault queue: :meth:`~WordPressSite.fail_next`, :meth:`~WordPressSite.pending_faults`,
  :meth:`~WordPressSite.clear_faults` (faults are :class:`~._fault_base.SiteFault` values);
- the counters (``page_loads``, ``posts``, ``connections`` and the plugin's own) and
  :meth:`~WordPressSite.reset_counters`; every request recorded in ``requests``;
- the model's stand-in: ``reply``, ``stream_chunks``, ``chunk_delay`` and ``model_calls``.

A subclass answers the plugin's own requests (``_route``), serves the page (``_page``) and
says what any other path gets (``_not_found``). Before any of them, nginx's handling of
``Expect`` runs (``100 Continue``, or 417 for any other expectation) and the request is
recorded.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import re
import secrets
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeAlias, TypeVar

from aiohttp import web

from ._fault_base import SiteFault
from ._nonces import CHAT_NONCE_ACTION, make_nonce, nonce_age, nonce_tick
from ._pages import cloudflare_page
from ._records import RecordedRequest, parse_form

__all__ = [
    "PAGE_PATHS",
    "Reply",
    "WordPressSite",
    "abort_connection",
    "cloudflare_challenge",
    "ssl_context_from",
]

#: The reply: a text, or a function of the message (sync or async) returning it. A
#: function that takes a ``messages`` argument also gets what the model was given.
Reply: TypeAlias = str | Callable[..., str | Awaitable[str]]

#: The paths of the site's front page, where the chat is.
PAGE_PATHS = ("/", "/index.php")

_SHUTDOWN_TIMEOUT = 0.25

FaultT = TypeVar("FaultT", bound=SiteFault)
SiteT = TypeVar("SiteT", bound="WordPressSite[Any]")


class WordPressSite(Generic[FaultT]):
    """A WordPress site on an aiohttp server; subclasses add the chat plugin.

    Attributes:
        host, port: where to listen (``port`` 0: a free one).
        ssl_context: serve HTTPS with this server context; set it before :meth:`start`.
        reply, stream_chunks, chunk_delay: the model's stand-in (see the subclass).
        page_loads: GET/HEAD requests of the page seen.
        posts: the plugin's chat requests seen (see the subclass).
        connections: TCP connections accepted.
        requests: every request, in order, as :class:`RecordedRequest`.
        model_calls: what the model was given, one list of ``{"role", "content"}`` dicts
            per call.
    """

    #: The fault class :meth:`fail_next` takes.
    _fault_class: type[FaultT]
    #: The nonce action of the plugin's chat requests (:meth:`current_nonce`).
    _NONCE_ACTION: ClassVar[str] = CHAT_NONCE_ACTION
    #: The counters :meth:`reset_counters` zeroes.
    _COUNTERS: ClassVar[tuple[str, ...]] = ("page_loads", "posts", "connections")
    #: ``True``: :meth:`pending_faults` lists the queue target by target (each target has
    #: its own queue); ``False``: oldest first.
    _FAULTS_BY_TARGET: ClassVar[bool] = True
    #: How a reply is cut into stream pieces when ``stream_chunks`` is ``None``.
    _PIECES: ClassVar[re.Pattern[str]] = re.compile(r"\S+\s*|\s+")

    page_loads: int
    posts: int
    connections: int

    def __init__(
        self,
        *,
        host: str,
        port: int,
        reply: Reply,
        stream_chunks: int | None,
        chunk_delay: float,
        clock: Callable[[], float],
        secret: bytes | None,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.host = host
        self.port = port
        self.reply: Reply = reply
        self.stream_chunks = stream_chunks
        self.chunk_delay = chunk_delay
        self.ssl_context = ssl_context

        for name in self._COUNTERS:
            setattr(self, name, 0)
        self.requests: list[RecordedRequest] = []
        self.model_calls: list[list[dict[str, str]]] = []

        self._clock = clock
        self._offset = 0.0
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._faults: list[FaultT] = []
        self._runner: web.ServerRunner | None = None
        self._url: str | None = None

    # the plugin's release ---------------------------------------------------------------

    @property
    def plugin_version(self) -> str:
        """The emulated release of the plugin (checked when set)."""
        return self._plugin_version

    @plugin_version.setter
    def plugin_version(self, value: str) -> None:
        self._check_plugin_version(value)
        self._plugin_version = value

    def _check_plugin_version(self, value: str) -> None:
        """Raise ValueError if the emulator cannot play release ``value``."""
        raise NotImplementedError

    # lifecycle --------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is listening."""
        return self._runner is not None

    @property
    def url(self) -> str:
        """The site URL, ``http://127.0.0.1:PORT`` (no trailing slash).

        ``https://127.0.0.1:PORT`` when the emulator has an ``ssl_context``.
        """
        if self._url is None:
            name = type(self).__name__
            raise RuntimeError(f"{name} is not started: use 'async with' or start()")
        return self._url

    async def start(self) -> None:
        """Start listening (on a free port if ``port`` is 0)."""
        if self._runner is not None:
            raise RuntimeError(f"{type(self).__name__} is already running")
        sock = _bind(self.host, self.port)
        runner: web.ServerRunner | None = None
        try:
            server = _CountingServer(
                self._handle, self._count_connection, handler_cancellation=True, access_log=None
            )
            runner = web.ServerRunner(server, shutdown_timeout=_SHUTDOWN_TIMEOUT)
            await runner.setup()
            site = web.SockSite(runner, sock, backlog=1024, ssl_context=self.ssl_context)
            await site.start()
        except BaseException:
            if runner is not None:
                await runner.cleanup()
            sock.close()
            raise
        self._runner = runner
        scheme = "https" if self.ssl_context is not None else "http"
        self._url = _url_for(sock.getsockname(), scheme)

    async def stop(self) -> None:
        """Stop listening and close every connection (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self: SiteT) -> SiteT:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def __repr__(self) -> str:
        where = self._url if self._runner is not None else "stopped"
        name = type(self).__name__
        return f"<{name} {where} plugin={self.plugin_version}{self._repr_details()}>"

    def _repr_details(self) -> str:
        """What ``repr`` shows after the release, e.g. ``" bots=4"``."""
        return ""

    # clock and nonces -------------------------------------------------------------------

    def now(self) -> float:
        """The emulated Unix time: ``clock()`` plus everything :meth:`advance` added."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the emulated clock forward (a nonce tick is 43200 s)."""
        self._offset += seconds

    def current_nonce(self) -> str:
        """The nonce of the plugin's chat requests that the site hands out now (valid this
        tick and the next)."""
        return self._nonce()

    def rotate_nonce(self) -> None:
        """Change the nonce key: every nonce handed out so far becomes invalid at once."""
        self._secret = secrets.token_bytes(32)

    def _nonce(self, action: str | None = None, tick: int | None = None) -> str:
        """``wp_create_nonce(action)`` for a visitor at ``tick`` (default: now; the
        action defaults to the chat's)."""
        if tick is None:
            tick = nonce_tick(self.now())
        return make_nonce(self._secret, tick, self._NONCE_ACTION if action is None else action)

    def _nonce_age(self, nonce: str, action: str | None = None) -> int:
        """``wp_verify_nonce(nonce, action)`` now: 1 (this tick), 2 (the previous) or 0."""
        tick = nonce_tick(self.now())
        return nonce_age(nonce, self._nonce(action, tick), self._nonce(action, tick - 1))

    # faults and counters ----------------------------------------------------------------

    def fail_next(self, fault: FaultT, *, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` requests it can hit (oldest first)."""
        fault_class = self._fault_class
        if not isinstance(fault, fault_class):
            name = fault_class.__name__
            article = "an" if name[:1] in "AEIOU" else "a"
            raise TypeError(f"expected {article} {name}, got {type(fault).__name__}")
        if times < 0:
            raise ValueError(f"times must be >= 0, not {times!r}")
        self._faults.extend([fault] * times)

    def pending_faults(self) -> list[FaultT]:
        """The faults still queued, in the order they will be used (target by target
        where each target has a queue of its own)."""
        faults = list(self._faults)
        if not self._FAULTS_BY_TARGET:
            return faults
        targets = self._fault_class.TARGETS
        return sorted(faults, key=lambda fault: targets.index(fault.target))

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        self._faults.clear()

    def reset_counters(self) -> None:
        """Zero the counters (``page_loads``, ``posts``, ``connections`` and the plugin's
        own); empty ``requests`` and ``model_calls``. What the site stores stays."""
        for name in self._COUNTERS:
            setattr(self, name, 0)
        self.requests.clear()
        self.model_calls.clear()

    def _count_connection(self) -> None:
        self.connections += 1

    def _take_fault(self, request_kind: str) -> FaultT | None:
        """The oldest queued fault that can hit a request of ``request_kind``, dequeued."""
        for index, fault in enumerate(self._faults):
            if fault.hits(request_kind):
                del self._faults[index]
                return fault
        return None

    async def _next_fault(self, request_kind: str) -> FaultT | None:
        """:meth:`_take_fault`, where a stall waits its seconds and is then used up (the
        request carries on as normal: ``None``)."""
        fault = self._take_fault(request_kind)
        if fault is not None and fault.kind == "stall":
            await asyncio.sleep(fault.seconds)
            return None
        return fault

    # requests ---------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        expect = request.headers.get("Expect")
        if expect is not None and request.version >= (1, 1):
            # What nginx does in front of PHP (curl sends this for bodies over 1 KiB).
            if expect.lower() != "100-continue":
                return self._error_page(417)
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0
        body = await request.read() if request.body_exists else b""
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query.items()),
            form=parse_form(body, request.headers.get("Content-Type", "")),
            headers=request.headers,
            cookies=dict(request.cookies),
            peer=_peer(request),
            raw_body=body,
        )
        self.requests.append(record)
        response = await self._route(request, record)
        if response is not None:
            return response
        if request.path in PAGE_PATHS:
            if request.method in ("GET", "HEAD"):
                self.page_loads += 1
            return await self._page(request, record)
        return self._not_found(request)

    async def _route(
        self, request: web.BaseRequest, record: RecordedRequest
    ) -> web.StreamResponse | None:
        """The answer to a request for the plugin (it counts it); ``None``: not one."""
        raise NotImplementedError

    async def _page(self, request: web.BaseRequest, record: RecordedRequest) -> web.StreamResponse:
        """The page with the chat."""
        raise NotImplementedError

    def _not_found(self, request: web.BaseRequest) -> web.StreamResponse:
        """The answer to any other path."""
        raise NotImplementedError

    def _error_page(self, status: int) -> web.Response:
        """An HTML error page of the server (nginx) or of WordPress, with ``status``."""
        raise NotImplementedError

    # the model --------------------------------------------------------------------------

    def _record_call(
        self, record: RecordedRequest, messages: Sequence[Mapping[str, str]]
    ) -> list[dict[str, str]]:
        """Record what the model is given, on the request and in ``model_calls``."""
        call = [dict(message) for message in messages]
        record.model_calls.append(call)
        self.model_calls.append(call)
        return call

    async def _reply_for(
        self, message: str, messages: Sequence[Mapping[str, str]] | None = None
    ) -> str:
        """The model's answer to ``message``: ``reply``, or what it returns."""
        reply = self.reply
        if isinstance(reply, str):
            return reply
        if _takes_messages(reply):
            given = [dict(item) for item in messages] if messages is not None else None
            result = reply(message, messages=given)
        else:
            result = reply(message)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, str):
            raise TypeError(f"the reply function returned {type(result).__name__}, not str")
        return result

    def _pieces(self, reply: str) -> list[str]:
        """``reply`` cut into ``stream_chunks`` pieces of (nearly) equal length, or as
        ``_PIECES`` finds them."""
        count = self.stream_chunks
        if count is None:
            return self._PIECES.findall(reply)
        count = max(1, int(count))
        size, extra = divmod(len(reply), count)
        pieces, start = [], 0
        for index in range(count):
            end = start + size + (1 if index < extra else 0)
            if end > start:
                pieces.append(reply[start:end])
            start = end
        return pieces


def abort_connection(request: web.BaseRequest, *, reset: bool) -> None:
    """Drop the connection now; with ``reset``, make the kernel send a TCP RST."""
    transport = request.transport
    if transport is None:
        return
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def cloudflare_challenge(request: web.BaseRequest) -> tuple[tuple[tuple[str, str], ...], str]:
    """Cloudflare's managed challenge in front of the site: its headers (a new ``CF-RAY``)
    and its "Just a moment..." page."""
    ray = secrets.token_hex(8) + "-AMS"
    headers = (
        ("Server", "cloudflare"),
        ("cf-mitigated", "challenge"),
        ("CF-RAY", ray),
        ("Cache-Control", "private, max-age=0, no-store, no-cache, must-revalidate"),
    )
    return headers, cloudflare_page(request.host, ray)


def ssl_context_from(certfile: str | None, keyfile: str | None) -> ssl.SSLContext | None:
    """The server context of ``--certfile`` / ``--keyfile`` (``None``: plain HTTP).
    Raises ValueError for a key without a certificate, OSError for unreadable files."""
    if certfile is None:
        if keyfile is not None:
            raise ValueError("--keyfile needs --certfile")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    return context


class _CountingServer(web.Server):
    """aiohttp's low-level server, reporting every accepted TCP connection."""

    def __init__(
        self,
        handler: Callable[[web.BaseRequest], Awaitable[web.StreamResponse]],
        on_connection: Callable[[], None],
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, **kwargs)
        self._on_connection = on_connection

    def connection_made(self, handler: web.RequestHandler, transport: asyncio.Transport) -> None:
        self._on_connection()
        super().connection_made(handler, transport)


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _url_for(sockname: Any, scheme: str = "http") -> str:
    host, port = str(sockname[0]), int(sockname[1])
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def _peer(request: web.BaseRequest) -> tuple[str, int]:
    transport = request.transport
    peername = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peername, tuple) and len(peername) >= 2:
        return str(peername[0]), int(peername[1])
    return ("", 0)


def _takes_messages(function: Callable[..., object]) -> bool:
    """Whether a reply function accepts the ``messages`` keyword."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            return True
        if parameter.name == "messages" and parameter.kind is not inspect.Parameter.POSITIONAL_ONLY:
            return True
    return False
