"""AI Power 2.3+ ("AIPKit"): the two-step admin-ajax chat (docs/protocol.md §8).

A message goes in two requests: `aipkit_cache_sse_message` stores it and answers a
one-time `cache_key`; `aipkit_frontend_chat_stream` (a GET) answers the reply as an event
stream. The site keeps the conversation, keyed by the visitor's `session_id` and the
conversation's `conversation_uuid`: a call that continues a conversation this process
had sends only its new message; any other call starts a new conversation with the
earlier turns folded into its message. Up to 2.4.0 a bot with streaming off is asked
through the JSON action `aipkit_frontend_chat_message`, as the browser does.

No I/O here, as in every protocol module: the engine sends what `turn` describes.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar
from urllib.parse import urlencode, urlsplit

from .._constants import (
    BROWSER_HEADERS,
    ERROR_BODY_BYTES,
    MAX_PAGE_BYTES,
    MAX_RESPONSE_BYTES,
    MAX_TAG_BYTES,
)
from .._exceptions import (
    PluginUnavailableError,
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
from ._common import (
    MarkedTags,
    ScraperReader,
    event_object,
    json_attribute,
    json_object,
    maybe_json,
    raise_for_cloudflare,
    raise_for_status,
)
from .base import Answer, ChatProtocol, Conversation, PageReader, ProbeVerdict, ReplyReader, Turn

__all__ = [
    "AipkitInfo",
    "AipkitPrepared",
    "AipkitProtocol",
    "AipkitReplyReader",
    "AipkitScraper",
    "prepare_aipkit",
]

CACHE_ACTION = "aipkit_cache_sse_message"
STREAM_ACTION = "aipkit_frontend_chat_stream"
JSON_ACTION = "aipkit_frontend_chat_message"
NONCE_ACTION = "aipkit_get_frontend_chat_nonce"

_DATA_CONFIG = b"data-config"
_NONCE = re.compile(r"[0-9a-f]{10}")
# The plugin's script names its release (a stylesheet's ?ver= is a timestamp on 2.4.71).
_VERSION = re.compile(rb"gpt3-ai-content-generator/[^\"'>]{0,200}?\.js\?ver=([0-9][0-9.]{0,20})")
# The step-1 and JSON-action answers to a bad or expired nonce.
_NONCE_CODES = frozenset({"nonce_failure_cache_sse", "nonce_failure"})
# Step 1's refusal of an empty message, after the nonce check.
_EMPTY_CODE = "empty_data_to_cache"
# What the stream says for a bad nonce (2.3.20+); the browser refreshes the nonce on it.
_STREAM_NONCE_FAILURE = "security check failed"
_QUOTA_WORDS = ("reached your quota", "reached your token limit")
_REFUSAL_WORDS: tuple[tuple[str, ServiceErrorKind], ...] = (
    ("ip address has been blocked", "ip_banned"),
    ("prohibited words", "banned_words"),
    ("flagged by the moderation", "banned_words"),
    ("cannot be empty", "empty_message"),
)


@dataclass(frozen=True)
class AipkitInfo:
    """One AIPKit chatbot of a page: the site's credentials for this protocol."""

    bot_id: str
    nonce: str = field(repr=False)
    ajax_url: str
    post_id: int = 0
    #: False when the page says the bot does not stream (2.3-2.4.0): the JSON action.
    streams: bool = True
    #: The plugin's version, when the page's script URL names it.
    version: str | None = None
    page_url: str = ""
    site_url: str = ""

    @property
    def headers(self) -> dict[str, str]:
        # No Origin: a foreign one is refused as an embed (docs/protocol.md §8.3).
        return {**BROWSER_HEADERS, "referer": self.page_url or self.site_url}


def _version_tuple(version: str | None) -> tuple[int, ...]:
    if not version:
        return ()
    return tuple(int(part) for part in version.split(".") if part.isdigit())


class AipkitScraper:
    """Finds the `data-config` of the page's AIPKit chatbots, in linear time."""

    def __init__(self, *, bot: str | None = None, max_bytes: int = MAX_PAGE_BYTES) -> None:
        self._bot = bot
        self._tags = MarkedTags(
            _DATA_CONFIG, max_bytes=max_bytes, max_tag=MAX_TAG_BYTES, look_back=MAX_TAG_BYTES
        )
        self.config: dict[str, Any] | None = None
        self.bots: list[str] = []

    def feed(self, chunk: bytes) -> bool:
        self._tags.feed(chunk)
        if self.config is None:
            for found in self._tags.new_tags():
                config = _read_config(found.get("data-config", ""))
                if config is None:
                    continue
                bot = str(config.get("botId", ""))
                self.bots.append(bot)
                if self._bot is None or bot == self._bot:
                    self.config = config
                    break
        return self.config is not None or self._tags.full

    @property
    def text(self) -> str:
        return self._tags.text

    def result(self, *, page_url: str = "", site_url: str = "") -> AipkitInfo | None:
        config = self.config
        if config is None:
            return None
        nonce = config.get("nonce")
        ajax_url = config.get("ajaxUrl")
        if isinstance(nonce, str) and nonce and not _NONCE.fullmatch(nonce):
            raise ScrapeError(
                f"The AIPKit chatbot's nonce is not 10 hex digits (it has {len(nonce)} "
                "characters), as a WordPress nonce is",
                body=self.text,
            )
        if not isinstance(nonce, str) or not nonce:
            raise ScrapeError("The AIPKit chatbot's data-config has no nonce", body=self.text)
        if not isinstance(ajax_url, str) or not ajax_url.startswith(("http://", "https://")):
            raise ScrapeError("The AIPKit chatbot's data-config has no ajaxUrl", body=self.text)
        ajax_url = _on_host_of(ajax_url, page_url)
        post_id = config.get("postId")
        found = _VERSION.search(self._tags.page)
        return AipkitInfo(
            bot_id=str(config.get("botId", "")),
            nonce=nonce,
            ajax_url=ajax_url,
            post_id=post_id if isinstance(post_id, int) and not isinstance(post_id, bool) else 0,
            streams=config.get("streamEnabled") is not False,
            version=found.group(1).decode("ascii") if found else None,
            page_url=page_url,
            site_url=site_url,
        )


def _on_host_of(ajax_url: str, page_url: str) -> str:
    """`ajaxUrl` when it is on the page's own scheme and host; else admin-ajax.php at the
    page's origin: the nonce is never sent to another host (docs/protocol.md §8.1)."""
    if not page_url:
        return ajax_url
    named, page = urlsplit(ajax_url), urlsplit(page_url)
    if (named.scheme, named.netloc) == (page.scheme, page.netloc):
        return ajax_url
    return f"{page.scheme}://{page.netloc}/wp-admin/admin-ajax.php"


def _read_config(value: str) -> dict[str, Any] | None:
    """A `data-config` attribute (HTML-escaped JSON) as a dict, if it is a bot's."""
    config = json_attribute(value)
    return config if config is not None and "botId" in config else None


# -- the request ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AipkitPrepared:
    """One call's conversation for AIPKit: the new message, and the whole conversation
    folded into one message for a conversation the site does not have yet."""

    message: str
    folded: str


def prepare_aipkit(turns: Sequence[MessageTurn]) -> AipkitPrepared:
    """The last user turn, and the conversation folded (system text included: the
    site's own instructions cannot be set by a visitor)."""
    dialogue = [(role, text) for role, text in turns if role not in SYSTEM_ROLES]
    if dialogue and dialogue[-1][0] == "user" and len(turns) == 1:
        message = folded = dialogue[-1][1]
    else:
        message = dialogue[-1][1] if dialogue and dialogue[-1][0] == "user" else ""
        folded = format_turns(turns)
    if not (message or folded).strip():
        raise ValueError("messages: the prompt is empty; the site would refuse it")
    return AipkitPrepared(message or folded, folded)


def _client_message_id(bot: str) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    tail = "".join(secrets.choice(alphabet) for _ in range(5))
    return f"aipkit-client-msg-{bot}-{time.time_ns() // 1_000_000}-{tail}"


# -- the answers ------------------------------------------------------------------------


def _error_kind(text: str, data: Mapping[str, Any]) -> ServiceErrorKind:
    lowered = text.lower()
    if "quota_notice" in data or any(words in lowered for words in _QUOTA_WORDS):
        return "token_limit"
    return next((kind for words, kind in _REFUSAL_WORDS if words in lowered), "upstream")


def _raise_for_error_text(text: str, data: Mapping[str, Any]) -> None:
    if _STREAM_NONCE_FAILURE in text.lower():
        raise StaleCredentials(text)
    kind = _error_kind(text, data)
    prefix = (
        "The site's usage limit for this visitor was reached"
        if kind == "token_limit"
        else "The site answered with an error"
    )
    raise ServiceError(text or "(no message)", prefix=prefix, kind=kind)


def _raise_for_json_error(answer: Mapping[str, Any]) -> None:
    """`{"success":false,"data":{"message","code"}}`, the shape of every AIPKit refusal."""
    data = answer.get("data")
    data = data if isinstance(data, Mapping) else {}
    message = data.get("message")
    text = message if isinstance(message, str) else json.dumps(answer)[:200]
    if data.get("code") in _NONCE_CODES:
        raise StaleCredentials(text)
    _raise_for_error_text(text, data)


class AipkitReplyReader(ReplyReader):
    """Reads the stream of `aipkit_frontend_chat_stream` (or the JSON action's answer).

    Events are dispatched at their blank line, each with its own name (the default is
    `message`): deltas are pieces; `done` ends the reply; `error` raises (whether `done`
    follows or not); a stream that ends without `done` is incomplete.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._received = 0
        self._event = b""
        self._data: list[bytes] = []
        self._pieces: list[str] = []
        self._done = False
        self._json = False
        self._started = False

    def feed(self, chunk: bytes) -> list[str]:
        self._received += len(chunk)
        if self._received > MAX_RESPONSE_BYTES:
            raise ResponseError(
                f"Unexpected response: the answer is larger than {MAX_RESPONSE_BYTES} bytes"
            )
        if self._done:
            return []
        self._buffer += chunk
        if not self._started:
            head = bytes(self._buffer).lstrip()
            if not head:
                return []
            self._started = True
            self._json = head.startswith(b"{")
        if self._json:
            return []
        cut = self._buffer.rfind(b"\n") + 1
        if cut == 0:
            return []
        pieces: list[str] = []
        # Whole lines only (without the last line break: what follows it is not a blank
        # line yet, only the start of the next chunk).
        for line in bytes(self._buffer[: cut - 1]).split(b"\n"):
            self._line(line.rstrip(b"\r"), pieces)
            if self._done:
                break
        del self._buffer[:cut]
        self._pieces.extend(pieces)
        return pieces

    def _line(self, line: bytes, pieces: list[str]) -> None:
        if not line:
            self._dispatch(pieces)
        elif line.startswith(b":"):
            return  # a comment: the 4 KB flush primer of 2.3.93+
        elif line.startswith(b"event:"):
            self._event = line[6:].strip()
        elif line.startswith(b"data:"):
            self._data.append(line[5:].lstrip(b" "))

    def _dispatch(self, pieces: list[str]) -> None:
        event, data = self._event or b"message", b"\n".join(self._data)
        self._event, self._data = b"", []
        if not data and event == b"message":
            return
        if event == b"message":
            delta = event_object(data).get("delta")
            if isinstance(delta, str) and delta:
                pieces.append(delta)
        elif event == b"done":
            self._done = True
        elif event == b"error":
            payload = event_object(data)
            said = payload.get("error")
            _raise_for_error_text(said if isinstance(said, str) else "", payload)
        elif event == b"display_form_event":
            raise ServiceError(
                "the chatbot asks the visitor to fill in a form, which only a browser can do",
                kind="upstream",
            )
        # message_start, warning, status, ids, citations...: nothing for the reply

    def close(self) -> str:
        if self._json:
            answer = json_object(bytes(self._buffer))
            if answer.get("success") is not True:
                _raise_for_json_error(answer)
            data = answer.get("data")
            reply = data.get("reply") if isinstance(data, Mapping) else None
            if not isinstance(reply, str):
                raise ResponseError(
                    "Unexpected response structure: no reply",
                    body=bytes(self._buffer).decode("utf-8", "replace"),
                )
            return reply
        if not self._done and self._buffer:
            self._line(bytes(self._buffer).rstrip(b"\r\n"), self._pieces)
            self._line(b"", self._pieces)
        if not self._done:
            if not self._started:
                raise ResponseError("Unexpected response: the answer is empty", body="")
            raise ResponseError(
                "Unexpected response: the stream ended before done; the reply is incomplete",
                body="".join(self._pieces)[-200:],
            )
        return "".join(self._pieces)


def check_aipkit_status(
    status: int, headers: Mapping[str, str], body: str, *, page: bool = False
) -> None:
    """The typed error of a non-2xx AIPKit answer; return for 2xx."""
    if 200 <= status < 300:
        return
    raise_for_cloudflare(status, headers, body)
    if not page and status == 400 and body.strip() == "0":
        raise PluginUnavailableError(
            "This site's admin-ajax.php has no AIPKit chat action (the plugin is off, or "
            "older than 2.3)",
            status_code=status,
            body=body,
        )
    if not page and body.lstrip().startswith("{"):
        answer = maybe_json(body)
        if isinstance(answer, dict) and answer.get("success") is False:
            _raise_for_json_error(answer)
    raise_for_status(status, headers, body)


# -- the seam ---------------------------------------------------------------------------


class AipkitProtocol(ChatProtocol[AipkitInfo, AipkitPrepared]):
    """AI Power 2.3 and newer: cache the message, then stream the reply."""

    name: ClassVar[str] = "AI Power 2.3+ (AIPKit)"
    missing: ClassVar[str] = "No AIPKit chatbot on the page (no data-config)"

    def prepare(self, turns: Sequence[MessageTurn]) -> AipkitPrepared:
        return prepare_aipkit(turns)

    def page_reader(self, bot: str | None = None) -> PageReader[AipkitInfo]:
        return ScraperReader(AipkitScraper(bot=bot))

    def same_credentials(self, old: AipkitInfo, new: AipkitInfo) -> bool:
        return old.nonce == new.nonce

    def refresh(self, stale: AipkitInfo) -> Request | None:
        if stale.version is not None and _version_tuple(stale.version) < (2, 3, 41):
            return None  # no nonce endpoint before 2.3.41: the page it is
        return Request(
            "POST",
            stale.ajax_url,
            headers={
                **stale.headers,
                "content-type": "application/x-www-form-urlencoded; charset=UTF-8",
            },
            content=urlencode({"action": NONCE_ACTION, "bot_id": stale.bot_id}).encode(),
            follow_redirects=False,
        )

    def read_completion(self, credentials: AipkitInfo, answer: Answer) -> AipkitInfo | None:
        if answer.status_code == 400 and answer.body.strip() == b"0":
            return None  # an older plugin: load the page
        if not 200 <= answer.status_code < 300:
            check_aipkit_status(
                answer.status_code, answer.headers, answer.body.decode("utf-8", "replace")
            )
        data = json_object(answer.body).get("data")
        nonce = data.get("nonce") if isinstance(data, Mapping) else None
        if not isinstance(nonce, str) or not _NONCE.fullmatch(nonce):
            return None
        return replace(credentials, nonce=nonce)

    def turn(
        self,
        credentials: AipkitInfo,
        conversation: Conversation[AipkitPrepared],
        *,
        visitor: str,
        stream: bool,
    ) -> Turn:
        prepared = conversation.prepared
        continued = conversation.recalled if isinstance(conversation.recalled, str) else None
        conversation_uuid = continued or uuid.uuid4().hex
        conversation.state = conversation_uuid
        # The site keeps the conversation: a continued one gets the new message only.
        message = prepared.message if continued else prepared.folded
        common = {
            "_ajax_nonce": credentials.nonce,
            "bot_id": credentials.bot_id,
        }
        if not credentials.streams:  # 2.3-2.4.0, a bot with streaming off: one request
            fields = {
                "action": JSON_ACTION,
                **common,
                "session_id": visitor,
                "conversation_uuid": conversation_uuid,
                "message": message,
                "user_client_message_id": _client_message_id(credentials.bot_id),
            }
            if credentials.post_id > 0:
                fields["post_id"] = str(credentials.post_id)
            return self._post(credentials, fields)
        answer: Answer = yield self._post(
            credentials,
            {
                "action": CACHE_ACTION,
                **common,
                "message": message,
                "user_client_message_id": _client_message_id(credentials.bot_id),
            },
        )
        body = answer.body.decode("utf-8", "replace")
        check_aipkit_status(answer.status_code, answer.headers, body)
        stored = json_object(answer.body)
        if stored.get("success") is not True:
            _raise_for_json_error(stored)
        data = stored.get("data")
        cache_key = data.get("cache_key") if isinstance(data, Mapping) else None
        if not isinstance(cache_key, str) or not cache_key:
            raise ResponseError("Unexpected response structure: no cache_key", body=body)
        query = {
            "action": STREAM_ACTION,
            "cache_key": cache_key,
            "bot_id": credentials.bot_id,
            "session_id": visitor,
            "conversation_uuid": conversation_uuid,
            "_ts": str(time.time_ns() // 1_000_000),
            "_ajax_nonce": credentials.nonce,
        }
        if credentials.post_id > 0:
            query["post_id"] = str(credentials.post_id)
        separator = "&" if urlsplit(credentials.ajax_url).query else "?"
        return Request(
            "GET",
            f"{credentials.ajax_url}{separator}{urlencode(query)}",
            headers={**credentials.headers, "accept": "text/event-stream"},
            follow_redirects=False,
        )

    @staticmethod
    def _post(credentials: AipkitInfo, fields: Mapping[str, str]) -> Request:
        return Request(
            "POST",
            credentials.ajax_url,
            headers={
                **credentials.headers,
                "content-type": "application/x-www-form-urlencoded; charset=UTF-8",
            },
            content=urlencode(fields).encode(),
            follow_redirects=False,
        )

    def reply_reader(
        self, credentials: AipkitInfo, conversation: Conversation[AipkitPrepared]
    ) -> ReplyReader:
        return AipkitReplyReader()

    def check_answer(
        self,
        status: int,
        headers: Mapping[str, str],
        body: str,
        *,
        page: bool = False,
        credentials: object | None = None,
    ) -> None:
        check_aipkit_status(status, headers, body, page=page)

    def new_visitor_id(self) -> str:
        return str(uuid.uuid4())

    # -- `chatgpt4o check` (docs/protocol.md §11) ---------------------------------------

    def describe(self, credentials: AipkitInfo) -> dict[str, str | int | bool | None]:
        return {
            "plugin": self.name,
            "version": credentials.version or "2.3 or newer",
            "bot": credentials.bot_id,
            "streams": credentials.streams,
            "post_id": credentials.post_id or None,
            "endpoint": credentials.ajax_url,
        }

    def probe(self, credentials: AipkitInfo) -> Request:
        # Step 1 with an empty message: the nonce is checked first, then the empty text
        # is refused (400 empty_data_to_cache); nothing is stored, no model is asked.
        return self._post(
            credentials,
            {
                "action": CACHE_ACTION,
                "_ajax_nonce": credentials.nonce,
                "bot_id": credentials.bot_id,
                "message": "",
                "user_client_message_id": _client_message_id(credentials.bot_id),
            },
        )

    def read_probe(self, credentials: AipkitInfo, answer: Answer) -> ProbeVerdict:
        text = answer.body[:ERROR_BODY_BYTES].decode("utf-8", "replace")
        parsed = maybe_json(text)
        data = parsed.get("data") if isinstance(parsed, dict) else None
        if isinstance(data, Mapping) and data.get("code") == _EMPTY_CODE:  # in any language
            message = data.get("message")
            return ProbeVerdict(True, trim(message if isinstance(message, str) else text))
        try:
            check_aipkit_status(answer.status_code, answer.headers, text)
            stored = json_object(answer.body)
            if stored.get("success") is not True:
                _raise_for_json_error(stored)
        except StaleCredentials as rejected:
            return ProbeVerdict(False, trim(rejected.server_message))
        except ServiceError as refusal:
            if refusal.kind != "empty_message":
                raise
            return ProbeVerdict(True, refusal.server_message)
        return ProbeVerdict(True, "(the site stored the empty message)")
