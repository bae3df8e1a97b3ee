"""The providers: the call engine plus one plugin protocol each, as g4f-style classes.

`Chatgpt4o` speaks AI Power (any version, as the page shows) and is the provider for
chatgpt4o.one; `AIEngine` speaks Meow Apps' AI Engine. `for_site(url)` binds either to a
site; `discover(url)` (`chatgpt4o/_discover.py`) finds which one a page needs. Each class
keeps what it learns about its site (credentials, cookies, visitor id, conversations) in
one `SiteState` of its own.
"""

from __future__ import annotations

import re
from abc import ABCMeta
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar, cast
from urllib.parse import urlsplit

from ._base import AsyncProvider, ProviderModelMixin
from ._config import check_bot, check_site_url
from ._constants import (
    DEFAULT_IMPERSONATE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MODEL,
    DEFAULT_SITE_URL,
    DEFAULT_TIMEOUT,
    MODEL_ALIASES,
)
from ._engine import Call, Engine, SiteState
from ._messages import Messages
from ._pool import SessionScope, aclose_shared_sessions, session_scope
from ._streaming import ReplyStream
from ._transports.base import AsyncTransport
from .protocols.aiengine import AIEngineProtocol
from .protocols.aipkit import AipkitInfo
from .protocols.aipower import AIPowerProtocol
from .protocols.base import ChatProtocol
from .protocols.wpaicg import PageInfo

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["AIEngine", "Chatgpt4o", "WordPressChat"]

_bound_sites: dict[tuple[type, str, tuple[tuple[str, Any], ...]], type] = {}
_SITE_SETTINGS = frozenset(
    {"max_retries", "impersonate", "verify", "backend", "transport", "bot_id"}
)


class _SiteMeta(ABCMeta):
    """Gives each provider class a view of its site's post ID and nonce.

    `Chatgpt4o._post_id` and `Chatgpt4o._nonce` are the names g4f code reads (and
    sometimes sets by hand); they read and write the class's `SiteState`.
    """

    @property
    def _post_id(cls) -> str | None:
        credentials = cls._site.credentials  # type: ignore[attr-defined]
        post_id = getattr(credentials, "post_id", None)
        return str(post_id) if post_id else None

    @_post_id.setter
    def _post_id(cls, value: str | None) -> None:
        _set_credential(cls, post_id=value or "")

    @property
    def _nonce(cls) -> str | None:
        credentials = cls._site.credentials  # type: ignore[attr-defined]
        nonce = getattr(credentials, "nonce", None)
        return nonce if isinstance(nonce, str) and nonce else None

    @_nonce.setter
    def _nonce(cls, value: str | None) -> None:
        _set_credential(cls, nonce=value or "")


def _set_credential(cls: type, **value: str) -> None:
    site: SiteState[object] = cls._site  # type: ignore[attr-defined]
    known = site.credentials
    if isinstance(known, AipkitInfo):
        if "post_id" in value:
            site.credentials = replace(known, post_id=int(value["post_id"] or 0))
        else:
            site.credentials = replace(known, nonce=value["nonce"])
        return
    if known is not None and not isinstance(known, PageInfo):
        if "nonce" not in value:
            raise AttributeError(f"{cls.__name__}'s site has no post ID to set")
        site.credentials = replace(known, nonce=value["nonce"])  # type: ignore[type-var]
        return
    if known is None:
        known = PageInfo(post_id="", nonce="", site_url=cls.url)  # type: ignore[attr-defined]
    site.credentials = replace(known, **value)  # type: ignore[arg-type]


class WordPressChat(AsyncProvider, ProviderModelMixin, metaclass=_SiteMeta):
    """A g4f-style provider for a WordPress site's chatbot: the call engine plus one
    plugin protocol (`protocol`). `Chatgpt4o` and `AIEngine` are the ones to use;
    `for_site(url)` binds either to a site, with a cache of its own.
    """

    url: ClassVar[str | None] = None
    working: ClassVar[bool] = False
    needs_auth: ClassVar[bool] = False
    supports_stream: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    supports_system_message: ClassVar[bool] = True
    label: ClassVar[str | None] = None
    parent: ClassVar[str | None] = None

    default_model: ClassVar[str | None] = DEFAULT_MODEL
    models: ClassVar[list[str]] = [DEFAULT_MODEL]
    model_aliases: ClassVar[dict[str, str]] = dict(MODEL_ALIASES)

    #: Retries in one call, page loads and chat requests together (transport errors,
    #: 408, 409, 429 and 5xx).
    max_retries: ClassVar[int] = DEFAULT_MAX_RETRIES
    #: curl_cffi browser profile.
    impersonate: ClassVar[str] = DEFAULT_IMPERSONATE
    #: TLS verification: True, False, or the path of a CA bundle (for a test site's CA).
    verify: ClassVar[bool | str] = True
    #: HTTP backend: "curl_cffi", "httpx", or None for curl_cffi when it imports.
    backend: ClassVar[str | None] = None
    #: A transport for every call (`chatgpt4o.testing.MockTransport` in tests), or None.
    transport: ClassVar[AsyncTransport | None] = None

    #: Which chatbot of the page to talk to (its id on the page); None for the first.
    bot_id: ClassVar[str | None] = None

    #: The plugin's wire protocol.
    protocol: ClassVar[ChatProtocol[Any, Any]]

    # What the class knows about its site; every subclass starts with its own.
    _site: ClassVar[SiteState[Any]] = SiteState()
    _engine_of: ClassVar[Engine[Any, Any] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._site = SiteState()
        cls._engine_of = None

    # -- public API --------------------------------------------------------------------

    @classmethod
    async def create_async(
        cls,
        model: str,
        messages: Messages,
        proxy: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        cookies: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> str:
        """Send the conversation and return the whole reply.

        `timeout` bounds the whole call (page load, chat request, retries); `proxy` is
        an http(s):// or socks5:// URL; `cookies` go with every request to the site.
        Keywords `max_retries`, `backend`, `impersonate`, `verify`, `transport` and
        `client` override the class's settings. Raises a `ProviderError` subclass for
        anything the site or the network does wrong, and TypeError or ValueError for
        bad arguments, before any I/O.
        """
        kwargs.pop("stream", None)
        engine, call = cls._prepare(model, messages, proxy, timeout, cookies, kwargs)
        return await engine.reply(call)

    @classmethod
    async def create_async_generator(
        cls,
        model: str,
        messages: Messages,
        stream: bool = True,
        proxy: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        cookies: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[str]:
        """The reply in pieces as the site streams them; the whole reply once when
        the site does not stream, or with `stream=False`.

        Retries (and the stale-nonce recovery) happen only before the first piece.
        """
        engine, call = cls._prepare(model, messages, proxy, timeout, cookies, kwargs)
        if not stream:
            yield await engine.reply(call)
            return
        async with await engine.stream(call) as pieces:
            async for piece in pieces:
                yield piece

    @classmethod
    async def stream(
        cls,
        model: str,
        messages: Messages,
        proxy: str | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        cookies: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> ReplyStream:
        """The reply as a `ReplyStream`, opened up to its first piece:
        `async with await Chatgpt4o.stream(...) as reply: async for piece in reply: ...`.
        """
        engine, call = cls._prepare(model, messages, proxy, timeout, cookies, kwargs)
        return await engine.stream(call)

    @classmethod
    def for_site(cls, url: str, **settings: Any) -> type[Self]:
        """A subclass bound to the site at `url`, with a cache of its own.

        The same arguments give the same class back, so its cache is shared by the calls
        that ask for it. `working` is True and `label` is the site's host. `settings`
        sets class attributes: `max_retries`, `impersonate`, `verify`, `backend`,
        `transport`, `bot_id`.
        """
        url = check_site_url(url)
        check_bot(settings.get("bot_id"))
        unknown = set(settings) - _SITE_SETTINGS
        if unknown:
            raise TypeError(
                f"for_site() got unknown settings {', '.join(sorted(unknown))}; "
                f"it takes {', '.join(sorted(_SITE_SETTINGS))}"
            )
        key = (cls, url, tuple(sorted(settings.items())))
        bound = _bound_sites.get(key)
        if bound is None:
            host = urlsplit(url).netloc
            name = f"{cls.__name__}_" + re.sub(r"\W", "_", host)
            metaclass: type[type] = type(cls)
            bound = metaclass(
                name,
                (cls,),
                {
                    "url": url,
                    "working": True,
                    "label": host,
                    "__module__": cls.__module__,
                    **settings,
                },
            )
            bound.__qualname__ = name
            _bound_sites[key] = bound
        return cast("type[Self]", bound)

    @classmethod
    async def aclose(cls) -> None:
        """Close the HTTP sessions this library opened in the running event loop."""
        await aclose_shared_sessions()

    @classmethod
    def session(cls) -> AbstractAsyncContextManager[SessionScope]:
        """`async with Chatgpt4o.session():` calls inside the block (and the tasks it
        starts) get HTTP sessions of their own, closed when the block ends."""
        return session_scope()

    @classmethod
    def reset_cache(cls) -> None:
        """Forget everything known about the site: credentials, cookies, visitor id."""
        cls._site = SiteState()
        cls._engine_of = None

    # -- the call ----------------------------------------------------------------------

    @classmethod
    def _engine(cls) -> Engine[Any, Any]:
        engine = cls._engine_of
        if (
            engine is None
            or engine.url != cls.url
            or engine.site is not cls._site
            or engine.bot != cls.bot_id
        ):
            if cls.url is None:
                raise ValueError(
                    f"{cls.__name__} needs the address of a page with the chatbot: "
                    f"{cls.__name__}.for_site(url), or a subclass that sets url"
                )
            url = check_site_url(cls.url, f"{cls.__name__}.url")
            engine = cls._engine_of = Engine(
                cls.protocol, cls._site, url, cls.__name__, check_bot(cls.bot_id)
            )
        return engine

    @classmethod
    def _prepare(
        cls,
        model: str,
        messages: Messages,
        proxy: str | None,
        timeout: float | None,
        cookies: Mapping[str, str] | None,
        options: dict[str, Any],
    ) -> tuple[Engine[Any, Any], Call[Any]]:
        """Everything a call needs, checked before any I/O."""
        cls.get_model(model)
        engine = cls._engine()
        call = engine.prepare(
            messages,
            proxy=proxy,
            timeout=timeout,
            cookies=cookies,
            max_retries=options.pop("max_retries", cls.max_retries),
            backend=options.pop("backend", cls.backend),
            impersonate=options.pop("impersonate", cls.impersonate),
            verify=options.pop("verify", cls.verify),
            transport=options.pop("transport", cls.transport),
            client=options.pop("client", None),
        )
        if options:
            import logging

            logging.getLogger(__name__).debug(
                "%s ignores options: %s", cls.__name__, ", ".join(sorted(options))
            )
        return engine, call


class Chatgpt4o(WordPressChat):
    """gpt-4o-mini through the free chat of chatgpt4o.one: WordPress with AI Power.

    It speaks AI Power of any version, as the page shows: the legacy chat (1.8.79-2.2)
    or AIPKit (2.3+). `Chatgpt4o.for_site(url)` gives a class for any other site that
    runs the plugin; each class keeps its own cache of the site's credentials.
    """

    url: ClassVar[str | None] = DEFAULT_SITE_URL
    # The public site stopped answering in late 2024; the flag says so honestly.
    working: ClassVar[bool] = False
    label: ClassVar[str | None] = "chatgpt4o.one"
    protocol: ClassVar[ChatProtocol[Any, Any]] = AIPowerProtocol()


class AIEngine(WordPressChat):
    """The chatbot of any WordPress site that runs Meow Apps' AI Engine.

    It has no site of its own: `AIEngine.for_site(url)` (or a subclass that sets `url`)
    with the address of a page that shows the chatbot; without one a call raises
    ValueError before any I/O. The site's settings choose the model.
    """

    label: ClassVar[str | None] = "AI Engine"
    protocol: ClassVar[ChatProtocol[Any, Any]] = AIEngineProtocol()
