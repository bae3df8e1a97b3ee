"""The call engine, shared by every plugin protocol.

One call:

1. `Engine.prepare` checks every argument and lets the protocol check the messages,
   before any I/O;
2. the site's credentials come from its cache (`SiteState`), or from one load of the
   page however many calls wait for it (single flight, per event loop);
3. the protocol's requests for the turn go out through the call's transport, and the
   answer is read whole (`reply`) or as a `ReplyStream` (`stream`);
4. one retry loop (`Retrying.run`) and one deadline cover all of it: rejected
   credentials are loaded afresh once, transport errors and retryable statuses are
   retried within one budget per call.

The engine knows no plugin: everything about the wire format is asked of the
`ChatProtocol` (docs/protocol.md §5 describes a call step by step).
"""

from __future__ import annotations

import asyncio
import logging
import operator
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar, cast
from urllib.parse import urlsplit

from ._config import check_cookies, check_proxy, check_retries, check_timeout
from ._constants import BROWSER_HEADERS, ERROR_BODY_BYTES, MAX_RESPONSE_BYTES, PAGE_DRAIN_BYTES
from ._deadline import Deadline
from ._exceptions import (
    NonceError,
    ProviderError,
    ProviderTimeoutError,
    ResponseError,
    ScrapeError,
    ServiceError,
    StaleCredentials,
    redact,
)
from ._memory import ConversationMemory
from ._messages import Messages, Turn, normalize_messages
from ._pool import Backend, LastTransport, loop_local, pick_backend, wrap_client
from ._retry import Retrying, retry_policy
from ._streaming import ReplyStream
from ._transports.base import AsyncTransport, Request, Response
from .protocols.base import Answer, ChatProtocol, Conversation
from .protocols.base import Turn as TurnRequests

__all__ = ["Call", "Engine", "SiteState", "TransportSettings"]

logger = logging.getLogger(__name__)

Credentials = TypeVar("Credentials")
Prepared = TypeVar("Prepared")
_T = TypeVar("_T")

# A protocol that needs more than this many requests to complete credentials is broken.
_MAX_COMPLETIONS = 2

_PAGE_HEADERS = {**BROWSER_HEADERS, "accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
_FRESH_PAGE_HEADERS = {**_PAGE_HEADERS, "cache-control": "no-cache", "pragma": "no-cache"}


class SiteState(Generic[Credentials]):
    """Everything the library keeps about one site: one object per provider class.

    The credentials read from its page, the cookies it set, the visitor id a browser
    would keep, and the conversations the site keeps for this process. Forgetting the
    site is replacing this object.
    """

    __slots__ = ("__weakref__", "conversations", "cookies", "credentials", "visitor")

    def __init__(self) -> None:
        self.credentials: Credentials | None = None
        self.cookies: dict[str, str] = {}
        self.visitor: str | None = None
        self.conversations = ConversationMemory()

    def __repr__(self) -> str:
        known = "credentials" if self.credentials is not None else "nothing"
        return f"<SiteState: {known}, {len(self.cookies)} cookies>"


@dataclass
class _PageLoads:
    """One site's page load under way in one event loop, if any."""

    under_way: asyncio.Future[Any] | None = None


@dataclass(slots=True, eq=False)
class TransportSettings:
    """How a call reaches the site: a transport given outright, a user's own client,
    or a shared one of `backend` built with these settings."""

    backend: Backend | None
    proxy: str | None
    impersonate: str
    verify: bool | str
    transport: AsyncTransport | None = None
    client: object | None = None
    _last: LastTransport = field(default_factory=LastTransport, init=False, repr=False)

    def ready(self) -> AsyncTransport | None:
        """The transport, when it is at hand without awaiting anything; else None."""
        if self.transport is not None:
            return self.transport
        if self.client is not None:
            return None
        return self._last.get()

    async def open(self) -> AsyncTransport:
        if self.transport is not None:
            return self.transport
        if self.client is not None:
            return wrap_client(self.client)
        assert self.backend is not None
        return await self._last.open(self.backend, self.proxy, self.impersonate, self.verify)


@dataclass(frozen=True, slots=True)
class _Checked:
    """A call's settings as checked, and the argument objects they were checked from."""

    given: tuple[object, ...]
    settings: TransportSettings
    timeout: float | None
    max_retries: int


@dataclass(slots=True)
class Call(Generic[Prepared]):
    """One call's settings, checked before any I/O; the deadline starts with `begin`."""

    turns: list[Turn] = field(repr=False)
    prepared: Prepared = field(repr=False)
    timeout: float | None
    max_retries: int
    settings: TransportSettings
    user_cookies: Mapping[str, str] = field(repr=False)


@dataclass(slots=True)
class _Running(Generic[Prepared]):
    """A call under way: its transport, deadline and retry budget."""

    call: Call[Prepared]
    transport: AsyncTransport
    deadline: Deadline
    retrying: Retrying
    conversation: Conversation[Prepared]
    #: The server's conversation this call continues, as remembered, if any.
    recalled: object | None = None
    #: Credentials the site rejected in this call (the next attempt loads the page),
    #: and how it rejected them.
    stale: object | None = None
    rejection: StaleCredentials | None = None
    #: The credentials of the latest attempt, and the protocol of their dialect.
    used: object | None = None
    dialect: Any = None


_NO_COOKIES: Mapping[str, str] = MappingProxyType({})


def _check_settings(given: tuple[object, ...]) -> _Checked:
    """Check a call's settings (`Engine.prepare`'s arguments but the messages and
    cookies, in its order); raises TypeError, ValueError or ImportError."""
    proxy, timeout, max_retries, backend, impersonate, verify, transport, client = given
    if transport is not None and not isinstance(transport, AsyncTransport):
        raise TypeError(f"transport must be an AsyncTransport, not {type(transport).__name__}")
    if transport is None and isinstance(client, AsyncTransport):
        transport, client = client, None  # a transport passed as the client
    checked_proxy = check_proxy(proxy)
    settings = TransportSettings(
        backend=pick_backend(backend, client) if transport is None else None,
        proxy=checked_proxy,
        impersonate=cast(str, impersonate),
        verify=cast("bool | str", verify),
        transport=transport,
        client=client,
    )
    return _Checked(given, settings, check_timeout(timeout), check_retries(max_retries))


class Engine(Generic[Credentials, Prepared]):
    """Calls to one site through one protocol; `label` names it in logs."""

    __slots__ = ("_checked", "_dialect_of", "bot", "label", "page_url", "protocol", "site", "url")

    def __init__(
        self,
        protocol: ChatProtocol[Credentials, Prepared],
        site: SiteState[Credentials],
        url: str,
        label: str,
        bot: str | None = None,
    ) -> None:
        self.protocol = protocol
        self.bot = bot
        self.site = site
        self.url = url
        # A bare host gets its "/"; a page's own path and query are kept as they are.
        self.page_url = url if urlsplit(url).path else url + "/"
        self.label = label
        #: The settings of the latest call, checked: calls with the same ones (the
        #: class's defaults, usually) skip the checks.
        self._checked: _Checked | None = None
        #: The latest credentials and the protocol of their dialect (`_dialect`).
        self._dialect_of: tuple[Credentials, ChatProtocol[Credentials, Prepared]] | None = None

    # -- before any I/O --------------------------------------------------------------

    def prepare(
        self,
        messages: Messages | None,
        *,
        proxy: object,
        timeout: object,
        cookies: object,
        max_retries: object,
        backend: object,
        impersonate: str,
        verify: bool | str,
        transport: AsyncTransport | None,
        client: object | None,
    ) -> Call[Prepared]:
        """Check every argument of a call; raises TypeError or ValueError (or
        ImportError for a backend that is not installed). Without `messages` the call
        can only `read_page`."""
        turns = normalize_messages(messages) if messages is not None else []
        # (no messages: a call that only reads the page, and never reads `prepared`)
        prepared = cast("Prepared", self.protocol.prepare(turns) if messages is not None else None)
        given = (proxy, timeout, max_retries, backend, impersonate, verify, transport, client)
        checked = self._checked
        # The same objects as last time passed the same checks: every one of them is
        # immutable or checked by its type alone.
        if checked is None or not all(map(operator.is_, checked.given, given)):
            checked = self._checked = _check_settings(given)
        return Call(
            turns=turns,
            prepared=prepared,
            timeout=checked.timeout,
            max_retries=checked.max_retries,
            settings=checked.settings,
            user_cookies=_NO_COOKIES if cookies is None else check_cookies(cookies),
        )

    # -- the call --------------------------------------------------------------------

    async def reply(self, call: Call[Prepared]) -> str:
        """The whole reply, read at once."""
        running = self._begin(call, call.settings.ready() or await call.settings.open())
        try:
            reply = await running.retrying.run(
                lambda: self._attempt(running, self._ask), self._note_stale
            )
        except StaleCredentials as err:
            raise self._nonce_error(running, err) from None
        except ProviderTimeoutError as err:
            raise running.deadline.explain(err) from err
        except ServiceError:
            self._forget_lost(running)
            raise
        finally:
            running.deadline.close()
        self._remember(running, reply)
        return reply

    async def stream(self, call: Call[Prepared]) -> ReplyStream:
        """The reply as a `ReplyStream`, opened up to its first piece (retries are
        only possible until then). The stream owns the call's deadline."""
        running = self._begin(call, call.settings.ready() or await call.settings.open())
        try:
            return await running.retrying.run(
                lambda: self._attempt(running, self._open), self._note_stale
            )
        except StaleCredentials as err:
            running.deadline.close()
            raise self._nonce_error(running, err) from None
        except ProviderTimeoutError as err:
            running.deadline.close()
            raise running.deadline.explain(err) from err
        except BaseException as err:
            running.deadline.close()
            if isinstance(err, ServiceError):
                self._forget_lost(running)
            raise

    async def read_page(self, call: Call[Prepared]) -> Credentials:
        """Load the page once (with the call's retries and deadline) and read the
        credentials on it, without completing them; ScrapeError when it has none."""
        running = self._begin(call, call.settings.ready() or await call.settings.open())
        try:
            return await running.retrying.run(
                lambda: self._load_page(running, fresh=False), self._note_stale
            )
        finally:
            running.deadline.close()

    async def exchange(
        self, call: Call[Prepared], request: Request, read: Callable[[Answer], _T]
    ) -> _T:
        """Send one request that is not a chat turn (`chatgpt4o check`'s probe, say) with
        the site's cookies and the call's retries and deadline; `read` judges the whole
        answer, and a retryable error it raises is retried."""
        running = self._begin(call, call.settings.ready() or await call.settings.open())

        async def attempt() -> _T:
            return read(await self._exchange(running, request))

        try:
            return await running.retrying.run(attempt, self._note_stale)
        except ProviderTimeoutError as err:
            raise running.deadline.explain(err) from err
        finally:
            running.deadline.close()

    def _begin(self, call: Call[Prepared], transport: AsyncTransport) -> _Running[Prepared]:
        """The call under way, on its transport: its deadline starts now."""
        deadline = Deadline(call.timeout)
        recalled = self.site.conversations.recall(call.turns)
        return _Running(
            call=call,
            transport=transport,
            deadline=deadline,
            retrying=Retrying(retry_policy(call.max_retries), deadline, self.label),
            conversation=Conversation(call.prepared, recalled, recalled=recalled),
            recalled=recalled,
        )

    def _forget_lost(self, running: _Running[Prepared]) -> None:
        """A call that continued a conversation failed with the plugin's error: the site
        may have lost that conversation, so the next call starts a new one."""
        if running.recalled is not None:
            self.site.conversations.forget(running.call.turns)

    def _remember(self, running: _Running[Prepared], reply: str) -> None:
        """Keep the server's conversation for a call that continues this one, and the
        credentials the answer renewed."""
        renewed = running.conversation.credentials
        if renewed is not None and self.site.credentials is running.used:
            self.site.credentials = cast("Credentials", renewed)
        state = running.conversation.state
        if state is not None:
            self.site.conversations.remember(running.call.turns, reply, state)

    async def _attempt(
        self,
        running: _Running[Prepared],
        step: Callable[[_Running[Prepared], Credentials], Awaitable[_T]],
    ) -> _T:
        credentials = self._cached(running.stale)  # the usual case: no await needed
        if credentials is None:
            credentials = await self._credentials(running)
        rejection = running.rejection
        if (
            rejection is not None
            and rejection.only_if_renewed
            and rejection.if_again is not None
            and self.protocol.same_credentials(cast("Credentials", running.stale), credentials)
        ):
            raise rejection.if_again  # the same credentials again: it was not about them
        running.used = credentials
        running.dialect = self._dialect(credentials)
        try:
            return await step(running, credentials)
        except StaleCredentials as err:
            running.stale, running.rejection = credentials, err
            if self.site.credentials is credentials:
                self.site.credentials = None  # never keep credentials the site rejected
            raise

    def _note_stale(self, error: StaleCredentials) -> None:
        logger.info("%s: the site rejected its nonce; loading the page again", self.label)

    def _nonce_error(
        self, running: _Running[Prepared], error: StaleCredentials
    ) -> ProviderError:
        if error.if_again is not None:
            return error.if_again
        return NonceError(
            error.server_message,
            prefix="The site rejected the chat nonce again after a fresh scrape",
            kind="nonce",
        )

    # -- credentials: cached, or one page load however many calls wait ---------------

    def _dialect(self, credentials: Credentials) -> ChatProtocol[Credentials, Prepared]:
        """The protocol that serves these credentials, asked once per credentials."""
        known = self._dialect_of  # (one tuple: threads with loops of their own share it)
        if known is not None and known[0] is credentials:
            return known[1]
        dialect = self.protocol.dialect(credentials)
        self._dialect_of = (credentials, dialect)
        return dialect

    def _cached(self, stale: object | None) -> Credentials | None:
        credentials = self.site.credentials
        if (
            credentials is None
            or credentials is stale
            or not self._dialect(credentials).usable(credentials)
        ):
            return None
        return credentials

    async def _credentials(self, running: _Running[Prepared]) -> Credentials:
        """This site's credentials: cached, or read from one load of its page.

        Calls that find a page load under way wait for it and share its outcome,
        credentials or error. After rejected credentials the page is loaded past any
        page cache.
        """
        cached = self._cached(running.stale)
        if cached is not None:
            return cached
        loads = await loop_local(self.site, _PageLoads)
        while True:
            cached = self._cached(running.stale)
            if cached is not None:
                return cached
            under_way = loads.under_way
            if under_way is None:
                break
            async with running.deadline.scope():
                await asyncio.wait([under_way])
            credentials: Credentials | None = under_way.result()  # the leader's error
            if credentials is not None and credentials is not running.stale:
                return credentials
            # the leader was cancelled before it knew, or read what this call
            # found stale: look again, maybe lead
        under_way = asyncio.get_running_loop().create_future()
        loads.under_way = under_way
        try:
            credentials = await self._fresh_credentials(running)
        except asyncio.CancelledError:
            under_way.set_result(None)
            raise
        except BaseException as err:
            under_way.set_exception(err)
            under_way.exception()  # retrieved: waiters may be none
            raise
        finally:
            loads.under_way = None
        self.site.credentials = credentials
        under_way.set_result(credentials)
        return credentials

    async def _fresh_credentials(self, running: _Running[Prepared]) -> Credentials:
        """New credentials: renewed without the page where the protocol can (after a
        rejection), else read from the page; then completed by whatever extra request
        the protocol needs (a session to start, say)."""
        credentials: Credentials | None = None
        stale = cast("Credentials | None", running.stale)
        known = self.site.credentials
        if stale is None and known is not None and self.protocol.complete(known) is not None:
            credentials = known  # read from the page already, only not complete yet
        elif stale is not None and not (running.rejection and running.rejection.reload_page):
            refresh = self.protocol.refresh(stale)
            if refresh is not None:
                credentials = self.protocol.read_completion(
                    stale, await self._exchange(running, refresh)
                )
        if credentials is None:
            credentials = await self._load_page(running, fresh=stale is not None)
        for _ in range(_MAX_COMPLETIONS):
            completion = self.protocol.complete(credentials)
            if completion is None:
                break
            completed = self.protocol.read_completion(
                credentials, await self._exchange(running, completion)
            )
            if completed is None:
                raise ResponseError(
                    f"{self.protocol.name}: the site did not complete the chat's credentials"
                )
            credentials = completed
        return credentials

    async def _exchange(self, running: _Running[Prepared], request: Request) -> Answer:
        """Send a request that is not the reply's and read its whole (bounded) answer."""
        response = await self._send(running, request, stream=False)
        body = response.content
        if body is None:
            async with running.deadline.scope_for(running.transport.enforces_timeout):
                body = await response.aread(MAX_RESPONSE_BYTES)
        return Answer(response.status_code, response.headers, body, response.url)

    async def _load_page(self, running: _Running[Prepared], *, fresh: bool) -> Credentials:
        """GET the page and read the credentials, reading no more than needed.

        `fresh` asks past page caches, the usual keepers of stale nonces.
        """
        url = self.page_url
        if fresh:
            url += ("&" if "?" in url else "?") + f"_={time.time_ns() // 1_000_000}"
        logger.debug("%s: scraping %s", self.label, redact(url))
        reader = self.protocol.page_reader(self.bot)
        async with running.deadline.scope():
            response = await running.transport.send(
                Request(
                    "GET",
                    url,
                    headers=_FRESH_PAGE_HEADERS if fresh else _PAGE_HEADERS,
                    cookies=self._cookies(running),
                    timeout=running.deadline.request_timeout(),
                    stream=True,
                )
            )
            try:
                self._keep_cookies(response)
                while chunk := await response.read_chunk():
                    if reader.feed(chunk):
                        break  # enough: the rest of the page says nothing more
                # The rest of a page that ends soon is read (and dropped), so that its
                # connection can serve the next request.
                drained = 0
                while drained < PAGE_DRAIN_BYTES and (chunk := await response.read_chunk()):
                    drained += len(chunk)
            finally:
                await response.aclose()
        self.protocol.check_answer(
            response.status_code, response.headers, reader.text(), page=True
        )
        credentials = reader.result(page_url=response.url or url, site_url=self.url)
        if credentials is None:
            raise ScrapeError(self.protocol.missing, body=reader.text())
        return credentials

    # -- the turn's requests ---------------------------------------------------------

    def _cookies(self, running: _Running[Prepared]) -> Mapping[str, str]:
        user = running.call.user_cookies
        if not user:
            return self.site.cookies
        return {**self.site.cookies, **user}

    def _keep_cookies(self, response: Response) -> None:
        if response.cookies:
            self.site.cookies = {**self.site.cookies, **response.cookies}

    def _visitor(self) -> str:
        # One id per visitor, as the browser keeps it, so per-visitor limits apply fairly.
        visitor = self.site.visitor
        if visitor is None:
            visitor = self.site.visitor = self.protocol.new_visitor_id()
        return visitor

    async def _send(
        self, running: _Running[Prepared], request: Request, *, stream: bool
    ) -> Response:
        request.cookies = self._cookies(running)
        request.stream = stream
        debug = logger.isEnabledFor(logging.DEBUG)  # redacting costs more than logging
        if debug:
            logger.debug("%s: %s %s", self.label, request.method, redact(request.url))
        # A transfer read whole is ended by the transport itself at the deadline, when it
        # can; a streamed one is bounded by the deadline's own timer.
        request.timeout = running.deadline.request_timeout()
        transport = running.transport
        if not stream and transport.enforces_timeout:
            response = await transport.send(request)
        else:
            async with running.deadline.scope():
                response = await transport.send(request)
        if debug:
            logger.debug("%s: %s %s -> %s", self.label, request.method, redact(request.url),
                         response.status_code)
        self._keep_cookies(response)
        return response

    def _start_turn(
        self, running: _Running[Prepared], credentials: Credentials, *, stream: bool
    ) -> tuple[TurnRequests, Request, bool]:
        """The turn, its first request, and whether that is its last one (most turns
        have one request: then nothing is awaited before it)."""
        dialect: ChatProtocol[Credentials, Prepared] = running.dialect
        turn = dialect.turn(
            credentials, running.conversation, visitor=self._visitor(), stream=stream
        )
        try:
            return turn, next(turn), False
        except StopIteration as done:
            return turn, done.value, True

    async def _finish_turn(
        self, running: _Running[Prepared], turn: TurnRequests, request: Request
    ) -> Request:
        """Send the turn's preliminary requests, `request` first; its last request."""
        try:
            while True:
                request = turn.send(await self._exchange(running, request))
        except StopIteration as done:
            last: Request = done.value
            return last

    async def _ask(self, running: _Running[Prepared], credentials: Credentials) -> str:
        """One try at the whole reply, read in one piece (plain JSON or a stream)."""
        turn, request, last = self._start_turn(running, credentials, stream=False)
        if not last:
            request = await self._finish_turn(running, turn, request)
        response = await self._send(running, request, stream=False)
        body = response.content  # read already, usually: the request was not streamed
        if body is None:
            async with running.deadline.scope_for(running.transport.enforces_timeout):
                body = await response.aread()
        dialect: ChatProtocol[Credentials, Prepared] = running.dialect
        if not response.ok:
            dialect.check_answer(
                response.status_code,
                response.headers,
                body[:ERROR_BODY_BYTES].decode("utf-8", "replace"),
                credentials=credentials,
            )
        return dialect.read_reply(credentials, running.conversation, body)

    async def _open(
        self, running: _Running[Prepared], credentials: Credentials
    ) -> ReplyStream:
        """One try at a streamed reply, read up to its first piece (or its end).

        Everything that can still be retried happens here: the status, an error in
        place of the stream, a stream that fails before it says anything.
        """
        turn, request, last = self._start_turn(running, credentials, stream=True)
        if not last:
            request = await self._finish_turn(running, turn, request)
        response = await self._send(running, request, stream=True)
        dialect: ChatProtocol[Credentials, Prepared] = running.dialect
        if not response.ok:
            try:
                async with running.deadline.scope():
                    body = await _read_some(response)
            finally:
                await response.aclose()
            dialect.check_answer(
                response.status_code, response.headers, body, credentials=credentials
            )
        stream = ReplyStream(
            response,
            dialect.reply_reader(credentials, running.conversation),
            running.deadline,
            on_end=lambda reply: self._remember(running, reply),
        )
        await stream.start()
        return stream


async def _read_some(response: Response) -> str:
    """The start of an error answer, enough to tell what it is."""
    body = bytearray()
    while len(body) < ERROR_BODY_BYTES and (chunk := await response.read_chunk()):
        body += chunk
    return bytes(body[:ERROR_BODY_BYTES]).decode("utf-8", "replace")
