"""The site emulator: a local aiohttp server that behaves like chatgpt4o.one.

It serves the WordPress page with the AI Power chat widget at ``/`` and answers the chat
action at ``/wp-admin/admin-ajax.php`` exactly as docs/protocol.md describes, with real nonces
(valid for two ticks of 12 hours on an emulated clock), WordPress's message sanitizing,
PHP-style JSON, the OpenAI-style event stream, and injectable faults.

Order of checks on ``/wp-admin/admin-ajax.php`` (the request is recorded first):

1. the next queued ``"post"`` fault, if any (a stall waits, then carries on);
2. ``required_cookies`` (Cloudflare challenge, 403);
3. ``action`` (from the query string or the body): missing, unknown, or plugin >= 2.3:
   HTTP 400 ``0``;
4. banned IP (``X-Forwarded-For`` if sent, else the peer address);
5. ``_wpnonce`` (query string or body): stale answers per ``plugin_version``;
6. ``message`` sanitized like ``sanitize_text_field``; empty: error;
7. banned words; 8. token limit (per ``wpaicg_chat_client_id``, else per IP);
9. success, plain JSON or streamed.

Plugins before 1.8.91 read the chat fields from ``$_REQUEST`` (query string merged with
the body, the body winning); 1.8.91 and newer read them from the body only.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import json
import os
import re
import secrets
import socket
import ssl
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, TypeAlias
from urllib.parse import urlsplit

try:
    from aiohttp import web
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "chatgpt4o.testing needs aiohttp, which is not installed: pip install 'chatgpt4o[local]'"
    ) from exc

from ._faults import STREAM_ERROR_MESSAGES, Fault, FaultTarget
from ._nonces import (
    IMAGE_NONCE_ACTION,
    REST_NONCE_ACTION,
    make_nonce,
    nonce_age,
    nonce_tick,
)
from ._pages import (
    GREETING,
    PAGE_VARIANTS,
    WIDGET_KINDS,
    PageSpec,
    cloudflare_page,
    error_page,
    html_answer_page,
    not_found_page,
    padding_css,
    render_page,
    wp_die_page,
)
from ._php import parse_version, php_json, sanitize_text_field
from ._records import RecordedRequest, parse_form

__all__ = [
    "AJAX_PATH",
    "CHAT_ACTIONS",
    "MSG_BANNED_IP",
    "MSG_BANNED_WORDS",
    "MSG_EMPTY_MESSAGE",
    "MSG_NONCE_FAILED",
    "MSG_TOKEN_LIMIT",
    "Reply",
    "SiteEmulator",
    "default_reply",
]

#: Where WordPress answers AJAX calls.
AJAX_PATH = "/wp-admin/admin-ajax.php"
#: The chat actions (shortcode and site widget).
CHAT_ACTIONS = frozenset({"wpaicg_chat_shortcode_message", "wpaicg_chatbox_message"})

MSG_NONCE_FAILED = "Nonce verification failed"
MSG_EMPTY_MESSAGE = "It appears that nothing was inputted."
MSG_BANNED_IP = "You are not allowed to access this feature."
MSG_BANNED_WORDS = (
    "Your message contains prohibited words. Please modify your message and try again."
)
MSG_TOKEN_LIMIT = "You have reached your token limit."
_MSG_SUCCESS = "Something went wrong"  # the plugin leaves this on success
_MSG_SECURITY_CHECK = "Security check"
_MSG_INVALID_NONCE = (
    "Invalid nonce. This can happen when the page was served from a cache. "
    "Please clear the cache or reload the page and try again."
)

Reply: TypeAlias = str | Callable[[str], str | Awaitable[str]]

_V1_8_91 = (1, 8, 91)
_V2_3 = (2, 3)
_HTML = "text/html; charset=UTF-8"
_JSON = "application/json; charset=UTF-8"
_MODEL = "gpt-4o-mini-2024-07-18"
_FINGERPRINT = "fp_0ba0d124f1"
_DEFAULT_PIECES = re.compile(r"\s*\S{1,4}|\s+")
_WP_HEADERS = (
    ("Server", "nginx"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
)
_AJAX_HEADERS = (
    *_WP_HEADERS,
    ("X-Robots-Tag", "noindex"),
    ("Expires", "Wed, 11 Jan 1984 05:00:00 GMT"),
    ("Cache-Control", "no-cache, must-revalidate, max-age=0, no-store, private"),
)
_SHUTDOWN_TIMEOUT = 0.25
_NO_BODY_FAULTS = frozenset(
    {"status", "rate_limited", "server_error", "cloudflare", "page", "reset_before_headers"}
)


def default_reply(message: str) -> str:
    """The emulator's default answer: deterministic, echoing the sanitized message."""
    return "Hello! This is the local chatgpt4o.one emulator. You said: " + message


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


def _abort(request: web.BaseRequest, *, reset: bool) -> None:
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


def _response(
    status: int,
    body: bytes | str,
    content_type: str | None = _HTML,
    *,
    extra: Iterable[tuple[str, str]] = (),
    base: Iterable[tuple[str, str]] = _AJAX_HEADERS,
) -> web.Response:
    headers = dict(base)
    if content_type is not None:
        headers["Content-Type"] = content_type
    headers.update(extra)
    data = body.encode() if isinstance(body, str) else body
    return web.Response(status=status, body=data, headers=headers)


class SiteEmulator:
    """A faithful local stand-in for chatgpt4o.one (WordPress + AI Power chat).

    Use it as an async context manager (or call :meth:`start` / :meth:`stop`)::

        async with SiteEmulator(stream=True) as site:
            ...  # point the client at site.url

    Every keyword below is also a plain attribute that may be changed at any time, and
    takes effect with the next request. Besides them:

    Attributes:
        banned_words: words that make a message "prohibited" (case-insensitive substring).
        banned_ips: client IPs that are refused (``X-Forwarded-For`` wins over the peer).
        token_limit: successful answers allowed per ``wpaicg_chat_client_id`` (else per IP)
            before the token-limit answer; ``None``: no limit.
        page_cookies: cookies set (``Set-Cookie``, path ``/``) with every page.
        required_cookies: if not empty, any request without exactly these cookies gets a
            Cloudflare challenge (403).
        page_padding: bytes of inline CSS placed before the widget and ``wpaicgParams``.
        page_loads: GET/HEAD requests of ``/`` seen.
        posts: POST requests to ``/wp-admin/admin-ajax.php`` seen.
        connections: TCP connections accepted.
        requests: every request, in order, as :class:`RecordedRequest`.

    Args:
        host: the interface to listen on. port: the port, ``0`` for a free one.
        reply: the answer text, or a function of the sanitized message (sync or async)
            returning it. The default echoes the message (:func:`default_reply`).
        stream: render ``data-openai_stream_nav="1"`` and answer with an event stream.
        stream_chunks: split each streamed reply into this many chunks; ``None``: one
            chunk per word or piece of up to 4 characters.
        chunk_delay: seconds between streamed text chunks.
        plugin_version: AI Power version; decides how stale nonces are answered
            (``< 1.8.91``: JSON; ``< 2.3``: 403 HTML "The link you followed has expired.";
            ``>= 2.3``: every chat action is HTTP 400 ``0``) and the sanitizing rules.
        page_variant: the page markup, one of :data:`PAGE_VARIANTS` (see ``_pages``).
        post_id: the WordPress post ID shown on the page. bot_id: the widget's bot ID.
        widget: ``"shortcode"`` (``div.wpaicg-chat-shortcode``) or ``"widget"``
            (``div.wpaicg-chatbox``, ``data-type="widget"``). Both chat actions are
            always accepted, as on the real site.
        clock: the Unix time source (see also :meth:`advance`).
        secret: the nonce key; random by default.
        ssl_context: serve HTTPS with this server context (``url`` is then
            ``https://...``); ``None``: plain HTTP. Set it before :meth:`start`.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        reply: Reply = default_reply,
        stream: bool = False,
        stream_chunks: int | None = None,
        chunk_delay: float = 0.0,
        plugin_version: str = "1.8.91",
        page_variant: str = "standard",
        post_id: int = 11,
        bot_id: int = 0,
        widget: str = "shortcode",
        clock: Callable[[], float] = time.time,
        secret: bytes | None = None,
        banned_words: Iterable[str] = (),
        banned_ips: Iterable[str] = (),
        token_limit: int | None = None,
        page_cookies: Mapping[str, str] | None = None,
        required_cookies: Mapping[str, str] | None = None,
        page_padding: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.reply: Reply = reply
        self.stream = stream
        self.stream_chunks = stream_chunks
        self.chunk_delay = chunk_delay
        self.plugin_version = plugin_version
        self.page_variant = page_variant
        self.post_id = post_id
        self.bot_id = bot_id
        self.widget = widget
        self.banned_words: set[str] = set(banned_words)
        self.banned_ips: set[str] = set(banned_ips)
        self.token_limit = token_limit
        self.page_cookies: dict[str, str] = dict(page_cookies or {})
        self.required_cookies: dict[str, str] = dict(required_cookies or {})
        self.page_padding = page_padding
        self.ssl_context = ssl_context

        self.page_loads = 0
        self.posts = 0
        self.connections = 0
        self.requests: list[RecordedRequest] = []

        self._clock = clock
        self._offset = 0.0
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._nonce_cache: tuple[bytes, int, tuple[str, str, str, str]] | None = None
        self._faults: dict[FaultTarget, deque[Fault]] = {"page": deque(), "post": deque()}
        self._usage: dict[str, int] = {}
        self._stream_ids = itertools.count(1)
        self._page_cache: tuple[PageSpec, bytes] | None = None
        self._padding_cache: tuple[int, str] = (0, "")
        self._runner: web.ServerRunner | None = None
        self._url: str | None = None

    # validated settings -----------------------------------------------------------------

    @property
    def plugin_version(self) -> str:
        """The emulated AI Power version, e.g. ``"1.8.91"``."""
        return self._plugin_version

    @plugin_version.setter
    def plugin_version(self, value: str) -> None:
        parse_version(value)  # raises ValueError early
        self._plugin_version = value

    @property
    def page_variant(self) -> str:
        """The page markup variant, one of :data:`PAGE_VARIANTS`."""
        return self._page_variant

    @page_variant.setter
    def page_variant(self, value: str) -> None:
        if value not in PAGE_VARIANTS:
            raise ValueError(f"page_variant must be one of {PAGE_VARIANTS}, not {value!r}")
        self._page_variant = value

    @property
    def widget(self) -> str:
        """``"shortcode"`` or ``"widget"``."""
        return self._widget

    @widget.setter
    def widget(self, value: str) -> None:
        if value not in WIDGET_KINDS:
            raise ValueError(f"widget must be one of {WIDGET_KINDS}, not {value!r}")
        self._widget = value

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
            raise RuntimeError("SiteEmulator is not started: use 'async with' or start()")
        return self._url

    @property
    def ajax_url(self) -> str:
        """``{url}/wp-admin/admin-ajax.php``."""
        return self.url + AJAX_PATH

    async def start(self) -> None:
        """Start listening (on a free port if ``port`` is 0)."""
        if self._runner is not None:
            raise RuntimeError("SiteEmulator is already running")
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

    async def __aenter__(self) -> SiteEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def __repr__(self) -> str:
        where = self._url if self._runner is not None else "stopped"
        return f"<SiteEmulator {where} plugin={self.plugin_version} variant={self.page_variant}>"

    # clock and nonces -------------------------------------------------------------------

    def now(self) -> float:
        """The emulated Unix time: ``clock()`` plus everything :meth:`advance` added."""
        return self._clock() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the emulated clock forward (a nonce tick is 43200 s)."""
        self._offset += seconds

    def current_nonce(self) -> str:
        """The chat nonce the page shows now (valid this tick and the next)."""
        return self._tick_nonces(nonce_tick(self.now()))[0]

    def current_image_nonce(self) -> str:
        """The image-upload nonce the page shows now (never valid for chat)."""
        return self._tick_nonces(nonce_tick(self.now()))[2]

    def _tick_nonces(self, tick: int) -> tuple[str, str, str, str]:
        """(chat, previous tick's chat, image, REST) nonces of ``tick``, cached."""
        secret = self._secret
        cached = self._nonce_cache
        if cached is not None and cached[0] is secret and cached[1] == tick:
            return cached[2]
        nonces = (
            make_nonce(secret, tick),
            make_nonce(secret, tick - 1),
            make_nonce(secret, tick, IMAGE_NONCE_ACTION),
            make_nonce(secret, tick, REST_NONCE_ACTION),
        )
        self._nonce_cache = (secret, tick, nonces)
        return nonces

    def rotate_nonce(self) -> None:
        """Change the nonce key: every nonce issued so far becomes stale at once."""
        self._secret = secrets.token_bytes(32)

    # faults and counters ----------------------------------------------------------------

    def fail_next(self, fault: Fault, *, times: int = 1) -> None:
        """Queue ``fault`` for the next ``times`` requests of its target (FIFO per target)."""
        if not isinstance(fault, Fault):
            raise TypeError(f"expected a Fault, got {type(fault).__name__}")
        if times < 0:
            raise ValueError(f"times must be >= 0, not {times!r}")
        self._faults[fault.target].extend([fault] * times)

    def pending_faults(self) -> list[Fault]:
        """The faults still queued (page faults first)."""
        return [*self._faults["page"], *self._faults["post"]]

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        for queue in self._faults.values():
            queue.clear()

    def reset_counters(self) -> None:
        """Zero ``page_loads``, ``posts`` and ``connections`` and empty ``requests``."""
        self.page_loads = 0
        self.posts = 0
        self.connections = 0
        self.requests.clear()

    def reset_token_usage(self) -> None:
        """Forget how many answers each client got (see ``token_limit``)."""
        self._usage.clear()

    def _count_connection(self) -> None:
        self.connections += 1

    def _pop_fault(self, target: FaultTarget) -> Fault | None:
        queue = self._faults[target]
        try:
            return queue.popleft()
        except IndexError:
            return None

    # request entry point ----------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        expect = request.headers.get("Expect")
        if expect is not None and request.version >= (1, 1):
            # What nginx does in front of PHP (curl sends this for bodies over 1 KiB).
            if expect.lower() != "100-continue":
                return _response(417, error_page(417), base=_WP_HEADERS)
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
        if request.path == AJAX_PATH:
            if request.method == "POST":
                self.posts += 1
            return await self._ajax(request, record)
        if request.path in ("/", "/index.php"):
            if request.method in ("GET", "HEAD"):
                self.page_loads += 1
            return await self._page(request)
        if not self._has_required_cookies(request):
            return self._cloudflare(request, 403)
        return _response(404, not_found_page(self.url), base=_WP_HEADERS)

    # the page ---------------------------------------------------------------------------

    async def _page(self, request: web.BaseRequest) -> web.StreamResponse:
        fault = self._pop_fault("page")
        if fault is not None:
            if fault.kind != "stall":
                return await self._transport_fault(request, fault, self._page_bytes(), _HTML)
            await asyncio.sleep(fault.seconds)
        if not self._has_required_cookies(request):
            return self._cloudflare(request, 403)
        response = _response(200, self._page_bytes(), base=self._page_headers())
        for name, value in self.page_cookies.items():
            response.set_cookie(name, value, path="/")
        return response

    def _page_headers(self) -> tuple[tuple[str, str], ...]:
        return (
            *_WP_HEADERS,
            ("Link", f'<{self.url}/wp-json/>; rel="https://api.w.org/"'),
            ("Vary", "Accept-Encoding"),
        )

    def _page_bytes(self) -> bytes:
        nonce, _, image_nonce, rest_nonce = self._tick_nonces(nonce_tick(self.now()))
        spec = PageSpec(
            url=self.url,
            nonce=nonce,
            image_nonce=image_nonce,
            rest_nonce=rest_nonce,
            post_id=self.post_id,
            bot_id=self.bot_id,
            stream=bool(self.stream),
            variant=self.page_variant,
            widget=self.widget,
            padding=max(0, int(self.page_padding)),
            plugin_version=self.plugin_version,
        )
        cached = self._page_cache
        if cached is not None and cached[0] == spec:
            return cached[1]
        if self._padding_cache[0] != spec.padding:
            self._padding_cache = (spec.padding, padding_css(spec.padding))
        page = render_page(spec, self._padding_cache[1]).encode()
        self._page_cache = (spec, page)
        return page

    # admin-ajax.php ---------------------------------------------------------------------

    async def _ajax(self, request: web.BaseRequest, record: RecordedRequest) -> web.StreamResponse:
        fault = self._pop_fault("post")
        if fault is not None:
            if fault.kind != "stall":
                return await self._ajax_fault(request, record, fault)
            await asyncio.sleep(fault.seconds)
        if not self._has_required_cookies(request):
            return self._cloudflare(request, 403)
        version = parse_version(self.plugin_version)
        request_fields = {**record.query, **record.form}  # PHP's $_REQUEST
        if request_fields.get("action") not in CHAT_ACTIONS or version >= _V2_3:
            return _response(400, "0")
        fields = request_fields if version < _V1_8_91 else record.form
        client_ip = self._client_ip(request, record)
        if client_ip in self.banned_ips:
            return await self._plugin_error(request, MSG_BANNED_IP, "ipBanned")
        current, previous, _, _ = self._tick_nonces(nonce_tick(self.now()))
        if not nonce_age(request_fields.get("_wpnonce", ""), current, previous):
            return self._stale_nonce(request, None)
        message = sanitize_text_field(fields.get("message", ""), keep_newlines=version >= _V1_8_91)
        if not message:
            return self._json({"status": "error", "msg": MSG_EMPTY_MESSAGE})
        lowered = message.lower()
        if any(word and word.lower() in lowered for word in self.banned_words):
            return await self._plugin_error(request, MSG_BANNED_WORDS, "messageFlagged")
        client = fields.get("wpaicg_chat_client_id") or client_ip
        if self.token_limit is not None and self._usage.get(client, 0) >= self.token_limit:
            return await self._plugin_error(request, MSG_TOKEN_LIMIT, "tokenLimitReached")
        reply = await self._reply_for(message)
        self._usage[client] = self._usage.get(client, 0) + 1
        if self.stream:
            return await self._stream(request, reply)
        return self._json(self._success(reply))

    def _client_ip(self, request: web.BaseRequest, record: RecordedRequest) -> str:
        forwarded = request.headers.get("X-Forwarded-For", "")
        if forwarded:
            return forwarded.split(",")[0].strip()
        return record.peer[0]

    def _has_required_cookies(self, request: web.BaseRequest) -> bool:
        required = self.required_cookies
        if not required:
            return True
        cookies = request.cookies
        return all(cookies.get(name) == value for name, value in required.items())

    async def _reply_for(self, message: str) -> str:
        reply = self.reply
        if isinstance(reply, str):
            return reply
        result = reply(message)
        if inspect.isawaitable(result):
            result = await result
        if not isinstance(result, str):
            raise TypeError(f"the reply function returned {type(result).__name__}, not str")
        return result

    def _success(self, reply: str) -> dict[str, object]:
        return {
            "status": "success",
            "msg": _MSG_SUCCESS,
            "greeting_message": GREETING,
            "data": reply,
            "log": False,
        }

    @staticmethod
    def _json(payload: object, *, content_type: str = _JSON) -> web.Response:
        return _response(200, php_json(payload), content_type)

    async def _plugin_error(
        self, request: web.BaseRequest, msg: str, flag: str
    ) -> web.StreamResponse:
        """A plugin refusal: JSON, or one ``data:`` event when the site streams."""
        if self.stream:
            return await self._single_event(request, {"msg": msg, flag: True})
        if flag == "tokenLimitReached":
            return self._json({"msg": msg, "tokenLimitReached": True})
        return self._json({"status": "error", "msg": msg})

    def _stale_nonce(self, request: web.BaseRequest, style: str | None) -> web.Response:
        if not style:
            style = "json" if parse_version(self.plugin_version) < _V1_8_91 else "expired"
        if style == "json":
            return self._json({"status": "error", "msg": MSG_NONCE_FAILED})
        if style == "security_check":
            return self._json({"status": "error", "msg": _MSG_SECURITY_CHECK})
        if style == "invalid_nonce":
            return self._json({"status": "error", "msg": _MSG_INVALID_NONCE})
        text = (
            "Are you sure you want to do this?"
            if style == "are_you_sure"
            else "The link you followed has expired."
        )
        message = f"<p>{text}</p>"
        referer = self._same_site_referer(request)
        if referer is not None:
            message += f'<p><a href="{_attr(referer)}">Please try again.</a></p>'
        return _response(403, wp_die_page(message))

    @staticmethod
    def _same_site_referer(request: web.BaseRequest) -> str | None:
        """``wp_get_referer()``: the Referer if it is on this site and not this very URL."""
        referer = request.headers.get("Referer", "")
        if not referer:
            return None
        try:
            parts = urlsplit(referer)
        except ValueError:
            return None
        if parts.netloc.lower() != request.host.lower() or parts.scheme not in ("http", "https"):
            return None
        if (parts.path or "/") == request.path and not parts.query:
            return None
        return referer

    def _cloudflare(self, request: web.BaseRequest, status: int) -> web.Response:
        ray = secrets.token_hex(8) + "-AMS"
        headers = (
            ("Server", "cloudflare"),
            ("cf-mitigated", "challenge"),
            ("CF-RAY", ray),
            ("Cache-Control", "private, max-age=0, no-store, no-cache, must-revalidate"),
            ("Expires", "Thu, 01 Jan 1970 00:00:01 GMT"),
            ("Referrer-Policy", "same-origin"),
            ("X-Frame-Options", "SAMEORIGIN"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
        )
        page = cloudflare_page(request.host, ray)
        return _response(status, page, base=headers)

    # faults -----------------------------------------------------------------------------

    async def _transport_fault(
        self, request: web.BaseRequest, fault: Fault, full_body: bytes, content_type: str
    ) -> web.StreamResponse:
        """Faults that make sense for any target; ``full_body`` is the normal answer."""
        kind = fault.kind
        if kind == "status":
            return _response(fault.code, fault.body, fault.content_type, extra=fault.headers)
        if kind == "rate_limited":
            return _response(429, error_page(429), extra=fault.headers, base=_WP_HEADERS)
        if kind == "server_error":
            return _response(fault.code, error_page(fault.code), base=_WP_HEADERS)
        if kind == "cloudflare":
            return self._cloudflare(request, fault.code)
        if kind == "page":
            return _response(200, fault.body, base=self._page_headers())
        if kind == "reset_before_headers":
            _abort(request, reset=True)
            return web.Response()  # never written: the connection is gone
        if kind == "reset_after_headers":
            response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
            response.content_length = len(full_body) + 1
            await response.prepare(request)
            await response.write(full_body[: len(full_body) // 2])
            _abort(request, reset=False)
            return response
        raise ValueError(f"{fault!r} cannot target {fault.target!r}")  # pragma: no cover

    async def _ajax_fault(
        self, request: web.BaseRequest, record: RecordedRequest, fault: Fault
    ) -> web.StreamResponse:
        kind = fault.kind
        if kind in _NO_BODY_FAULTS:
            return await self._transport_fault(request, fault, b"", _JSON)
        message = sanitize_text_field(
            {**record.query, **record.form}.get("message", ""),
            keep_newlines=parse_version(self.plugin_version) >= _V1_8_91,
        )
        if kind in ("stream_no_done", "stream_limited", "stream_stall"):
            return await self._stream(request, await self._reply_for(message), fault=fault)
        if kind == "reset_after_headers" and self.stream:
            return await self._stream(request, await self._reply_for(message), fault=fault)
        if kind == "stream_error_event":
            return await self._single_event(request, {"msg": fault.body, fault.text: True})
        if kind == "token_limit":
            return await self._plugin_error(
                request, STREAM_ERROR_MESSAGES["tokenLimitReached"], "tokenLimitReached"
            )
        if kind == "upstream_error":
            return self._json({"status": "error", "msg": fault.text, "log": False})
        if kind == "plugin_gone":
            return _response(400, "0")
        if kind == "ajax_referer_failed":
            return _response(403, "-1")
        if kind == "stale_nonce":
            return self._stale_nonce(request, fault.text)
        if kind == "html_instead_of_json":
            return _response(200, html_answer_page(self.url))
        if kind == "empty_body":
            return _response(200, b"")
        if kind == "no_data":
            return self._json({"status": "success", "msg": _MSG_SUCCESS})
        success = self._success(await self._reply_for(message))
        if kind == "data_wrong_type":
            success["data"] = json.loads(fault.text)
            return self._json(success)
        if kind == "truncated_json":
            body = php_json(success)
            return _response(200, body[: len(body) // 2], _JSON)
        if kind == "wrong_content_type":
            return self._json(success, content_type="text/plain; charset=UTF-8")
        if kind == "non_utf8":
            success["data"] = f"{success['data']} (caf\xe9)"
            body = json.dumps(success, ensure_ascii=False, separators=(",", ":"))
            return _response(200, body.encode("latin-1", "replace"), _JSON)
        return await self._transport_fault(request, fault, php_json(success).encode(), _JSON)

    # streaming --------------------------------------------------------------------------

    def _pieces(self, reply: str) -> list[str]:
        count = self.stream_chunks
        if count is None:
            return _DEFAULT_PIECES.findall(reply)
        count = max(1, int(count))
        size, extra = divmod(len(reply), count)
        pieces, start = [], 0
        for index in range(count):
            end = start + size + (1 if index < extra else 0)
            if end > start:
                pieces.append(reply[start:end])
            start = end
        return pieces

    @staticmethod
    def _stream_response() -> web.StreamResponse:
        headers = dict(_WP_HEADERS)
        headers.update(
            {
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        return web.StreamResponse(status=200, headers=headers)

    async def _single_event(
        self, request: web.BaseRequest, payload: Mapping[str, object]
    ) -> web.StreamResponse:
        response = self._stream_response()
        await response.prepare(request)
        await response.write(f"data: {php_json(payload)}\n\n".encode())
        return response

    async def _stream(
        self, request: web.BaseRequest, reply: str, *, fault: Fault | None = None
    ) -> web.StreamResponse:
        """The OpenAI stream passed through, ``[DONE]``, then the plain JSON answer."""
        kind = fault.kind if fault is not None else ""
        pieces = self._pieces(reply)
        stream_id = f"chatcmpl-emu{next(self._stream_ids):020d}"
        created = int(self.now())

        head = (
            f'data: {{"id":"{stream_id}","object":"chat.completion.chunk","created":{created},'
            f'"model":"{_MODEL}","system_fingerprint":"{_FINGERPRINT}",'
            '"choices":[{"index":0,"delta":'
        )

        def event(delta: Mapping[str, str], finish: str | None) -> bytes:
            delta_json = json.dumps(delta, ensure_ascii=False, separators=(",", ":"))
            finish_json = "null" if finish is None else f'"{finish}"'
            tail = f',"logprobs":null,"finish_reason":{finish_json}}}]}}\n\n'
            return (head + delta_json + tail).encode()

        # Events are buffered until the stream has to wait (chunk_delay, a stall) or ends:
        # with chunk_delay > 0 every event is flushed on its own.
        pending: list[bytes] = []

        async def flush() -> None:
            if pending:
                data = b"".join(pending)
                pending.clear()
                await response.write(data)

        response = self._stream_response()
        if kind == "stream_no_done":
            response.force_close()
        await response.prepare(request)
        pending.append(event({"role": "assistant", "content": ""}, None))
        stop_at = len(pieces)
        if kind == "stream_limited":
            stop_at = len(pieces) // 2 if fault is None or fault.count is None else fault.count
        elif kind == "reset_after_headers":
            stop_at = min(1, len(pieces))
        stall_at = -1
        if fault is not None and kind == "stream_stall" and fault.count is not None:
            stall_at = fault.count
        delay = self.chunk_delay
        for index, piece in enumerate(pieces):
            if index == stop_at:
                break
            if index == stall_at and fault is not None:
                await flush()
                await asyncio.sleep(fault.seconds)
            elif index and delay > 0:
                await flush()
                await asyncio.sleep(delay)
            pending.append(event({"content": piece}, None))
        if kind == "reset_after_headers":
            await flush()
            _abort(request, reset=False)
            return response
        if kind == "stream_limited":
            pending.append(b"data: [LIMITED]\n\n")
        elif kind != "stream_no_done":
            if fault is not None and stall_at >= len(pieces):
                await flush()
                await asyncio.sleep(fault.seconds)
            elif delay > 0 and pieces:
                await flush()
                await asyncio.sleep(delay)
            pending.append(event({}, "stop"))
            pending.append(b"data: [DONE]\n\n")
            pending.append(php_json(self._success(reply)).encode())
        await flush()
        return response


def _attr(value: str) -> str:
    return (
        value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")
    )
