"""Meow Apps' AI Engine: its chatbot's REST API (docs/protocol.md §9).

The page's `mwai-chatbot-container` carries the chatbot's settings as HTML-escaped JSON
(`data-system`, `data-params`). A guest gets a `wp_rest` nonce from `start_session`
(and a `mwai_session_id` cookie), then POSTs JSON to `chats/submit` with the nonce in
`X-WP-Nonce`: the answer is JSON, or an event stream of `live` pieces and a final `end`
whose reply wins. The client holds the conversation: earlier turns go in `messages`,
the new one in `newMessage`.

No I/O here, as in every protocol module: the engine sends what `turn` describes.
"""

from __future__ import annotations

import json
import re
import secrets
import string
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar
from urllib.parse import urlsplit

from .._constants import (
    BROWSER_HEADERS,
    ERROR_BODY_BYTES,
    MAX_PAGE_BYTES,
    MAX_RESPONSE_BYTES,
    MAX_TAG_BYTES,
)
from .._exceptions import (
    PluginUnavailableError,
    RateLimitError,
    ResponseError,
    ScrapeError,
    ServiceError,
    StaleCredentials,
    trim,
)
from .._messages import SYSTEM_ROLES, format_turns
from .._messages import Turn as MessageTurn
from .._transports.base import Request
from ._common import (
    MarkedTags,
    ScraperReader,
    json_attribute,
    maybe_json,
    raise_for_cloudflare,
    raise_for_status,
)
from .base import Answer, ChatProtocol, Conversation, PageReader, ProbeVerdict, ReplyReader, Turn

__all__ = [
    "AIEngineInfo",
    "AIEnginePrepared",
    "AIEngineProtocol",
    "AIEngineReplyReader",
    "AIEngineScraper",
    "prepare_aiengine",
]

SUBMIT_ROUTE = "/mwai-ui/v1/chats/submit"
SESSION_ROUTE = "/mwai/v1/start_session"
DEFAULT_MAX_LENGTH = 512

_CONTAINER = b"mwai-chatbot-container"
# wp_create_nonce(): 10 hex digits of a hash.
_NONCE = re.compile(r"[0-9a-f]{10}", re.IGNORECASE)
_STALE_CODES = frozenset({"rest_cookie_invalid_nonce", "rest_forbidden"})
_CHAT_ID_ALPHABET = string.ascii_lowercase + string.digits
_JSON_HEADERS = {"content-type": "application/json"}


@dataclass(frozen=True)
class AIEngineInfo:
    """One AI Engine chatbot of a page, and the guest session that speaks to it."""

    rest_url: str
    bot_id: str | None = "default"
    custom_id: str | None = None
    context_id: int | None = None
    #: The `wp_rest` nonce; None until a session is started; "" for a site older than
    #: 2.4.4 with no session route (no header is sent then).
    nonce: str | None = field(default=None, repr=False)
    session: str | None = field(default=None, repr=False)
    max_length: int = DEFAULT_MAX_LENGTH
    start_sentence: str | None = None
    page_url: str = ""
    site_url: str = ""

    def route(self, route: str) -> str:
        """A REST route under the site's `restUrl` (plain permalinks included)."""
        return self.rest_url.rstrip("/") + route

    def headers(self, *, nonce: bool = True) -> dict[str, str]:
        headers = {**BROWSER_HEADERS, **_JSON_HEADERS, "referer": self.page_url or self.site_url}
        if nonce and self.nonce:
            headers["x-wp-nonce"] = self.nonce
        return headers


class AIEngineScraper:
    """Finds the page's `mwai-chatbot-container` elements, in linear time."""

    def __init__(self, *, bot: str | None = None, max_bytes: int = MAX_PAGE_BYTES) -> None:
        self._bot = bot
        # The class comes first in the tag: the marker is near its start.
        self._tags = MarkedTags(_CONTAINER, max_bytes=max_bytes, max_tag=MAX_TAG_BYTES,
                                look_back=1000)
        self.system: dict[str, Any] | None = None
        self.params: dict[str, Any] = {}

    def feed(self, chunk: bytes) -> bool:
        self._tags.feed(chunk)
        if self.system is None:
            for found in self._tags.new_tags():
                if "mwai-chatbot-container" not in found.get("class", "").split():
                    continue
                system = json_attribute(found.get("data-system", ""))
                if system is None or (self._bot is not None and self._bot not in (
                    str(system.get("botId")), str(system.get("customId"))
                )):
                    continue
                self.system = system
                self.params = json_attribute(found.get("data-params", "")) or {}
                break
        return self.system is not None or self._tags.full

    @property
    def text(self) -> str:
        return self._tags.text

    def result(self, *, page_url: str = "", site_url: str = "") -> AIEngineInfo | None:
        system, params = self.system, self.params
        if system is None:
            return None
        rest_url = system.get("restUrl")
        if not isinstance(rest_url, str) or not rest_url.startswith(("http://", "https://")):
            raise ScrapeError("The AI Engine chatbot's data-system has no restUrl", body=self.text)
        bot_id, custom_id = system.get("botId"), system.get("customId")
        if bot_id in (None, "") and custom_id in (None, ""):
            raise ScrapeError(
                "The AI Engine chatbot has neither botId nor customId", body=self.text
            )
        context, limit = system.get("contextId"), params.get("textInputMaxLength")
        nonce, session = system.get("restNonce"), system.get("sessionId")
        if isinstance(nonce, str) and nonce and not _NONCE.fullmatch(nonce):
            raise ScrapeError(
                f"The AI Engine chatbot's restNonce is not 10 hex digits (it has {len(nonce)} "
                "characters), as a WordPress nonce is",
                body=self.text,
            )
        greeting = params.get("startSentence")
        if page_url:  # the nonce goes to the page's own host only (docs/protocol.md §9.1)
            named, page = urlsplit(rest_url), urlsplit(page_url)
            if (named.scheme, named.netloc) != (page.scheme, page.netloc):
                rest_url = f"{page.scheme}://{page.netloc}/wp-json"
        return AIEngineInfo(
            rest_url=rest_url,
            bot_id=None if bot_id in (None, "") else str(bot_id),
            custom_id=None if custom_id in (None, "") else str(custom_id),
            context_id=context if isinstance(context, int) and not isinstance(context, bool)
            else None,
            nonce=nonce if isinstance(nonce, str) and nonce else None,
            session=session if isinstance(session, str) and session else None,
            max_length=limit if isinstance(limit, int) and limit > 0 else DEFAULT_MAX_LENGTH,
            start_sentence=greeting if isinstance(greeting, str) and greeting else None,
            page_url=page_url,
            site_url=site_url,
        )


# -- the request ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AIEnginePrepared:
    """The earlier turns for `messages` and the new one for `newMessage`."""

    history: tuple[tuple[str, str], ...]
    new_message: str


def prepare_aiengine(turns: Sequence[MessageTurn]) -> AIEnginePrepared:
    """Visitors' `messages` keep only user and assistant turns (3.6.3+), so system text
    goes in front of the first user turn (or of the new message)."""
    system = " ".join(text for role, text in turns if role in SYSTEM_ROLES and text.strip())
    dialogue = [(role, text) for role, text in turns if role not in SYSTEM_ROLES]
    if not dialogue or dialogue[-1][0] != "user":
        return AIEnginePrepared((), format_turns(turns))  # nothing to answer: flattened
    earlier, new_message = dialogue[:-1], dialogue[-1][1]
    if system:
        first = next((i for i, (role, _) in enumerate(earlier) if role == "user"), None)
        if first is None:
            new_message = f"{system}\n\n{new_message}"
        else:
            earlier[first] = ("user", f"{system}\n\n{earlier[first][1]}")
    if not new_message.strip():
        raise ValueError("messages: the prompt is empty; the site would refuse it")
    return AIEnginePrepared(tuple(earlier), new_message)


def _short_id(length: int) -> str:
    return "".join(secrets.choice(_CHAT_ID_ALPHABET) for _ in range(length))


# -- the answers ------------------------------------------------------------------------


def _raise_for_error(answer: Mapping[str, Any], status: int | None = None) -> None:
    """AI Engine's refusals: `{"success":false,"message",...}`, or a stream `error`."""
    said = answer.get("message", answer.get("data"))
    text = said if isinstance(said, str) and said else json.dumps(answer)[:200]
    if answer.get("overLimit") is True:
        if status == 429:
            raise RateLimitError(
                f"The site's usage limit was reached: {text}",
                body=text,
                retryable=False,  # the limit lasts a period: asking again will not help
            )
        raise ServiceError(
            text, prefix="The site's usage limit for this visitor was reached", kind="token_limit"
        )
    raise ServiceError(text)


class AIEngineReplyReader(ReplyReader):
    """Reads `chats/submit`'s answer: plain JSON, or `data:` events (`live`, `end`,
    `error`); the `end` event's reply is the authoritative whole reply."""

    def __init__(self, credentials: AIEngineInfo, conversation: Conversation[Any]) -> None:
        self._credentials = credentials
        self._conversation = conversation
        self._body = bytearray()
        self._pending = bytearray()
        self._pieces: list[str] = []
        self._reply: str | None = None

    def feed(self, chunk: bytes) -> list[str]:
        self._body += chunk
        if len(self._body) > MAX_RESPONSE_BYTES:
            raise ResponseError(
                f"Unexpected response: the answer is larger than {MAX_RESPONSE_BYTES} bytes"
            )
        if self._reply is not None:
            return []
        self._pending += chunk
        cut = self._pending.rfind(b"\n") + 1
        if cut == 0:
            return []
        pieces: list[str] = []
        for line in bytes(self._pending[:cut]).split(b"\n"):
            if line.startswith(b"data: ") and self._read_event(line[6:], pieces):
                break
        del self._pending[:cut]
        self._pieces.extend(pieces)
        return pieces

    def _read_event(self, payload: bytes, pieces: list[str]) -> bool:
        event = maybe_json(payload)
        if not isinstance(event, dict):
            return False  # not one of the plugin's events: the browser skips it too
        kind = event.get("type")
        if kind == "live":
            data = event.get("data")
            if isinstance(data, str) and event.get("subtype") in (None, "content") and data:
                pieces.append(data)
            return False
        if kind == "end":
            final = maybe_json(event["data"]) if isinstance(event.get("data"), str) else None
            if not isinstance(final, dict):
                raise ResponseError("Unexpected response: the end event carries no answer",
                                    body=payload.decode("utf-8", "replace"))
            self._reply = self._read_answer(final)
            return True
        if kind == "error":
            _raise_for_error(event)
        return False

    def _read_answer(self, answer: Mapping[str, Any], status: int | None = None) -> str:
        if answer.get("success") is not True:
            _raise_for_error(answer, status)
        reply = answer.get("reply")
        if not isinstance(reply, str):
            raise ResponseError("Unexpected response structure: no reply",
                                body=json.dumps(answer)[:200])
        token = answer.get("new_token")
        if isinstance(token, str) and token:
            self._conversation.credentials = replace(self._credentials, nonce=token)
        return reply

    def close(self) -> str:
        if self._reply is not None:
            return self._reply
        whole = bytes(self._body).strip()
        if not whole:
            raise ResponseError("Unexpected response: the answer is empty", body="")
        answer = maybe_json(whole)
        if isinstance(answer, dict):  # a plain answer, or an error told in JSON
            return self._read_answer(answer)
        raise ResponseError(
            "Unexpected response: the stream ended before its end event; the reply is "
            "incomplete",
            body="".join(self._pieces)[-200:] or whole.decode("utf-8", "replace"),
        )


def check_aiengine_status(
    status: int, headers: Mapping[str, str], body: str, *, page: bool = False
) -> None:
    """The typed error of a non-2xx AI Engine answer; return for 2xx."""
    if 200 <= status < 300:
        return
    raise_for_cloudflare(status, headers, body)
    answer = None if page else maybe_json(body)
    if isinstance(answer, dict):
        code = answer.get("code")
        if code in _STALE_CODES:
            message = answer.get("message")
            raise StaleCredentials(message if isinstance(message, str) else str(code))
        if code == "rest_no_route":
            raise PluginUnavailableError(
                "AI Engine's chatbot API is not there (404 rest_no_route): its Chatbots "
                "module is off, or the plugin is inactive",
                status_code=status,
                body=body,
            )
        if answer.get("success") is False:
            _raise_for_error(answer, status)
    raise_for_status(status, headers, body)


# -- the seam ---------------------------------------------------------------------------


class AIEngineProtocol(ChatProtocol[AIEngineInfo, AIEnginePrepared]):
    """AI Engine 2.0 and newer (a guest session, then `chats/submit`)."""

    name: ClassVar[str] = "AI Engine (Meow Apps)"
    missing: ClassVar[str] = "No AI Engine chatbot on the page (no mwai-chatbot-container)"

    def prepare(self, turns: Sequence[MessageTurn]) -> AIEnginePrepared:
        return prepare_aiengine(turns)

    def page_reader(self, bot: str | None = None) -> PageReader[AIEngineInfo]:
        return ScraperReader(AIEngineScraper(bot=bot))

    def usable(self, credentials: AIEngineInfo) -> bool:
        return credentials.nonce is not None

    def same_credentials(self, old: AIEngineInfo, new: AIEngineInfo) -> bool:
        return old.nonce == new.nonce

    def complete(self, credentials: AIEngineInfo) -> Request | None:
        if credentials.nonce is not None:
            return None
        return self._start_session(credentials)

    def refresh(self, stale: AIEngineInfo) -> Request | None:
        # A new session, without the rejected nonce: core checks it on every route.
        return self._start_session(stale)

    @staticmethod
    def _start_session(credentials: AIEngineInfo) -> Request:
        return Request(
            "POST",
            credentials.route(SESSION_ROUTE),
            headers=credentials.headers(nonce=False),
            content=b"{}",
            follow_redirects=False,
        )

    def read_completion(self, credentials: AIEngineInfo, answer: Answer) -> AIEngineInfo | None:
        body = answer.body.decode("utf-8", "replace")
        parsed = maybe_json(body)
        if answer.status_code == 404 and isinstance(parsed, dict) and (
            parsed.get("code") == "rest_no_route"
        ):
            # Before 2.4.4 there are no sessions. Completing: the page's own nonce, or
            # none at all. Renewing a rejected nonce: only the page has a new one.
            return None if credentials.nonce else replace(credentials, nonce="")
        check_aiengine_status(answer.status_code, answer.headers, body)
        nonce = parsed.get("restNonce") if isinstance(parsed, dict) else None
        if not isinstance(nonce, str) or not nonce:
            raise ResponseError("Unexpected response: start_session gave no nonce", body=body)
        session = parsed.get("sessionId") if isinstance(parsed, dict) else None
        return replace(
            credentials,
            nonce=nonce,
            session=session if isinstance(session, str) and session != "N/A" else None,
        )

    def turn(
        self,
        credentials: AIEngineInfo,
        conversation: Conversation[AIEnginePrepared],
        *,
        visitor: str,
        stream: bool,
    ) -> Turn:
        prepared = conversation.prepared
        if len(prepared.new_message) > credentials.max_length:
            raise ValueError(
                f"messages: the last message has {len(prepared.new_message)} characters; "
                f"this site's chatbot takes at most {credentials.max_length} "
                "(textInputMaxLength)"
            )
        chat_id = conversation.recalled if isinstance(conversation.recalled, str) else None
        conversation.state = chat_id = chat_id or _short_id(10)
        now = time.time_ns() // 1_000_000
        messages = []
        if credentials.start_sentence:  # the browser sends its greeting first
            messages.append({"id": _short_id(6), "role": "assistant",
                             "content": credentials.start_sentence, "who": "AI: ",
                             "timestamp": now})
        messages += [
            {"id": _short_id(6), "role": role, "content": text,
             "who": "AI: " if role == "assistant" else "User: ", "timestamp": now}
            for role, text in prepared.history
        ]
        body = {
            "botId": credentials.bot_id,
            "customId": credentials.custom_id,
            "session": credentials.session,
            "chatId": chat_id,
            "contextId": credentials.context_id,
            "messages": messages,
            "newMessage": prepared.new_message,
            "newFileId": None,
            "newFileIds": None,
            "stream": stream,
        }
        headers = credentials.headers()
        if stream:
            headers["accept"] = "text/event-stream"
        return Request(
            "POST",
            credentials.route(SUBMIT_ROUTE),
            headers=headers,
            content=json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(),
            follow_redirects=False,
        )
        yield  # pragma: no cover

    def reply_reader(
        self, credentials: AIEngineInfo, conversation: Conversation[AIEnginePrepared]
    ) -> ReplyReader:
        return AIEngineReplyReader(credentials, conversation)

    def check_answer(
        self,
        status: int,
        headers: Mapping[str, str],
        body: str,
        *,
        page: bool = False,
        credentials: object | None = None,
    ) -> None:
        check_aiengine_status(status, headers, body, page=page)

    def new_visitor_id(self) -> str:
        return _short_id(16)

    # -- `chatgpt4o check` (docs/protocol.md §11) ---------------------------------------

    def describe(self, credentials: AIEngineInfo) -> dict[str, str | int | bool | None]:
        # What a guest's page prints tells the release: a nonce up to 2.4.3, a session
        # ID up to 3.5.1 (docs/protocol.md §9.1).
        if credentials.nonce:
            version = "2.0 to 2.4.3"
        elif credentials.session:
            version = "2.4.4 to 3.5.1"
        else:
            version = "3.5.2 or newer"
        return {
            "plugin": self.name,
            "version": version,
            "bot": credentials.bot_id or credentials.custom_id,
            "custom": credentials.custom_id is not None,
            "streams": True,  # the server streams whenever a request asks (§9.3)
            "post_id": credentials.context_id,
            "max_length": credentials.max_length,
            "endpoint": credentials.route(SUBMIT_ROUTE),
        }

    def probe(self, credentials: AIEngineInfo) -> Request:
        # chats/submit with an empty newMessage: core checks the nonce, then the plugin's
        # basic check refuses the message (403), before the chatbot or model is looked at.
        body: dict[str, object] = {
            "botId": credentials.bot_id,
            "customId": credentials.custom_id,
            "session": credentials.session,
            "chatId": _short_id(10),
            "contextId": credentials.context_id,
            "messages": [],
            "newMessage": "",
            "newFileId": None,
            "newFileIds": None,
            "stream": False,
        }
        return Request(
            "POST",
            credentials.route(SUBMIT_ROUTE),
            headers=credentials.headers(),
            content=json.dumps(body, separators=(",", ":")).encode(),
            follow_redirects=False,
        )

    def read_probe(self, credentials: AIEngineInfo, answer: Answer) -> ProbeVerdict:
        text = answer.body[:ERROR_BODY_BYTES].decode("utf-8", "replace")
        parsed = maybe_json(text)
        if (
            answer.status_code == 403
            and isinstance(parsed, dict)
            and parsed.get("success") is False
            and "code" not in parsed
        ):
            message = parsed.get("message")
            return ProbeVerdict(True, trim(message if isinstance(message, str) else text))
        try:
            check_aiengine_status(answer.status_code, answer.headers, text)
        except StaleCredentials as rejected:
            return ProbeVerdict(False, trim(rejected.server_message))
        reader = AIEngineReplyReader(credentials, Conversation(None))
        reader.feed(answer.body)
        reader.close()
        return ProbeVerdict(True, "(a reply)")
