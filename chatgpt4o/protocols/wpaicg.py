"""AI Power 1.8.79-2.2 ("wpaicg"): the admin-ajax chat protocol (docs/protocol.md §2-§4).

Pure functions and small parsers, no I/O: scraping the page (§2), building the
admin-ajax form (§3), and reading the answers (§4) into a reply or a typed error;
`WpaicgProtocol` puts them behind the engine's protocol seam.
Everything here runs in linear time on any input: the page is walked with plain
searches, and the few regexes cannot backtrack, so a crafted page cannot stall a call.
"""

from __future__ import annotations

import functools
import json
import re
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar
from urllib.parse import quote_plus, urlencode, urlsplit

from .._constants import BROWSER_HEADERS, MAX_PAGE_BYTES, MAX_RESPONSE_BYTES, PAGE_DRAIN_BYTES
from .._exceptions import (
    CloudflareError,
    HTTPStatusError,
    PluginUnavailableError,
    RateLimitError,
    ResponseError,
    ScrapeError,
    ServiceError,
    ServiceErrorKind,
    redact,
)
from .._messages import Turn as MessageTurn
from .._messages import format_turns
from .._retry import parse_retry_after
from .._transports.base import Request
from .base import ChatProtocol, Conversation, PageReader, ReplyReader, StaleCredentials, Turn

__all__ = [
    "AJAX_PATH",
    "CHATBOX_ACTION",
    "SHORTCODE_ACTION",
    "PageInfo",
    "PageScraper",
    "ReplyParser",
    "WpaicgProtocol",
    "build_form",
    "check_status",
    "new_client_id",
    "parse_reply",
    "scrape_page",
]

AJAX_PATH = "/wp-admin/admin-ajax.php"
SHORTCODE_ACTION = "wpaicg_chat_shortcode_message"
CHATBOX_ACTION = "wpaicg_chatbox_message"

# -- §2: the page ---------------------------------------------------------------------

# Class names of the chat widget: the shortcode, and the site-wide chatbox.
_WIDGET_CLASSES = frozenset({"wpaicg-chat-shortcode", "wpaicg-chatbox"})
# An opening tag longer than this is not the widget (real ones are under 2 KB).
_MAX_TAG_BYTES = 64 * 1024
_TAG_NAME_END = frozenset(b" \t\r\n\f/")
# name = "value" | 'value' | bare; names as the plugin writes them (data-openai_stream_nav)
_ATTRIBUTE = re.compile(r"""([\w:.-]{1,100})\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_NONCE = re.compile(r"[0-9a-f]{10}", re.IGNORECASE)
# data-post-id="11", or "<11" from the markup bug of plugin 1.9.16-2.2
_POST_ID = re.compile(r"\s*<?\s*(\d{1,20})\s*")
_DIGITS = re.compile(r"\s*(\d{1,20})\s*")
_PARAMS_NONCE = re.compile(r""""search_nonce"\s{0,10}:\s{0,10}"([0-9a-fA-F]{10})\"""")
# Where WordPress itself names the post when the widget does not (params-only pages):
# the body class, the element id of the post, and the shortlink.
_PAGE_POST_ID = (
    re.compile(r"""\bpostid-(\d{1,20})\b"""),
    re.compile(r"""\bid=["']post-(\d{1,20})["']"""),
)
_SHORTLINK = re.compile(r"""rel=["']shortlink["']""")
_PARAMS_AJAX_URL = re.compile(rb'"ajax_url"\s{0,10}:\s{0,10}"((?:[^"\\]|\\.){1,2000})"')
_SHORTLINK_POST = re.compile(r"""[?&]p=(\d{1,20})\b""")


@dataclass(frozen=True)
class PageInfo:
    """What the chat needs from the page: the site's credentials for this protocol.

    The nonce is kept out of the repr. The request's target, headers and the fixed
    part of its form are worked out once per page load, not once per call.
    """

    post_id: str
    nonce: str = field(repr=False)
    bot_id: str = "0"
    action: str = SHORTCODE_ACTION
    streams: bool = False
    #: admin-ajax.php as the page names it (wpaicgParams.ajax_url), if it does.
    ajax_url: str | None = None
    #: The page's own URL, after redirects (set by the caller that fetched it).
    page_url: str | None = None
    #: The site's address as the provider names it: the form's `url` field.
    site_url: str = ""

    @functools.cached_property
    def target(self) -> str:
        """admin-ajax.php of the site, after any redirect of the page.

        The page's own `wpaicgParams.ajax_url` wins when it is on the page's host;
        otherwise it sits under the page's (final) address.
        """
        page_url = self.page_url or self.site_url.rstrip("/") + "/"
        if self.ajax_url:
            named, final = urlsplit(self.ajax_url), urlsplit(page_url)
            if (named.scheme, named.netloc) == (final.scheme, final.netloc):
                return self.ajax_url
        return page_url.split("?", 1)[0].rstrip("/") + AJAX_PATH

    @functools.cached_property
    def headers(self) -> dict[str, str]:
        """The chat request's headers, as the plugin's browser script sends them."""
        site = urlsplit(self.target)
        return {
            **BROWSER_HEADERS,
            "content-type": "application/x-www-form-urlencoded; charset=UTF-8",
            "origin": f"{site.scheme}://{site.netloc}",
            "referer": self.page_url or self.site_url.rstrip("/") + "/",
            "x-requested-with": "XMLHttpRequest",
        }

    @functools.cached_property
    def form_parts(self) -> tuple[str, str]:
        """The encoded form around the message: (before `message=`, after it up to the
        visitor id), so a call only encodes its own message."""
        before = urlencode(
            {"_wpnonce": self.nonce, "post_id": self.post_id, "url": self.site_url,
             "action": self.action}
        )
        after = urlencode(
            {"bot_id": self.bot_id,
             "chatbot_identity": "widget" if self.action == CHATBOX_ACTION else "shortcode"}
        )
        return before + "&message=", f"&{after}&wpaicg_chat_client_id="


def _attributes(tag: str) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for found in _ATTRIBUTE.finditer(tag):
        name = found.group(1).lower()
        value = next((group for group in found.groups()[1:] if group is not None), "")
        attributes.setdefault(name, value)
    return attributes


class PageScraper:
    """Reads the page as it arrives and finds the chat widget in linear time.

    `feed` returns True once reading more is pointless: the widget's opening tag is
    whole and the page has not ended within a megabyte after it, or `max_bytes` have
    come. `result` then reads post ID and nonce. Opening
    `<div` tags are walked left to right with plain searches (no regex that could
    backtrack), resuming where the last chunk left off.
    """

    def __init__(self, *, max_bytes: int = MAX_PAGE_BYTES) -> None:
        self._max_bytes = max_bytes
        self._page = bytearray()
        self._lower = bytearray()
        self._scan = 0  # every <div before this offset has been looked at
        self._no_close_before = 0  # no ">" between the pending <div and this offset
        self._enough = max_bytes  # read no further than this
        self.widget: dict[str, str] | None = None

    def feed(self, chunk: bytes) -> bool:
        room = self._max_bytes - len(self._page)
        chunk = chunk[:room]
        self._page += chunk
        self._lower += chunk.lower()
        if self.widget is None:
            self._find_widget()
            if self.widget is not None:
                self._enough = min(self._max_bytes, self._scan + PAGE_DRAIN_BYTES)
        return len(self._page) >= self._enough

    def _find_widget(self) -> None:
        lower = self._lower
        while True:
            start = lower.find(b"<div", self._scan)
            if start == -1:
                self._scan = max(self._scan, len(lower) - 3)
                return
            if start + 4 < len(lower) and lower[start + 4] not in _TAG_NAME_END:
                self._scan = start + 4  # <divider>, not <div
                continue
            end = lower.find(b">", max(start, self._no_close_before))
            if end == -1:
                self._scan = start  # the tag is not whole yet
                self._no_close_before = len(lower)
                return
            self._scan = end + 1  # after the widget is found: where its tag ends
            if end - start > _MAX_TAG_BYTES or b"wpaicg-chat" not in lower[start:end]:
                continue
            attributes = _attributes(bytes(self._page[start + 4 : end]).decode("utf-8", "replace"))
            if _WIDGET_CLASSES.intersection(attributes.get("class", "").split()):
                self.widget = attributes
                return

    @property
    def text(self) -> str:
        return bytes(self._page).decode("utf-8", "replace")

    def result(self) -> PageInfo:
        """Post ID, nonce and the widget's settings; ScrapeError when they are missing.

        The first chat widget on the page wins. When the page has no widget attributes,
        `wpaicgParams.search_nonce` and WordPress's own post markers stand in. The image
        upload nonce (`wpaicg-img-nonce`) is never taken.
        """
        attributes = self.widget or {}
        html: str | None = None  # decoded only when a fallback needs the whole page

        post_id = None
        if (found := _POST_ID.fullmatch(attributes.get("data-post-id", ""))) is not None:
            post_id = found.group(1)
        else:
            html = self.text
            post_id = _post_id_from_wordpress_markup(html)
        if post_id is None:
            raise ScrapeError(
                "No post ID found: the page has no AI Power chat widget (data-post-id)",
                body=html if html is not None else self.text,
            )

        nonce = attributes.get("data-nonce", "").strip()
        if not _NONCE.fullmatch(nonce):
            html = self.text if html is None else html
            params = _PARAMS_NONCE.search(html)
            if params is None:
                raise ScrapeError(
                    "No nonce found: the chat widget has no data-nonce and the page has no "
                    "wpaicgParams.search_nonce",
                    body=html,
                )
            nonce = params.group(1)

        ajax = _PARAMS_AJAX_URL.search(self._page)
        bot = _DIGITS.fullmatch(attributes.get("data-bot-id", ""))
        classes = attributes.get("class", "").split()
        is_site_widget = attributes.get("data-type") == "widget" or "wpaicg-chatbox" in classes
        return PageInfo(
            post_id=post_id,
            nonce=nonce.lower(),
            bot_id=bot.group(1) if bot else "0",
            action=CHATBOX_ACTION if is_site_widget else SHORTCODE_ACTION,
            streams=attributes.get("data-openai_stream_nav", "").strip() == "1",
            ajax_url=ajax.group(1).decode("utf-8", "replace").replace("\\/", "/") if ajax else None,
        )


def _post_id_from_wordpress_markup(html: str) -> str | None:
    for pattern in _PAGE_POST_ID:
        if (found := pattern.search(html)) is not None:
            return found.group(1)
    for link in _SHORTLINK.finditer(html):
        tag_end = html.find(">", link.end(), link.end() + 1000)
        tag_start = html.rfind("<", max(0, link.start() - 1000), link.start())
        found = (
            _SHORTLINK_POST.search(html, tag_start, tag_end)
            if tag_end != -1 and tag_start != -1
            else None
        )
        if found is not None:
            return found.group(1)
    return None


def scrape_page(html: str | bytes) -> PageInfo:
    """Post ID, nonce and widget settings from a whole page (see `PageScraper`)."""
    scraper = PageScraper(max_bytes=max(MAX_PAGE_BYTES, len(html) * 4))
    scraper.feed(html.encode("utf-8", "surrogatepass") if isinstance(html, str) else html)
    return scraper.result()


# -- §3: the request ----------------------------------------------------------------

_CLIENT_ID_ALPHABET = string.ascii_letters + string.digits


def new_client_id() -> str:
    """A `wpaicg_chat_client_id`: 10 random alphanumerics, one per conversation."""
    return "".join(secrets.choice(_CLIENT_ID_ALPHABET) for _ in range(10))


def build_form(page: PageInfo, *, message: str, site_url: str, client_id: str) -> dict[str, str]:
    """The admin-ajax form (docs/protocol.md §3), field by field."""
    return {
        "_wpnonce": page.nonce,
        "post_id": page.post_id,
        "url": site_url,
        "action": page.action,
        "message": message,
        "bot_id": page.bot_id,
        "chatbot_identity": "widget" if page.action == CHATBOX_ACTION else "shortcode",
        "wpaicg_chat_client_id": client_id,
    }


# -- §4: the answers -----------------------------------------------------------------

# Every wording of "bad or expired nonce" the plugin and WordPress have used.
_STALE_NONCE_MESSAGES = ("nonce verification failed", "security check")
_EXPIRED_LINK_MARKERS = ("the link you followed has expired", "are you sure you want to do this")
# wp_die()'s page, whatever the site's language: the shape of check_admin_referer's 403.
_WP_DIE_MARKERS = ('id="error-page"', "wp-die-message")
# Only challenge pages carry these; Cloudflare's "challenge-platform" script is injected
# into ordinary pages too, so it proves nothing.
_CLOUDFLARE_MARKERS = ("<title>just a moment...</title>", "cf-chl-", "cf_chl_")


def _is_stale_nonce_message(message: str) -> bool:
    lowered = message.strip().lower()
    return lowered in _STALE_NONCE_MESSAGES or lowered.startswith("invalid nonce")


def _is_cloudflare(status: int, headers: Mapping[str, str], body: str) -> bool:
    if status not in (403, 503, 429):
        return False
    if headers.get("cf-mitigated", "").lower() == "challenge":
        return True
    head = body[:8192].lower()
    return any(marker in head for marker in _CLOUDFLARE_MARKERS)


def check_status(
    status: int, headers: Mapping[str, str], body: str, *, ajax: bool = True
) -> None:
    """Raise the typed error for a non-2xx answer; return for 2xx.

    `headers` must look names up case-insensitively (curl_cffi's and httpx's do).
    With `ajax`, the admin-ajax rows apply: the expired-link page means a stale nonce
    and a bare `0` means the plugin has no chat action.
    """
    if 200 <= status < 300:
        return
    if ajax and status == 403 and headers.get("cf-mitigated", "").lower() != "challenge":
        lowered = body[:8192].lower()
        if any(marker in lowered for marker in _EXPIRED_LINK_MARKERS + _WP_DIE_MARKERS):
            raise StaleCredentials("The link you followed has expired.")
    if _is_cloudflare(status, headers, body):
        raise CloudflareError(
            "Cloudflare challenged the request; pass the cf_clearance cookie (and the "
            "user agent) of a browser that passed the challenge",
            status_code=status,
            body=body,
        )
    if ajax and status == 400 and body.strip() == "0":
        raise PluginUnavailableError(
            "This site's plugin no longer speaks this protocol: admin-ajax.php has no "
            "handler for the chat action (AI Power 2.3 and newer removed it)",
            status_code=status,
            body=body,
        )
    retry_after = parse_retry_after(headers.get("retry-after"))
    if status == 429:
        hint = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        raise RateLimitError(
            f"The site is rate limiting requests (HTTP 429){hint}",
            status_code=status,
            body=body,
            retry_after=retry_after,
        )
    if 300 <= status < 400:
        location = redact(headers.get("location", "?"))
        raise HTTPStatusError(
            f"The site redirected the request (HTTP {status}) to {location}; set the "
            "provider's url to the site's final address",
            status_code=status,
            body=body,
        )
    raise HTTPStatusError(
        f"The site answered HTTP {status}", status_code=status, body=body, retry_after=retry_after
    )


# The plugin's refusals, by the flag of a stream event or the words of its message.
_REFUSAL_FLAGS: dict[str, ServiceErrorKind] = {
    "ipBanned": "ip_banned",
    "messageFlagged": "banned_words",
    "pineconeError": "upstream",
}
_REFUSAL_WORDS: tuple[tuple[str, ServiceErrorKind], ...] = (
    ("not allowed to access this feature", "ip_banned"),
    ("prohibited words", "banned_words"),
    ("nothing was inputted", "empty_message"),
)


def _refusal_kind(text: str) -> ServiceErrorKind:
    lowered = text.lower()
    return next((kind for words, kind in _REFUSAL_WORDS if words in lowered), "upstream")


def _raise_for_plugin_error(answer: Mapping[str, Any]) -> None:
    message = answer.get("msg")
    text = message if isinstance(message, str) else ""
    if answer.get("tokenLimitReached"):
        raise ServiceError(
            text or "(no message)",
            prefix="The site's token limit for this visitor was reached",
            kind="token_limit",
        )
    for flag, kind in _REFUSAL_FLAGS.items():
        if answer.get(flag):
            raise ServiceError(text or flag, kind=kind)
    error = answer.get("error")
    if isinstance(error, Mapping):  # an upstream OpenAI error object passed through
        raise ServiceError(str(error.get("message") or error))
    unlabelled = "status" not in answer and "data" not in answer and bool(text)
    if answer.get("status") == "error" or unlabelled:
        if _is_stale_nonce_message(text):
            raise StaleCredentials(text)
        raise ServiceError(text or "(no message)", kind=_refusal_kind(text))


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as err:
        raise ResponseError(
            "Unexpected response: the answer is not valid UTF-8",
            body=body.decode("utf-8", "replace"),
        ) from err


def _reply_from_json(text: str) -> str:
    """The `data` of a plain JSON answer (§4), or the typed error it stands for."""
    stripped = text.strip()
    if not stripped:
        raise ResponseError("Unexpected response: the answer is empty", body="")
    try:
        answer = json.loads(stripped)
    except (ValueError, RecursionError) as err:
        raise ResponseError("Unexpected response: the answer is not JSON", body=stripped) from err
    if not isinstance(answer, dict):
        raise ResponseError("Unexpected response structure: not a JSON object", body=stripped)
    _raise_for_plugin_error(answer)
    if "data" not in answer:
        raise ResponseError("Unexpected response structure: 'data' field missing", body=stripped)
    data = answer["data"]
    if not isinstance(data, str):
        raise ResponseError("Unexpected response structure: 'data' is not a string", body=stripped)
    return data


# How an event stream's first line may begin (a field, or a ":" comment).
_EVENT_STREAM_STARTS = (b"data:", b":", b"event:", b"id:", b"retry:")


class ReplyParser(ReplyReader):
    """Reads an admin-ajax answer, plain JSON (§4) or an event stream (§4), as it comes.

    `feed` takes the bytes as they arrive and returns the text pieces they complete;
    `close` checks the end of the answer and returns the whole reply. Both raise the
    typed error an error answer stands for. The kind of answer is told from its first
    bytes, not its Content-Type, which sites get wrong.
    """

    def __init__(self, *, max_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self._max_bytes = max_bytes
        self._received = 0
        self._buffer = bytearray()
        self._mode: str | None = None  # "json", "events" or "trailer" (after [DONE])
        self._pieces: list[str] = []

    @property
    def streamed(self) -> bool:
        """True when the answer is an event stream."""
        return self._mode in ("events", "trailer")

    def feed(self, chunk: bytes) -> list[str]:
        self._received += len(chunk)
        if self._received > self._max_bytes:
            raise ResponseError(
                f"Unexpected response: the answer is larger than {self._max_bytes} bytes"
            )
        self._buffer += chunk
        if self._mode is None:
            head = bytes(self._buffer.lstrip()[:6])
            if not head:
                self._buffer.clear()  # leading white space says nothing; keep none of it
                return []
            if head.startswith(_EVENT_STREAM_STARTS):
                self._mode = "events"
            elif not head or (
                len(head) < 6 and any(start.startswith(head) for start in _EVENT_STREAM_STARTS)
            ):
                return []  # too little to tell yet
            else:
                self._mode = "json"
        if self._mode != "events":
            return []
        return self._read_events(final=False)

    def _read_events(self, *, final: bool) -> list[str]:
        """Read the complete lines in the buffer (all of it when `final`)."""
        buffer = self._buffer
        cut = len(buffer) if final else buffer.rfind(b"\n") + 1
        if cut <= 0:
            return []
        pieces: list[str] = []
        offset = 0  # where the current line starts; split() keeps the loop in C
        for line in bytes(buffer[:cut]).split(b"\n"):
            offset += len(line) + 1
            line = line.strip()
            if not line:
                continue
            if line.startswith(b"data:"):
                payload = line[5:].strip()
                if payload.startswith(b"[DONE]"):
                    # The plugin appends its JSON right after the stream.
                    self._enter_trailer(payload[6:], offset)
                    break
                if payload == b"[LIMITED]":
                    raise ServiceError(
                        "[LIMITED]",
                        prefix="The site's upstream model stopped the reply",
                        kind="limited",
                    )
                piece = self._read_event(payload)
                if piece:
                    pieces.append(piece)
            elif line.startswith(b"{"):
                # JSON with no [DONE] before it: treat it as the plugin's closing answer.
                self._enter_trailer(line, offset)
                break
        else:
            del buffer[:cut]
        self._pieces.extend(pieces)
        return pieces

    def _enter_trailer(self, head: bytes, offset: int) -> None:
        self._mode = "trailer"
        self._buffer = bytearray(head) + self._buffer[offset:]

    @staticmethod
    def _read_event(payload: bytes) -> str:
        try:
            event = json.loads(payload)
        except (ValueError, RecursionError) as err:
            raise ResponseError(
                "Unexpected response: a stream event is not JSON",
                body=payload.decode("utf-8", "replace"),
            ) from err
        if not isinstance(event, dict):
            raise ResponseError(
                "Unexpected response: a stream event is not a JSON object",
                body=payload.decode("utf-8", "replace"),
            )
        choices = event.get("choices")
        if isinstance(choices, list) and choices:
            choice = choices[0]
            delta = choice.get("delta") if isinstance(choice, dict) else None
            content = delta.get("content") if isinstance(delta, dict) else None
            return content if isinstance(content, str) else ""
        _raise_for_plugin_error(event)
        return ""

    def close(self) -> str:
        """The whole reply, once the answer has ended."""
        if self._mode is None or self._mode == "json":
            return _reply_from_json(_decode(bytes(self._buffer)))
        if self._mode == "events":
            self._read_events(final=True)
        if self._mode == "events":
            raise ResponseError(
                "Unexpected response: the stream ended before [DONE]; the reply is incomplete",
                body="".join(self._pieces)[-200:],
            )
        trailer = _decode(bytes(self._buffer)).strip()
        if not trailer:
            return "".join(self._pieces)
        try:
            answer = json.loads(trailer)
        except (ValueError, RecursionError):
            # [DONE] vouches for the streamed pieces; a mangled trailer adds nothing.
            return "".join(self._pieces)
        if isinstance(answer, dict):
            _raise_for_plugin_error(answer)
            data = answer.get("data")
            if not self._pieces and isinstance(data, str):
                return data
        return "".join(self._pieces)


def parse_reply(body: bytes) -> str:
    """The reply in a complete admin-ajax answer body (plain or streamed)."""
    if body[:1] == b"{" and len(body) <= MAX_RESPONSE_BYTES:  # plain JSON, the usual case
        return _reply_from_json(_decode(body))
    parser = ReplyParser()
    parser.feed(body)
    return parser.close()


# -- the seam ----------------------------------------------------------------------------


def encode_form(page: PageInfo, *, message: str, client_id: str) -> bytes:
    """`build_form` encoded as the browser sends it, reusing the page's fixed parts."""
    before, after = page.form_parts
    return f"{before}{quote_plus(message)}{after}{client_id}".encode("ascii")


class _PageReader(PageReader[PageInfo]):
    __slots__ = ("_scraper",)

    def __init__(self) -> None:
        self._scraper = PageScraper()

    def feed(self, chunk: bytes) -> bool:
        return self._scraper.feed(chunk)

    def text(self) -> str:
        return self._scraper.text

    def result(self, *, page_url: str, site_url: str) -> PageInfo:
        return replace(self._scraper.result(), page_url=page_url, site_url=site_url)


class WpaicgProtocol(ChatProtocol[PageInfo, str]):
    """AI Power 1.8.79-2.2: one admin-ajax POST per turn, the conversation as one prompt."""

    name: ClassVar[str] = "AI Power <= 2.2 (admin-ajax)"
    missing: ClassVar[str] = "No post ID found: the page has no AI Power chat widget (data-post-id)"

    def prepare(self, turns: Sequence[MessageTurn]) -> str:
        prompt = format_turns(turns)
        if not prompt.strip():
            raise ValueError("messages: the prompt is empty; the site would refuse it")
        return prompt

    def page_reader(self) -> PageReader[PageInfo]:
        return _PageReader()

    def usable(self, credentials: PageInfo) -> bool:
        return bool(credentials.post_id and credentials.nonce)

    def turn(
        self,
        credentials: PageInfo,
        conversation: Conversation[str],
        *,
        visitor: str,
        stream: bool,
    ) -> Turn:
        # One request: nothing to ask first (the yield below only makes this a generator).
        return Request(
            "POST",
            credentials.target,
            headers=credentials.headers,
            content=encode_form(credentials, message=conversation.prepared, client_id=visitor),
            follow_redirects=False,  # a redirect would turn the POST into a GET
        )
        yield  # pragma: no cover

    def reply_reader(self, credentials: PageInfo, conversation: Conversation[str]) -> ReplyReader:
        return ReplyParser()

    def read_reply(
        self, credentials: PageInfo, conversation: Conversation[str], body: bytes
    ) -> str:
        return parse_reply(body)

    def check_answer(
        self, status: int, headers: Mapping[str, str], body: str, *, page: bool = False
    ) -> None:
        check_status(status, headers, body, ajax=not page)

    def new_visitor_id(self) -> str:
        return new_client_id()
