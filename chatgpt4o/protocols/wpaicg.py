"""AI Power 1.8.79-2.2 ("wpaicg"): the admin-ajax chat protocol (docs/protocol.md §2-§4).

Pure functions and small parsers, no I/O: reading the page (§2), building the
admin-ajax form with the conversation in the plugin's own history field (§3), and
reading the answers, plain JSON or one of the two event-stream dialects (§4), into a
reply or a typed error; `WpaicgProtocol` puts them behind the engine's protocol seam.

Everything here runs in linear time on any input: the page is walked with plain
searches, and the few regexes cannot backtrack, so a crafted page cannot stall a call.
Nothing is recognised by English wording alone where the plugin's text is translated:
shapes, flags and statuses decide, words are a hint at most.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import secrets
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar
from urllib.parse import quote_plus, urlencode, urlsplit

from .._constants import (
    BROWSER_HEADERS,
    ERROR_BODY_BYTES,
    MAX_PAGE_BYTES,
    MAX_PARAMS_BYTES,
    MAX_RESPONSE_BYTES,
    MAX_TAG_BYTES,
)
from .._exceptions import (
    HTTPStatusError,
    PluginUnavailableError,
    ProviderError,
    ResponseError,
    ScrapeError,
    ServiceError,
    ServiceErrorKind,
    StaleCredentials,
    trim,
)
from .._messages import SYSTEM_ROLES, format_turns
from .._messages import Turn as MessageTurn
from .._transports.base import Request
from ._common import attributes as html_attributes
from ._common import event_object, raise_for_cloudflare, raise_for_status
from .base import Answer, ChatProtocol, Conversation, PageReader, ProbeVerdict, ReplyReader, Turn

__all__ = [
    "AJAX_PATH",
    "CHATBOX_ACTION",
    "SHORTCODE_ACTION",
    "PageInfo",
    "PageScraper",
    "Prepared",
    "ReplyParser",
    "WpaicgProtocol",
    "build_form",
    "check_status",
    "encode_form",
    "new_client_id",
    "parse_reply",
    "prepare_turns",
    "scrape_page",
]

AJAX_PATH = "/wp-admin/admin-ajax.php"
SHORTCODE_ACTION = "wpaicg_chat_shortcode_message"
CHATBOX_ACTION = "wpaicg_chatbox_message"

# -- §2: the page ---------------------------------------------------------------------

# Class names of the chat widget: the shortcode, and the site-wide chatbox.
_WIDGET_CLASSES = frozenset({"wpaicg-chat-shortcode", "wpaicg-chatbox"})
_TAG_NAME_END = frozenset(b" \t\r\n\f/")
_NONCE = re.compile(r"[0-9a-f]{10}", re.IGNORECASE)
# data-post-id="11", or "<11" from the widget's markup bug of plugin 1.9.16-2.2
_POST_ID = re.compile(r"\s*<?\s*(\d{1,20})\s*")
_DIGITS = re.compile(r"\s*(\d{1,20})\s*")
_PARAMS_NAME = b"wpaicgparams"
_DATA_URI = b"data:text/javascript;base64,"


@dataclass(frozen=True)
class PageInfo:
    """What the chat needs from the page: the site's credentials for this protocol.

    The nonce is kept out of the repr. The request's target, headers and the fixed
    part of its form are worked out once per page load, not once per call.
    """

    #: `data-post-id` as a number, or "" (pages with no post; params-only pages).
    post_id: str
    nonce: str = field(repr=False)
    bot_id: str = "0"
    action: str = SHORTCODE_ACTION
    streams: bool = False
    #: The bot is an OpenAI Assistant (`data-assistant-enabled="true"`, 1.8.95+).
    assistant: bool = False
    #: admin-ajax.php as `wpaicgParams.ajax_url` names it, if the page has it.
    ajax_url: str | None = None
    #: The page's own URL, after redirects (set by the caller that fetched it).
    page_url: str | None = None
    #: The site's address as the provider names it.
    site_url: str = ""
    #: The widget's `data-url` (the page's address as WordPress prints it), if any.
    data_url: str | None = None
    #: The oldest release that prints the widget's markup (a hint at the version), if
    #: the markup tells; informational only.
    since: str | None = field(default=None, compare=False)

    @functools.cached_property
    def target(self) -> str:
        """Where the chat request goes (docs/protocol.md §3.1).

        `wpaicgParams.ajax_url` when the page names one on its own host (a nonce is
        never sent to another host), else admin-ajax.php at the page's origin.
        """
        page = urlsplit(self.page_url or self.site_url.rstrip("/") + "/")
        if self.ajax_url:
            named = urlsplit(self.ajax_url)
            if (named.scheme, named.netloc) == (page.scheme, page.netloc):
                return self.ajax_url
        return f"{page.scheme}://{page.netloc}{AJAX_PATH}"

    @functools.cached_property
    def headers(self) -> dict[str, str]:
        """The chat request's headers, as the plugin's browser script sends them (its
        raw fetch sends no X-Requested-With)."""
        page_url = self.page_url or self.site_url.rstrip("/") + "/"
        page = urlsplit(page_url)
        return {
            **BROWSER_HEADERS,
            "content-type": "application/x-www-form-urlencoded; charset=UTF-8",
            "origin": f"{page.scheme}://{page.netloc}",
            "referer": page_url,
        }

    @functools.cached_property
    def form_parts(self) -> tuple[str, str]:
        """The encoded form around the message: (before `message=`, after it up to the
        history), so a call only encodes what is its own."""
        before = urlencode(
            {"_wpnonce": self.nonce, "post_id": self.post_id, "url": self.form_url,
             "action": self.action}
        )
        after = urlencode({"bot_id": self.bot_id, "chatbot_identity": self.identity})
        return before + "&message=", f"&{after}&wpaicg_chat_history="

    @property
    def form_url(self) -> str:
        """The form's `url`: the widget's `data-url`, as the browser sends it."""
        return self.data_url if self.data_url is not None else self.site_url

    @property
    def identity(self) -> str:
        """`chatbot_identity`: custom_bot_<id> for a custom bot, else the widget's kind."""
        if self.bot_id not in ("", "0"):
            return f"custom_bot_{self.bot_id}"
        return "widget" if self.action == CHATBOX_ACTION else "shortcode"


def _read_params(script: str) -> dict[str, Any] | None:
    """The object assigned to `wpaicgParams` in a script's text, if it is there."""
    at = script.lower().find("wpaicgparams")
    while at != -1:
        rest = script[at + len("wpaicgparams") :].lstrip()
        if rest.startswith("="):
            value = rest[1:].lstrip()
            try:
                params, _ = json.JSONDecoder().raw_decode(value)
            except (ValueError, RecursionError):
                return None
            return params if isinstance(params, dict) else None
        at = script.lower().find("wpaicgparams", at + 1)
    return None


# Widget attributes by the release that first prints them, newest first (the emulator's
# pages follow the same history): a page that has one is from that release or newer.
_MARKUP_SINCE = (
    ("data-sidebar-enabled", "1.9.4"),
    ("data-assistant-enabled", "1.8.95"),
    ("data-memory-limit", "1.8.80"),
)


def _markup_since(attributes: Mapping[str, str]) -> str | None:
    """The oldest release whose widget prints `attributes` (`<N`: 1.9.16), if any tells."""
    if attributes.get("data-post-id", "").lstrip().startswith("<"):
        return "1.9.16"
    return next((since for name, since in _MARKUP_SINCE if name in attributes), None)


class PageScraper:
    """Reads the page as it arrives; finds the chat widget and `wpaicgParams`.

    `feed` returns True once reading more is pointless: both are found, or
    `max_bytes` have come. The widget is the first `<div` whose classes name it; its
    opening tags are walked left to right with plain searches, resuming where the last
    chunk left off. `wpaicgParams` is read only from the object assigned to that name,
    inline or in a base64 `data:` script, never from another script's keys.
    """

    def __init__(self, *, max_bytes: int = MAX_PAGE_BYTES, bot: str | None = None) -> None:
        self._max_bytes = max_bytes
        self._bot = bot  # the widget of this data-bot-id; None: the first widget
        self._page = bytearray()
        self._lower = bytearray()
        self._scan = 0  # every <div before this offset has been looked at
        self._no_close_before = 0  # no ">" between the pending <div and this offset
        self._params_scan = 0  # the params searches resume here
        self._uri_scan = 0
        self.widget: dict[str, str] | None = None
        self.params: dict[str, Any] | None = None

    def feed(self, chunk: bytes) -> bool:
        room = self._max_bytes - len(self._page)
        chunk = chunk[:room]
        self._page += chunk
        self._lower += chunk.lower()
        if self.widget is None:
            self._find_widget()
        if self.params is None:
            self._find_params()
        full = len(self._page) >= self._max_bytes
        return full or (self.widget is not None and self.params is not None)

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
            self._scan = end + 1
            if end - start > MAX_TAG_BYTES or b"wpaicg-chat" not in lower[start:end]:
                continue
            attributes = html_attributes(
                bytes(self._page[start + 4 : end]).decode("utf-8", "replace")
            )
            if _WIDGET_CLASSES.intersection(attributes.get("class", "").split()) and (
                self._bot is None or attributes.get("data-bot-id", "0").strip() == self._bot
            ):
                self.widget = attributes
                return

    def _find_params(self) -> None:
        lower = self._lower
        # Inline: `var wpaicgParams = {...};` up to the end of its script.
        while (at := lower.find(_PARAMS_NAME, self._params_scan)) != -1:
            end = lower.find(b"</script", at)
            if end == -1:
                if len(lower) - at > MAX_PARAMS_BYTES:
                    self._params_scan = at + 1  # not a script we can read
                    continue
                return  # wait for the end of the script
            self._params_scan = at + 1
            if end - at <= MAX_PARAMS_BYTES:
                script = bytes(self._page[at:end]).decode("utf-8", "replace")
                self.params = _read_params(script)
                if self.params is not None:
                    return
        self._params_scan = max(self._params_scan, len(lower) - len(_PARAMS_NAME))
        # Optimisers: `<script src="data:text/javascript;base64,...">`.
        while (at := lower.find(_DATA_URI, self._uri_scan)) != -1:
            start = at + len(_DATA_URI)
            quote = next(
                (found for found in (lower.find(b'"', start), lower.find(b"'", start))
                 if found != -1),
                -1,
            )
            if quote == -1:
                if len(lower) - start > MAX_PARAMS_BYTES:
                    self._uri_scan = start
                    continue
                return
            self._uri_scan = quote
            if quote - start > MAX_PARAMS_BYTES:
                continue
            try:
                decoded = base64.b64decode(bytes(self._page[start:quote]), validate=False)
            except (binascii.Error, ValueError):
                continue
            self.params = _read_params(decoded.decode("utf-8", "replace"))
            if self.params is not None:
                return
        self._uri_scan = max(self._uri_scan, len(lower) - len(_DATA_URI))

    @property
    def text(self) -> str:
        return bytes(self._page).decode("utf-8", "replace")

    def result(self) -> PageInfo | None:
        """The site's credentials; None when the page has no trace of the chat.

        The first chat widget wins; its own `data-nonce` is preferred to
        `wpaicgParams.search_nonce`. A missing or empty post ID is sent empty (the
        server only uses it for page context), never guessed from other markup.
        Raises ScrapeError when the chat is there but no nonce is.
        """
        attributes = self.widget
        params = self.params or {}
        if attributes is None and not params:
            return None
        attributes = attributes or {}
        found = _POST_ID.fullmatch(attributes.get("data-post-id", ""))
        post_id = found.group(1) if found is not None else ""

        nonce = attributes.get("data-nonce", "").strip()
        if not _NONCE.fullmatch(nonce):
            search_nonce = params.get("search_nonce")
            nonce = search_nonce.strip() if isinstance(search_nonce, str) else ""
            if not _NONCE.fullmatch(nonce):
                given = attributes.get("data-nonce", "").strip() or nonce
                raise ScrapeError(
                    f"The chat's nonce is not 10 hex digits (it has {len(given)} characters), "
                    "as a WordPress nonce is"
                    if given
                    else "No nonce found: the chat widget has no data-nonce and the page's "
                    "wpaicgParams has no search_nonce",
                    body=self.text,
                )
        ajax_url = params.get("ajax_url")
        bot = _DIGITS.fullmatch(attributes.get("data-bot-id", ""))
        classes = attributes.get("class", "").split()
        is_site_widget = attributes.get("data-type") == "widget" or "wpaicg-chatbox" in classes
        return PageInfo(
            post_id=post_id,
            nonce=nonce.lower(),
            bot_id=bot.group(1) if bot else "0",
            action=CHATBOX_ACTION if is_site_widget else SHORTCODE_ACTION,
            streams=attributes.get("data-openai_stream_nav", "").strip() == "1",
            assistant=attributes.get("data-assistant-enabled", "").strip().lower() == "true",
            ajax_url=ajax_url if isinstance(ajax_url, str) and ajax_url else None,
            data_url=attributes.get("data-url"),
            since=_markup_since(attributes),
        )


def scrape_page(html: str | bytes) -> PageInfo:
    """The credentials in a whole page (see `PageScraper`); ScrapeError without a chat."""
    scraper = PageScraper(max_bytes=max(MAX_PAGE_BYTES, len(html) * 4))
    scraper.feed(html.encode("utf-8", "surrogatepass") if isinstance(html, str) else html)
    info = scraper.result()
    if info is None:
        raise ScrapeError(WpaicgProtocol.missing, body=scraper.text)
    return info


# -- §3: the request ------------------------------------------------------------------

_CLIENT_ID_ALPHABET = string.ascii_letters + string.digits
_HTML_ESCAPES = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#039;"}
)


def _escape_html(text: str) -> str:
    """The text as the browser sends it, HTML-escaped (`_HTML_ESCAPES`)."""
    # Most messages have nothing to escape: five searches cost less than one translate.
    if "&" in text or "<" in text or ">" in text or '"' in text or "'" in text:
        return text.translate(_HTML_ESCAPES)
    return text


# The server deletes every backslash of the history before decoding it, so a JSON
# escape would break it: quotes become entities, backslashes go, line breaks and tabs
# (escaped as \n, \t) become spaces.
_HISTORY_SAFE = str.maketrans({'"': "&quot;", "\\": None, "\n": " ", "\r": " ", "\t": " "})


def new_client_id() -> str:
    """A `wpaicg_chat_client_id`: 10 random alphanumerics, kept per visitor."""
    return "".join(secrets.choice(_CLIENT_ID_ALPHABET) for _ in range(10))


@dataclass(frozen=True, slots=True)
class Prepared:
    """One call's conversation as the plugin takes it: the last user turn as
    `message`, the earlier turns as `wpaicg_chat_history` (JSON)."""

    message: str
    history: str = "[]"
    #: True when the conversation did not end with a user turn and was sent flattened.
    flattened: bool = False
    #: The whole conversation in one message, for an Assistant bot that starts a new
    #: thread: it ignores the history field (None when there are no earlier turns).
    folded: str | None = None


def _history_entry(role: str, text: str) -> str:
    if role == "user":
        return "Human: " + _escape_html(text).translate(_HISTORY_SAFE)
    return "AI: " + text.translate(_HISTORY_SAFE)


def prepare_turns(turns: Sequence[MessageTurn]) -> Prepared:
    """Put a conversation in the plugin's own shape (docs/protocol.md §3.3).

    System text has no field: it goes before the first user turn of the history, or
    before the message when there is no history. A conversation that does not end with
    a user turn is flattened into `message`, as g4f's `format_prompt` does.
    """
    if len(turns) == 1 and turns[0][0] == "user":
        # The usual call, one user message: no system text, no history.
        message = turns[0][1]
        if not message.strip() or message == "0":
            raise ValueError("messages: the prompt is empty; the site would refuse it")
        return Prepared(_escape_html(message))
    system = " ".join(text for role, text in turns if role in SYSTEM_ROLES and text.strip())
    dialogue = [(role, text) for role, text in turns if role not in SYSTEM_ROLES]
    if not dialogue or dialogue[-1][0] != "user":
        message, earlier, flattened = format_turns(turns), [], True
    else:
        message, earlier, flattened = dialogue[-1][1], dialogue[:-1], False
    entries: list[str] = []
    if earlier:
        first_user = next((i for i, (role, _) in enumerate(earlier) if role == "user"), None)
        if system and first_user is not None:
            role, text = earlier[first_user]
            earlier[first_user] = (role, f"{system} {text}")
        elif system:
            earlier.insert(0, ("user", system))
        entries = [_history_entry(role, text) for role, text in earlier]
    elif system and not flattened:
        message = f"{system}\n\n{message}"
    if not message.strip() or message == "0":  # PHP's empty(): the plugin would refuse it
        raise ValueError("messages: the prompt is empty; the site would refuse it")
    history = "[]"
    if entries:
        history = json.dumps(
            [{"id": index, "text": text} for index, text in enumerate(entries, 1)],
            ensure_ascii=False,
            separators=(",", ":"),
        )
    folded = _escape_html(format_turns(turns)) if entries else None
    # The browser HTML-escapes what the visitor typed; so do we (docs/protocol.md §3.3).
    return Prepared(_escape_html(message), history, flattened, folded)


def build_form(
    page: PageInfo,
    *,
    message: str,
    client_id: str,
    history: str = "[]",
    thread_id: str | None = None,
    chat_id: str | None = None,
) -> dict[str, str]:
    """The admin-ajax form (docs/protocol.md §3.2), field by field, in the browser's order."""
    form = {
        "_wpnonce": page.nonce,
        "post_id": page.post_id,
        "url": page.form_url,
        "action": page.action,
        "message": message,
        "bot_id": page.bot_id,
        "chatbot_identity": page.identity,
        "wpaicg_chat_history": history,
        "wpaicg_chat_client_id": client_id,
    }
    if thread_id:
        form["thread_id"] = thread_id
    if chat_id:
        form["chat_id"] = chat_id
    return form


# quote_plus for ASCII text as one str.translate: the form of every call goes through it.
_FORM_QUOTE = str.maketrans(
    {
        code: (
            chr(code)
            if chr(code).isalnum() or chr(code) in "_.-~"
            else "+" if code == 0x20 else f"%{code:02X}"
        )
        for code in range(128)
    }
)


def _quote_form(text: str) -> str:
    """`urllib.parse.quote_plus(text)`, faster for the usual ASCII text."""
    return text.translate(_FORM_QUOTE) if text.isascii() else quote_plus(text)


def encode_form(
    page: PageInfo,
    prepared: Prepared,
    *,
    client_id: str,
    thread_id: str | None = None,
    chat_id: str | None = None,
) -> bytes:
    """`build_form` encoded as the browser sends it, reusing the page's fixed parts."""
    before, after = page.form_parts
    history = "%5B%5D" if prepared.history == "[]" else _quote_form(prepared.history)
    message = _quote_form(prepared.message)
    body = f"{before}{message}{after}{history}&wpaicg_chat_client_id={client_id}"
    if thread_id:
        body += "&thread_id=" + quote_plus(thread_id)
    if chat_id:
        body += "&chat_id=" + chat_id
    return body.encode("ascii")


# -- §4: the answers ------------------------------------------------------------------

# "Bad or expired nonce" in the plugin's English wordings (a hint: sites translate them).
_STALE_NONCE_MESSAGES = ("nonce verification failed", "security check")
# WordPress's wp_nonce_ays() text, whatever the language: the link it adds.
_AYS_LINK = "</p><p><a href="
_EXPIRED_LINK_MARKERS = ("the link you followed has expired", "are you sure you want to do this")
# What PHP prints before the body on sites that display errors (docs/protocol.md §4.9).
_PHP_NOISE = re.compile(
    rb"\s*(?:<br\s*/?>\s*)*(?:PHP\s+)?(?:<b>)?\s*"
    rb"(?:Warning|Notice|Deprecated|Strict Standards|Fatal error|Parse error)\s*(?:</b>)?\s*:",
    re.IGNORECASE,
)
_BREAK_LINE = re.compile(rb"\s*(?:<br\s*/?>\s*)+")


def _is_stale_nonce_message(message: str) -> bool:
    lowered = message.strip().lower()
    return lowered in _STALE_NONCE_MESSAGES or lowered.startswith("invalid nonce")


def _first_line_of(body: str) -> str:
    """The wp_die() text without its markup: what the site said, for the error."""
    text = body.split("</p>", 1)[0]
    text = re.sub(r"<[^>]{0,2000}>", " ", text[:2000])
    return " ".join(text.split()) or body.strip()[:200]


def _stale_nonce_answer(body: str, status: int) -> StaleCredentials:
    """admin-ajax's answer to a rejected nonce (docs/protocol.md §4.7), any language.

    A bare text (no HTML page) is the nonce check itself; if a fresh nonce is rejected
    too, that is a `NonceError`. A whole HTML page may be something else in front of
    the site: a second one is reported as the HTTP error it is.
    """
    bare = "<html" not in body[:8192].lower()
    if body.strip() == "-1":
        said = "-1 (WordPress's AJAX referer check failed)"
    else:
        said = _first_line_of(body) if body.strip() else f"HTTP {status} with an empty body"
    again: ProviderError | None = None
    if not bare:
        again = HTTPStatusError(
            "The site refused the chat request again after a fresh scrape",
            status_code=status,
            body=body,
        )
    return StaleCredentials(said, if_again=again)


def check_status(
    status: int, headers: Mapping[str, str], body: str, *, ajax: bool = True
) -> None:
    """Raise the typed error for a non-2xx answer; return for 2xx.

    `headers` must look names up case-insensitively (curl_cffi's and httpx's do).
    With `ajax`, the admin-ajax rows apply: any 403 that is not Cloudflare's is a
    rejected nonce, whatever its words, and a bare `0` means the plugin has no chat
    action.
    """
    if 200 <= status < 300:
        return
    raise_for_cloudflare(status, headers, body)
    if ajax and status == 403:
        raise _stale_nonce_answer(body, status)
    if ajax and status == 400 and body.strip() == "0":
        raise PluginUnavailableError(
            "This site's plugin no longer speaks this protocol: admin-ajax.php has no "
            "handler for the chat action (AI Power 2.3 and newer removed it)",
            status_code=status,
            body=body,
        )
    raise_for_status(status, headers, body)


# The plugin's refusals: by the flag of a stream event first, by words only as a hint.
_REFUSAL_FLAGS: dict[str, ServiceErrorKind] = {
    "ipBanned": "ip_banned",
    "messageFlagged": "banned_words",
    "modflag": "banned_words",
    "pineconeError": "upstream",
}
_REFUSAL_WORDS: tuple[tuple[str, ServiceErrorKind], ...] = (
    ("not allowed to access this feature", "ip_banned"),
    ("prohibited words", "banned_words"),
    ("nothing was inputted", "empty_message"),
    ("unable to initialize the ai instance", "upstream"),
)


def _refusal_kind(text: str) -> ServiceErrorKind:
    lowered = text.lower()
    return next((kind for words, kind in _REFUSAL_WORDS if words in lowered), "upstream")


def _raise_for_plugin_error(answer: Mapping[str, Any]) -> None:
    """Raise the typed error a JSON answer or flag event stands for; return for a reply."""
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
    if answer.get("success") is False:  # wp_send_json_error: never a reply
        data = answer.get("data")
        said = data if isinstance(data, str) else text or json.dumps(data)[:200]
        raise ServiceError(said or "(no message)")
    unlabelled = "status" not in answer and "data" not in answer and bool(text)
    if answer.get("status") == "error" or unlabelled:
        if _is_stale_nonce_message(text):
            raise StaleCredentials(text)
        kind = _refusal_kind(text)
        refusal = ServiceError(text or "(no message)", kind=kind)
        if set(answer) == {"status", "msg"} and not any(
            words in text.lower() for words, _ in _REFUSAL_WORDS
        ):
            # Up to 1.8.90 the nonce failure is this shape, translated on most sites:
            # worth one fresh nonce, if the page gives a different one.
            raise StaleCredentials(text, if_again=refusal, only_if_renewed=True)
        raise refusal


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as err:
        raise ResponseError(
            "Unexpected response: the answer is not valid UTF-8",
            body=body.decode("utf-8", "replace"),
        ) from err


def _skip_php_noise(body: bytes) -> bytes:
    """`body` without the PHP warnings and notices printed before it."""
    offset = 0
    while True:
        if _PHP_NOISE.match(body, offset) is None:
            breaks = _BREAK_LINE.match(body, offset)
            if breaks is None or breaks.end() == offset:
                return body[offset:]
            offset = breaks.end()
            continue
        end = body.find(b"\n", offset)
        if end == -1:
            return b""
        offset = end + 1


_JSON = json.JSONDecoder()
_JSON_WHITESPACE = " \t\n\r"


def _object_at_once(body: bytes) -> dict[str, Any] | None:
    """The usual answer, a JSON object in UTF-8 with nothing around it, parsed in one
    step; None for anything else, which `_read_json_answer` then looks at with care."""
    if body[:1] != b"{":
        return None
    try:
        # What json.loads does, less its wrappers (encoding detection, two regexes)
        text = body.decode("utf-8")
        answer, end = _JSON.raw_decode(text)
    except (ValueError, RecursionError):  # bad UTF-8 too (a UnicodeDecodeError)
        return None
    if end != len(text) and text[end:].strip(_JSON_WHITESPACE):
        return None  # more after the object
    return answer if isinstance(answer, dict) else None


# The keys of the plugin's answer with a reply (docs/protocol.md §4.2): none is an error flag.
_REPLY_KEYS = frozenset({"status", "msg", "greeting_message", "data", "log", "thread_id"})


def _read_json_answer(body: bytes) -> tuple[str, str | None]:
    """The reply (`data`) and Assistant thread id of a plain JSON answer, or the typed
    error it stands for."""
    answer = _object_at_once(body)
    if answer is None:
        stripped = _decode(body).strip()
        if not stripped:
            raise ResponseError("Unexpected response: the answer is empty", body="")
        try:
            answer = json.loads(stripped)
        except (ValueError, RecursionError) as err:
            lowered = stripped[:8192].lower()
            if _AYS_LINK in lowered or any(mark in lowered for mark in _EXPIRED_LINK_MARKERS):
                # the 403 of a rejected nonce, sent as 200 after a notice (docs/protocol.md §4.9)
                raise _stale_nonce_answer(stripped, 403) from None
            raise ResponseError(
                "Unexpected response: the answer is not JSON", body=stripped
            ) from err
        if not isinstance(answer, dict):
            raise ResponseError("Unexpected response structure: not a JSON object", body=stripped)
    # An answer with "data" and only a reply's keys has no error to raise: the usual case.
    if not (answer.keys() <= _REPLY_KEYS and "data" in answer and answer.get("status") != "error"):
        _raise_for_plugin_error(answer)
    data = answer.get("data")
    if not isinstance(data, str):
        missing = "'data' field missing" if "data" not in answer else "'data' is not a string"
        raise ResponseError(
            f"Unexpected response structure: {missing}", body=_decode(body).strip()
        )
    thread = answer.get("thread_id")
    return data, thread if isinstance(thread, str) and thread else None


# How an event stream's lines begin (a field, or a ":" comment).
_EVENT_STREAM_STARTS = (b"data:", b":", b"event:", b"id:", b"retry:")
# Events of the Assistants dialect (docs/protocol.md §4.10).
_ASSISTANT_EVENTS = (b"thread_id", b"assistant_error", b"done")
# A plugin-made error frame whose word broke its JSON: the text between these.
_FRAME_HEAD = b'{"choices":[{"delta":{"content":"'
_FRAME_TAIL = b'"}}]}'


class ReplyParser(ReplyReader):
    """Reads an admin-ajax answer as it comes (docs/protocol.md §4).

    The answer is plain JSON or an event stream, told from its first bytes after any
    PHP warnings (never from its Content-Type, which sites get wrong). A stream is the
    OpenAI chunk dialect or the Assistants dialect. `feed` returns the reply pieces the
    bytes complete; `close` checks the ending and returns the whole reply. The plugin's
    own error frames (`event: message`) are collected, never yielded, and raised as one
    `ServiceError`; flag events raise at once. `thread_id` is the Assistant thread the
    answer named, if any.
    """

    def __init__(self, *, max_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self._max_bytes = max_bytes
        self._received = 0
        self._buffer = bytearray()
        self._mode: str | None = None  # "json", "events" or "trailer" (after the end)
        self._pieces: list[str] = []
        self._event: bytes | None = None  # the `event:` field of the frame being read
        self._assistant = False
        self._ended = False  # the end marker ([DONE], or done) came
        self._error_runs: list[list[str]] = [[]]  # error words, one list per sequence
        self.thread_id: str | None = None

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
        if self._mode is None and not self._decide():
            return []
        if self._mode != "events":
            return []
        return self._read_events(final=False)

    def _decide(self, *, final: bool = False) -> bool:
        """Tell JSON from a stream once the first real line is in; False: not yet."""
        while True:
            head = bytes(self._buffer[:64]).lstrip()
            if not head:
                self._buffer.clear()  # leading white space says nothing; keep none of it
                return False
            if head.startswith(_EVENT_STREAM_STARTS):
                self._mode = "events"
                return True
            if head[:1] == b"{":
                self._mode = "json"
                return True
            if len(head) < 6 and not final and any(
                start.startswith(head) for start in _EVENT_STREAM_STARTS
            ):
                return False  # too little to tell yet
            line_end = self._buffer.find(b"\n")
            if line_end == -1 and not final and len(self._buffer) < MAX_PARAMS_BYTES:
                return False  # a line that may be PHP's warning: wait until it is whole
            line = self._buffer if line_end == -1 else self._buffer[:line_end]
            if _PHP_NOISE.match(line) is None and _BREAK_LINE.fullmatch(line) is None:
                self._mode = "json"  # not JSON either: `close` says what it is
                return True
            if line_end == -1:
                self._mode = "json"  # nothing but warnings
                return True
            del self._buffer[: line_end + 1]

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
                if self._read_data(line[5:].strip(), pieces, offset):
                    break  # the reply has ended
            elif line.startswith(b"event:"):
                self._event = line[6:].strip()
                if self._event.startswith(b"thread.") or self._event in _ASSISTANT_EVENTS:
                    self._assistant = True
            elif line.startswith(b"{"):
                # JSON with no data: field: the plugin's closing answer (<= 1.8.84).
                self._enter_trailer(line, offset)
                break
            # other fields, comments and PHP's warnings between frames say nothing
        else:
            del buffer[:cut]
        self._pieces.extend(pieces)
        return pieces

    def _read_data(self, payload: bytes, pieces: list[str], offset: int) -> bool:
        """One `data:` line; True once the reply has ended."""
        event, self._event = self._event, None
        if event == b"message":  # a plugin-made error frame (docs/protocol.md §4.6)
            if payload == b"[LIMITED]":
                self._raise_limited()
            self._error_runs[-1].append(_frame_text(payload))
            return False
        if self._assistant and event is not None:
            return self._read_assistant(event, payload, pieces, offset)
        if payload.startswith(b"[DONE]"):
            self._ended = True
            self._enter_trailer(payload[6:], offset)  # the plugin may append its JSON
            return True
        if payload == b"[LIMITED]":
            self._raise_limited()
        answer = event_object(payload)
        choices = answer.get("choices")
        if isinstance(choices, list) and choices:
            choice = choices[0]
            delta = choice.get("delta") if isinstance(choice, dict) else None
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content:
                pieces.append(content)
            elif self._error_runs[-1]:
                self._error_runs.append([])  # the stop frame ends an error sequence
            return False
        _raise_for_plugin_error(answer)
        return False

    def _read_assistant(
        self, event: bytes, payload: bytes, pieces: list[str], offset: int
    ) -> bool:
        if event == b"thread_id":
            self.thread_id = payload.decode("utf-8", "replace").strip() or None
        elif event == b"thread.message.delta":
            delta = event_object(payload).get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            for item in content if isinstance(content, list) else ():
                if isinstance(item, dict) and item.get("type") == "text":
                    text = item.get("text")
                    value = text.get("value") if isinstance(text, dict) else None
                    if isinstance(value, str) and value:
                        pieces.append(value)
        elif event == b"assistant_error":
            said = event_object(payload).get("msg") if payload.startswith(b"{") else None
            raise ServiceError(
                said if isinstance(said, str) and said else payload.decode("utf-8", "replace")
            )
        elif event == b"done":
            self._ended = True
            self._enter_trailer(b"", offset)
            return True
        return False  # the other Assistants events say nothing about the reply

    def _raise_limited(self) -> None:
        said = self._error_text() or "".join(self._pieces)
        raise ServiceError(
            said or "[LIMITED]",
            prefix="The site's upstream model stopped the reply",
            kind="limited",
        )

    def _error_text(self) -> str:
        """The error frames' words, once even when the plugin printed them twice."""
        runs: list[str] = []
        for run in self._error_runs:
            text = "".join(run).strip()
            if text and (not runs or runs[-1] != text):
                runs.append(text)
        return " ".join(runs)

    def _enter_trailer(self, head: bytes, offset: int) -> None:
        self._mode = "trailer"
        self._buffer = bytearray(head) + self._buffer[offset:]

    def close(self) -> str:
        """The whole reply, once the answer has ended."""
        if self._mode is None:
            self._decide(final=True)
        if self._mode is None or self._mode == "json":
            reply, self.thread_id = _read_json_answer(_skip_php_noise(bytes(self._buffer)))
            return reply
        if self._mode == "events":
            self._read_events(final=True)
        error = self._error_text()
        if error:
            raise ServiceError(error, prefix="The site's upstream model failed")
        if not self._ended and (self._mode == "events" or self._pieces):
            # No end marker: a cut stream, even when old releases append their JSON
            ending = "done" if self._assistant else "[DONE]"
            raise ResponseError(
                f"Unexpected response: the stream ended before {ending}; the reply is "
                "incomplete",
                body="".join(self._pieces)[-200:],
            )
        if self._pieces:
            return "".join(self._pieces)
        trailer = _decode(bytes(self._buffer)).strip()
        if not trailer:
            return ""
        try:
            answer = json.loads(trailer)
        except (ValueError, RecursionError):
            return ""  # the end marker vouches for the (empty) reply
        if isinstance(answer, dict):
            _raise_for_plugin_error(answer)
            data = answer.get("data")
            if isinstance(data, str):
                return data
        return ""


def _frame_text(payload: bytes) -> str:
    """The word an error frame carries, also when the word broke the frame's JSON."""
    try:
        event = json.loads(payload)
        content = event["choices"][0]["delta"]["content"]
        if isinstance(content, str):
            return content
    except (ValueError, RecursionError, LookupError, TypeError):
        pass
    if payload.startswith(_FRAME_HEAD) and payload.endswith(_FRAME_TAIL):
        payload = payload[len(_FRAME_HEAD) : -len(_FRAME_TAIL)]
    return payload.decode("utf-8", "replace")


def parse_reply(body: bytes) -> str:
    """The reply in a complete admin-ajax answer body (plain or streamed)."""
    if body[:1] == b"{" and len(body) <= MAX_RESPONSE_BYTES:  # plain JSON, the usual case
        return _read_json_answer(body)[0]
    parser = ReplyParser()
    parser.feed(body)
    return parser.close()


# -- the seam ---------------------------------------------------------------------------


class _PageReader(PageReader[PageInfo]):
    __slots__ = ("_scraper",)

    def __init__(self, bot: str | None = None) -> None:
        self._scraper = PageScraper(bot=bot)

    def feed(self, chunk: bytes) -> bool:
        return self._scraper.feed(chunk)

    def text(self) -> str:
        return self._scraper.text

    def result(self, *, page_url: str, site_url: str) -> PageInfo | None:
        info = self._scraper.result()
        return None if info is None else replace(info, page_url=page_url, site_url=site_url)


class _Reader(ReplyParser):
    """A `ReplyParser` that hands the Assistant thread it read to the conversation."""

    def __init__(self, conversation: Conversation[Prepared]) -> None:
        super().__init__()
        self._conversation = conversation

    def close(self) -> str:
        reply = super().close()
        if self.thread_id:
            self._conversation.state = self.thread_id
        return reply


class WpaicgProtocol(ChatProtocol[PageInfo, Prepared]):
    """AI Power 1.8.79-2.2: one admin-ajax POST per turn, the history in its own field."""

    name: ClassVar[str] = "AI Power <= 2.2 (admin-ajax)"
    missing: ClassVar[str] = (
        "No AI Power chat on the page: no chat widget (wpaicg-chat-shortcode or "
        "wpaicg-chatbox) and no wpaicgParams"
    )

    def prepare(self, turns: Sequence[MessageTurn]) -> Prepared:
        return prepare_turns(turns)

    def page_reader(self, bot: str | None = None) -> PageReader[PageInfo]:
        return _PageReader(bot)

    def usable(self, credentials: PageInfo) -> bool:
        return bool(credentials.nonce)

    def same_credentials(self, old: PageInfo, new: PageInfo) -> bool:
        return old.nonce == new.nonce

    def turn(
        self,
        credentials: PageInfo,
        conversation: Conversation[Prepared],
        *,
        visitor: str,
        stream: bool,
    ) -> Turn:
        # One request: nothing to ask first (the yield below only makes this a generator).
        thread = conversation.recalled if isinstance(conversation.recalled, str) else None
        prepared = conversation.prepared
        if credentials.assistant and thread is None and prepared.folded is not None:
            # A new Assistant thread ignores the history: the conversation goes in the
            # message instead (docs/protocol.md §3.7).
            prepared = Prepared(prepared.folded, flattened=True)
        chat_id = str(secrets.randbelow(100_000) + 1) if credentials.streams else None
        return Request(
            "POST",
            credentials.target,
            headers=credentials.headers,
            content=encode_form(
                credentials,
                prepared,
                client_id=visitor,
                thread_id=thread,
                chat_id=chat_id,
            ),
            follow_redirects=False,  # a redirect would turn the POST into a GET
        )
        yield  # pragma: no cover

    def reply_reader(
        self, credentials: PageInfo, conversation: Conversation[Prepared]
    ) -> ReplyReader:
        return _Reader(conversation)

    def read_reply(
        self, credentials: PageInfo, conversation: Conversation[Prepared], body: bytes
    ) -> str:
        if body[:1] == b"{" and len(body) <= MAX_RESPONSE_BYTES:  # plain JSON, the usual case
            reply, thread = _read_json_answer(body)
            if thread:
                conversation.state = thread
            return reply
        reader = _Reader(conversation)
        reader.feed(body)
        return reader.close()

    def check_answer(
        self,
        status: int,
        headers: Mapping[str, str],
        body: str,
        *,
        page: bool = False,
        credentials: object | None = None,
    ) -> None:
        check_status(status, headers, body, ajax=not page)

    def new_visitor_id(self) -> str:
        return new_client_id()

    # -- `chatgpt4o check` (docs/protocol.md §11) ---------------------------------------

    def describe(self, credentials: PageInfo) -> dict[str, str | int | bool | None]:
        return {
            "plugin": self.name,
            "version": f"{credentials.since or '1.8.79'} to 2.2",
            "bot": credentials.bot_id,
            "widget": "site-wide chatbox" if credentials.action == CHATBOX_ACTION
            else "shortcode",
            "streams": credentials.streams,
            "assistant": credentials.assistant,
            "post_id": int(credentials.post_id) if credentials.post_id else None,
            "endpoint": credentials.target,
        }

    def probe(self, credentials: PageInfo) -> Request:
        # The chat request with an empty message: checked after the nonce, refused before
        # the model ("It appears that nothing was inputted.").
        return Request(
            "POST",
            credentials.target,
            headers=credentials.headers,
            content=encode_form(credentials, Prepared(""), client_id=new_client_id()),
            follow_redirects=False,
        )

    def read_probe(self, credentials: PageInfo, answer: Answer) -> ProbeVerdict:
        if not 200 <= answer.status_code < 300:
            text = answer.body[:ERROR_BODY_BYTES].decode("utf-8", "replace")
            try:
                check_status(answer.status_code, answer.headers, text)
            except StaleCredentials as rejected:  # the 403 of 1.8.91+, in any language
                return ProbeVerdict(False, trim(rejected.server_message))
        try:
            self.read_reply(credentials, Conversation(Prepared("")), answer.body)
        except StaleCredentials as refusal:
            said = trim(refusal.server_message)
            if not refusal.only_if_renewed:
                return ProbeVerdict(False, said)
            # A translated refusal of the two-key shape: up to 1.8.90 a rejected nonce,
            # or the empty message's refusal; later releases reject a nonce with a 403.
            since = tuple(int(part) for part in (credentials.since or "0").split("."))
            return ProbeVerdict(True if since >= (1, 8, 91) else None, said)
        except ServiceError as refusal:
            if refusal.kind != "empty_message":
                raise
            return ProbeVerdict(True, refusal.server_message)
        return ProbeVerdict(True, "(a reply)")
