"""The site emulator: a local aiohttp server that behaves like chatgpt4o.one.

It serves the WordPress page with the AI Power chat at ``/`` and answers the chat action
at ``/wp-admin/admin-ajax.php`` the way the plugin's releases 1.8.79 to 2.2 do (see
docs/protocol.md), with real nonces (valid for two ticks of 12 hours on an emulated
clock), the plugin's message and history handling, PHP-style JSON, both stream dialects
(OpenAI chunks and the Assistant events), PHP warnings on debug sites, translated texts
and injectable faults.

Order of checks on ``/wp-admin/admin-ajax.php`` (the request is recorded first), as in
the plugin's handler:

1. the next queued ``"post"`` fault: a stall waits, then carries on; the plugin and model
   faults (``HANDLER_FAULTS``) are kept for their own step below; any other fault answers
   at once;
2. ``required_cookies`` (Cloudflare challenge, 403);
3. other plugins' notices (``other_notices``, printed when ``php_warnings`` is on);
4. ``action`` (from the query string or the body): missing, unknown, or plugin >= 2.3:
   HTTP 400 ``0``;
5. ``_wpnonce`` (query string or body): a bad or missing nonce is the plugin's JSON up to
   1.8.90 and WordPress's bare 403 text from 1.8.91;
6. AI initialisation (``Fault.ai_unavailable``);
7. banned IP (``Client-IP``, ``X-Forwarded-For``, ..., else the peer address): JSON and
   the end; on a streaming site a flag event, and the handler goes on;
8. ``message`` read and cleaned per version (``_aipower.message_processing``);
9. banned words (a message word, split on spaces, equal to a banned word): like 7, one
   flag event per matching word;
10. token limit (per ``wpaicg_chat_client_id``, else per IP): JSON or a flag event, the end;
11. moderation and vector-database flags (faults only);
12. ``wpaicg_chat_history`` decoded (``_conversation``); missing or empty: a PHP warning
    from 1.8.91 when ``php_warnings`` is on;
13. an empty message (PHP ``empty()``: ``""`` or ``"0"``): the JSON error, after a PHP
    warning from 1.8.86 when ``php_warnings`` is on;
14. the model: Assistant mode (a thread kept by the emulator) or a chat call, plain JSON or
    streamed; the model's messages are recorded first (``model_calls``).

Up to 1.8.90 the chat fields come from ``$_REQUEST`` (query string merged with the body,
the body winning); from 1.8.91 from the body only. The nonce always comes from
``$_REQUEST``.

Where the emulator is simpler than a real site:

- the token limit counts answers, not tokens;
- the page's post is the only post: any other ``post_id`` gives the model no page context;
- bots are not emulated: ``bot_id`` and ``chatbot_identity`` are read but change nothing;
- the Assistant's run is not polled: a plain Assistant answer comes back at once;
- after an unbuffered notice of another plugin, admin-ajax.php's own ``header()`` calls
  would print ``Cannot modify header information`` warnings too; the emulator prints those
  only for the plugin's stream headers;
- the line numbers in the warnings of flag events before a stream are approximate.
"""

from __future__ import annotations

import asyncio
import html
import itertools
import json
import re
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from . import _aipower
from ._aiohttp import web
from ._conversation import (
    ASSISTANT_INSTRUCTIONS,
    Message,
    build_messages,
    decode_history,
    default_reply,
    greeting,
)
from ._faults import HANDLER_FAULTS, STREAM_ERROR_MESSAGES, Fault
from ._i18n import LANGUAGES, translate
from ._nonces import IMAGE_NONCE_ACTION, REST_NONCE_ACTION, nonce_tick
from ._output import ABORT, HTML, JSON, PHP_WARNING_MODES, PhpOutput
from ._pages import (
    PAGE_VARIANTS,
    PARAMS_STYLES,
    POST_EXCERPT,
    POST_TITLE,
    WIDGET_KINDS,
    PageSpec,
    error_page,
    footer_markup,
    html_answer_page,
    not_found_page,
    padding_css,
    render_page,
)
from ._php import (
    PhpMessage,
    addslashes,
    esc_html,
    parse_version,
    php_empty,
    php_json,
    php_trim,
    sanitize_text_field,
)
from ._records import RecordedRequest
from ._site import Reply, WordPressSite, abort_connection, cloudflare_challenge
from ._streams import (
    ChunkWriter,
    assistant_event,
    assistant_upstream_events,
    error_frame,
    flag_event,
    limited_frames,
    new_id,
    openai_error_body,
    word_frames,
)

__all__ = [
    "AJAX_PATH",
    "CHAT_ACTIONS",
    "MSG_AI_UNAVAILABLE",
    "MSG_BANNED_IP",
    "MSG_BANNED_WORDS",
    "MSG_EMPTY_MESSAGE",
    "MSG_NONCE_FAILED",
    "MSG_TOKEN_LIMIT",
    "PHP_WARNING_MODES",
    "Reply",
    "SiteEmulator",
    "default_reply",
]

#: Where WordPress answers AJAX calls.
AJAX_PATH = "/wp-admin/admin-ajax.php"
#: The chat actions (shortcode and site widget).
CHAT_ACTIONS = frozenset({"wpaicg_chat_shortcode_message", "wpaicg_chatbox_message"})

# The plugin's texts, in English (the site's ``language`` translates them).
MSG_NONCE_FAILED = "Nonce verification failed"
MSG_EMPTY_MESSAGE = "It appears that nothing was inputted."
MSG_BANNED_IP = "You are not allowed to access this feature."
MSG_BANNED_WORDS = (
    "Your message contains prohibited words. Please modify your message and try again."
)
MSG_TOKEN_LIMIT = "You have reached your token limit."
MSG_AI_UNAVAILABLE = (
    "Unable to initialize the AI instance. Please make sure the API key is valid."
)
_MSG_SUCCESS = "Something went wrong"  # the plugin leaves this on success
_MSG_SECURITY_CHECK = "Security check"
_MSG_INVALID_NONCE = (
    "Invalid nonce. This can happen when the page was served from a cache. "
    "Please clear the cache or reload the page and try again."
)
# OpenAI's answer to a request body that is not JSON (PHP's json_encode fails on invalid
# UTF-8 in the message, which 1.8.96+ passes on unsanitized).
_MSG_BODY_NOT_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
    "contact us through our help center at help.openai.com.)"
)

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
_NO_BODY_FAULTS = frozenset(
    {"status", "rate_limited", "server_error", "cloudflare", "page", "reset_before_headers"}
)
# Faults that stream whatever the site's stream setting is.
_STREAM_FAULTS = frozenset(
    {"stream_no_done", "stream_limited", "stream_error_event", "stream_error_object",
     "stream_stall"}
)  # fmt: skip
_PHP_NUMERIC = re.compile(r"[ \t\n\r\v\f]*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?[ \t\n\r\v\f]*")
_OTHER_NOTICE = PhpMessage(
    "Deprecated",
    "Creation of dynamic property Seo_Toolkit_Loader::$cache is deprecated",
    "/var/www/html/wp-content/plugins/seo-toolkit/includes/class-seo-toolkit-loader.php",
    57,
)
_OTHER_NOTICE_PHP7 = PhpMessage(
    "Notice",
    "Undefined index: page",
    "/var/www/html/wp-content/plugins/seo-toolkit/includes/class-seo-toolkit-loader.php",
    57,
)
_CRITICAL_ERROR_LINK = "https://wordpress.org/documentation/article/faq-troubleshooting/"

def _response(
    status: int,
    body: bytes | str,
    content_type: str | None = HTML,
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


class SiteEmulator(WordPressSite[Fault]):
    """A faithful local stand-in for chatgpt4o.one (WordPress + AI Power chat).

    Use it as an async context manager (or call :meth:`start` / :meth:`stop`)::

        async with SiteEmulator(stream=True) as site:
            ...  # point the client at site.url

    Every keyword below is also a plain attribute that may be changed at any time, and
    takes effect with the next request. Besides them:

    Attributes:
        banned_words: words that make a message "prohibited": a word of the message (split
            on spaces, ASCII-lowercased) equal to one of them (trimmed, lowercased).
        banned_ips: client IPs that are refused (``Client-IP``, then the first
            ``X-Forwarded-For`` entry, ..., then the peer; ``::1`` counts as 127.0.0.1).
        token_limit: successful answers allowed per ``wpaicg_chat_client_id`` (else per IP)
            before the token-limit answer; ``None``: no limit.
        page_cookies: cookies set (``Set-Cookie``, path ``/``) with every page.
        required_cookies: if not empty, any request without exactly these cookies gets a
            Cloudflare challenge (403).
        page_padding: bytes of inline CSS placed in ``<head>``, before the chat.
        page_loads: GET/HEAD requests of ``/`` seen.
        posts: POST requests to ``/wp-admin/admin-ajax.php`` seen.
        connections: TCP connections accepted.
        requests: every request, in order, as :class:`RecordedRequest` (with the model
            calls and the Assistant thread of each).
        model_calls: what the model was given, one list of ``{"role", "content"}`` dicts
            per call, in order, over all requests. A chat call starts with the plugin's
            prompt (``user``), then the history's turns, then the message (``user``). An
            Assistant call starts with the Assistant's instructions (``system``), then the
            thread's messages. A reply function that takes ``messages`` gets the same list.
        threads: the Assistant threads the emulator keeps: thread ID -> its messages
            (``user`` and ``assistant``), oldest first.

    Args:
        host: the interface to listen on. port: the port, ``0`` for a free one.
        reply: the answer text, or a function (sync or async) of the message as the plugin
            processed it, returning the text; a function with a ``messages`` parameter is
            also given the model's messages. The default, :func:`default_reply`, echoes the
            message and, when the model saw earlier turns, says how many.
        stream: the bot streams: ``data-openai_stream_nav="1"`` and event-stream answers.
        stream_chunks: split each streamed reply into this many chunks; ``None``: one
            chunk per word or piece of up to 4 characters.
        chunk_delay: seconds between streamed text chunks.
        plugin_version: AI Power version, ``"1.8.79"`` to ``"2.2"`` (``"2.3"`` and later:
            every chat action is HTTP 400 ``0``). It decides, as the releases did: JSON
            after the stream (up to 1.8.84), JSON or 403 stale-nonce answers (403 from
            1.8.91), ``$_REQUEST`` or ``$_POST``, how ``message`` is cleaned (up to 1.8.90
            ``sanitize_text_field`` with magic quotes kept, up to 1.8.95 without them, then
            not at all), which page attributes exist, Assistant mode (1.8.95+), the widget's
            ``data-post-id="<N"`` (1.9.16+) and which PHP warnings a debug site prints.
        language: the site's language, one of :data:`~chatgpt4o.testing._i18n.LANGUAGES`
            (``"en"``, ``"de"``): every translatable text (the 403, the plugin's ``msg``
            texts, the model's prompt, the page's texts) is sent in it.
        assistant: the bot is an OpenAI Assistant (1.8.95+; ignored before):
            ``data-assistant-enabled="true"``, ``thread_id`` in plain answers, the
            Assistant event stream, threads kept in :attr:`threads`.
        php_warnings: PHP's ``display_errors``: ``"off"``, ``"buffered"`` (on, with output
            buffering: warnings come first, headers stay right) or ``"unbuffered"`` (the
            first warning sends admin-ajax.php's ``text/html`` headers and status 200).
            ``True`` means ``"buffered"``, ``False`` ``"off"``.
        php_version: the PHP version whose warning texts are printed (``"7.4"``: notices
            such as ``Undefined variable: x``; ``"8.2"``: warnings).
        other_notices: another plugin prints a PHP deprecation notice before every answer
            (and before the page) when ``php_warnings`` is on.
        remember_conversation: the bot's "remember conversation" setting; off, the history
            is ignored and the model gets the prompt and the message only.
        memory_limit: ``data-memory-limit`` on the page (the browser keeps this many history
            entries; the server never shortens the history it gets).
        page_variant: the chat markup, one of :data:`PAGE_VARIANTS` (see ``_pages``).
        params_style: how ``wpaicgParams`` is printed: ``"inline"``, ``"cdata"`` or
            ``"base64"`` (an optimiser's ``data:`` script).
        foreign_params: a theme object with its own ``ajax_url`` and ``search_nonce`` keys
            in ``<head>``, before the chat.
        footer_padding: bytes of markup between the content and ``wpaicgParams`` (the
            footer), to put ``wpaicgParams`` at the end of a page of that size.
        post_id: the WordPress post ID shown on the page. bot_id: the chat's bot ID.
        widget: ``"shortcode"`` (``div.wpaicg-chat-shortcode`` in the content) or
            ``"widget"`` (``div.wpaicg-chatbox`` in the footer). Both chat actions are
            always accepted, as on the real site.
        clock: the Unix time source (see also :meth:`advance`).
        secret: the nonce key; random by default.
        ssl_context: serve HTTPS with this server context (``url`` is then
            ``https://...``); ``None``: plain HTTP. Set it before :meth:`start`.
    """

    _fault_class = Fault
    _PIECES = _DEFAULT_PIECES

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
        language: str = "en",
        assistant: bool = False,
        php_warnings: str | bool = "off",
        php_version: str = "8.2",
        other_notices: bool = False,
        remember_conversation: bool = True,
        memory_limit: int = 10,
        page_variant: str = "standard",
        params_style: str = "inline",
        foreign_params: bool = False,
        footer_padding: int = 0,
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
        self.stream = stream
        self.plugin_version = plugin_version
        self.language = language
        self.assistant = assistant
        self.php_warnings = php_warnings
        self.php_version = php_version
        self.other_notices = other_notices
        self.remember_conversation = remember_conversation
        self.memory_limit = memory_limit
        self.page_variant = page_variant
        self.params_style = params_style
        self.foreign_params = foreign_params
        self.footer_padding = footer_padding
        self.post_id = post_id
        self.bot_id = bot_id
        self.widget = widget
        self.banned_words: set[str] = set(banned_words)
        self.banned_ips: set[str] = set(banned_ips)
        self.token_limit = token_limit
        self.page_cookies: dict[str, str] = dict(page_cookies or {})
        self.required_cookies: dict[str, str] = dict(required_cookies or {})
        self.page_padding = page_padding

        self.threads: dict[str, list[dict[str, str]]] = {}

        self._usage: dict[str, int] = {}
        self._stream_ids = itertools.count(1)
        self._page_cache: tuple[PageSpec, bytes] | None = None
        self._padding_cache: tuple[int, str] = (0, "")
        self._footer_cache: tuple[int, str] = (0, "")

    # validated settings -----------------------------------------------------------------

    def _check_plugin_version(self, value: str) -> None:
        parse_version(value)  # an AI Power version, e.g. "1.8.91"; raises ValueError early

    @property
    def php_version(self) -> str:
        """The emulated PHP version, e.g. ``"8.2"``."""
        return self._php_version

    @php_version.setter
    def php_version(self, value: str) -> None:
        if parse_version(value)[0] not in (7, 8):
            raise ValueError(f"php_version must be 7.x or 8.x, not {value!r}")
        self._php_version = value

    @property
    def language(self) -> str:
        """The site's language, one of ``LANGUAGES``."""
        return self._language

    @language.setter
    def language(self, value: str) -> None:
        if value not in LANGUAGES:
            raise ValueError(f"language must be one of {LANGUAGES}, not {value!r}")
        self._language = value

    @property
    def php_warnings(self) -> str:
        """``"off"``, ``"buffered"`` or ``"unbuffered"`` (set ``True`` for ``"buffered"``)."""
        return self._php_warnings

    @php_warnings.setter
    def php_warnings(self, value: str | bool) -> None:
        if value is True:
            value = "buffered"
        elif value is False:
            value = "off"
        if value not in PHP_WARNING_MODES:
            raise ValueError(f"php_warnings must be one of {PHP_WARNING_MODES}, not {value!r}")
        self._php_warnings = value

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
    def params_style(self) -> str:
        """How ``wpaicgParams`` is printed, one of :data:`PARAMS_STYLES`."""
        return self._params_style

    @params_style.setter
    def params_style(self, value: str) -> None:
        if value not in PARAMS_STYLES:
            raise ValueError(f"params_style must be one of {PARAMS_STYLES}, not {value!r}")
        self._params_style = value

    @property
    def widget(self) -> str:
        """``"shortcode"`` or ``"widget"``."""
        return self._widget

    @widget.setter
    def widget(self, value: str) -> None:
        if value not in WIDGET_KINDS:
            raise ValueError(f"widget must be one of {WIDGET_KINDS}, not {value!r}")
        self._widget = value

    # URLs (start, stop, url and the rest: WordPressSite) --------------------------------

    @property
    def ajax_url(self) -> str:
        """``{url}/wp-admin/admin-ajax.php``."""
        return self.url + AJAX_PATH

    def _repr_details(self) -> str:
        return f" variant={self.page_variant}"

    # nonces -----------------------------------------------------------------------------

    def current_image_nonce(self) -> str:
        """The image-upload nonce the page shows now (never valid for chat)."""
        return self._nonce(IMAGE_NONCE_ACTION)

    # the site's state -------------------------------------------------------------------

    def reset_token_usage(self) -> None:
        """Forget how many answers each client got (see ``token_limit``)."""
        self._usage.clear()

    # request entry point ----------------------------------------------------------------

    async def _route(
        self, request: web.BaseRequest, record: RecordedRequest
    ) -> web.StreamResponse | None:
        if request.path != AJAX_PATH:
            return None
        if request.method == "POST":
            self.posts += 1
        return await self._ajax(request, record)

    def _not_found(self, request: web.BaseRequest) -> web.StreamResponse:
        if not self._has_required_cookies(request):
            return self._cloudflare(request, 403)
        return _response(404, not_found_page(self.url), base=_WP_HEADERS)

    def _error_page(self, status: int) -> web.Response:
        return _response(status, error_page(status), base=_WP_HEADERS)

    # the page ---------------------------------------------------------------------------

    async def _page(self, request: web.BaseRequest, record: RecordedRequest) -> web.StreamResponse:
        fault = await self._next_fault("page")
        if fault is not None:
            return await self._transport_fault(request, fault, self._page_bytes(), HTML)
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
        tick = nonce_tick(self.now())
        version = parse_version(self.plugin_version)
        foreign = self._nonce("astra-search", tick) if self.foreign_params else ""
        spec = PageSpec(
            url=self.url,
            nonce=self._nonce(tick=tick),
            image_nonce=self._nonce(IMAGE_NONCE_ACTION, tick),
            rest_nonce=self._nonce(REST_NONCE_ACTION, tick),
            post_id=self.post_id,
            bot_id=self.bot_id,
            stream=bool(self.stream),
            variant=self.page_variant,
            widget=self.widget,
            padding=max(0, int(self.page_padding)),
            plugin_version=self.plugin_version,
            language=self.language,
            assistant=bool(self.assistant) and _aipower.has_assistant(version),
            memory_limit=self.memory_limit,
            params_style=self.params_style,
            foreign_params=bool(self.foreign_params),
            foreign_nonce=foreign,
            footer_padding=max(0, int(self.footer_padding)),
            notices=self._other_notice().html() if self._shows_other_notices() else "",
        )
        cached = self._page_cache
        if cached is not None and cached[0] == spec:
            return cached[1]
        if self._padding_cache[0] != spec.padding:
            self._padding_cache = (spec.padding, padding_css(spec.padding))
        if self._footer_cache[0] != spec.footer_padding:
            self._footer_cache = (spec.footer_padding, footer_markup(spec.footer_padding))
        page = render_page(spec, self._padding_cache[1], self._footer_cache[1]).encode()
        self._page_cache = (spec, page)
        return page

    def _shows_other_notices(self) -> bool:
        return bool(self.other_notices) and self.php_warnings != "off"

    def _php8(self) -> bool:
        return parse_version(self.php_version)[0] >= 8

    def _other_notice(self) -> PhpMessage:
        return _OTHER_NOTICE if self._php8() else _OTHER_NOTICE_PHP7

    # admin-ajax.php ---------------------------------------------------------------------

    async def _ajax(self, request: web.BaseRequest, record: RecordedRequest) -> web.StreamResponse:
        fault = await self._next_fault("post")
        if fault is not None and fault.kind not in HANDLER_FAULTS:
            return await self._ajax_fault(request, record, fault)
        if not self._has_required_cookies(request):
            return self._cloudflare(request, 403)
        out = self._output()
        await self._handler(request, record, out, fault)
        return await self._send(request, out)

    def _output(self) -> PhpOutput:
        """A fresh PHP output, with the other plugins' notices already printed."""
        out = PhpOutput(self.php_warnings)
        if self.other_notices:
            out.warn(self._other_notice())
        return out

    async def _handler(
        self,
        request: web.BaseRequest,
        record: RecordedRequest,
        out: PhpOutput,
        fault: Fault | None,
    ) -> None:
        """The plugin's chat handler (and admin-ajax.php around it), printing into ``out``."""
        version = parse_version(self.plugin_version)
        language = self.language
        request_fields = {**record.query, **record.form}  # PHP's $_REQUEST
        if request_fields.get("action") not in CHAT_ACTIONS or not _aipower.has_action(version):
            out.die(400, "0")
            return
        fields = request_fields if _aipower.reads_request(version) else record.form
        nonce = request_fields.get("_wpnonce", "")
        if _aipower.reads_request(version):
            nonce = sanitize_text_field(addslashes(nonce))
        if not self._nonce_age(nonce):
            self._stale_nonce(request, request_fields, out, None)
            return
        kind = fault.kind if fault is not None else ""
        if kind == "ai_unavailable":
            out.send_json({"status": "error", "msg": translate(MSG_AI_UNAVAILABLE, language)})
            return
        streaming = bool(self.stream) or kind in _STREAM_FAULTS
        flag = fault.text if fault is not None and kind == "stream_error_event" else ""

        client_ip = self._client_ip(request, record)
        if client_ip in {ip.strip() for ip in self.banned_ips} or flag == "ipBanned":
            if not streaming:
                out.send_json({"status": "error", "msg": translate(MSG_BANNED_IP, language)})
                return
            self._flag(out, version, "ipBanned", fault if flag == "ipBanned" else None)

        message = self._message(fields.get("message", ""), version)
        matches = self._banned_matches(message)
        if matches and not streaming:
            out.send_json({"status": "error", "msg": translate(MSG_BANNED_WORDS, language)})
            return
        for _ in matches:
            self._flag(out, version, "messageFlagged", None)
        if flag == "messageFlagged":
            self._flag(out, version, flag, fault)

        client = fields.get("wpaicg_chat_client_id") or client_ip
        limited = self.token_limit is not None and self._usage.get(client, 0) >= self.token_limit
        if limited or kind == "token_limit" or flag == "tokenLimitReached":
            if streaming:
                self._flag(out, version, "tokenLimitReached", fault if flag else None)
            else:
                msg = translate(MSG_TOKEN_LIMIT, language)
                out.send_json({"msg": msg, "tokenLimitReached": True})
            return
        if flag in ("modflag", "pineconeError"):
            self._flag(out, version, flag, fault)
            return

        entries: list[object] = []
        if self.remember_conversation:
            raw_history = fields.get("wpaicg_chat_history")
            if raw_history is None or php_empty(raw_history):
                line = _aipower.history_warning_line(version)
                if line is not None:
                    out.warn(self._undefined_variable("wpaicg_chat_history", line))
            else:
                entries = decode_history(raw_history, slashed=_aipower.reads_request(version))

        if php_empty(message):
            line = _aipower.empty_message_warning_line(version)
            if line is not None:
                out.warn(self._undefined_variable("stream_nav_setting", line))
            out.send_json({"status": "error", "msg": translate(MSG_EMPTY_MESSAGE, language)})
            return

        context = self._page_context(fields, version)
        prompt = greeting(language, context)
        call = _Call(record, out, fault, message, prompt, streaming, client, version)
        if self.assistant and _aipower.has_assistant(version):
            await self._assistant(call, fields, context)
            return
        if self.remember_conversation:
            messages, bad = build_messages(prompt, entries, message)
            if self._bad_entries(out, bad, version):
                return
        else:
            first = {"role": "user", "content": html.unescape(prompt)}
            messages = [first, {"role": "user", "content": message}]
        await self._chat_call(call, messages)

    # the handler's steps ----------------------------------------------------------------

    def _message(self, raw: str, version: _aipower.Version) -> str:
        """``message`` as the plugin of ``version`` cleans it."""
        processing = _aipower.message_processing(version)
        if processing == "slashed":
            return sanitize_text_field(addslashes(raw))
        if processing == "sanitized":
            return sanitize_text_field(raw)
        return raw

    def _banned_matches(self, message: str) -> list[str]:
        banned = {_ascii_lower(word.strip()) for word in self.banned_words if word.strip()}
        if not banned:
            return []
        return [word for word in _ascii_lower(message).split(" ") if word in banned]

    def _flag_message(self, flag: str, fault: Fault | None) -> str:
        if fault is not None and fault.body:
            return fault.body
        text = STREAM_ERROR_MESSAGES[flag]
        return text if flag == "pineconeError" else translate(text, self.language)

    def _flag(
        self, out: PhpOutput, version: _aipower.Version, flag: str, fault: Fault | None
    ) -> None:
        """A flag event: the plugin's stream headers, one ``data:`` event, a flush."""
        line = _aipower.flag_echo_line(version, flag)
        out.start_stream(_aipower.CHAT_FILE, (line - 3, line - 2, line - 1))
        payload = {"msg": self._flag_message(flag, fault), flag: True}
        out.write(flag_event(payload), (_aipower.CHAT_FILE, line))

    def _undefined_variable(self, name: str, line: int) -> PhpMessage:
        if self._php8():
            return PhpMessage("Warning", f"Undefined variable ${name}", _aipower.CHAT_FILE, line)
        return PhpMessage("Notice", f"Undefined variable: {name}", _aipower.CHAT_FILE, line)

    def _page_context(self, fields: Mapping[str, str], version: _aipower.Version) -> str | None:
        """The page's title and excerpt when ``post_id`` names the emulator's post."""
        raw = fields.get("post_id", "")
        if php_empty(raw):
            return None
        slashed = _aipower.reads_request(version)
        value = sanitize_text_field(addslashes(raw) if slashed else raw)
        if not _PHP_NUMERIC.fullmatch(value):
            return None
        number = float(value)
        if not number.is_integer() or self.post_id <= 0 or int(number) != self.post_id:
            return None
        return f'"{POST_TITLE}\n{POST_EXCERPT}"'

    def _bad_entries(self, out: PhpOutput, bad: Sequence[Any], version: _aipower.Version) -> bool:
        """Warnings for history entries that are not strings; ``True`` after a fatal error."""
        line = _aipower.history_trim_line(version)
        php = parse_version(self.php_version)
        chat_file = _aipower.CHAT_FILE
        for entry in bad:
            if entry.type_name == "array" and php[0] >= 8:
                text = (
                    "Uncaught TypeError: trim(): Argument #1 ($string) must be of type string, "
                    f"array given in {chat_file}:{line}\nStack trace:\n#0 {chat_file}({line}): "
                    "trim(Array)\n#1 {main}\n  thrown"
                )
                out.warn(PhpMessage("Fatal error", text, chat_file, line))
                self._critical_error(out)
                return True
            if entry.type_name == "array":
                text = "trim() expects parameter 1 to be string, array given"
                out.warn(PhpMessage("Warning", text, chat_file, line))
            elif php >= (8, 1):
                text = "trim(): Passing null to parameter #1 ($string) of type string is deprecated"
                out.warn(PhpMessage("Deprecated", text, chat_file, line))
        return False

    def _critical_error(self, out: PhpOutput) -> None:
        """WordPress's fatal-error answer in admin-ajax.php: HTTP 500, bare text."""
        language = self.language
        message = translate("There has been a critical error on this website.", language)
        learn = translate("Learn more about troubleshooting WordPress.", language)
        out.die(500, f'<p>{message}</p><p><a href="{_CRITICAL_ERROR_LINK}">{learn}</a></p>')

    # the model --------------------------------------------------------------------------

    def _success(self, prompt: str, reply: str) -> dict[str, object]:
        return {
            "status": "success",
            "msg": translate(_MSG_SUCCESS, self.language),
            "greeting_message": prompt,
            "data": reply,
            "log": False,
        }

    @staticmethod
    def _upstream_error(prompt: str, text: str) -> dict[str, object]:
        return {
            "status": "error",
            "msg": esc_html(php_trim(text)),
            "greeting_message": prompt,
            "log": False,
        }

    async def _chat_call(self, call: _Call, messages: list[Message]) -> None:
        """A chat-completions call: plain JSON, or the OpenAI stream passed through."""
        out, fault = call.out, call.fault
        kind = fault.kind if fault is not None else ""
        trailer = _aipower.json_after_stream(call.version)
        if kind == "upstream_unreachable" and fault is not None:
            if not call.streaming:
                out.send_json(self._upstream_error(call.prompt, fault.text))
                return
            self._start_chat_stream(out, call.version)
            if trailer:
                out.send_json(self._success(call.prompt, ""))
            return
        error = fault.text if fault is not None and kind == "upstream_error" else None
        if error is None and _SURROGATES.search(call.message):
            error = _MSG_BODY_NOT_JSON  # the model's API never sees the messages
        else:
            self._record_call(call.record, messages)
        if error is not None:
            if not call.streaming:
                out.send_json(self._upstream_error(call.prompt, error))
                return
            self._start_chat_stream(out, call.version)
            if fault is not None and fault.whole:
                out.write(openai_error_body(error))
                out.write(error_frame(error))
            else:
                out.write(word_frames(error))
                if fault is None or not fault.once:  # the site's HTTP layer calls again
                    if call.record.model_calls:
                        self._record_call(call.record, messages)
                    out.write(word_frames(error))
            if trailer:
                out.send_json(self._success(call.prompt, ""))
            return
        reply = await self._reply_for(call.message, messages)
        self._usage[call.client] = self._usage.get(call.client, 0) + 1
        if not call.streaming:
            out.send_json(self._success(call.prompt, reply))
            return
        self._start_chat_stream(out, call.version)
        streamed = self._write_chunks(out, reply, fault)
        if trailer:
            out.send_json(self._success(call.prompt, streamed))

    def _start_chat_stream(self, out: PhpOutput, version: _aipower.Version) -> None:
        out.start_stream(_aipower.CHAT_FILE, _aipower.stream_header_lines(version))

    def _write_chunks(self, out: PhpOutput, reply: str, fault: Fault | None) -> str:
        """The upstream's chunks as the plugin passes them on; returns the text streamed."""
        kind = fault.kind if fault is not None else ""
        pieces = self._pieces(reply)
        stream_id = f"chatcmpl-emu{next(self._stream_ids):020d}"
        writer = ChunkWriter(stream_id, int(self.now()), _MODEL, _FINGERPRINT)
        stop_at = len(pieces)
        stall_at = -1
        if fault is not None and kind == "stream_limited":
            stop_at = len(pieces) // 2 if fault.count is None else fault.count
        elif fault is not None and kind in ("stream_no_done", "stream_error_object"):
            stop_at = len(pieces) if fault.count is None else fault.count
        elif fault is not None and kind == "stream_stall" and fault.count is not None:
            stall_at = fault.count
        seconds = fault.seconds if fault is not None else 0.0
        delay = self.chunk_delay
        out.write(writer.role())
        streamed: list[str] = []
        for index, piece in enumerate(pieces):
            if index == stop_at:
                break
            if index == stall_at:
                out.pause(seconds)
            elif index and delay > 0:
                out.pause(delay)
            out.write(writer.content(piece))
            streamed.append(piece)
        if fault is not None and kind == "stream_limited":
            out.write(limited_frames(fault.text))
        elif kind == "stream_no_done":
            out.close = True
        elif fault is not None and kind == "stream_error_object":
            error = {"error": {"message": fault.text, "code": fault.code}}
            data = json.dumps(error, ensure_ascii=False, separators=(",", ":"))
            out.write(f"data: {data}\n\n".encode("utf-8", "surrogateescape"))
        else:
            if stall_at >= len(pieces):
                out.pause(seconds)
            elif delay > 0 and pieces:
                out.pause(delay)
            out.write(writer.stop())
            out.write(b"data: [DONE]\n\n")
        return "".join(streamed)

    async def _assistant(self, call: _Call, fields: Mapping[str, str], context: str | None) -> None:
        """Assistant mode: the thread is created or continued, then the run answers."""
        out, fault = call.out, call.fault
        kind = fault.kind if fault is not None else ""
        posted = sanitize_text_field(fields.get("thread_id", ""))
        error = None
        if fault is not None and kind in ("upstream_error", "upstream_unreachable"):
            error = fault.text
        elif posted and posted not in self.threads:
            error = f"No thread found with id '{posted}'."
        elif _SURROGATES.search(call.message):
            error = _MSG_BODY_NOT_JSON
        if call.streaming:
            out.clean()
            out.start_stream(_aipower.ASSISTANT_FILE, _aipower.ASSISTANT_HEADER_LINES)
        if error is not None:
            if call.streaming:
                out.write(assistant_event("assistant_error", {"status": "error", "msg": error}))
                out.write(assistant_event("done", ""))
            else:
                out.send_json({"status": "error", "msg": error, "greeting_message": call.prompt})
            return
        thread_id = posted or new_id("thread_")
        thread = self.threads.setdefault(thread_id, [])
        thread.append({"role": "user", "content": call.message})
        call.record._set_thread_id(thread_id)
        instructions = ASSISTANT_INSTRUCTIONS + (f"\n\n{context}" if context else "")
        messages = self._record_call(
            call.record, [{"role": "system", "content": instructions}, *thread]
        )
        reply = await self._reply_for(call.message, messages)
        self._usage[call.client] = self._usage.get(call.client, 0) + 1
        if not call.streaming:
            thread.append({"role": "assistant", "content": reply})
            answer = self._success(call.prompt, reply)
            answer["thread_id"] = thread_id
            answer["log"] = answer.pop("log")  # "thread_id" comes before "log"
            out.send_json(answer)
            return
        finished = kind != "stream_no_done"
        pieces = self._pieces(reply)
        if fault is not None and not finished and fault.count is not None:
            pieces = pieces[: fault.count]
        stall_at = fault.count if fault is not None and kind == "stream_stall" else None
        if not posted:
            out.write(assistant_event("thread_id", thread_id))
        chunks = assistant_upstream_events(thread_id, new_id("msg_"), pieces, finished=finished)
        forwarded = 0
        for chunk in chunks:
            if "event: thread.message.delta" not in chunk and "event: done" not in chunk:
                continue
            if fault is not None and forwarded == stall_at:
                out.pause(fault.seconds)
            elif forwarded and self.chunk_delay > 0:
                out.pause(self.chunk_delay)
            out.write(chunk.encode("utf-8", "surrogateescape"))
            forwarded += 1
        if finished:
            thread.append({"role": "assistant", "content": reply})
        else:
            out.close = True

    # sending ----------------------------------------------------------------------------

    async def _send(self, request: web.BaseRequest, out: PhpOutput) -> web.StreamResponse:
        """Send what the request printed, with the status and headers that went out."""
        headers = dict(_AJAX_HEADERS)
        if out.stream:
            headers["Cache-Control"] = "no-cache"
            headers["X-Accel-Buffering"] = "no"
        headers["Content-Type"] = out.content_type
        items = out.items
        if not out.streaming and all(isinstance(item, bytes) for item in items):
            body = b"".join(item for item in items if isinstance(item, bytes))
            return web.Response(status=out.status, body=body, headers=headers)
        response = web.StreamResponse(status=out.status, headers=headers)
        if out.close:
            response.force_close()
        await response.prepare(request)
        pending: list[bytes] = []
        for item in items:
            if isinstance(item, bytes):
                pending.append(item)
                continue
            if pending:
                await response.write(b"".join(pending))
                pending.clear()
            if item is ABORT:
                abort_connection(request, reset=False)
                return response
            if isinstance(item, float):
                await asyncio.sleep(item)
        if pending:
            await response.write(b"".join(pending))
        return response

    # helpers ----------------------------------------------------------------------------

    def _client_ip(self, request: web.BaseRequest, record: RecordedRequest) -> str:
        """The plugin's ``getIpAddress()``: the first non-empty of its headers, else the
        peer; ``::1`` counts as ``127.0.0.1``."""
        address = ""
        for name in _IP_HEADERS:
            value = sanitize_text_field(request.headers.get(name, ""))
            if php_empty(value):
                continue
            if name == "X-Forwarded-For":
                items = [sanitize_text_field(item) for item in value.split(",")]
                address = next((item for item in items if not php_empty(item)), "")
            else:
                address = value
            if not php_empty(address):
                break
        else:
            address = record.peer[0]
        return "127.0.0.1" if address == "::1" else address

    def _has_required_cookies(self, request: web.BaseRequest) -> bool:
        required = self.required_cookies
        if not required:
            return True
        cookies = request.cookies
        return all(cookies.get(name) == value for name, value in required.items())

    def _stale_nonce(
        self,
        request: web.BaseRequest,
        fields: Mapping[str, str],
        out: PhpOutput,
        style: str | None,
    ) -> None:
        """A rejected nonce: the plugin's JSON, or WordPress's bare 403 (``wp_nonce_ays``)."""
        if not style:
            version = parse_version(self.plugin_version)
            style = "expired" if _aipower.stale_nonce_is_403(version) else "json"
        language = self.language
        json_texts = {
            "json": MSG_NONCE_FAILED,
            "security_check": _MSG_SECURITY_CHECK,
            "invalid_nonce": _MSG_INVALID_NONCE,
        }
        if style in json_texts:
            out.send_json({"status": "error", "msg": translate(json_texts[style], language)})
            return
        english = (
            "Are you sure you want to do this?"
            if style == "are_you_sure"
            else "The link you followed has expired."
        )
        text = translate(english, language)
        referer = self._wp_get_referer(request, fields)
        if referer is not None:
            again = translate("Please try again.", language)
            text += f'</p><p><a href="{_esc_url(referer)}">{again}</a>'
        out.die(403, text)

    def _wp_get_referer(self, request: web.BaseRequest, fields: Mapping[str, str]) -> str | None:
        """``wp_get_referer()``: ``_wp_http_referer`` or the Referer, if it is on this site
        (any port) and not the request's own URL; ``updated`` is removed from its query."""
        referer = php_trim(fields.get("_wp_http_referer") or request.headers.get("Referer") or "")
        if not referer or referer in (request.path_qs, self.url + request.path_qs):
            return None
        try:
            parts = urlsplit("http:" + referer if referer.startswith("//") else referer)
            host = parts.hostname
        except ValueError:
            return None
        if parts.scheme and parts.scheme not in ("http", "https"):
            return None
        own = urlsplit(self.url).hostname
        if host is not None and host.lower() != (own or "").lower():
            return None
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        query = [(key, value) for key, value in pairs if key != "updated"]
        return urlunsplit(parts._replace(query=urlencode(query)))

    def _cloudflare(self, request: web.BaseRequest, status: int) -> web.Response:
        headers, page = cloudflare_challenge(request)
        headers += (
            ("Expires", "Thu, 01 Jan 1970 00:00:01 GMT"),
            ("Referrer-Policy", "same-origin"),
            ("X-Frame-Options", "SAMEORIGIN"),
            ("Cross-Origin-Opener-Policy", "same-origin"),
        )
        return _response(status, page, base=headers)

    # faults that answer at once ---------------------------------------------------------

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
            abort_connection(request, reset=True)
            return web.Response()  # never written: the connection is gone
        if kind == "reset_after_headers":
            response = web.StreamResponse(status=200, headers={"Content-Type": content_type})
            response.content_length = len(full_body) + 1
            await response.prepare(request)
            await response.write(full_body[: len(full_body) // 2])
            abort_connection(request, reset=False)
            return response
        raise ValueError(f"{fault!r} cannot target {fault.target!r}")  # pragma: no cover

    async def _ajax_fault(
        self, request: web.BaseRequest, record: RecordedRequest, fault: Fault
    ) -> web.StreamResponse:
        kind = fault.kind
        if kind in _NO_BODY_FAULTS:
            return await self._transport_fault(request, fault, b"", JSON)
        version = parse_version(self.plugin_version)
        request_fields = {**record.query, **record.form}
        fields = request_fields if _aipower.reads_request(version) else record.form
        if kind == "plugin_gone":
            return _response(400, "0")
        if kind == "ajax_referer_failed":
            return _response(403, "-1")
        if kind == "stale_nonce":
            out = self._output()
            self._stale_nonce(request, request_fields, out, fault.text or None)
            return await self._send(request, out)
        if kind == "html_instead_of_json":
            return _response(200, html_answer_page(self.url))
        if kind == "empty_body":
            return _response(200, b"")
        if kind == "no_data":
            payload = {"status": "success", "msg": translate(_MSG_SUCCESS, self.language)}
            return _response(200, php_json(payload), JSON)
        message = self._message(fields.get("message", ""), version)
        prompt = greeting(self.language, self._page_context(fields, version))
        single = [{"role": "user", "content": html.unescape(prompt)}]
        single.append({"role": "user", "content": message})
        reply = await self._reply_for(message, single)
        if kind == "reset_after_headers" and self.stream:
            out = PhpOutput("off")
            self._start_chat_stream(out, version)
            self._write_chunks(out, reply, Fault.stream_no_done(after_chunks=1))
            out.abort()
            return await self._send(request, out)
        success = self._success(prompt, reply)
        if kind == "data_wrong_type":
            success["data"] = json.loads(fault.text)
            return _response(200, php_json(success), JSON)
        if kind == "truncated_json":
            body = php_json(success)
            return _response(200, body[: len(body) // 2], JSON)
        if kind == "wrong_content_type":
            return _response(200, php_json(success), "text/plain; charset=UTF-8")
        if kind == "non_utf8":
            success["data"] = f"{success['data']} (caf\xe9)"
            body = json.dumps(success, ensure_ascii=False, separators=(",", ":"))
            return _response(200, body.encode("latin-1", "replace"), JSON)
        return await self._transport_fault(request, fault, php_json(success).encode(), JSON)


class _Call:
    """One request's way to the model: what the handler found out before calling it."""

    def __init__(
        self,
        record: RecordedRequest,
        out: PhpOutput,
        fault: Fault | None,
        message: str,
        prompt: str,
        streaming: bool,
        client: str,
        version: _aipower.Version,
    ) -> None:
        self.record = record
        self.out = out
        self.fault = fault
        self.message = message
        self.prompt = prompt
        self.streaming = streaming
        self.client = client
        self.version = version


_IP_HEADERS = (
    "Client-IP",
    "X-Forwarded-For",
    "X-Forwarded",
    "X-Cluster-Client-IP",
    "Forwarded-For",
    "Forwarded",
)
_SURROGATES = re.compile("[\ud800-\udfff]")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_URL_REJECTED = re.compile(r"[^a-z0-9\-~+_.?#=!&;,/:%@$|*'()\[\]\x80-\U0010ffff]", re.IGNORECASE)


def _ascii_lower(text: str) -> str:
    """PHP 8's ``strtolower``: ASCII letters only."""
    return text.translate(_ASCII_LOWER)


def _esc_url(url: str) -> str:
    """WordPress's ``esc_url`` for an http(s) URL shown in HTML."""
    url = _URL_REJECTED.sub("", url.lstrip().replace(" ", "%20"))
    return url.replace("&", "&#038;").replace("'", "&#039;")
