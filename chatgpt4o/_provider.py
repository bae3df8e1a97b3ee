"""`Chatgpt4o`: the provider for chatgpt4o.one and every site that runs the same plugin.

A call reads like the protocol:

1. resolve the model, check the messages, flatten them into one prompt (no I/O yet);
2. GET the page and scrape post ID and nonce, unless this site's are cached on the
   class (concurrent cold calls scrape once);
3. POST the form to admin-ajax.php and read the answer, plain JSON or a stream;
4. on a stale nonce, scrape again and retry once; on transport errors, 408, 409, 429
   and 5xx, back off and retry; all of it within one deadline.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import re
import time
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Mapping,
)
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast
from urllib.parse import urlsplit

from ._base import (
    AsyncProvider,
    ProviderModelMixin,
)
from ._config import check_cookies, check_retries, check_site_url, check_timeout
from ._constants import (
    BROWSER_HEADERS,
    DEFAULT_IMPERSONATE,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MODEL,
    DEFAULT_SITE_URL,
    DEFAULT_TIMEOUT,
    MAX_RETRY_AFTER,
    MODEL_ALIASES,
)
from ._deadline import Deadline
from ._exceptions import (
    HTTPStatusError,
    NonceError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    redact,
)
from ._messages import Messages, format_prompt
from ._protocol import (
    AJAX_PATH,
    PageInfo,
    PageScraper,
    ReplyParser,
    StaleNonceAnswer,
    build_form,
    check_status,
    new_client_id,
    parse_reply,
)
from ._retry import RETRYABLE_STATUS_CODES, RetryPolicy
from ._session import (
    SessionScope,
    StreamResponse,
    StreamSession,
    aclose_shared_sessions,
    loop_local,
    session_scope,
)

__all__ = ["Chatgpt4o"]

if TYPE_CHECKING:
    from typing_extensions import Self

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

# How much of an error answer's body is read to tell what it is.
_ERROR_BODY_BYTES = 64 * 1024


@functools.cache
def _retry_policy(max_retries: int) -> RetryPolicy:
    return RetryPolicy(max_retries=max_retries)


@dataclass
class _Scrapes:
    """One site's page scrape under way in one event loop, if any."""

    under_way: asyncio.Future[PageInfo | None] | None = None


@dataclass
class _OpenStream:
    """A streamed answer that has begun: its first pieces, and the rest to read."""

    response: StreamResponse
    chunks: AsyncGenerator[bytes, None]
    parser: ReplyParser
    first: list[str] = field(default_factory=list)
    #: The whole reply, when the answer ended before any piece (plain JSON, say).
    reply: str | None = None

    async def aclose(self) -> None:
        await self.response.aclose()
        await self.chunks.aclose()


@dataclass
class _Call:
    """One call's settings, checked before any I/O."""

    prompt: str
    deadline: Deadline
    session: StreamSession
    retry: RetryPolicy
    user_cookies: dict[str, str] = field(repr=False)


_bound_sites: dict[tuple[type, str], type] = {}


class Chatgpt4o(AsyncProvider, ProviderModelMixin):
    """gpt-4o-mini through the free chat of chatgpt4o.one (WordPress, AI Power plugin).

    Subclass it with another `url` to talk to any site that runs the same plugin; each
    subclass keeps its own cache of post ID, nonce and cookies.
    """

    url: ClassVar[str] = DEFAULT_SITE_URL
    # The public site stopped answering in late 2024; the flag says so honestly.
    working: ClassVar[bool] = False
    needs_auth: ClassVar[bool] = False
    supports_stream: ClassVar[bool] = True
    supports_message_history: ClassVar[bool] = True
    supports_system_message: ClassVar[bool] = True
    label: ClassVar[str | None] = "chatgpt4o.one"
    parent: ClassVar[str | None] = None

    default_model: ClassVar[str | None] = DEFAULT_MODEL
    models: ClassVar[list[str]] = [DEFAULT_MODEL]
    model_aliases: ClassVar[dict[str, str]] = dict(MODEL_ALIASES)

    #: Retries after the first try (transport errors, 408, 409, 429, 5xx).
    max_retries: ClassVar[int] = DEFAULT_MAX_RETRIES
    #: curl_cffi browser profile.
    impersonate: ClassVar[str] = DEFAULT_IMPERSONATE
    #: TLS verification: True, False, or the path of a CA bundle (for a test site's CA).
    verify: ClassVar[bool | str] = True
    #: HTTP backend: "curl_cffi", "httpx", or None for curl_cffi when it imports.
    backend: ClassVar[str | None] = None

    # The site's state, cached on the class; every subclass starts with its own.
    _post_id: ClassVar[str | None] = None
    _nonce: ClassVar[str | None] = None
    _widget: ClassVar[PageInfo | None] = None
    _site_cookies: ClassVar[dict[str, str]] = {}
    _client_id: ClassVar[str | None] = None
    _checked_url: ClassVar[str | None] = None
    # Where the POST goes for the cached page, and its headers (worked out once).
    _target: ClassVar[tuple[PageInfo, str, dict[str, str]] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = vars(cls)
        if "_post_id" not in own:
            cls._post_id = None
        if "_nonce" not in own:
            cls._nonce = None
        cls._widget = None
        cls._site_cookies = {}
        cls._client_id = None
        cls._checked_url = None
        cls._target = None

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

        `timeout` bounds the whole call (scrape, POST, retries); `proxy` is an
        http(s):// or socks5:// URL; `cookies` go with every request to the site.
        `max_retries` (keyword) overrides the class default. Raises a `ProviderError`
        subclass for anything the site or the network does wrong, and TypeError or
        ValueError for bad arguments, before any I/O.
        """
        kwargs.pop("stream", None)
        call = cls._prepare(model, messages, proxy, timeout, cookies, kwargs)
        try:
            return await cls._recovering(call, lambda page: cls._ask(call, page))
        finally:
            call.deadline.close()

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
    ) -> AsyncGenerator[str, None]:
        """The reply in pieces as the site streams them; the whole reply once when
        the site does not stream, or with `stream=False`.

        Retries (and the stale-nonce recovery) happen only before the first piece.
        """
        call = cls._prepare(model, messages, proxy, timeout, cookies, kwargs)
        try:
            if not stream:
                yield await cls._recovering(call, lambda page: cls._ask(call, page))
                return
            opened = await cls._recovering(call, lambda page: cls._open_stream(call, page))
            try:
                if opened.reply is not None:  # the answer ended before any piece
                    if opened.reply:
                        yield opened.reply
                    return
                for piece in opened.first:
                    yield piece
                while True:
                    async with call.deadline.scope():
                        chunk = await anext(opened.chunks, None)
                    if chunk is None:
                        break
                    for piece in opened.parser.feed(chunk):
                        yield piece
                opened.parser.close()  # raises if the stream ended badly
            finally:
                await opened.aclose()
        finally:
            call.deadline.close()

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
    def for_site(cls, url: str) -> type[Self]:
        """A subclass bound to the site at `url`, with a cache of its own.

        The same class comes back for the same `url` (so its cache is shared by the
        calls that ask for it); `working` is True and `label` is the site's host.
        """
        url = check_site_url(url)
        key = (cls, url)
        bound = _bound_sites.get(key)
        if bound is None:
            host = urlsplit(url).netloc
            name = f"{cls.__name__}_" + re.sub(r"\W", "_", host)
            metaclass: type[type] = type(cls)
            bound = metaclass(
                name,
                (cls,),
                {"url": url, "working": True, "label": host, "__module__": cls.__module__},
            )
            bound.__qualname__ = name
            _bound_sites[key] = bound
        return cast("type[Self]", bound)

    @classmethod
    def reset_cache(cls) -> None:
        """Forget this site's post ID, nonce and cookies; the next call scrapes again."""
        cls._post_id = None
        cls._nonce = None
        cls._widget = None
        cls._site_cookies = {}

    # -- the call ----------------------------------------------------------------------

    @classmethod
    def _prepare(
        cls,
        model: str,
        messages: Messages,
        proxy: str | None,
        timeout: float | None,
        cookies: Mapping[str, str] | None,
        options: dict[str, Any],
    ) -> _Call:
        cls.get_model(model)
        prompt = format_prompt(messages)
        if not prompt.strip():
            raise ValueError("messages: the prompt is empty; the site would refuse it")
        if cls._checked_url != cls.url:
            site = urlsplit(cls.url)
            if site.scheme not in ("http", "https") or not site.hostname:
                raise ValueError(f"{cls.__name__}.url must be an http(s) URL, got {cls.url!r}")
            cls._checked_url = cls.url
        max_retries = check_retries(options.pop("max_retries", cls.max_retries))
        user_cookies = check_cookies(cookies)
        session = StreamSession(
            headers=BROWSER_HEADERS,
            proxy=proxy,  # checked by the session
            timeout=check_timeout(timeout),
            impersonate=options.pop("impersonate", cls.impersonate),
            verify=options.pop("verify", cls.verify),
            backend=options.pop("backend", cls.backend),
            client=options.pop("client", None),
        )
        if options:
            logger.debug("%s ignores options: %s", cls.__name__, ", ".join(sorted(options)))
        return _Call(
            prompt=prompt,
            deadline=Deadline(session.timeout),
            session=session,
            retry=_retry_policy(max_retries),
            user_cookies=user_cookies,
        )

    @classmethod
    async def _recovering(cls, call: _Call, attempt: Callable[[PageInfo], Awaitable[_T]]) -> _T:
        """Run `attempt` with this site's page info until it succeeds or must give up.

        A stale nonce is scraped again once; transport errors, 408, 409, 429 and 5xx
        are retried per the call's policy, within its deadline.
        """
        page = await cls._page(call)
        renewed = False
        tries = 0
        while True:
            try:
                return await attempt(page)
            except StaleNonceAnswer as answer:
                if renewed:
                    if cls._nonce == page.nonce:
                        cls._nonce = None  # dead: the next call starts from the page
                    raise NonceError(
                        answer.server_message,
                        prefix="The site rejected the chat nonce again after a fresh scrape",
                        kind="nonce",
                    ) from None
                renewed = True
                logger.info("%s: the nonce is stale; scraping the page again", cls.__name__)
                page = await cls._page(call, stale=page)
            except ProviderError as err:
                if not await cls._before_retry(call, err, tries):
                    raise
                tries += 1

    @classmethod
    async def _before_retry(cls, call: _Call, error: ProviderError, attempt: int) -> bool:
        """Sleep before retrying after `error`; False when it must not be retried."""
        if isinstance(error, ProviderTimeoutError) or attempt >= call.retry.max_retries:
            return False
        retry_after: float | None = None
        if isinstance(error, RateLimitError):
            if error.status_code != 429:
                return False  # the plugin's token limit: asking again will not help
            retry_after = error.retry_after
        elif type(error) is HTTPStatusError:
            if error.status_code not in RETRYABLE_STATUS_CODES:
                return False
            retry_after = error.retry_after
        elif not isinstance(error, ProviderConnectionError):
            return False
        delay = call.retry.backoff(attempt, retry_after=retry_after)
        # Without a deadline, a server asking for more than a minute is not waited for.
        ceiling = MAX_RETRY_AFTER if call.deadline.timeout is None else math.inf
        if delay >= min(call.deadline.remaining(), ceiling):
            logger.info(
                "%s: not retrying (%s): waiting %.2f s would pass the deadline",
                cls.__name__, error, delay,
            )
            return False
        logger.info(
            "%s: retry %d of %d in %.2f s after: %s",
            cls.__name__, attempt + 1, call.retry.max_retries, delay, error,
        )
        await call.deadline.sleep(delay)
        return True

    @classmethod
    async def _retrying(cls, call: _Call, operation: Callable[[], Awaitable[_T]]) -> _T:
        attempt = 0
        while True:
            try:
                return await operation()
            except ProviderError as err:
                if not await cls._before_retry(call, err, attempt):
                    raise
                attempt += 1

    # -- step 2: the page --------------------------------------------------------------

    @classmethod
    def _cached_page(cls) -> PageInfo | None:
        if not cls._post_id or not cls._nonce:
            return None
        widget = cls._widget
        if widget is not None and (widget.post_id, widget.nonce) == (cls._post_id, cls._nonce):
            return widget
        # _post_id and _nonce are the seed's names and may be set by hand: they win
        widget = replace(widget or PageInfo(post_id="", nonce=""), post_id=cls._post_id,
                         nonce=cls._nonce)
        cls._widget = widget
        return widget

    @classmethod
    async def _page(cls, call: _Call, *, stale: PageInfo | None = None) -> PageInfo:
        """This site's page info: cached, or scraped once however many calls wait.

        Calls that find a scrape under way wait for it and share its outcome, page or
        error, instead of each loading the page again. After a stale nonce (`stale`)
        the page is loaded past any page cache.
        """
        cached = cls._cached_page()
        if cached is not None and cached != stale:
            return cached
        scrapes = await loop_local(cls, _Scrapes)
        while True:
            cached = cls._cached_page()
            if cached is not None and cached != stale:
                return cached
            under_way = scrapes.under_way
            if under_way is None:
                break
            async with call.deadline.scope():
                await asyncio.wait([under_way])
            page = under_way.result()  # the leader's error, if it failed
            if page is not None:
                return page
            # the leader was cancelled before it knew: look again, maybe lead
        under_way = asyncio.get_running_loop().create_future()
        scrapes.under_way = under_way
        try:
            page = await cls._retrying(call, lambda: cls._scrape(call, fresh=stale is not None))
        except asyncio.CancelledError:
            under_way.set_result(None)
            raise
        except BaseException as err:
            under_way.set_exception(err)
            under_way.exception()  # retrieved: waiters may be none
            raise
        finally:
            scrapes.under_way = None
        cls._post_id, cls._nonce, cls._widget = page.post_id, page.nonce, page
        under_way.set_result(page)
        return page

    @classmethod
    def _page_url(cls) -> str:
        return cls.url.rstrip("/") + "/"

    @classmethod
    def _cookies(cls, call: _Call) -> dict[str, str]:
        return {**cls._site_cookies, **call.user_cookies}

    @classmethod
    def _keep_cookies(cls, response: StreamResponse) -> None:
        if response.cookies:
            cls._site_cookies = {**cls._site_cookies, **response.cookies}

    @classmethod
    async def _scrape(cls, call: _Call, *, fresh: bool = False) -> PageInfo:
        """GET the page and read post ID and nonce, reading no more than needed.

        `fresh` asks past page caches, the usual keepers of stale nonces.
        """
        url = cls._page_url()
        headers = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
        if fresh:
            url += ("&" if "?" in url else "?") + f"_={time.time_ns() // 1_000_000}"
            headers.update({"cache-control": "no-cache", "pragma": "no-cache"})
        logger.debug("%s: scraping %s", cls.__name__, redact(url))
        async with call.deadline.scope():
            response = await call.session.get(
                url,
                headers=headers,
                cookies=cls._cookies(call),
                timeout=call.deadline.request_timeout(),
                stream=True,
            )
            try:
                cls._keep_cookies(response)
                scraper = PageScraper()
                async for chunk in response.aiter_bytes():
                    if scraper.feed(chunk):
                        break  # the widget came long ago, or the page is too long
            finally:
                await response.aclose()
        check_status(response.status_code, response.headers, scraper.text, ajax=False)
        return replace(scraper.result(), page_url=response.url)

    @classmethod
    def _ajax_url(cls, page: PageInfo) -> str:
        """admin-ajax.php of the site, after any redirect of the page.

        The page's own `wpaicgParams.ajax_url` wins when it is on the page's host;
        otherwise it sits under the page's (final) address.
        """
        page_url = page.page_url or cls._page_url()
        if page.ajax_url:
            named, final = urlsplit(page.ajax_url), urlsplit(page_url)
            if (named.scheme, named.netloc) == (final.scheme, final.netloc):
                return page.ajax_url
        return page_url.split("?", 1)[0].rstrip("/") + AJAX_PATH

    # -- step 3: the POST --------------------------------------------------------------

    @classmethod
    async def _send(cls, call: _Call, page: PageInfo, *, stream: bool) -> StreamResponse:
        """POST the message to admin-ajax.php; the answer's status and headers."""
        target = cls._target
        if target is None or target[0] is not page:
            ajax_url = cls._ajax_url(page)
            site = urlsplit(ajax_url)
            headers = {
                "origin": f"{site.scheme}://{site.netloc}",
                "referer": page.page_url or cls._page_url(),
                "x-requested-with": "XMLHttpRequest",
            }
            target = cls._target = (page, ajax_url, headers)
        _, ajax_url, headers = target
        form = build_form(
            page, message=call.prompt, site_url=cls.url, client_id=cls._visitor_id()
        )
        async with call.deadline.scope():
            response = await call.session.send(
                "POST",
                ajax_url,
                data=form,
                headers=headers,
                cookies=cls._cookies(call),
                timeout=call.deadline.request_timeout(),
                stream=stream,
                allow_redirects=False,  # a redirect would turn the POST into a GET
            )
        cls._keep_cookies(response)
        return response

    @classmethod
    async def _ask(cls, call: _Call, page: PageInfo) -> str:
        """One try at the whole reply, read in one piece (plain JSON or a stream)."""
        response = await cls._send(call, page, stream=False)
        body = await response.aread()  # read already: the request was not streamed
        if not response.ok:
            check_status(
                response.status_code,
                response.headers,
                body[:_ERROR_BODY_BYTES].decode("utf-8", "replace"),
            )
        return parse_reply(body)

    @classmethod
    async def _open_stream(cls, call: _Call, page: PageInfo) -> _OpenStream:
        """One try at a streamed reply, read up to its first piece (or its end).

        Everything that can still be retried happens here: the status, a plugin error
        in place of the stream, a stream that fails before it says anything.
        """
        response = await cls._send(call, page, stream=True)
        opened = _OpenStream(response, response.aiter_bytes(), ReplyParser())
        try:
            if not response.ok:
                async with call.deadline.scope():
                    body = await cls._read_some(response)
                check_status(response.status_code, response.headers, body)
            while not opened.first:
                async with call.deadline.scope():
                    chunk = await anext(opened.chunks, None)
                if chunk is None:
                    opened.reply = opened.parser.close()
                    break
                opened.first = opened.parser.feed(chunk)
        except BaseException:
            await opened.aclose()
            raise
        return opened

    @staticmethod
    async def _read_some(response: StreamResponse) -> str:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= _ERROR_BODY_BYTES:
                break
        return bytes(body).decode("utf-8", "replace")

    @classmethod
    def _visitor_id(cls) -> str:
        # One id per visitor, as the browser keeps it, so per-visitor limits apply fairly.
        if cls._client_id is None:
            cls._client_id = new_client_id()
        return cls._client_id
