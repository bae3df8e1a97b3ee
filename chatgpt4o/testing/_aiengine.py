"""A local emulator of a WordPress site running Meow Apps' AI Engine chatbot.

``AIEngineEmulator`` is an aiohttp server shaped like ``SiteEmulator``: it serves a page
with one or more ``mwai-chatbot-container`` elements at ``/`` and answers the WordPress
REST API the way AI Engine 2.0.0 to 3.7.2 does for a logged-out visitor (see
``plugin_version``; the rules of each release live in ``_aiengine_rules``):

- ``POST {restUrl}/mwai/v1/start_session`` (2.4.4+): a ``wp_rest`` nonce and the guest's
  session ID, with the ``mwai_session_id`` cookie;
- ``POST {restUrl}/mwai-ui/v1/chats/submit``: a JSON body, the ``X-WP-Nonce`` header,
  a plain JSON answer or an event stream whose ``end`` event carries the JSON answer as a
  JSON-encoded string.

``restUrl`` is ``{url}/wp-json``, or ``{url}/index.php?rest_route=`` with
``plain_permalinks``; both ``/wp-json/<route>`` and ``?rest_route=/<route>`` (on ``/`` or
``/index.php``) reach the same routes either way.

Order of a REST request, as WordPress core and the plugin run it (the request is recorded
and counted first; the queued fault of its route is taken next: an HTTP, CDN or reset
fault answers at once, a stall waits, the others act at their step):

1. core's cookie check: a ``_wpnonce`` field (query string or form body), else an
   ``X-WP-Nonce`` header, that is present but not a valid ``wp_rest`` nonce: 403
   ``rest_cookie_invalid_nonce`` (on every route, ``start_session`` included); a valid one
   earns a fresh ``X-WP-Nonce`` response header;
2. the route and method: 404 ``rest_no_route`` (also ``chats/submit`` with the chatbots
   module off, and ``start_session`` before 2.4.4);
3. a JSON content type with a body PHP cannot decode: 400 ``rest_invalid_json``;
4. the permission: ``chats/submit`` needs a valid ``X-WP-Nonce`` header (not
   ``_wpnonce``), unless the site relaxes it (``relax_nonce``, 2.2.1+): else 401
   ``rest_forbidden``. ``start_session`` is open (before 2.9.1 unless ``allow_session``
   is off);
5. the route's callback. For ``chats/submit``: ``shortcutId`` without a message (400,
   3.3.6+), ``botId``/``customId``/``newMessage`` (403), the chatbot (``customId``'s
   24-hour transient, else ``botId``, else ``default``), the length limit (2.4.9+), the
   history, moderation; then the stream starts (``stream: true``); then banned IPs and
   words, the usage limit and other refusals, and the model.

The model is called with the chatbot's instructions (``system``), the history the server
kept (the first turn and the last ``maxMessages`` others) and the message; what it was
given is recorded (``model_calls``). The server keeps no history of its own.

Where the emulator is simpler than a real site: visitors only (no logged-in users, no
admins, so errors are always masked from 3.6.3); one page at ``/``; content-aware bots,
embeddings, files (references are accepted and ignored), Assistants and images modes,
the Discussions module and shortcuts (every ``shortcutId`` is unknown) are not emulated;
the usage numbers are an estimate; the guests' usage limit counts answers per client IP.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import re
import secrets
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._aiengine_faults import IMMEDIATE_KINDS, EngineFault, EngineTarget, parse_engine_fault
from ._aiengine_pages import (
    EnginePage,
    container,
    front_params,
    front_system,
    not_found_page,
    render_page,
    shortcode_text,
    theme,
    waf_page,
)
from ._aiengine_rules import (
    MIN_VERSION,
    MSG_BANNED,
    MSG_MODERATION,
    MSG_PUBLIC_ERROR,
    MSG_REJECTED,
    MSG_SHORTCUT,
    MSG_UNSUPPORTED_MESSAGE,
    V_AUTH_FILTER,
    V_HARDENED,
    V_LENGTH_LIMIT,
    V_NEW_TOKEN,
    V_NO_PAGE_SESSION,
    V_PUBLIC_SESSION,
    V_REPLY_EXTRAS,
    V_RESPONSE_ID,
    V_SHORTCUTS,
    V_SIGNED_SESSION,
    V_START_SESSION,
    V_ZERO_MESSAGE,
    Chatbot,
    JsonBody,
    Message,
    UnreadableHistory,
    Usage,
    banned_word_in,
    client_ip,
    decode_json_body,
    default_reply,
    estimate_tokens,
    ip_in_ranges,
    max_messages,
    model_history,
    new_session_id,
    over_limit_message,
    php_truthy,
    session_from_cookie,
    session_signature,
)
from ._aiohttp import CIMultiDict, web
from ._nonces import REST_NONCE_ACTION
from ._pages import error_page
from ._php import parse_version, php_json, php_string, php_trim
from ._records import RecordedRequest
from ._site import (
    Reply,
    WordPressSite,
    abort_connection,
    cloudflare_challenge,
    ssl_context_from,
)

__all__ = [
    "REST_PREFIX",
    "ROUTE_START_SESSION",
    "ROUTE_SUBMIT",
    "AIEngineEmulator",
    "Chatbot",
    "EngineFault",
    "Reply",
    "build_parser_arguments",
    "default_reply",
    "emulator_from_args",
]

#: Where pretty permalinks put the REST API.
REST_PREFIX = "/wp-json"
#: The guest-session route (2.4.4+).
ROUTE_START_SESSION = "/mwai/v1/start_session"
#: The chat route.
ROUTE_SUBMIT = "/mwai-ui/v1/chats/submit"

_JSON = "application/json; charset=UTF-8"
_HTML = "text/html; charset=UTF-8"
_EVENT_STREAM = "text/event-stream;charset=UTF-8"
_TRANSIENT_SECONDS = 86400
_NOCACHE = (
    ("Expires", "Wed, 11 Jan 1984 05:00:00 GMT"),
    ("Cache-Control", "no-cache, must-revalidate, max-age=0"),
)
_CRITICAL = (
    '<p>There has been a critical error on this website.</p><p><a href="'
    'https://wordpress.org/documentation/article/faq-troubleshooting/">'
    "Learn more about troubleshooting WordPress.</a></p>"
)
# What a plain answer gets when the model's answer was cut (the text before 3.6.3 masked it).
_MSG_CUT_ANSWER = "Error: the AI service returned an incomplete answer (invalid JSON)."
# Deleted from a visitor's body from 3.6.3 (MWAI_CHATBOT_SERVER_PARAMS).
_SERVER_PARAMS = (
    "id", "envId", "scope", "mode", "contentAware", "context", "startSentence",
    "embeddingsEnvId", "embeddingsIndex", "embeddingsNamespace", "assistantId",
    "instructions", "resolution", "voice", "talkMode", "model", "temperature", "maxTokens",
    "contextMaxLength", "maxResults", "apiKey", "functions", "mcpServers", "tools",
    "historyStrategy", "previousResponseId", "parentBotId", "crossSite", "promptId",
    "promptVariables", "reasoningEffort", "verbosity",
)  # fmt: skip


class _PluginError(Exception):
    """An exception the plugin catches and answers with (``message`` as thrown)."""

    def __init__(self, message: str, *, refusal: bool = False, over_limit: bool = False):
        super().__init__(message)
        self.message = message
        self.refusal = refusal
        self.over_limit = over_limit


@dataclass
class _Exchange:
    """One REST request on its way through WordPress: what has been sent so far."""

    request: web.BaseRequest
    record: RecordedRequest
    version: tuple[int, ...]
    fault: EngineFault | None
    headers: list[tuple[str, str]] = field(default_factory=list)
    cors: list[tuple[str, str]] = field(default_factory=list)

    @property
    def fault_kind(self) -> str:
        return self.fault.kind if self.fault is not None else ""


class AIEngineEmulator(WordPressSite[EngineFault]):
    """A local stand-in for a WordPress site with the AI Engine chatbot.

    Use it as an async context manager (or call :meth:`start` / :meth:`stop`)::

        async with AIEngineEmulator() as site:
            ...  # point the client at site.url

    Every keyword below is also a plain attribute that may be changed at any time, and
    takes effect with the next request. Besides them:

    Attributes:
        page_loads: GET/HEAD requests of the page seen.
        posts: POST requests to ``chats/submit`` seen (either URL form).
        sessions_started: POST requests to ``start_session`` seen.
        connections: TCP connections accepted.
        requests: every request, in order, as :class:`RecordedRequest` (with the model
            calls of each).
        model_calls: what the model was given, one list of ``{"role", "content"}`` dicts
            per call, over all requests: the chatbot's instructions (``system``, when it
            has some), the history turns the server kept, then the message (``user``). A
            reply function that takes ``messages`` gets the same list.

    Args:
        host: the interface to listen on. port: the port, ``0`` for a free one.
        plugin_version: the AI Engine release, ``"2.0.0"`` or newer (later than 3.7.2
            behaves as 3.7.2). It decides: the guest ``restNonce`` on the page (before
            2.4.4), ``start_session`` (2.4.4+), the guest ``sessionId`` on the page (before
            3.5.2), the session ID format (``uniqid()`` up to 3.6.3, signed from 3.6.4,
            unsigned cookies refused from 3.6.6), the length limit (2.4.9+), the answer's
            keys (``actions``... 2.4.8+, ``responseId`` 2.8.4+, ``new_token`` 2.8.5+),
            and from 3.6.3 the visitor hardening (body server parameters and non
            user/assistant turns ignored, masked errors, ``overLimit``, 429).
        reply: the answer text, or a function (sync or async) of the message returning it;
            a function with a ``messages`` parameter also gets the model's messages. The
            default, :func:`default_reply`, echoes the message and says how many earlier
            messages the model saw.
        stream: the site's streaming option, shown as ``data-system``'s ``stream``. The
            server answers what each request asks (``"stream": true`` or not) either way.
        stream_chunks: split each streamed reply into this many ``live`` chunks; ``None``:
            one chunk per word (with its trailing space).
        chunk_delay: seconds between ``live`` chunks.
        chatbots: the site's chatbots (see :class:`Chatbot`), shown on the page in order
            (a ``window`` one in the footer). A request naming an unknown ``botId`` gets
            the ``"default"`` one; with no ``"default"`` chatbot it fails.
        post_id: the page's post ID (``data-system``'s ``contextId``); ``None``: not a
            singular page (``contextId: null``).
        plain_permalinks: the site has plain permalinks: ``restUrl`` is
            ``{url}/index.php?rest_route=``.
        chatbots_module: the plugin's chatbots module; off, ``chats/submit`` is 404
            ``rest_no_route`` and the page shows the bare shortcode.
        relax_nonce: the site returns true from ``mwai_rest_authorized`` (2.2.1+), as
            Meow's caching advice suggests: ``chats/submit`` takes requests with no nonce.
            A present but invalid nonce is still refused by WordPress (403).
        allow_session: ``mwai_allow_session`` (before 2.9.1, the permission of
            ``start_session``); off, ``start_session`` is 401 ``rest_forbidden``.
        event_logs: the "event logs" option (2.8.5+): a ``live`` event with ``subtype``
            ``"status"`` precedes the reply's chunks.
        responses_api: the chatbot's model uses OpenAI's Responses API: answers carry a
            ``responseId`` (2.8.4+).
        guest_limit: answers allowed per client IP before the usage-limit answer (AI
            Engine Pro's guests limit); ``None``: no limit. See :meth:`reset_usage`.
        banned_words: words refused in a message (whole words, any case).
        banned_ips: client addresses or CIDR ranges refused (the client IP is the first
            public address of ``CF-Connecting-IP``, ``Client-IP``, ``X-Forwarded-For``...,
            else the peer).
        clock: the Unix time source (see also :meth:`advance`; a custom chatbot's transient
            lives 86400 s).
        secret: the nonce key; random by default (see :meth:`rotate_nonce`).
        ssl_context: serve HTTPS with this server context (``url`` is then ``https://...``
            and the session cookie is ``secure``). Set it before :meth:`start`.
    """

    _fault_class = EngineFault
    _NONCE_ACTION = REST_NONCE_ACTION
    _COUNTERS = (*WordPressSite._COUNTERS, "sessions_started")
    _PIECES = re.compile(r"\s+|\S+\s*")  # a word with the spaces after it, or spaces

    sessions_started: int

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        plugin_version: str = "3.7.2",
        reply: Reply = default_reply,
        stream: bool = True,
        stream_chunks: int | None = None,
        chunk_delay: float = 0.0,
        chatbots: Iterable[Chatbot] = (Chatbot(),),
        post_id: int | None = 42,
        plain_permalinks: bool = False,
        chatbots_module: bool = True,
        relax_nonce: bool = False,
        allow_session: bool = True,
        event_logs: bool = False,
        responses_api: bool = True,
        guest_limit: int | None = None,
        banned_words: Iterable[str] = (),
        banned_ips: Iterable[str] = (),
        clock: Callable[[], float] = time.time,
        secret: bytes | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(
            host=host,
            port=port,
            reply=reply,
            stream_chunks=stream_chunks,
            chunk_delay=chunk_delay,
            clock=clock,
            secret=secret,
            ssl_context=ssl_context,
        )
        self.plugin_version = plugin_version
        self.stream = stream
        self.chatbots: list[Chatbot] = list(chatbots)
        self.post_id = post_id
        self.plain_permalinks = plain_permalinks
        self.chatbots_module = chatbots_module
        self.relax_nonce = relax_nonce
        self.allow_session = allow_session
        self.event_logs = event_logs
        self.responses_api = responses_api
        self.guest_limit = guest_limit
        self.banned_words: list[str] = list(banned_words)
        self.banned_ips: list[str] = list(banned_ips)

        self._auth_key = secrets.token_bytes(32)  # wp_salt('auth'): signs session cookies
        self._transients: dict[str, tuple[Chatbot, float]] = {}
        self._usage: dict[str, int] = {}
        self._responses = 0

    # validated settings -----------------------------------------------------------------

    def _check_plugin_version(self, value: str) -> None:
        if parse_version(value) < MIN_VERSION:
            raise ValueError(f"plugin_version must be 2.0.0 or newer, not {value!r}")

    @property
    def _version(self) -> tuple[int, ...]:
        return parse_version(self._plugin_version)

    # URLs (start, stop, url and the rest: WordPressSite) --------------------------------

    @property
    def rest_url(self) -> str:
        """``data-system``'s ``restUrl``: ``{url}/wp-json``, or
        ``{url}/index.php?rest_route=`` with ``plain_permalinks``."""
        if self.plain_permalinks:
            return f"{self.url}/index.php?rest_route="
        return self.url + REST_PREFIX

    def route_url(self, route: str) -> str:
        """The URL of a REST route built from :attr:`rest_url`, e.g.
        ``site.route_url("/mwai-ui/v1/chats/submit")``."""
        return self.rest_url + route

    # nonces -----------------------------------------------------------------------------

    def _rest_nonce_age(self, nonce: str | None, exchange: _Exchange) -> int:
        """``wp_verify_nonce(nonce, 'wp_rest')``: 1, 2 or 0 (a ``stale_nonce`` fault: 0)."""
        if nonce is None or exchange.fault_kind == "stale_nonce":
            return 0
        return self._nonce_age(nonce)

    def session_cookie(self, session_id: str) -> str:
        """The ``mwai_session_id`` cookie value the site sets for ``session_id`` (signed
        from 3.6.4)."""
        if self._version < V_SIGNED_SESSION:
            return session_id
        return f"{session_id}.{session_signature(self._auth_key, session_id)}"

    # the site's state -------------------------------------------------------------------

    def reset_usage(self) -> None:
        """Forget how many answers each client got (see ``guest_limit``)."""
        self._usage.clear()

    # request entry point ----------------------------------------------------------------

    async def _route(
        self, request: web.BaseRequest, record: RecordedRequest
    ) -> web.StreamResponse | None:
        route = _rest_route(request)
        if route is None:
            return None
        target = _route_target(route)
        if request.method == "POST":
            if target == "session":
                self.sessions_started += 1
            elif target == "submit":
                self.posts += 1
        return await self._rest(request, record, route, target)

    def _not_found(self, request: web.BaseRequest) -> web.StreamResponse:
        return _plain(404, not_found_page(self.url), _HTML, self._page_headers())

    def _error_page(self, status: int) -> web.Response:
        return _plain(status, error_page(status), _HTML)

    # immediate faults -------------------------------------------------------------------

    def _immediate(
        self, request: web.BaseRequest, fault: EngineFault, *, rest: bool
    ) -> web.StreamResponse:
        kind = fault.kind
        if kind == "status":
            return _plain(fault.code, fault.body, fault.content_type, fault.headers)
        if kind == "rate_limited":
            return _plain(429, error_page(429), _HTML, fault.headers)
        if kind == "server_error":
            if fault.code == 500 and rest:
                return self._critical_error()
            return _plain(fault.code, error_page(fault.code), _HTML)
        if kind == "cloudflare":
            headers, page = cloudflare_challenge(request)
            return _plain(fault.code, page, _HTML, headers)
        if kind == "waf":
            return _plain(403, waf_page(request.host, secrets.token_hex(6)), _HTML)
        if kind == "page":
            return _plain(200, fault.body, _HTML, self._page_headers())
        # "reset": the connection is gone before a byte was sent
        abort_connection(request, reset=True)
        return web.Response()

    def _critical_error(self, headers: Sequence[tuple[str, str]] = ()) -> web.Response:
        """WordPress's answer to a PHP fatal error on a REST route."""
        payload = {
            "code": "internal_server_error",
            "message": _CRITICAL,
            "data": {"status": 500},
            "additional_errors": [],
        }
        return _plain(500, php_json(payload), _JSON, headers)

    # the page ---------------------------------------------------------------------------

    async def _page(self, request: web.BaseRequest, record: RecordedRequest) -> web.StreamResponse:
        fault = await self._next_fault("page")
        if fault is not None:
            return self._immediate(request, fault, rest=False)
        version = self._version
        extra: list[tuple[str, str]] = []
        session_id: str | None = None
        if version < V_NO_PAGE_SESSION:
            session_id, cookie = self._session(record)
            if cookie is not None:
                extra.append(("Set-Cookie", cookie))
        nonce = self.current_nonce() if version < V_START_SESSION else None
        content: list[str] = []
        footer: list[str] = []
        url = self.url
        now = self.now()
        for bot in self.chatbots:
            if not bot.on_page or (bot.window and not self.chatbots_module):
                continue
            if not self.chatbots_module:
                content.append(shortcode_text(bot))
                continue
            if bot.custom_id:
                self._transients[bot.custom_id] = (bot, now + _TRANSIENT_SECONDS)
            system = front_system(
                bot,
                url=url,
                rest_url=self.rest_url,
                session_id=session_id,
                rest_nonce=nonce,
                context_id=self.post_id,
                stream=bool(self.stream),
                event_logs=bool(self.event_logs),
            )
            if version < V_NEW_TOKEN:
                del system["eventLogs"]
            if version < V_REPLY_EXTRAS:
                for key in ("actions", "blocks", "shortcuts"):
                    del system[key]
            element = container(front_params(bot), system, theme(url))
            (footer if bot.window else content).append(element)
        page = EnginePage(
            url=url,
            rest_index=self.rest_url + "/",
            post_id=self.post_id,
            content="\n".join(content),
            footer="\n".join(footer),
            scripts=self.chatbots_module and bool(content or footer),
        )
        return _plain(200, render_page(page), _HTML, [*self._page_headers(), *extra])

    def _page_headers(self) -> tuple[tuple[str, str], ...]:
        return (
            ("Link", f'<{self.rest_url}/>; rel="https://api.w.org/"'),
            ("X-Content-Type-Options", "nosniff"),
        )

    # guest sessions ---------------------------------------------------------------------

    def _session(self, record: RecordedRequest) -> tuple[str, str | None]:
        """``get_session_id()``: the cookie's session, or a new one and its ``Set-Cookie``."""
        version = self._version
        found = session_from_cookie(record.cookies.get("mwai_session_id"), self._auth_key, version)
        if found is not None:
            return found, None
        session_id = new_session_id(self.now(), version)
        cookie = f"mwai_session_id={self.session_cookie(session_id)}; path=/"
        if self.ssl_context is not None:
            cookie += "; secure"
        return session_id, cookie + "; HttpOnly"

    # the REST API -----------------------------------------------------------------------

    def _rest_headers(self) -> list[tuple[str, str]]:
        return [
            ("Content-Type", _JSON),
            ("X-Robots-Tag", "noindex"),
            ("Link", f'<{self.rest_url}/>; rel="https://api.w.org/"'),
            ("X-Content-Type-Options", "nosniff"),
            ("Access-Control-Expose-Headers", "X-WP-Total, X-WP-TotalPages, Link"),
            (
                "Access-Control-Allow-Headers",
                "Authorization, X-WP-Nonce, Content-Disposition, Content-MD5, Content-Type",
            ),
        ]

    def _answer(
        self,
        exchange: _Exchange,
        status: int,
        payload: object,
        extra: Sequence[tuple[str, str]] = (),
    ) -> web.Response:
        """A JSON answer through the REST server (its headers, CORS, then ``extra``)."""
        headers = [*exchange.headers, *exchange.cors, *extra]
        return _plain(status, php_json(payload), None, headers)

    def _wp_error(
        self,
        exchange: _Exchange,
        status: int,
        code: str,
        message: str,
        data: Mapping[str, object] | None = None,
        extra: Sequence[tuple[str, str]] = (),
    ) -> web.Response:
        payload = {"code": code, "message": message, "data": {"status": status, **(data or {})}}
        return self._answer(exchange, status, payload, extra)

    def _routes(self, version: tuple[int, ...]) -> dict[str, str]:
        """The registered routes (lowercase) and their methods."""
        routes = {"/": "GET"}
        if version >= V_START_SESSION:
            routes[ROUTE_START_SESSION] = "POST"
        if self.chatbots_module:
            routes[ROUTE_SUBMIT] = "POST"
        return routes

    async def _rest(
        self,
        request: web.BaseRequest,
        record: RecordedRequest,
        route: str,
        target: EngineTarget | None,
    ) -> web.StreamResponse:
        fault = await self._next_fault(target) if target is not None else None
        if fault is not None and fault.kind in IMMEDIATE_KINDS:
            return self._immediate(request, fault, rest=True)
        version = self._version
        exchange = _Exchange(request, record, version, fault, self._rest_headers())
        origin = request.headers.get("Origin")
        if origin:
            exchange.cors += [
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Allow-Methods", "OPTIONS, GET, POST, PUT, PATCH, DELETE"),
                ("Access-Control-Allow-Credentials", "true"),
                ("Vary", "Origin"),
            ]
        elif request.method == "GET":
            exchange.cors.append(("Vary", "Origin"))

        # 1. WordPress's cookie check: _wpnonce first, else the header.
        given = record.form.get("_wpnonce", record.query.get("_wpnonce"))
        if given is None:
            given = request.headers.get("X-WP-Nonce")
        if given is not None:
            if not self._rest_nonce_age(given, exchange):
                return self._wp_error(
                    exchange, 403, "rest_cookie_invalid_nonce", "Cookie check failed",
                    extra=_NOCACHE,
                )  # fmt: skip
            exchange.headers.append(("X-WP-Nonce", self.current_nonce()))

        # 2. The route and the method.
        key = route.lower()
        method = self._routes(version).get(key)
        head = method == "GET" and request.method == "HEAD"
        if (
            method is None
            or not (method == request.method or head)
            or exchange.fault_kind == "no_route"
        ):
            return self._wp_error(
                exchange, 404, "rest_no_route",
                "No route was found matching the URL and request method.",
            )  # fmt: skip

        # 3. The JSON body.
        body = decode_json_body(record.raw_body, request.headers.get("Content-Type", ""))
        permission = self._permission(key, exchange)
        allow = [("Allow", method)] if permission is True else []
        if body.error is not None:
            code, text = body.error
            data = {"json_error_code": code, "json_error_message": text}
            return self._wp_error(
                exchange, 400, "rest_invalid_json", "Invalid JSON body passed.", data, allow
            )

        # 4. The permission.
        if not permission:
            return self._wp_error(
                exchange, 401, "rest_forbidden", "Sorry, you are not allowed to do that."
            )

        # 5. The callback.
        if key == "/":
            return self._answer(exchange, 200, self._index(version), allow)
        if key == ROUTE_START_SESSION:
            return self._start_session(exchange, allow)
        return await self._submit(exchange, body, allow)

    def _permission(self, route: str, exchange: _Exchange) -> bool | int:
        """The route's ``permission_callback`` (``True`` is what earns an ``Allow`` header)."""
        version = exchange.version
        if route == ROUTE_SUBMIT:
            if version >= V_AUTH_FILTER and self.relax_nonce:
                return True  # mwai_rest_authorized
            sent = exchange.request.headers.get("X-WP-Nonce")
            return self._rest_nonce_age(sent, exchange) or False
        if route == ROUTE_START_SESSION and version < V_PUBLIC_SESSION:
            return bool(self.allow_session)
        return True

    def _new_token(self, exchange: _Exchange) -> str | None:
        """``new_token`` (2.8.5+): the current nonce when the ``X-WP-Nonce`` sent is in its
        second tick or is not the current one."""
        if exchange.version < V_NEW_TOKEN:
            return None
        sent = exchange.request.headers.get("X-WP-Nonce")
        if not sent or sent == "0":
            return None
        current = self.current_nonce()
        if self._rest_nonce_age(sent, exchange) == 2 or sent != current:
            return current
        return None

    def _with_token(self, exchange: _Exchange, payload: dict[str, object]) -> dict[str, object]:
        token = self._new_token(exchange)
        if token is not None:
            payload["new_token"] = token
        return payload

    def _index(self, version: tuple[int, ...]) -> dict[str, object]:
        """The REST API's index, short."""
        namespaces = ["oembed/1.0", "mwai/v1"]
        if self.chatbots_module:
            namespaces.append("mwai-ui/v1")
        namespaces += ["wp/v2", "wp-site-health/v1", "wp-block-editor/v1"]
        routes: dict[str, object] = {}
        for route, method in self._routes(version).items():
            if route == "/":
                continue
            namespace = route.split("/")[1] + "/" + route.split("/")[2]
            routes[route] = {
                "namespace": namespace,
                "methods": [method],
                "endpoints": [{"methods": [method], "args": []}],
                "_links": {"self": [{"href": self.route_url(route)}]},
            }
        return {
            "name": "AI Engine Demo",
            "description": "",
            "url": self.url,
            "home": self.url,
            "gmt_offset": "0",
            "timezone_string": "",
            "namespaces": namespaces,
            "authentication": [],
            "routes": routes,
        }

    def _start_session(self, exchange: _Exchange, allow: Sequence[tuple[str, str]]) -> web.Response:
        session_id, cookie = self._session(exchange.record)
        payload: dict[str, object] = {
            "success": True,
            "sessionId": session_id,
            "restNonce": self.current_nonce(),
        }
        extra = [("Set-Cookie", cookie)] if cookie is not None else []
        extra += allow
        return self._answer(exchange, 200, self._with_token(exchange, payload), extra)

    # chats/submit -----------------------------------------------------------------------

    async def _submit(
        self, exchange: _Exchange, body: JsonBody, allow: Sequence[tuple[str, str]]
    ) -> web.StreamResponse:
        version = exchange.version
        params = body.params if isinstance(body.params, dict) else {}
        bot_id, custom_id = params.get("botId"), params.get("customId")
        streaming = php_truthy(params.get("stream"))
        raw_message = params.get("newMessage")
        if isinstance(raw_message, (list, dict)):
            return self._critical_error(exchange.headers)  # trim(array): a TypeError
        message = php_trim(php_string(raw_message))
        if (
            version >= V_SHORTCUTS
            and php_truthy(params.get("shortcutId"))
            and not php_truthy(message)
        ):
            payload = self._with_token(exchange, {"success": False, "message": MSG_SHORTCUT})
            return self._answer(exchange, 400, payload, allow)
        if not self._passes_basics(bot_id, custom_id, message, params, version):
            payload = self._with_token(exchange, {"success": False, "message": MSG_REJECTED})
            return self._answer(exchange, 403, payload, allow)
        call = _Call(self, exchange, streaming)
        try:
            messages = self._prepare(exchange, params, bot_id, custom_id, message)
            if exchange.fault_kind == "moderation":
                raise _PluginError(MSG_MODERATION)
            if streaming:
                await call.open_stream()
            self._check_allowed(exchange, message)
            return await self._run_model(call, message, messages, allow)
        except UnreadableHistory:
            return self._critical_error(exchange.headers)
        except _PluginError as error:
            return await call.fail(error, allow)

    @staticmethod
    def _passes_basics(
        bot_id: object,
        custom_id: object,
        message: str,
        params: Mapping[str, object],
        version: tuple[int, ...],
    ) -> bool:
        """``basics_security_check``: a chatbot named, and a message or a file."""
        if not php_truthy(bot_id) and not php_truthy(custom_id):
            return False
        if php_truthy(params.get("newFileId")) or php_truthy(params.get("newFileIds")):
            return True
        if version >= V_ZERO_MESSAGE:
            return len(message) >= 1
        return php_truthy(message)

    def _chatbot(self, bot_id: object, custom_id: object) -> tuple[Chatbot, bool] | None:
        """The chatbot a request names, and whether it is a custom one's transient."""
        if php_truthy(custom_id):
            stored = self._transients.get(php_string(custom_id))
            if stored is not None and stored[1] > self.now():
                return stored[0], True
        registered = {bot.bot_id: bot for bot in self.chatbots if not bot.custom_id}
        if php_truthy(bot_id) and not isinstance(bot_id, (list, dict)):
            found = registered.get(php_string(bot_id))
            if found is not None:
                return found, False
        default = registered.get("default")
        return (default, False) if default is not None else None

    def _prepare(
        self,
        exchange: _Exchange,
        params: dict[str, object],
        bot_id: object,
        custom_id: object,
        message: str,
    ) -> list[Message]:
        """``chat_submit`` up to the query: the chatbot, the length limit, the history."""
        version = exchange.version
        hardened = version >= V_HARDENED
        if hardened:
            params = {key: value for key, value in params.items() if key not in _SERVER_PARAMS}
        found = self._chatbot(bot_id, custom_id)
        if found is None:
            raise _PluginError(MSG_REJECTED)
        bot, custom = found
        limit = None if custom else bot.text_input_max_length
        if version >= V_LENGTH_LIMIT and limit and len(message) > limit:
            raise _PluginError(MSG_REJECTED)
        instructions = bot.instructions
        if "instructions" in params:  # a body could replace them up to 3.6.2
            given = params["instructions"]
            text = php_truthy(given) and not isinstance(given, (list, dict))
            instructions = php_string(given) if text else ""
        keep = max_messages(params, None if custom else bot.max_messages)
        try:
            history = model_history(params.get("messages"), hardened=hardened, keep=keep)
        except UnreadableHistory as error:
            if error.fatal:
                raise
            raise _PluginError(MSG_UNSUPPORTED_MESSAGE) from None
        messages: list[Message] = []
        if instructions:
            messages.append({"role": "system", "content": instructions})
        return [*messages, *history, {"role": "user", "content": message}]

    def _check_allowed(self, exchange: _Exchange, message: str) -> None:
        """``mwai_ai_allowed``: banned IPs and words, the usage limit, other refusals."""
        version = exchange.version
        hardened = version >= V_HARDENED
        ip = client_ip(exchange.request.headers, exchange.record.peer[0])
        if self.banned_ips and ip_in_ranges(ip, self.banned_ips):
            raise _PluginError(MSG_BANNED)
        if self.banned_words and banned_word_in(message, self.banned_words) is not None:
            raise _PluginError(MSG_BANNED)
        fault = exchange.fault
        limit = self.guest_limit
        if (fault is not None and fault.kind == "over_limit") or (
            limit is not None and self._usage.get(ip, 0) >= limit
        ):
            text = fault.text if fault is not None and fault.text else over_limit_message(version)
            raise _PluginError(text, refusal=hardened, over_limit=hardened)
        if fault is not None and fault.kind == "refused":
            raise _PluginError(fault.text, refusal=hardened)

    async def _run_model(
        self,
        call: _Call,
        message: str,
        messages: list[Message],
        allow: Sequence[tuple[str, str]],
    ) -> web.StreamResponse:
        exchange = call.exchange
        fault = exchange.fault
        kind = exchange.fault_kind
        given = self._record_call(exchange.record, messages)
        reply = await self._reply_for(message, given)
        pieces = self._pieces(reply)
        accuracy = "tokens"
        if kind == "upstream_cut" and fault is not None:
            if not call.streaming:
                raise _PluginError(_MSG_CUT_ANSWER)
            pieces = pieces[: fault.count]
            reply = "".join(pieces)
            accuracy = "estimated"
        failure = fault if fault is not None and kind == "provider_error" else None
        if failure is not None and not call.streaming:
            raise _PluginError(failure.text)
        if call.streaming:
            stop_at = failure.count if failure is not None else None
            await call.stream_pieces(pieces, self.event_logs, stop_at)
            if failure is not None:
                raise _PluginError(failure.text)
            if fault is not None and kind == "stream_cut":
                return await call.cut(abort=fault.abort)
        ip = client_ip(exchange.request.headers, exchange.record.peer[0])
        self._usage[ip] = self._usage.get(ip, 0) + 1
        usage = Usage(
            sum(estimate_tokens(item["content"]) for item in given),
            estimate_tokens(reply),
            accuracy,
        )
        result: dict[str, object] = {"success": True, "reply": php_trim(reply), "images": None}
        if exchange.version >= V_REPLY_EXTRAS:
            result.update(actions=[], shortcuts=[], blocks=[])
        result["usage"] = usage.as_dict()
        if self.responses_api and exchange.version >= V_RESPONSE_ID:
            self._responses += 1
            result["responseId"] = f"resp_{secrets.token_hex(20)}{self._responses:08x}"
        result = self._with_token(exchange, result)
        if call.streaming:
            return await call.end(php_json(result))
        return self._answer(exchange, 200, result, allow)


class _Call:
    """How one ``chats/submit`` answer goes out: plain JSON, or an event stream."""

    def __init__(self, site: AIEngineEmulator, exchange: _Exchange, streaming: bool) -> None:
        self.site = site
        self.exchange = exchange
        self.streaming = streaming
        self.response: web.StreamResponse | None = None

    async def open_stream(self) -> None:
        """The plugin's stream headers: from here on, errors are ``error`` events."""
        headers = [("Server", "nginx")]
        headers += [item for item in self.exchange.headers if item[0] != "Content-Type"]
        headers += [
            ("Cache-Control", "no-cache"),
            ("Content-Type", _EVENT_STREAM),
            ("X-Accel-Buffering", "no"),
        ]
        response = web.StreamResponse(status=200, headers=_multidict(headers))
        await response.prepare(self.exchange.request)
        self.response = response

    async def _event(self, payload: Mapping[str, object]) -> None:
        assert self.response is not None
        await self.response.write(f"data: {php_json(payload)}\n\n".encode())

    async def stream_pieces(
        self, pieces: Sequence[str], event_logs: bool, stop_at: int | None
    ) -> None:
        """The ``live`` events of the reply (a status event first with event logs on)."""
        fault = self.exchange.fault
        stall_at = fault.count if fault is not None and fault.kind == "stream_stall" else None
        if fault is not None and fault.kind == "stream_cut" and fault.count is not None:
            stop_at = fault.count
        delay = self.site.chunk_delay
        for index, piece in enumerate(pieces):
            if stop_at is not None and index >= stop_at:
                break
            if index == 0 and event_logs and self.exchange.version >= V_NEW_TOKEN:
                await self._event(
                    {
                        "type": "live",
                        "data": "Generating response...",
                        "timestamp": self.site.now(),
                        "subtype": "status",
                        "visibility": "collapsed",
                    }
                )
            if index == stall_at and fault is not None:
                await asyncio.sleep(fault.seconds)
            elif index and delay > 0:
                await asyncio.sleep(delay)
            await self._event({"type": "live", "data": piece})
        if stall_at is not None and stall_at >= len(pieces) and fault is not None:
            await asyncio.sleep(fault.seconds)

    async def end(self, answer: str) -> web.StreamResponse:
        """The final ``end`` event: the JSON answer, JSON-encoded as a string."""
        await self._event({"type": "end", "data": answer})
        assert self.response is not None
        return self.response

    async def cut(self, *, abort: bool) -> web.StreamResponse:
        """The stream stops with no ``end``."""
        assert self.response is not None
        if abort:
            abort_connection(self.exchange.request, reset=False)
        return self.response

    async def fail(
        self, error: _PluginError, allow: Sequence[tuple[str, str]]
    ) -> web.StreamResponse:
        """The plugin's answer to an exception: an ``error`` event (a bare ``data:`` line
        before the stream started), or JSON with HTTP 500 (429 over the limit)."""
        exchange = self.exchange
        hardened = exchange.version >= V_HARDENED
        text = error.message if error.refusal or not hardened else MSG_PUBLIC_ERROR
        if self.streaming:
            event: dict[str, object] = {"type": "error", "data": text}
            if hardened:
                event["overLimit"] = error.over_limit
            line = f"data: {php_json(event)}\n\n"
            if self.response is None:
                return _plain(200, line, None, exchange.headers)
            await self._event(event)
            return self.response
        payload: dict[str, object] = {"success": False, "message": text}
        if hardened:
            payload["overLimit"] = error.over_limit
        status = 429 if error.over_limit and hardened else 500
        return self.site._answer(exchange, status, self.site._with_token(exchange, payload), allow)


# helpers --------------------------------------------------------------------------------


def _multidict(headers: Iterable[tuple[str, str]]) -> CIMultiDict[str]:
    result: CIMultiDict[str] = CIMultiDict()
    for name, value in headers:
        if name.lower() == "set-cookie" or name.lower() == "vary":
            result.add(name, value)
        else:
            result[name] = value
    return result


def _plain(
    status: int,
    body: bytes | str,
    content_type: str | None,
    headers: Iterable[tuple[str, str]] = (),
) -> web.Response:
    """A response with ``headers`` (later ones win, ``Set-Cookie`` and ``Vary`` add up)."""
    items = [("Server", "nginx"), *headers]
    if content_type is not None:
        items.insert(1, ("Content-Type", content_type))
    data = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else body
    return web.Response(status=status, body=data, headers=_multidict(items))


def _rest_route(request: web.BaseRequest) -> str | None:
    """The REST route a request asks for: ``rest_route`` in the query string (it wins, as
    in WordPress's query parsing), else a path under ``/wp-json``; ``None``: not REST."""
    route = request.query.get("rest_route")
    if route is None:
        path = request.path
        if path != REST_PREFIX and not path.startswith(REST_PREFIX + "/"):
            return None
        route = "/" + path[len(REST_PREFIX) :].lstrip("/")
    route = route.rstrip("/")
    return route or "/"


def _route_target(route: str) -> EngineTarget | None:
    key = route.lower()
    if key == ROUTE_START_SESSION:
        return "session"
    if key == ROUTE_SUBMIT:
        return "submit"
    return None


# command line ---------------------------------------------------------------------------


def _chatbot_option(text: str) -> tuple[str, str | None]:
    ident, sep, instructions = text.partition("=")
    if not ident.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: a chatbot needs an ID")
    return ident.strip(), instructions if sep else None


def build_parser_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of :func:`emulator_from_args` to ``parser``.

    Options the parser has already (``python -m chatgpt4o.testing`` defines ``--host``,
    ``--port``, ``--reply``, ``--chunk-delay``, ``--stream-chunks``, ``--plugin-version``,
    ``--post-id``, ``--banned-word``, ``--banned-ip``, ``--fail``, ``--certfile``,
    ``--keyfile``) are left as they are and read from there; the others are added in an
    "AI Engine" group.
    """
    group = parser.add_argument_group("AI Engine (--plugin aiengine)")

    def add(flag: str, **kwargs: Any) -> None:
        with contextlib.suppress(argparse.ArgumentError):  # the parser has it already
            group.add_argument(flag, **kwargs)

    add("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    add("--port", type=int, default=0, help="port (default 0: a free one)")
    add("--reply", metavar="TEXT", help="answer every message with TEXT")
    add("--chunk-delay", type=float, default=0.0, metavar="S", help="seconds between chunks")
    add("--stream-chunks", type=int, default=None, metavar="N", help="live chunks per reply")
    add(
        "--plugin-version",
        default=None,
        metavar="V",
        help="AI Engine release, 2.0.0 or newer (default 3.7.2)",
    )
    add("--post-id", type=int, default=42, help="the page's post ID (contextId)")
    add("--banned-word", action="append", default=[], metavar="WORD", help="(repeatable)")
    add("--banned-ip", action="append", default=[], metavar="IP", help="IP or CIDR (repeatable)")
    add(
        "--fail",
        action="append",
        default=[],
        metavar="FAULT[=ARG][@TARGET]",
        help="queue an AI Engine fault, e.g. waf@session, provider_error, "
        "stream_cut=2 (targets: page, session, submit; repeatable, in order)",
    )
    add("--certfile", metavar="PEM", help="serve HTTPS with this certificate chain")
    add("--keyfile", metavar="PEM", help="the private key of --certfile, if not inside it")
    add(
        "--chatbot",
        dest="aiengine_chatbots",
        action="append",
        default=[],
        type=_chatbot_option,
        metavar="ID[=INSTRUCTIONS]",
        help="a registered chatbot shown on the page (repeatable; default: 'default')",
    )
    add(
        "--custom-chatbot",
        dest="aiengine_custom",
        action="append",
        default=[],
        type=_chatbot_option,
        metavar="CUSTOM_ID[=INSTRUCTIONS]",
        help="a shortcode overriding the default chatbot, shown with its customId",
    )
    add(
        "--window-chatbot",
        dest="aiengine_window",
        metavar="ID",
        help="also show chatbot ID as the site-wide popup (footer)",
    )
    add("--max-length", dest="aiengine_max_length", type=int, default=512, metavar="N",
        help="textInputMaxLength of every chatbot (0: none; default 512)")  # fmt: skip
    add("--max-messages", dest="aiengine_max_messages", type=int, default=15, metavar="N",
        help="maxMessages of every chatbot (default 15)")  # fmt: skip
    add("--no-site-stream", dest="aiengine_stream", action="store_false",
        help="data-system stream: false (requests still choose)")  # fmt: skip
    add("--plain-permalinks", dest="aiengine_plain", action="store_true",
        help="restUrl is {url}/index.php?rest_route=")  # fmt: skip
    add("--chatbots-off", dest="aiengine_module_off", action="store_true",
        help="the chatbots module is off: chats/submit is rest_no_route")  # fmt: skip
    add("--relax-nonce", dest="aiengine_relax", action="store_true",
        help="mwai_rest_authorized returns true: no nonce needed on chats/submit")  # fmt: skip
    add("--event-logs", dest="aiengine_event_logs", action="store_true",
        help="status events (subtype) in streams")  # fmt: skip
    add("--guest-limit", dest="aiengine_guest_limit", type=int, default=None, metavar="N",
        help="answers per client IP before the usage-limit answer")  # fmt: skip


def emulator_from_args(args: argparse.Namespace) -> AIEngineEmulator:
    """An :class:`AIEngineEmulator` configured by options of :func:`build_parser_arguments`.

    ``args.plugin_version`` ``None`` means 3.7.2; ``args.fail`` holds ``NAME[=ARG][@TARGET]``
    strings (or :class:`EngineFault` values). Raises ValueError for a bad option.
    """
    version = getattr(args, "plugin_version", None) or "3.7.2"
    max_length = getattr(args, "aiengine_max_length", 512) or None
    keep = getattr(args, "aiengine_max_messages", 15)
    chatbots: list[Chatbot] = []
    named = list(getattr(args, "aiengine_chatbots", []) or [("default", None)])
    if not any(ident == "default" for ident, _ in named):
        named.append(("default", None))
        hidden = {"default"}
    else:
        hidden = set()
    window = getattr(args, "aiengine_window", None)
    for ident, instructions in named:
        bot = Chatbot(
            bot_id=ident,
            text_input_max_length=max_length,
            max_messages=keep,
            on_page=ident not in hidden,
        )
        if instructions is not None:
            bot = _replace(bot, instructions=instructions)
        chatbots.append(bot)
        if window == ident:
            chatbots.append(_replace(bot, window=True, on_page=True))
    for ident, instructions in getattr(args, "aiengine_custom", []) or []:
        bot = Chatbot(custom_id=ident, max_messages=keep, text_input_max_length=max_length)
        chatbots.append(bot if instructions is None else _replace(bot, instructions=instructions))
    context = ssl_context_from(getattr(args, "certfile", None), getattr(args, "keyfile", None))
    emulator = AIEngineEmulator(
        host=getattr(args, "host", "127.0.0.1"),
        port=getattr(args, "port", 0),
        plugin_version=version,
        stream=getattr(args, "aiengine_stream", True),
        stream_chunks=getattr(args, "stream_chunks", None),
        chunk_delay=getattr(args, "chunk_delay", 0.0),
        chatbots=chatbots,
        post_id=getattr(args, "post_id", 42),
        plain_permalinks=getattr(args, "aiengine_plain", False),
        chatbots_module=not getattr(args, "aiengine_module_off", False),
        relax_nonce=getattr(args, "aiengine_relax", False),
        event_logs=getattr(args, "aiengine_event_logs", False),
        guest_limit=getattr(args, "aiengine_guest_limit", None),
        banned_words=getattr(args, "banned_word", []) or [],
        banned_ips=getattr(args, "banned_ip", []) or [],
        ssl_context=context,
    )
    reply = getattr(args, "reply", None)
    if reply is not None:
        emulator.reply = reply
    for item in getattr(args, "fail", []) or []:
        if isinstance(item, str):
            try:
                item = parse_engine_fault(item)
            except argparse.ArgumentTypeError as exc:
                raise ValueError(str(exc)) from None
        if not isinstance(item, EngineFault):
            raise ValueError(f"--fail {item!r} is not an AI Engine fault")
        emulator.fail_next(item)
    return emulator


def _replace(bot: Chatbot, **changes: Any) -> Chatbot:
    return dataclasses.replace(bot, **changes)
