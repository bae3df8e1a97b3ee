"""AI Power of any version: the page tells which protocol the site speaks.

The legacy widget (1.8.79-2.2, `protocols/wpaicg.py`) and AIPKit's `data-config`
(2.3+, `protocols/aipkit.py`) never render together: 2.3 removed the legacy shortcode.
The page decides; every later step goes to the protocol of the credentials read from
it. A site that upgrades while a process runs answers the legacy action with HTTP 400
`0`: that is taken as stale credentials, so the page is read again, once, and the call
goes on in the protocol the page now shows (docs/protocol.md §8.6).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Union, cast

from .._exceptions import PluginUnavailableError, StaleCredentials
from .._messages import Turn as MessageTurn
from .._transports.base import Request
from .aipkit import AipkitInfo, AipkitPrepared, AipkitProtocol, AipkitScraper, prepare_aipkit
from .base import (
    Answer,
    ChatProtocol,
    Conversation,
    PageReader,
    ProbeVerdict,
    ReplyReader,
    Turn,
)
from .wpaicg import PageInfo, PageScraper, Prepared, WpaicgProtocol

__all__ = ["AIPowerProtocol", "AIPowerTurns"]

AIPowerCredentials = Union[PageInfo, AipkitInfo]  # noqa: UP007 - a runtime alias on 3.10


@dataclass(frozen=True, slots=True)
class AIPowerTurns:
    """A call's conversation in both shapes (the credentials pick one); the legacy one
    is made at once, which checks the messages before any I/O."""

    turns: tuple[MessageTurn, ...]
    legacy: Prepared

    @property
    def aipkit(self) -> AipkitPrepared:
        return prepare_aipkit(self.turns)


class _PageReader(PageReader[AIPowerCredentials]):
    def __init__(self, bot: str | None) -> None:
        self._legacy = PageScraper(bot=bot)
        self._aipkit = AipkitScraper(bot=bot)

    def feed(self, chunk: bytes) -> bool:
        aipkit_done = self._aipkit.feed(chunk)
        legacy_done = self._legacy.feed(chunk)
        if self._aipkit.config is not None:
            return True
        return aipkit_done and legacy_done

    def text(self) -> str:
        return self._legacy.text

    def result(self, *, page_url: str, site_url: str) -> AIPowerCredentials | None:
        aipkit = self._aipkit.result(page_url=page_url, site_url=site_url)
        if aipkit is not None:
            return aipkit
        legacy = self._legacy.result()
        if legacy is None:
            return None
        return _with_urls(legacy, page_url=page_url, site_url=site_url)


def _with_urls(info: PageInfo, *, page_url: str, site_url: str) -> PageInfo:
    from dataclasses import replace

    return replace(info, page_url=page_url, site_url=site_url)


class AIPowerProtocol(ChatProtocol[AIPowerCredentials, AIPowerTurns]):
    """AI Power 1.8.79 and newer, legacy or AIPKit, as the page shows.

    Each step that depends on the credentials goes to the dialect of their kind
    (`dialect`): `_Legacy` or `_Aipkit`, which the engine also calls directly.
    """

    name: ClassVar[str] = "AI Power (any version)"
    missing: ClassVar[str] = (
        "No AI Power chat on the page: no AIPKit chatbot (data-config), no legacy chat "
        "widget (wpaicg-chat-shortcode or wpaicg-chatbox) and no wpaicgParams"
    )

    def __init__(self) -> None:
        self.legacy = WpaicgProtocol()
        self.aipkit = AipkitProtocol()
        self._as_legacy: AIPowerProtocol = _Legacy(self)
        self._as_aipkit: AIPowerProtocol = _Aipkit(self)

    def dialect(self, credentials: AIPowerCredentials | None) -> AIPowerProtocol:
        return self._as_aipkit if isinstance(credentials, AipkitInfo) else self._as_legacy

    def prepare(self, turns: Sequence[MessageTurn]) -> AIPowerTurns:
        return AIPowerTurns(tuple(turns), self.legacy.prepare(turns))

    def page_reader(self, bot: str | None = None) -> PageReader[AIPowerCredentials]:
        return _PageReader(bot)

    def usable(self, credentials: AIPowerCredentials) -> bool:
        return self.dialect(credentials).usable(credentials)

    def same_credentials(self, old: AIPowerCredentials, new: AIPowerCredentials) -> bool:
        return type(old) is type(new) and old.nonce == new.nonce

    def refresh(self, stale: AIPowerCredentials) -> Request | None:
        return self.dialect(stale).refresh(stale)

    def read_completion(
        self, credentials: AIPowerCredentials, answer: Answer
    ) -> AIPowerCredentials | None:
        return self.dialect(credentials).read_completion(credentials, answer)

    def turn(
        self,
        credentials: AIPowerCredentials,
        conversation: Conversation[AIPowerTurns],
        *,
        visitor: str,
        stream: bool,
    ) -> Turn:
        return self.dialect(credentials).turn(
            credentials, conversation, visitor=visitor, stream=stream
        )

    def reply_reader(
        self, credentials: AIPowerCredentials, conversation: Conversation[AIPowerTurns]
    ) -> ReplyReader:
        return self.dialect(credentials).reply_reader(credentials, conversation)

    def read_reply(
        self,
        credentials: AIPowerCredentials,
        conversation: Conversation[AIPowerTurns],
        body: bytes,
    ) -> str:
        return self.dialect(credentials).read_reply(credentials, conversation, body)

    def check_answer(
        self,
        status: int,
        headers: Mapping[str, str],
        body: str,
        *,
        page: bool = False,
        credentials: object | None = None,
    ) -> None:
        # (no credentials: a page load, whose answer the legacy rules judge)
        dialect = self.dialect(cast("AIPowerCredentials | None", credentials))
        dialect.check_answer(status, headers, body, page=page, credentials=credentials)

    def new_visitor_id(self) -> str:
        return self.aipkit.new_visitor_id()

    # -- `chatgpt4o check`: the protocol of the credentials ------------------------------

    def describe(self, credentials: AIPowerCredentials) -> dict[str, str | int | bool | None]:
        if isinstance(credentials, AipkitInfo):
            return self.aipkit.describe(credentials)
        return self.legacy.describe(credentials)

    def probe(self, credentials: AIPowerCredentials) -> Request:
        if isinstance(credentials, AipkitInfo):
            return self.aipkit.probe(credentials)
        return self.legacy.probe(credentials)

    def read_probe(self, credentials: AIPowerCredentials, answer: Answer) -> ProbeVerdict:
        if isinstance(credentials, AipkitInfo):
            return self.aipkit.read_probe(credentials, answer)
        return self.legacy.read_probe(credentials, answer)


class _Dialect(AIPowerProtocol):
    """AI Power for credentials of one kind: its steps go straight to that protocol."""

    def __init__(self, composite: AIPowerProtocol) -> None:
        # No protocols of its own: the composite's.
        self.legacy = composite.legacy
        self.aipkit = composite.aipkit
        self._composite = composite

    def dialect(self, credentials: AIPowerCredentials | None) -> AIPowerProtocol:
        return self._composite.dialect(credentials)

    @property
    def inner(self) -> ChatProtocol[Any, Any]:
        """The protocol of this dialect's credentials."""
        raise NotImplementedError

    def check_answer(
        self,
        status: int,
        headers: Mapping[str, str],
        body: str,
        *,
        page: bool = False,
        credentials: object | None = None,
    ) -> None:
        try:
            self.inner.check_answer(status, headers, body, page=page)
        except PluginUnavailableError as gone:
            raise _maybe_upgraded(gone) from None


class _Legacy(_Dialect):
    """AI Power <= 2.2 (`wpaicg`), its conversation state marked as the legacy one's."""

    @property
    def inner(self) -> ChatProtocol[Any, Any]:
        return self.legacy

    def usable(self, credentials: AIPowerCredentials) -> bool:
        return bool(credentials.nonce)

    def refresh(self, stale: AIPowerCredentials) -> Request | None:
        return None

    def read_completion(
        self, credentials: AIPowerCredentials, answer: Answer
    ) -> AIPowerCredentials | None:
        return None

    def turn(
        self,
        credentials: AIPowerCredentials,
        conversation: Conversation[AIPowerTurns],
        *,
        visitor: str,
        stream: bool,
    ) -> Turn:
        legacy: Conversation[Prepared] = Conversation(
            conversation.prepared.legacy, recalled=_own(conversation.recalled, "wpaicg")
        )
        # The plugin's client id: 10 alphanumerics, here the start of the visitor's UUID.
        client_id = visitor.replace("-", "")[:10]
        return self.legacy.turn(
            cast(PageInfo, credentials), legacy, visitor=client_id, stream=stream
        )

    def reply_reader(
        self, credentials: AIPowerCredentials, conversation: Conversation[AIPowerTurns]
    ) -> ReplyReader:
        return _LegacyReader(self.legacy, cast(PageInfo, credentials), conversation)

    def read_reply(
        self,
        credentials: AIPowerCredentials,
        conversation: Conversation[AIPowerTurns],
        body: bytes,
    ) -> str:
        legacy: Conversation[Prepared] = Conversation(conversation.prepared.legacy)
        reply = self.legacy.read_reply(cast(PageInfo, credentials), legacy, body)
        if legacy.state is not None:
            conversation.state = ("wpaicg", legacy.state)
        return reply


class _Aipkit(_Dialect):
    """AI Power 2.3+ (`aipkit`), its conversation state marked as AIPKit's."""

    @property
    def inner(self) -> ChatProtocol[Any, Any]:
        return self.aipkit

    def usable(self, credentials: AIPowerCredentials) -> bool:
        return True

    def refresh(self, stale: AIPowerCredentials) -> Request | None:
        return self.aipkit.refresh(cast(AipkitInfo, stale))

    def read_completion(
        self, credentials: AIPowerCredentials, answer: Answer
    ) -> AIPowerCredentials | None:
        return self.aipkit.read_completion(cast(AipkitInfo, credentials), answer)

    def turn(
        self,
        credentials: AIPowerCredentials,
        conversation: Conversation[AIPowerTurns],
        *,
        visitor: str,
        stream: bool,
    ) -> Turn:
        inner: Conversation[AipkitPrepared] = Conversation(
            conversation.prepared.aipkit, recalled=_own(conversation.recalled, "aipkit")
        )
        try:
            last = yield from self.aipkit.turn(
                cast(AipkitInfo, credentials), inner, visitor=visitor, stream=stream
            )
        except PluginUnavailableError as gone:
            raise _maybe_upgraded(gone) from None
        conversation.state = ("aipkit", inner.state)
        return last

    def reply_reader(
        self, credentials: AIPowerCredentials, conversation: Conversation[AIPowerTurns]
    ) -> ReplyReader:
        return self.aipkit.reply_reader(
            cast(AipkitInfo, credentials), Conversation(conversation.prepared.aipkit)
        )

    # the engine's default: the whole body through the reply reader
    read_reply = ChatProtocol.read_reply


def _maybe_upgraded(gone: PluginUnavailableError) -> StaleCredentials:
    """The site's plugin lacks the action these credentials need: upgraded (2.3+ has no
    legacy action) or downgraded under us, or the JSON action gone (2.4.1). Only the
    page can tell: it is read once more."""
    return StaleCredentials(str(gone), if_again=gone, only_if_renewed=True, reload_page=True)


class _LegacyReader(ReplyReader):
    """The legacy reader, handing the Assistant thread it read to the conversation."""

    def __init__(
        self,
        protocol: WpaicgProtocol,
        credentials: PageInfo,
        conversation: Conversation[AIPowerTurns],
    ) -> None:
        self._conversation = conversation
        self._inner: Conversation[Prepared] = Conversation(conversation.prepared.legacy)
        self._reader = protocol.reply_reader(credentials, self._inner)

    def feed(self, chunk: bytes) -> list[str]:
        return self._reader.feed(chunk)

    def close(self) -> str:
        reply = self._reader.close()
        if self._inner.state is not None:
            self._conversation.state = ("wpaicg", self._inner.state)
        return reply


def _own(state: object | None, protocol: str) -> object | None:
    """The part of a remembered state that belongs to `protocol` (a site may switch)."""
    if isinstance(state, tuple) and len(state) == 2 and state[0] == protocol:
        inner: object = state[1]
        return inner
    return None
