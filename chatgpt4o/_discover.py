"""`discover(url)`: which supported chatbot a page runs, found with one page load.

Every provider's protocol reads the same page bytes; the first that finds its chatbot
wins (AI Power before AI Engine, as a page rarely has both). The winner's class comes
back bound to the site (`for_site`), with the credentials and cookies of that page load
already in its cache, so the first call does not load the page again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ._config import check_bot
from ._constants import DEFAULT_IMPERSONATE, DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT
from ._engine import Engine, SiteState
from ._messages import Turn as MessageTurn
from ._provider import AIEngine, Chatgpt4o, WordPressChat
from ._transports.base import AsyncTransport
from .protocols.base import ChatProtocol, Conversation, PageReader, ReplyReader, Turn

__all__ = ["SUPPORTED", "discover"]

#: The provider classes `discover` tries, in this order.
SUPPORTED: tuple[type[WordPressChat], ...] = (Chatgpt4o, AIEngine)


class _AnyReader(PageReader[tuple[int, Any]]):
    """Feeds one page to every candidate's reader."""

    def __init__(self, readers: Sequence[PageReader[Any]]) -> None:
        self._readers = list(readers)
        self._done = [False] * len(readers)

    def feed(self, chunk: bytes) -> bool:
        for index, reader in enumerate(self._readers):
            if not self._done[index]:
                self._done[index] = reader.feed(chunk)
        return all(self._done)

    def text(self) -> str:
        return self._readers[0].text()

    def result(self, *, page_url: str, site_url: str) -> tuple[int, Any] | None:
        for index, reader in enumerate(self._readers):
            credentials = reader.result(page_url=page_url, site_url=site_url)
            if credentials is not None:
                return index, credentials
        return None


class _Discovery(ChatProtocol[tuple[int, Any], None]):
    """A protocol that only reads pages: the candidates' readers side by side."""

    name: ClassVar[str] = "discovery"
    missing: ClassVar[str] = (
        "No supported chatbot on the page: looked for AI Power (its legacy chat widget, "
        "wpaicg-chat-shortcode or wpaicg-chatbox, or an AIPKit data-config, 2.3+) and AI "
        "Engine (mwai-chatbot-container)"
    )

    def __init__(self, candidates: Sequence[type[WordPressChat]]) -> None:
        self.candidates = list(candidates)

    def page_reader(self, bot: str | None = None) -> PageReader[tuple[int, Any]]:
        return _AnyReader([c.protocol.page_reader(bot) for c in self.candidates])

    def check_answer(
        self,
        status: int,
        headers: Mapping[str, str],
        body: str,
        *,
        page: bool = False,
        credentials: object | None = None,
    ) -> None:
        self.candidates[0].protocol.check_answer(status, headers, body, page=True)

    # A discovery never chats.
    def prepare(self, turns: Sequence[MessageTurn]) -> None:
        return None

    def turn(
        self,
        credentials: tuple[int, Any],
        conversation: Conversation[None],
        *,
        visitor: str,
        stream: bool,
    ) -> Turn:
        raise NotImplementedError("discovery reads pages only")

    def reply_reader(
        self, credentials: tuple[int, Any], conversation: Conversation[None]
    ) -> ReplyReader:
        raise NotImplementedError("discovery reads pages only")

    def new_visitor_id(self) -> str:
        return ""


async def discover(
    url: str,
    *,
    bot_id: str | int | None = None,
    proxy: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    cookies: Mapping[str, str] | None = None,
    max_retries: int = DEFAULT_MAX_RETRIES,
    impersonate: str = DEFAULT_IMPERSONATE,
    verify: bool | str = True,
    backend: str | None = None,
    transport: AsyncTransport | None = None,
) -> type[WordPressChat]:
    """The provider class for whatever supported chatbot the page at `url` runs.

    It is `Chatgpt4o.for_site(url, ...)` (AI Power, any version) or
    `AIEngine.for_site(url, ...)`, with what this page load found already cached.
    `bot_id` picks one of several chatbots on the page (default: the first); the
    settings (`verify`, `backend`, `transport`, `max_retries`, `impersonate`) become
    the class's. Raises `ScrapeError` naming the plugins looked for when the page has
    none of them, and the library's other errors for the page load itself.
    """
    bot = check_bot(bot_id)
    settings: dict[str, Any] = {"bot_id": bot} if bot is not None else {}
    for name, value, default in (
        ("max_retries", max_retries, DEFAULT_MAX_RETRIES),
        ("impersonate", impersonate, DEFAULT_IMPERSONATE),
        ("verify", verify, True),
        ("backend", backend, None),
        ("transport", transport, None),
    ):
        if value != default:
            settings[name] = value
    Chatgpt4o.for_site(url, **settings)  # checks the URL and the settings, before any I/O
    discovery = _Discovery(SUPPORTED)
    engine: Engine[tuple[int, Any], None] = Engine(
        discovery, SiteState(), url, "discover", bot
    )
    call = engine.prepare(
        None,
        proxy=proxy,
        timeout=timeout,
        cookies=cookies,
        max_retries=max_retries,
        backend=backend,
        impersonate=impersonate,
        verify=verify,
        transport=transport,
        client=None,
    )
    index, credentials = await engine.read_page(call)
    provider = SUPPORTED[index].for_site(url, **settings)
    provider.reset_cache()
    provider._site.credentials = credentials
    provider._site.cookies = dict(engine.site.cookies)
    return provider
