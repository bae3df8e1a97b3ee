"""A local emulator of a WordPress site running AI Power 2.3+ ("AIPKit") chatbots.

:class:`AipkitEmulator` serves the page with the bots' ``data-config`` at ``/`` and answers
``/wp-admin/admin-ajax.php`` the way the releases 2.3 to 2.4.71 do:

- step 1, ``POST action=aipkit_cache_sse_message``: the message is stored under a one-time
  ``cache_key`` (``aipkit_sse_`` + 32 letters and digits) that expires after 60 s;
- step 2, ``GET ?action=aipkit_frontend_chat_stream&cache_key=...``: the answer as
  Server-Sent Events (``message_start``, ``{"delta": ...}`` events, ``done``), or an
  ``error`` event: followed by ``done`` for errors found before the model is called,
  without it for the model's own errors;
- ``aipkit_frontend_chat_message``, the plain JSON answer (2.3 to 2.4.0; HTTP 400 ``0``
  from 2.4.1), ``aipkit_get_frontend_chat_nonce`` (2.3.41+) and
  ``aipkit_get_conversation_history``;
- any other action, the legacy ``wpaicg_*`` ones included: HTTP 400 ``0``.

The server keeps each conversation per (bot, ``session_id``, ``conversation_uuid``); the
model is given the bot's instructions, the last ``max_messages`` entries and the new
message, recorded in :attr:`AipkitEmulator.model_calls`. Nonces are WordPress's, for the
action ``aipkit_frontend_chat_nonce``, on an emulated clock.

Order of checks on the stream (each failure an ``error`` event then ``done``): cross-origin
rule (2.3.31+; 2.3.31 itself refused every stream on the free plan), nonce, cache key
(missing / unknown or used / expired; the key is deleted once read, so the checks after
this one use it up), bot, ``conversation_uuid``, ``session_id``, the guest quota, banned
IP, banned words, moderation; then the user message is stored, a trigger may answer
instead of the model, and the model streams: ``message_start``, ``status`` events
(2.3.69+), the deltas, ``openai_response_id``, ``done``.

Where the emulator is simpler than a real site: the quota counts answers, not tokens; the
model is a function (:data:`Reply`), with the OpenAI Responses API's event shapes for the
``OpenAI`` provider; images are checked as the plugin checks them but never reach the
model; the JSON action's answers to model errors other than the API's HTTP errors are
approximations.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import itertools
import json
import re
import secrets
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from . import _aipkit_versions as versions
from ._aiohttp import web
from ._aipkit_faults import (
    DEFAULT_API_ERROR,
    DEFAULT_STREAM_ERROR,
    HANDLER_KINDS,
    AipkitFault,
)
from ._aipkit_php import (
    absint,
    json_unicode,
    sanitize_key,
    stripslashes,
    uniqid,
    wp_generate_password,
)
from ._aipkit_site import (
    DEFAULT_BOT_ID,
    DEFAULT_INSTRUCTIONS,
    DEFAULT_POST_ID,
    Bot,
    render_page,
)
from ._fault_base import parse_fault_text
from ._pages import error_page
from ._php import _strip_tags as strip_tags
from ._php import (
    parse_version,
    php_empty,
    php_json,
    php_trim,
    sanitize_text_field,
    sanitize_textarea_field,
)
from ._records import RecordedRequest
from ._site import (
    Reply,
    WordPressSite,
    abort_connection,
    cloudflare_challenge,
    ssl_context_from,
)

__all__ = [
    "ACTION_CACHE",
    "ACTION_HISTORY",
    "ACTION_MESSAGE",
    "ACTION_NONCE",
    "ACTION_STREAM",
    "AJAX_PATH",
    "CACHE_TTL",
    "MODEL",
    "NONCE_ACTION",
    "AipkitEmulator",
    "AipkitFault",
    "Bot",
    "Reply",
    "build_parser_arguments",
    "default_reply",
    "emulator_from_args",
    "parse_fault",
]

#: Where WordPress answers AJAX calls.
AJAX_PATH = "/wp-admin/admin-ajax.php"
#: Step 1: store the message, get a cache key.
ACTION_CACHE = "aipkit_cache_sse_message"
#: Step 2: the event stream.
ACTION_STREAM = "aipkit_frontend_chat_stream"
#: The plain JSON answer (2.3 to 2.4.0).
ACTION_MESSAGE = "aipkit_frontend_chat_message"
#: A fresh nonce (2.3.41+).
ACTION_NONCE = "aipkit_get_frontend_chat_nonce"
#: A guest's conversation, read back.
ACTION_HISTORY = "aipkit_get_conversation_history"
#: The nonce action of every chat request.
NONCE_ACTION = "aipkit_frontend_chat_nonce"
#: Seconds a cache key lives.
CACHE_TTL = 60
#: The model the bots name (the plugin's default for OpenAI).
MODEL = "gpt-4o-mini"
# Expired keys stay (answering "expired") until the plugin's hourly clean-up.
_CACHE_CLEANUP = 3600

# The plugin's texts (2.4.71).
MSG_CACHE_NONCE = (
    "Your session has expired or the request is invalid. Please refresh the page and try again."
)
MSG_CACHE_EMPTY = "Data to cache (message or image) cannot be empty."
MSG_CACHE_STORE = "Failed to store message in database cache."
MSG_EMBED = "Embed feature is not available with your current plan."
MSG_CORS = "This domain is not permitted to access the chatbot."
MSG_JSON_NONCE = "Security check failed. Please refresh the page and try again."
MSG_KEY_MISSING = "Message cache key is missing."
MSG_KEY_UNKNOWN = "Message not found in cache."
MSG_KEY_EXPIRED = "Cached message has expired."
MSG_BAD_BOT = "Invalid chatbot specified."
MSG_NO_CONVERSATION = "Conversation ID is missing."
MSG_NO_SESSION = "Session ID is missing for guest."
MSG_EMPTY = "Message or image cannot be empty."
MSG_GUESTS_DISABLED = "Access disabled for guests."
MSG_BANNED_IP = "Access from your IP address has been blocked."
MSG_BANNED_WORDS = "Sorry, your message could not be sent as it contains prohibited words."
MSG_MODERATION = "Your message was flagged by the moderation system and could not be sent."
MSG_NO_DATA = "Connection error: no data received from AI."
_MSG_JSON_NO_CONVERSATION = "Conversation ID is required."
_MSG_HISTORY_NONCE = "Security check failed (nonce)."
_MSG_HISTORY_IDS = "Bot ID and Conversation ID are required."
_MSG_HISTORY_SESSION = "Session ID is required for guest history."
_MSG_IMAGE_PAYLOAD = "Invalid image upload payload."
_MSG_IMAGE_COUNT = "Too many images uploaded. Max images: 4."
_MSG_IMAGE_TYPE = "Invalid image type. Allowed: JPG, PNG, WEBP."
_MSG_IMAGE_DATA = "Invalid image data provided."
_MSG_IMAGE_SIZE = "Image is too large. Max size: 20MB."
_CRITICAL_ERROR = (
    "<p>There has been a critical error on this website.</p>"
    '<p><a href="https://wordpress.org/support/article/faq-troubleshooting/">'
    "Learn more about troubleshooting WordPress.</a></p>"
)

_HTML = "text/html; charset=UTF-8"
_JSON = "application/json; charset=UTF-8"
_EVENT_STREAM = "text/event-stream; charset=utf-8"
_WP_HEADERS = (
    ("X-Robots-Tag", "noindex"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
    ("Expires", "Wed, 11 Jan 1984 05:00:00 GMT"),
    ("Cache-Control", "no-cache, must-revalidate, max-age=0"),
)
_PAGE_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "SAMEORIGIN"),
)
_PREAMBLE = b":" + b" " * 4096 + b"\n\n"
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_DEFAULT_REPLY = "Hello! This is the local AIPKit emulator. You said: "
_NOT_FOUND = (
    '<!DOCTYPE html>\n<html lang="en-US">\n<head>\n<meta charset="UTF-8">\n'
    '<title>Page not found</title>\n</head>\n<body class="error404">\n'
    "<h1>This page doesn't seem to exist.</h1>\n</body>\n</html>\n"
)


def default_reply(message: str, messages: Sequence[Mapping[str, str]] | None = None) -> str:
    """The emulator's default answer: deterministic, echoing the message.

    ``messages`` is what the model was given: the bot's instructions (``system``), the
    conversation so far, the new message. When the conversation held anything, the reply
    says how many messages, e.g. ``"... You said: Hi (the model saw 2 earlier messages)"``.
    """
    text = _DEFAULT_REPLY + message
    earlier = 0
    if messages:
        inner = list(messages)
        if inner and inner[0].get("role") == "system":
            inner = inner[1:]
        if inner and inner[-1].get("role") == "user" and inner[-1].get("content") == message:
            inner = inner[:-1]
        earlier = len(inner)
    if earlier > 0:
        text += f" (the model saw {earlier} earlier message{'' if earlier == 1 else 's'})"
    return text


@dataclass
class _CacheEntry:
    message: str
    created: float
    images: int
    client_message_id: str


class _Stop(Exception):
    """The client went away while the answer was being written."""


class _EventStream:
    """The plugin's event-stream output: events written and flushed one by one."""

    def __init__(self, response: web.StreamResponse, clock: Callable[[], float]) -> None:
        self.response = response
        self.clock = clock

    async def raw(self, data: bytes) -> None:
        try:
            await self.response.write(data)
        except ConnectionError as exc:
            raise _Stop from exc

    async def event(self, name: str | None, data: object, event_id: str | None = None) -> None:
        head = f"event: {name}\n" if name is not None else ""
        if event_id is not None:
            head += f"id: {event_id}\n"
        await self.raw(f"{head}data: {json_unicode(data)}\n\n".encode())

    async def error(
        self, text: str, extra: Mapping[str, object] | None = None, *, warning: bool = False
    ) -> None:
        payload: dict[str, object] = {"error": text, **(extra or {})}
        await self.event("warning" if warning else "error", payload, f"err-{int(self.clock())}")

    async def done(self) -> None:
        await self.event("done", {"finished": True})


@dataclass
class _Turn:
    """One chat request on its way to the model (stream or JSON)."""

    record: RecordedRequest
    bot: Bot
    session_id: str
    conversation_uuid: str
    message: str
    fault: AipkitFault | None


class AipkitEmulator(WordPressSite[AipkitFault]):
    """A local stand-in for a WordPress site with AI Power 2.3+ ("AIPKit") chatbots.

    Use it as an async context manager (or call :meth:`start` / :meth:`stop`)::

        async with AipkitEmulator() as site:
            ...  # point the client at site.url

    Every keyword below is also a plain attribute that may be changed at any time and
    takes effect with the next request. Besides them:

    Attributes:
        page_loads: GET/HEAD requests of the page seen.
        posts: chat requests posted: step-1 ``aipkit_cache_sse_message`` POSTs and JSON
            ``aipkit_frontend_chat_message`` POSTs.
        streams: step-2 ``aipkit_frontend_chat_stream`` requests seen.
        connections: TCP connections accepted.
        requests: every request, in order, as :class:`RecordedRequest` (with the model
            calls each one made).
        model_calls: what the model was given, one list of ``{"role", "content"}`` dicts per
            call: the bot's instructions (``system``), the conversation's last
            ``max_messages`` entries (``user`` / ``assistant``), then the new message
            (``user``); contents trimmed, empty ones left out, as the plugin sends them.
        conversations: what the site stored, per ``(bot_id, session_id,
            conversation_uuid)``: ``{"message_id", "role", "content", "timestamp"}``
            entries, oldest first, ``role`` ``"user"`` or ``"bot"`` (the model's replies
            also name ``provider``, ``model`` and, for OpenAI, ``openai_response_id``). A
            user message is stored before the model is called (so a failed turn leaves it
            behind); the reply only when the model succeeded, or partly when its stream
            stopped early (``upstream_cut``, ``connection_error``).
        quota_usage: answers counted against ``guest_quota``, per ``(bot_id, session_id)``.

    Args:
        host: the interface to listen on. port: the port, ``0`` for a free one.
        plugin_version: the AI Power release, ``"2.3"`` to ``"2.4.71"`` (default). It
            decides, as the releases did: the stream's nonce text (changed in 2.3.20), the
            JSON action's nonce check (2.3.20), how step 1 cleans the message (2.3.20 to
            2.3.25 ``sanitize_textarea_field``), the cross-origin rule (2.3.31), the nonce
            refresh action (2.3.41), ``status`` events (2.3.69), the 4 KiB preamble and
            ``no-transform`` (2.3.93), the default quota text (2.3.94), the JSON action and
            ``streamEnabled`` (up to 2.4.0), ``quota_notice`` (2.4.5).
        reply: the answer text, or a function (sync or async) of the message the model was
            given, returning the text; a function with a ``messages`` parameter also gets
            the model's messages. The default, :func:`default_reply`, echoes the message.
        stream_chunks: split each reply into this many deltas; ``None``: one per word.
        chunk_delay: seconds between deltas.
        bots: the site's chatbots, as :class:`Bot` values or bare IDs; default: one popup
            bot, ID 4. Every published bot is on the page.
        post_id: the page's post ID (``postId``).
        provider: the bots' AI provider. ``"OpenAI"`` (default) streams the Responses
            API's way: ``status`` events (2.3.69+) and ``openai_response_id`` before
            ``done``. Any other (``"OpenRouter"``, ``"Google"``...) streams a first empty
            delta and neither of those events.
        pro: the site has the Pro plan: a cross-origin request is allowed when its origin
            is in the bot's ``allowed_domains`` (or that list is empty) and refused with
            ``cors_denied`` otherwise; on the free plan every cross-origin request naming a
            bot is refused (``embed_not_available``).
        guest_quota: answers each guest ``session_id`` may get per bot; ``0`` refuses
            guests ("Access disabled for guests."); ``None``: no quota.
        banned_words: the global blocklist: a message containing one of them as a whole
            word (case-insensitive, ASCII word boundaries, as PHP's ``\\b``) is refused.
        banned_ips: peer addresses that are refused.
        banned_words_message, banned_ips_message: the blocklists' texts; empty: the
            plugin's defaults.
        moderated_words: OpenAI moderation stand-in: a message containing one of them
            (case-insensitive) is "flagged by the moderation system".
        trigger_replies: keyword -> reply: a message containing the keyword
            (case-insensitive) is answered by the trigger, without the model (a Pro
            feature on real sites).
        form_triggers: keyword -> form definition: the stream answers with
            ``display_form_event`` (``{"form_definition": ...}``) then ``done``.
        preamble: force the 4 KiB ``:`` preamble on or off; ``None``: as the release does.
        legacy_shortcode: the page still shows ``[wpaicg_chatgpt]`` (an upgraded site).
        clock: the Unix time source (see also :meth:`advance`; a cache key lives 60 s).
        secret: the nonce key; random by default.
        ssl_context: serve HTTPS with this server context (``url`` is then
            ``https://...``). Set it before :meth:`start`.
    """

    _fault_class = AipkitFault
    _NONCE_ACTION = NONCE_ACTION
    _COUNTERS = (*WordPressSite._COUNTERS, "streams")
    _FAULTS_BY_TARGET = False  # one queue: a fault may hit several kinds of request

    streams: int

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        plugin_version: str = "2.4.71",
        reply: Reply = default_reply,
        stream_chunks: int | None = None,
        chunk_delay: float = 0.0,
        bots: Iterable[Bot | int] | None = None,
        post_id: int = DEFAULT_POST_ID,
        provider: str = "OpenAI",
        pro: bool = False,
        guest_quota: int | None = None,
        banned_words: Iterable[str] = (),
        banned_ips: Iterable[str] = (),
        banned_words_message: str = "",
        banned_ips_message: str = "",
        moderated_words: Iterable[str] = (),
        trigger_replies: Mapping[str, str] | None = None,
        form_triggers: Mapping[str, Mapping[str, object]] | None = None,
        preamble: bool | None = None,
        legacy_shortcode: bool = False,
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
        self.bots = [DEFAULT_BOT_ID] if bots is None else bots
        self.post_id = post_id
        self.provider = provider
        self.pro = pro
        self.guest_quota = guest_quota
        self.banned_words: list[str] = list(banned_words)
        self.banned_ips: list[str] = list(banned_ips)
        self.banned_words_message = banned_words_message
        self.banned_ips_message = banned_ips_message
        self.moderated_words: list[str] = list(moderated_words)
        self.trigger_replies: dict[str, str] = dict(trigger_replies or {})
        self.form_triggers: dict[str, Mapping[str, object]] = dict(form_triggers or {})
        self.preamble = preamble
        self.legacy_shortcode = legacy_shortcode

        self.conversations: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
        self.quota_usage: dict[tuple[int, str], int] = {}

        self._cache: dict[str, _CacheEntry] = {}
        self._response_ids = itertools.count(1)

    # validated settings -----------------------------------------------------------------

    def _check_plugin_version(self, value: str) -> None:
        if parse_version(value) < versions.FIRST:
            raise ValueError(
                f"plugin_version {value!r} predates AIPKit (2.3): use SiteEmulator for the "
                "legacy chat"
            )

    @property
    def bots(self) -> list[Bot]:
        """The site's chatbots (set bare IDs or :class:`Bot` values)."""
        return list(self._bots)

    @bots.setter
    def bots(self, value: Iterable[Bot | int]) -> None:
        bots = [item if isinstance(item, Bot) else Bot(id=item) for item in value]
        ids = [bot.id for bot in bots]
        if len(set(ids)) != len(ids):
            raise ValueError(f"bot IDs must be unique, not {ids!r}")
        self._bots = bots

    @property
    def provider(self) -> str:
        """The bots' AI provider, e.g. ``"OpenAI"``."""
        return self._provider

    @provider.setter
    def provider(self, value: str) -> None:
        if not value:
            raise ValueError("provider must not be empty")
        self._provider = value

    def bot(self, bot_id: int) -> Bot | None:
        """The bot with this ID, if the site has one (published or not)."""
        return next((bot for bot in self._bots if bot.id == bot_id), None)

    # URLs (start, stop, url and the rest: WordPressSite) --------------------------------

    @property
    def ajax_url(self) -> str:
        """``{url}/wp-admin/admin-ajax.php``, the bots' ``ajaxUrl``."""
        return self.url + AJAX_PATH

    def _repr_details(self) -> str:
        return " bots=" + ",".join(str(bot.id) for bot in self._bots)

    # nonces -----------------------------------------------------------------------------

    def _nonce_ok(self, nonce: str) -> bool:
        return not php_empty(nonce) and self._nonce_age(nonce) > 0

    # the site's state -------------------------------------------------------------------

    def reset_quota(self) -> None:
        """Forget every guest's quota usage (a new quota period)."""
        self.quota_usage.clear()

    def forget_conversations(self) -> None:
        """Delete every stored conversation and pending cache key."""
        self.conversations.clear()
        self._cache.clear()

    # request entry point ----------------------------------------------------------------

    async def _route(
        self, request: web.BaseRequest, record: RecordedRequest
    ) -> web.StreamResponse | None:
        if request.path != AJAX_PATH:
            return None
        return await self._ajax(request, record)

    def _not_found(self, request: web.BaseRequest) -> web.StreamResponse:
        return _answer(404, _NOT_FOUND, base=_PAGE_HEADERS)

    def _error_page(self, status: int) -> web.Response:
        return _answer(status, error_page(status), base=_PAGE_HEADERS)

    # the page ---------------------------------------------------------------------------

    async def _page(self, request: web.BaseRequest, record: RecordedRequest) -> web.StreamResponse:
        fault = await self._next_fault("page")
        if fault is not None:
            return await self._http_fault(request, fault)
        version = parse_version(self.plugin_version)
        page = render_page(
            self._bots,
            url=self.url,
            nonce=self.current_nonce(),
            post_id=self.post_id,
            provider=self.provider,
            plugin_version=self.plugin_version,
            version=version,
            legacy_shortcode=self.legacy_shortcode,
        )
        headers = (*_PAGE_HEADERS, ("Link", f'<{self.url}/wp-json/>; rel="https://api.w.org/"'))
        return _answer(200, page, base=headers)

    # admin-ajax.php ---------------------------------------------------------------------

    def _request_kind(self, action: str, version: versions.Version) -> str:
        if action == ACTION_CACHE:
            return "cache"
        if action == ACTION_STREAM:
            return "stream"
        if action == ACTION_MESSAGE and versions.has_json_action(version):
            return "message"
        if action == ACTION_NONCE and versions.has_nonce_refresh(version):
            return "nonce"
        return "other"

    async def _ajax(self, request: web.BaseRequest, record: RecordedRequest) -> web.StreamResponse:
        version = parse_version(self.plugin_version)
        post = record.form if request.method == "POST" else {}
        fields = {**record.query, **post}  # PHP's $_REQUEST: the body wins
        action = fields.get("action", "")
        kind = self._request_kind(action, version)
        if kind in ("cache", "message") and request.method == "POST":
            self.posts += 1
        elif kind == "stream":
            self.streams += 1
        fault = await self._next_fault(kind)
        if fault is not None and fault.kind not in HANDLER_KINDS:
            return await self._http_fault(request, fault)
        extra = self._wp_origin_headers(request)
        if request.method == "OPTIONS":
            # send_origin_headers(): a preflight is refused before the action is looked at
            # unless its Origin is the site's host, http or https, without a port.
            return _answer(200 if extra else 403, b"", extra=extra, base=())
        if kind == "cache":
            return await self._cache_step(request, record, post, version, fault, extra)
        if kind == "stream":
            return await self._stream_step(request, record, version, fault, extra)
        if kind == "message":
            return await self._json_message(request, record, post, fields, version, fault, extra)
        if kind == "nonce":
            return self._nonce_refresh(request, post, version, extra)
        if action == ACTION_HISTORY:
            return self._history(post, fields, extra)
        return _answer(400, "0", extra=extra)

    def _wp_origin_headers(self, request: web.BaseRequest) -> list[tuple[str, str]]:
        """WordPress's own CORS headers: only for an Origin that is the site's host,
        ``http://`` or ``https://``, without a port (``get_allowed_http_origins``)."""
        origin = request.headers.get("Origin", "")
        host = self._site_host()
        if origin in (f"http://{host}", f"https://{host}"):
            return [
                ("Access-Control-Allow-Origin", origin),
                ("Access-Control-Allow-Credentials", "true"),
            ]
        return []

    # the cross-origin rule --------------------------------------------------------------

    def _is_cross_origin(self, request: web.BaseRequest) -> bool:
        origin = request.headers.get("Origin", "").strip()
        if not origin:
            return False
        scheme, host = _origin_parts(origin)
        return host != self._site_host() or (scheme or "http") != urlsplit(self.url).scheme

    def _site_host(self) -> str:
        """The host of ``get_site_url()`` as ``wp_parse_url`` gives it (no port)."""
        return _origin_parts(self.url)[1]

    def _embed_check(
        self, request: web.BaseRequest, bot_id: int, version: versions.Version
    ) -> tuple[bool | None, list[tuple[str, str]]]:
        """``AIPKit_CORS_Manager::check_and_set_cors_headers``: ``(allowed, headers)``;
        ``allowed`` is ``None`` where the plugin dies (Pro, and no such bot: its settings
        getter returns a ``WP_Error`` from a function typed ``array``).

        2.3.31 checked the plan first (so the free plan refused every request) and then any
        Origin at all against the allow-list, the site's own included."""
        naive = versions.embed_gate_is_naive(version)
        if naive and not self.pro:
            return False, []
        origin = request.headers.get("Origin", "").strip()
        if not origin or (not naive and not self._is_cross_origin(request)):
            return True, []
        if not self.pro:
            return False, []
        bot = self.bot(bot_id)
        if bot is None:
            return None, []
        allowed_list = [entry.rstrip("/") for entry in bot.allowed_domains if entry.strip()]
        if allowed_list and origin.rstrip("/") not in allowed_list:
            return False, []
        headers = [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Methods", "POST, GET, OPTIONS"),
            ("Access-Control-Allow-Headers", "Content-Type, X-Requested-With, Authorization"),
            ("Access-Control-Allow-Credentials", "true"),
        ]
        return True, headers

    def _post_gate(
        self,
        request: web.BaseRequest,
        bot_id: int,
        version: versions.Version,
        *,
        with_code: bool,
    ) -> web.Response | list[tuple[str, str]]:
        """The cross-origin rule of step 1 and the JSON action: the refusal, or the Pro
        CORS headers to add."""
        if not versions.has_embed_gate(version) or bot_id <= 0:
            return []
        if versions.embed_gate_is_naive(version):
            cross = bool(request.headers.get("Origin", ""))  # any Origin at all
        else:
            cross = self._is_cross_origin(request)
        if not cross:
            return []
        if not self.pro:
            return _json_error(403, MSG_EMBED, "embed_not_available" if with_code else None)
        allowed, cors = self._embed_check(request, bot_id, version)
        if allowed is None:
            return _answer(500, _CRITICAL_ERROR)
        if not allowed:
            return _json_error(403, MSG_CORS, "cors_denied" if with_code else None)
        return cors

    # step 1: aipkit_cache_sse_message ---------------------------------------------------

    async def _cache_step(
        self,
        request: web.BaseRequest,
        record: RecordedRequest,
        post: Mapping[str, str],
        version: versions.Version,
        fault: AipkitFault | None,
        extra: list[tuple[str, str]],
    ) -> web.StreamResponse:
        bot_id = absint(post["bot_id"]) if "bot_id" in post else 0
        gate = self._post_gate(request, bot_id, version, with_code=True)
        if isinstance(gate, web.Response):
            gate.headers.extend(extra)
            return gate
        extra = [*extra, *gate]
        nonce = post.get("_ajax_nonce")
        stale = fault is not None and fault.kind == "stale_nonce"
        if nonce is None or stale or not self._nonce_ok(sanitize_key(nonce)):
            return _json_error(403, MSG_CACHE_NONCE, "nonce_failure_cache_sse", extra)
        message = post.get("message", "")
        if versions.message_is_sanitized(version):
            message = sanitize_textarea_field(message)
        elif version >= (2, 3, 26):
            message = "" if _has_surrogates(message) else message.replace("\0", "")
        images = 0
        raw_images = post.get("image_inputs")
        if raw_images is not None and not php_empty(raw_images):
            if not versions.checks_images(version):
                images = _first_image(raw_images)
            else:
                checked = _check_images(raw_images)
                if isinstance(checked, tuple):
                    status, text, code = checked
                    return _json_error(status, text, code, extra)
                images = checked
        if php_empty(message) and not images:
            return _json_error(400, MSG_CACHE_EMPTY, "empty_data_to_cache", extra)
        if fault is not None and fault.kind == "cache_store_failed":
            return _json_error(500, MSG_CACHE_STORE, "sse_cache_db_insert_failed", extra)
        key = "aipkit_sse_" + wp_generate_password(32)
        client_id = sanitize_key(post.get("user_client_message_id", ""))
        self._cache[key.lower()] = _CacheEntry(message, self.now(), images, client_id)
        return _answer(
            200, php_json({"success": True, "data": {"cache_key": key}}), _JSON, extra=extra
        )

    def _read_cache(self, key: str, fault: AipkitFault | None) -> tuple[_CacheEntry | None, str]:
        """``(entry, error)``: the cached message (deleted on success), or the error."""
        now = self.now()
        for stored in [
            name
            for name, entry in self._cache.items()
            if now >= entry.created + CACHE_TTL + _CACHE_CLEANUP
        ]:
            del self._cache[stored]
        if fault is not None and fault.kind == "cache_missing":
            return None, MSG_KEY_UNKNOWN
        if fault is not None and fault.kind == "cache_expired":
            return None, MSG_KEY_EXPIRED
        entry = self._cache.get(key.lower())
        if entry is None:
            return None, MSG_KEY_UNKNOWN
        if now >= entry.created + CACHE_TTL:
            return None, MSG_KEY_EXPIRED
        del self._cache[key.lower()]
        return entry, ""

    # step 2: aipkit_frontend_chat_stream ------------------------------------------------

    async def _open_stream(
        self, request: web.BaseRequest, version: versions.Version, extra: list[tuple[str, str]]
    ) -> _EventStream:
        preamble = versions.has_preamble(version) if self.preamble is None else self.preamble
        cache_control = "no-cache, no-store, must-revalidate, max-age=0"
        if versions.has_preamble(version):
            cache_control += ", no-transform"
        headers = dict(_WP_HEADERS)
        headers.update(
            {
                "Cache-Control": cache_control,
                "Pragma": "no-cache",
                "Content-Type": _EVENT_STREAM,
                "X-Accel-Buffering": "no",
                "Connection": "keep-alive",
            }
        )
        headers.update(extra)
        response = web.StreamResponse(status=200, headers=headers)
        await response.prepare(request)
        stream = _EventStream(response, self.now)
        if preamble:
            await stream.raw(_PREAMBLE)
        return stream

    async def _stream_step(
        self,
        request: web.BaseRequest,
        record: RecordedRequest,
        version: versions.Version,
        fault: AipkitFault | None,
        extra: list[tuple[str, str]],
    ) -> web.StreamResponse:
        query = record.query
        bot_id = absint(query["bot_id"]) if "bot_id" in query else 0
        refusal = ""
        if versions.has_embed_gate(version) and bot_id > 0:
            allowed, cors = self._embed_check(request, bot_id, version)
            if allowed is None:
                return _answer(500, _CRITICAL_ERROR, extra=extra)
            if not allowed:
                refusal = MSG_CORS
            extra = [*extra, *cors]
        stream = await self._open_stream(request, version, extra)
        try:
            if refusal:
                await self._pre_model_error(stream, refusal)
                return stream.response
            nonce = _ajax_referer(query)
            if (fault is not None and fault.kind == "stale_nonce") or not self._nonce_ok(nonce):
                await self._pre_model_error(stream, versions.stream_nonce_text(version))
                return stream.response
            key = sanitize_key(query.get("cache_key", ""))
            if php_empty(key):
                await self._pre_model_error(stream, MSG_KEY_MISSING)
                return stream.response
            entry, error = self._read_cache(key, fault)
            if entry is None:
                await self._pre_model_error(stream, error)
                return stream.response
            message = entry.message
            session_id = sanitize_text_field(stripslashes(query.get("session_id", "")))
            conversation = sanitize_key(query.get("conversation_uuid", ""))
            bot = self.bot(bot_id)
            if bot is None or not bot.published:
                error = MSG_BAD_BOT
            elif php_empty(conversation):
                error = MSG_NO_CONVERSATION
            elif php_empty(session_id):
                error = MSG_NO_SESSION
            elif php_empty(message) and not entry.images:
                error = MSG_EMPTY
            if error or bot is None:
                await self._pre_model_error(stream, error)
                return stream.response
            quota = self._quota_error(bot, session_id, version, fault)
            if quota is not None:
                text, notice = quota
                await self._pre_model_error(stream, text, notice)
                return stream.response
            refused = self._moderation_error(record, message)
            if refused:
                await self._pre_model_error(stream, refused)
                return stream.response
            turn = _Turn(record, bot, session_id, conversation, message, fault)
            self._store(turn, "user", message, entry.client_message_id or self._message_id())
            if await self._trigger(stream, turn):
                return stream.response
            await self._stream_model(stream, turn, version, request)
        except _Stop:
            pass
        return stream.response

    async def _pre_model_error(
        self, stream: _EventStream, text: str, extra: Mapping[str, object] | None = None
    ) -> None:
        await stream.error(text, extra)
        await stream.done()

    def _quota_error(
        self, bot: Bot, session_id: str, version: versions.Version, fault: AipkitFault | None
    ) -> tuple[str, dict[str, object] | None] | None:
        forced = fault is not None and fault.kind == "quota_reached"
        limit = self.guest_quota
        if limit is not None and limit <= 0 and not forced:
            return MSG_GUESTS_DISABLED, None
        used = self.quota_usage.get((bot.id, session_id[:64]), 0)
        if not forced and (limit is None or used < limit):
            return None
        text = bot.quota_message or versions.quota_text(version)
        notice: dict[str, object] | None = None
        if versions.has_quota_notice(version):
            notice = {"quota_notice": {"type": "quota_notice", "message": text, "actions": []}}
        return text, notice

    def _moderation_error(self, record: RecordedRequest, message: str) -> str:
        """The global blocklists (peer IP, then words) and the moderation stand-in."""
        address = record.peer[0]
        if address and address in {ip.strip() for ip in self.banned_ips}:
            return self.banned_ips_message or MSG_BANNED_IP
        if not php_trim(message):
            return ""
        encoded = message.encode("utf-8", "surrogatepass")
        for word in self.banned_words:
            word = php_trim(word).translate(_ASCII_LOWER)
            if not word:
                continue
            pattern = rb"\b" + re.escape(word.encode("utf-8", "surrogatepass")) + rb"\b"
            if re.search(pattern, encoded, re.IGNORECASE):
                return self.banned_words_message or MSG_BANNED_WORDS
        lowered = message.casefold()
        if any(
            word.strip() and word.strip().casefold() in lowered for word in self.moderated_words
        ):
            return MSG_MODERATION
        return ""

    async def _trigger(self, stream: _EventStream, turn: _Turn) -> bool:
        """A trigger answering instead of the model; ``True`` if one did."""
        lowered = turn.message.casefold()
        for keyword, form in self.form_triggers.items():
            if keyword and keyword.casefold() in lowered:
                await stream.event("display_form_event", {"form_definition": dict(form)})
                await stream.done()
                return True
        for keyword, text in self.trigger_replies.items():
            if keyword and keyword.casefold() in lowered:
                message_id = "trigger-reply-" + uniqid(self.now())
                await stream.event("message_start", {"message_id": message_id})
                await stream.event(None, {"delta": text})
                await stream.done()
                self._store(turn, "bot", text, message_id)
                return True
        return False

    async def _stream_model(
        self,
        stream: _EventStream,
        turn: _Turn,
        version: versions.Version,
        request: web.BaseRequest,
    ) -> None:
        fault = turn.fault
        kind = fault.kind if fault is not None else ""
        count = fault.count if fault is not None else 0
        messages = self._model_messages(turn, include_current=False)
        message_id = "aipkit-msg-" + uniqid(self.now(), more_entropy=True)
        await stream.event("message_start", {"message_id": message_id})
        self._record_call(turn.record, messages)
        openai = self.provider == "OpenAI"
        if (
            fault is not None
            and count == 0
            and kind in ("model_error", "connection_error", "upstream_cut")
        ):
            if kind == "model_error":
                text = fault.text or "API Error: " + DEFAULT_API_ERROR
            elif kind == "connection_error":
                text = "Connection Error: " + fault.text
            else:
                text = MSG_NO_DATA
            await stream.error(text)
            return
        reply = await self._reply_for(php_trim(turn.message), messages)
        pieces = self._pieces(reply)
        response_id = f"resp_{secrets.token_hex(24)}"
        if openai and versions.has_status_events(version):
            for status in ("response.created", "response.in_progress"):
                await stream.event(
                    "status", {"type": status, "status": "in_progress", "response_id": response_id}
                )
        elif not openai:
            await stream.event(None, {"delta": ""})
        stop_at = (
            count
            if kind in ("model_error", "connection_error", "upstream_cut", "stream_cut")
            else len(pieces)
        )
        warning_at = -1
        if fault is not None and kind == "warning":
            warning_at = len(pieces) if fault.count < 0 else min(fault.count, len(pieces))
        streamed: list[str] = []
        for index, piece in enumerate(pieces[:stop_at]):
            if fault is not None and kind == "stream_stall" and index == fault.count:
                await asyncio.sleep(fault.seconds)
            elif index and self.chunk_delay > 0:
                await asyncio.sleep(self.chunk_delay)
            if index == warning_at and fault is not None:
                await stream.error(fault.text, warning=True)
                streamed.append(fault.text)
            await stream.event(None, {"delta": piece})
            streamed.append(piece)
        if fault is not None and kind == "stream_stall" and fault.count >= len(pieces):
            await asyncio.sleep(fault.seconds)
        if warning_at == len(pieces) and fault is not None:
            await stream.error(fault.text, warning=True)
            streamed.append(fault.text)
        if fault is not None and kind == "model_error":
            await stream.error(fault.text or DEFAULT_STREAM_ERROR)
            return
        if fault is not None and kind == "connection_error":
            self._store(turn, "bot", "".join(streamed), message_id, from_model=True)
            await stream.error("Connection Error: " + fault.text)
            return
        if fault is not None and kind == "stream_cut":
            if fault.clean:
                await stream.response.write_eof()
            else:
                abort_connection(request, reset=False)
            return
        completed = response_id if kind != "upstream_cut" else None
        if completed is not None and openai:
            await stream.event("openai_response_id", {"id": completed})
        self._store(
            turn, "bot", "".join(streamed), message_id, from_model=True, response_id=completed
        )
        if kind != "upstream_cut":
            key = (turn.bot.id, turn.session_id[:64])
            self.quota_usage[key] = self.quota_usage.get(key, 0) + 1
        await stream.done()

    # the JSON action (2.3 to 2.4.0) -----------------------------------------------------

    async def _json_message(
        self,
        request: web.BaseRequest,
        record: RecordedRequest,
        post: Mapping[str, str],
        fields: Mapping[str, str],
        version: versions.Version,
        fault: AipkitFault | None,
        extra: list[tuple[str, str]],
    ) -> web.StreamResponse:
        bot_id = absint(post["bot_id"]) if "bot_id" in post else 0
        gate = self._post_gate(request, bot_id, version, with_code=False)
        if isinstance(gate, web.Response):
            gate.headers.extend(extra)
            return gate
        extra = [*extra, *gate]
        if versions.json_action_checks_nonce(version):
            stale = fault is not None and fault.kind == "stale_nonce"
            if stale or not self._nonce_ok(_ajax_referer(fields)):
                return _json_error(403, MSG_JSON_NONCE, None, extra)
        bot = self.bot(bot_id)
        if bot is None:
            # the settings getter returns a WP_Error from a function typed array: fatal
            return _answer(500, _CRITICAL_ERROR, extra=extra)
        message = post.get("message", "")
        if versions.json_message_strips_tags(version):
            message = php_trim(strip_tags(message))
        else:
            message = php_trim("" if _has_surrogates(message) else message.replace("\0", ""))
        session_id = sanitize_text_field(stripslashes(post.get("session_id", "")))
        conversation = sanitize_key(post.get("conversation_uuid", ""))
        if php_empty(conversation):
            return _json_error(400, _MSG_JSON_NO_CONVERSATION, None, extra)
        if php_empty(session_id):
            return _json_error(400, MSG_NO_SESSION, None, extra)
        if php_empty(message) and php_empty(post.get("image_inputs", "")):
            return _json_error(400, MSG_EMPTY, None, extra)
        if not bot.published:
            return _json_error(400, MSG_BAD_BOT, None, extra)
        quota = self._quota_error(bot, session_id, version, fault)
        if quota is not None:
            return _json_error(429, quota[0], None, extra)
        refused = self._moderation_error(record, message)
        if refused:
            status = 403 if refused == (self.banned_ips_message or MSG_BANNED_IP) else 400
            return _json_error(status, refused, None, extra)
        turn = _Turn(record, bot, session_id, conversation, message, fault)
        client_id = sanitize_key(post.get("user_client_message_id", ""))
        self._store(turn, "user", message, client_id or self._message_id())
        lowered = message.casefold()
        for keyword, text in self.trigger_replies.items():
            if keyword and keyword.casefold() in lowered:
                message_id = self._message_id()
                self._store(turn, "bot", text, message_id)
                answer = {"reply": text, "is_trigger_response": True, "message_id": message_id}
                return _answer(200, php_json({"success": True, "data": answer}), _JSON, extra=extra)
        # This path's history still holds the message just stored, and the message is
        # added again: the model sees it twice.
        messages = self._model_messages(turn, include_current=True)
        self._record_call(record, messages)
        kind = fault.kind if fault is not None else ""
        if fault is not None and kind == "model_error":
            text = fault.text or f"OpenAI API Error (HTTP {fault.code}): {DEFAULT_API_ERROR}"
            return _json_error(fault.code, text, None, extra)
        if fault is not None and kind == "connection_error":
            return _json_error(500, "cURL error 28: " + fault.text, None, extra)
        if fault is not None and kind == "stream_cut":
            abort_connection(request, reset=True)
            return web.Response()
        if fault is not None and kind == "stream_stall":
            await asyncio.sleep(fault.seconds)
        reply = await self._reply_for(message, messages)
        if fault is not None and kind == "upstream_cut":
            reply = "".join(self._pieces(reply)[: fault.count])
        message_id = self._message_id()
        response_id = f"resp_{secrets.token_hex(24)}"
        self._store(turn, "bot", reply, message_id, from_model=True, response_id=response_id)
        if kind != "upstream_cut":
            key = (bot.id, session_id[:64])
            self.quota_usage[key] = self.quota_usage.get(key, 0) + 1
        data: dict[str, object] = {"reply": reply, "message_id": message_id}
        if self.provider == "OpenAI":
            data["openai_response_id"] = response_id
        return _answer(200, php_json({"success": True, "data": data}), _JSON, extra=extra)

    # the other actions ------------------------------------------------------------------

    def _nonce_refresh(
        self,
        request: web.BaseRequest,
        post: Mapping[str, str],
        version: versions.Version,
        extra: list[tuple[str, str]],
    ) -> web.StreamResponse:
        bot_id = absint(post["bot_id"]) if "bot_id" in post else 0
        if bot_id > 0 and self._is_cross_origin(request):
            allowed, cors = self._embed_check(request, bot_id, version)
            if allowed is None:
                return _answer(500, _CRITICAL_ERROR, extra=extra)
            if not allowed:
                return _json_error(403, MSG_CORS, "cors_denied", extra)
            extra = [*extra, *cors]
        body = php_json({"success": True, "data": {"nonce": self.current_nonce()}})
        return _answer(200, body, _JSON, extra=extra)

    def _history(
        self, post: Mapping[str, str], fields: Mapping[str, str], extra: list[tuple[str, str]]
    ) -> web.StreamResponse:
        if not self._nonce_ok(_ajax_referer(fields)):
            return _json_error(403, _MSG_HISTORY_NONCE, "nonce_failure", extra)
        session_id = sanitize_text_field(stripslashes(post.get("session_id", "")))
        bot_id = absint(post["bot_id"]) if "bot_id" in post else 0
        conversation = sanitize_key(post.get("conversation_uuid", ""))
        if not bot_id or php_empty(conversation):
            return _json_error(400, _MSG_HISTORY_IDS, None, extra)
        if php_empty(session_id):
            return _json_error(400, _MSG_HISTORY_SESSION, None, extra)
        entries = self.conversations.get((bot_id, session_id, conversation), [])
        body = php_json({"success": True, "data": {"history": [dict(e) for e in entries]}})
        return _answer(200, body, _JSON, extra=extra)

    # conversations and the model --------------------------------------------------------

    def _message_id(self) -> str:
        return "aipkit-msg-" + uniqid(self.now(), more_entropy=True).replace(".", "")

    def _store(
        self,
        turn: _Turn,
        role: str,
        content: str,
        message_id: str,
        *,
        from_model: bool = False,
        response_id: str | None = None,
    ) -> None:
        key = (turn.bot.id, turn.session_id, turn.conversation_uuid)
        entry: dict[str, Any] = {
            "message_id": sanitize_key(message_id),
            "role": role,
            "content": content,
            "timestamp": int(self.now()),
        }
        if from_model:
            entry["provider"] = self.provider
            entry["model"] = MODEL
        if response_id is not None and self.provider == "OpenAI":
            entry["openai_response_id"] = response_id
        self.conversations.setdefault(key, []).append(entry)

    def _model_messages(self, turn: _Turn, *, include_current: bool) -> list[dict[str, str]]:
        """The bot's instructions, the kept history and the new message, as sent."""
        entries = list(
            self.conversations.get((turn.bot.id, turn.session_id, turn.conversation_uuid), [])
        )
        limit = turn.bot.max_messages
        if include_current:
            limit = max(1, limit)
        elif entries and entries[-1]["role"] == "user":
            entries.pop()  # the message just stored
        if limit and len(entries) > limit:
            entries = entries[-limit:]
        today = time.gmtime(self.now())
        date = f"{_MONTHS[today.tm_mon - 1]} {today.tm_mday}, {today.tm_year}"
        instructions = php_trim(turn.bot.instructions) or _BARE_INSTRUCTIONS
        messages = [{"role": "system", "content": instructions.replace("[date]", date)}]
        for entry in [*entries, {"role": "user", "content": turn.message}]:
            content = php_trim(str(entry["content"]))
            if content:
                role = "assistant" if entry["role"] == "bot" else str(entry["role"])
                messages.append({"role": role, "content": content})
        return messages

    # faults that answer at once ---------------------------------------------------------

    async def _http_fault(self, request: web.BaseRequest, fault: AipkitFault) -> web.StreamResponse:
        kind = fault.kind
        if kind == "status":
            return _answer(fault.code, fault.body, fault.content_type, extra=fault.headers, base=())
        if kind == "rate_limited":
            return _answer(429, error_page(429), extra=fault.headers, base=_PAGE_HEADERS)
        if kind == "server_error":
            return _answer(fault.code, error_page(fault.code), base=_PAGE_HEADERS)
        if kind == "cloudflare":
            headers, page = cloudflare_challenge(request)
            return _answer(fault.code, page, base=headers)
        if kind == "page":
            return _answer(200, fault.body, base=_PAGE_HEADERS)
        if kind == "plugin_gone":
            return _answer(400, "0")
        if kind == "reset":
            abort_connection(request, reset=True)
            return web.Response()  # never written: the connection is gone
        raise ValueError(f"{fault!r} cannot answer at once")  # pragma: no cover


_MONTHS = (
    "January", "February", "March", "April", "May", "June", "July", "August", "September",
    "October", "November", "December",
)  # fmt: skip
# What the plugin gives the model when a bot's instructions are empty.
_BARE_INSTRUCTIONS = "You are a helpful AI Assistant."
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_SURROGATES = re.compile("[\ud800-\udfff]")


def _has_surrogates(text: str) -> bool:
    """Invalid UTF-8 in a request field (kept as lone surrogates by the form parser)."""
    return bool(_SURROGATES.search(text))


def _answer(
    status: int,
    body: bytes | str,
    content_type: str | None = _HTML,
    *,
    extra: Iterable[tuple[str, str]] = (),
    base: Iterable[tuple[str, str]] = _WP_HEADERS,
) -> web.Response:
    headers = dict(base)
    if content_type is not None:
        headers["Content-Type"] = content_type
    headers.update(extra)
    data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else body
    return web.Response(status=status, body=data, headers=headers)


def _json_error(
    status: int, message: str, code: str | None, extra: Iterable[tuple[str, str]] = ()
) -> web.Response:
    """``wp_send_json_error``: ``{"success":false,"data":{"message":...[,"code":...]}}``."""
    data: dict[str, object] = {"message": message}
    if code is not None:
        data["code"] = code
    return _answer(status, php_json({"success": False, "data": data}), _JSON, extra=extra)


def _ajax_referer(fields: Mapping[str, str]) -> str:
    """The nonce ``check_ajax_referer(..., '_ajax_nonce')`` reads: ``_ajax_nonce``, else
    ``_wpnonce``, from ``$_REQUEST``."""
    if "_ajax_nonce" in fields:
        return fields["_ajax_nonce"]
    return fields.get("_wpnonce", "")


def _origin_parts(origin: str) -> tuple[str, str]:
    """``(scheme, host)`` of an Origin header as ``esc_url_raw`` + ``wp_parse_url`` see
    it: ``http://`` is assumed without a scheme, the host keeps its case, no port."""
    if "://" not in origin and not origin.startswith("/"):
        origin = "http://" + origin
    scheme, _, rest = origin.partition("://")
    netloc = rest.split("/", 1)[0].split("?", 1)[0].split("#", 1)[0].rpartition("@")[2]
    if netloc.startswith("["):
        host = netloc[: netloc.find("]") + 1] if "]" in netloc else netloc
    else:
        host = netloc.split(":", 1)[0]
    return scheme, host


def _first_image(raw: str) -> int:
    """Up to 2.3.70: the first item counts if it names an ``image/`` type and has data;
    anything else is dropped without a word."""
    try:
        decoded = json.loads(raw)
    except ValueError:
        return 0
    if not isinstance(decoded, list) or not decoded or not isinstance(decoded[0], dict):
        return 0
    item = decoded[0]
    mime = item.get("mime_type")
    if "base64_data" not in item or not isinstance(mime, str) or not mime.startswith("image/"):
        return 0
    return 1


def _check_images(raw: str) -> int | tuple[int, str, str]:
    """The plugin's image validator: the number of images, or ``(status, text, code)``."""
    try:
        decoded = json.loads(raw)
    except ValueError:
        decoded = None
    if not isinstance(decoded, (list, dict)) or not decoded:
        return 400, _MSG_IMAGE_PAYLOAD, "invalid_image_payload"
    items = list(decoded.values()) if isinstance(decoded, dict) else decoded
    if len(items) > 4:
        return 400, _MSG_IMAGE_COUNT, "too_many_images"
    for item in items:
        if not isinstance(item, dict):
            return 400, _MSG_IMAGE_PAYLOAD, "invalid_image_payload"
        mime = sanitize_text_field(str(item.get("mime_type", ""))).translate(_ASCII_LOWER)
        data = php_trim(str(item.get("base64_data", "")))
        if not mime or not data:
            return 400, _MSG_IMAGE_PAYLOAD, "invalid_image_payload"
        if data.startswith("data:") and "base64," in data:
            data = data.split("base64,", 1)[1]
        if mime not in _IMAGE_TYPES:
            return 400, _MSG_IMAGE_TYPE, "invalid_image_type"
        data = re.sub(r"\s+", "", data)
        if not data or not _BASE64.fullmatch(data):
            return 400, _MSG_IMAGE_DATA, "invalid_image_payload"
        try:
            binary = base64.b64decode(data + "=" * (-len(data) % 4))
        except ValueError:
            return 400, _MSG_IMAGE_DATA, "invalid_image_payload"
        if not binary:
            return 400, _MSG_IMAGE_DATA, "invalid_image_payload"
        if len(binary) > 20 * 1024 * 1024:
            return 413, _MSG_IMAGE_SIZE, "image_too_large"
    return len(items)


# the command line -------------------------------------------------------------------------


def parse_fault(text: str) -> AipkitFault:
    """``NAME``, ``NAME=ARG`` or ``NAME=ARG1,ARG2``: the :class:`AipkitFault` factory
    ``NAME`` called with its leading positional arguments (numbers where it takes them),
    e.g. ``stale_nonce=stream``, ``server_error=503``, ``stream_stall=2,5``."""
    return parse_fault_text(AipkitFault, text, several=True)


def _trigger(text: str) -> tuple[str, str]:
    keyword, sep, reply = text.partition("=")
    if not sep or not keyword:
        raise argparse.ArgumentTypeError(f"expected KEYWORD=REPLY, not {text!r}")
    return keyword, reply


def build_parser_arguments(
    parser: argparse.ArgumentParser, *, shared: bool = True
) -> argparse.ArgumentParser:
    """Add the options of an :class:`AipkitEmulator` to ``parser`` and return it.

    With ``shared`` (the default) the options every emulator has are added too:
    ``--host``, ``--port``, ``--reply``, ``--chunk-delay``, ``--stream-chunks``,
    ``--plugin-version``, ``--banned-word``, ``--banned-ip``, ``--fail``, ``--certfile``,
    ``--keyfile``. Without it only the AIPKit ones are added (their names clash with no
    option of ``python -m chatgpt4o.testing``), for a parser that has the shared ones
    already; :func:`emulator_from_args` reads whichever are there.
    """
    if shared:
        parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=0, help="port (default 0: a free one)")
        parser.add_argument("--reply", metavar="TEXT", help="answer every message with TEXT")
        parser.add_argument(
            "--chunk-delay", type=float, default=0.0, metavar="S", help="seconds between deltas"
        )
        parser.add_argument(
            "--stream-chunks", type=int, default=None, metavar="N", help="deltas per reply"
        )
        parser.add_argument(
            "--plugin-version",
            default="2.4.71",
            metavar="V",
            help="AI Power version, 2.3 to 2.4.71 (default 2.4.71)",
        )
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
            help="queue a fault, e.g. stale_nonce, model_error, stream_cut=2 (an AipkitFault "
            "factory; repeatable, in order)",
        )
        parser.add_argument("--certfile", metavar="PEM", help="serve HTTPS with this chain")
        parser.add_argument("--keyfile", metavar="PEM", help="the key of --certfile")
    parser.add_argument(
        "--bot-id",
        dest="bot_ids",
        action="append",
        type=int,
        default=[],
        metavar="N",
        help="a chatbot on the page (repeatable; default: one bot, ID 4)",
    )
    parser.add_argument(
        "--inline", action="store_true", help="render the bots inline instead of as popups"
    )
    parser.add_argument("--bot-name", default="Customer Support", metavar="TEXT")
    parser.add_argument(
        "--instructions",
        default=DEFAULT_INSTRUCTIONS,
        metavar="TEXT",
        help="the bots' system instructions ([date] is replaced)",
    )
    parser.add_argument(
        "--max-messages",
        type=int,
        default=15,
        metavar="N",
        help="history entries the model gets (15)",
    )
    parser.add_argument("--page-post-id", type=int, default=DEFAULT_POST_ID, metavar="N")
    parser.add_argument(
        "--provider", default="OpenAI", metavar="NAME", help="the bots' AI provider (OpenAI)"
    )
    parser.add_argument(
        "--pro", action="store_true", help="Pro plan: cross-origin requests by allow-list"
    )
    parser.add_argument(
        "--allowed-domain",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="Pro embed allow-list entry (repeatable)",
    )
    parser.add_argument(
        "--guest-quota",
        type=int,
        default=None,
        metavar="N",
        help="answers per guest session and bot (0: guests refused)",
    )
    parser.add_argument("--quota-message", default="", metavar="TEXT")
    parser.add_argument(
        "--moderated-word",
        action="append",
        default=[],
        metavar="WORD",
        help="flagged by the moderation stand-in (repeatable)",
    )
    parser.add_argument(
        "--trigger",
        action="append",
        default=[],
        type=_trigger,
        metavar="KEYWORD=REPLY",
        help="a trigger answering instead of the model (repeatable)",
    )
    parser.add_argument(
        "--preamble",
        choices=("auto", "on", "off"),
        default="auto",
        help="the stream's 4 KiB ':' preamble (auto: 2.3.93+)",
    )
    parser.add_argument(
        "--legacy-shortcode",
        action="store_true",
        help="the page still shows [wpaicg_chatgpt] (an upgraded site)",
    )
    return parser


def emulator_from_args(args: argparse.Namespace) -> AipkitEmulator:
    """An :class:`AipkitEmulator` configured from options added by
    :func:`build_parser_arguments` (missing ones take their defaults). Raises ValueError or
    OSError (unreadable certificate files) for bad values."""

    def get(name: str, default: Any) -> Any:
        value = getattr(args, name, default)
        return default if value is None and default is not None else value

    bot_ids = list(get("bot_ids", [])) or [DEFAULT_BOT_ID]
    bots = [
        Bot(
            id=bot_id,
            name=get("bot_name", "Customer Support"),
            instructions=get("instructions", DEFAULT_INSTRUCTIONS),
            popup=not get("inline", False),
            max_messages=get("max_messages", 15),
            quota_message=get("quota_message", ""),
            allowed_domains=tuple(get("allowed_domain", [])),
        )
        for bot_id in bot_ids
    ]
    context = ssl_context_from(get("certfile", None), get("keyfile", None))
    preamble = {"on": True, "off": False}.get(get("preamble", "auto"))
    emulator = AipkitEmulator(
        host=get("host", "127.0.0.1"),
        port=get("port", 0),
        plugin_version=get("plugin_version", "2.4.71"),
        stream_chunks=get("stream_chunks", None),
        chunk_delay=get("chunk_delay", 0.0),
        bots=bots,
        post_id=get("page_post_id", DEFAULT_POST_ID),
        provider=get("provider", "OpenAI"),
        pro=get("pro", False),
        guest_quota=get("guest_quota", None),
        banned_words=get("banned_word", []),
        banned_ips=get("banned_ip", []),
        moderated_words=get("moderated_word", []),
        trigger_replies=dict(get("trigger", [])),
        preamble=preamble,
        legacy_shortcode=get("legacy_shortcode", False),
        ssl_context=context,
    )
    reply = get("reply", None)
    if reply is not None:
        emulator.reply = reply
    for fault in get("fail", []):
        if isinstance(fault, AipkitFault):
            emulator.fail_next(fault)
        else:
            emulator.fail_next(parse_fault(str(fault)))
    return emulator
