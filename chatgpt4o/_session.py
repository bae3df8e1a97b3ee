"""HTTP plumbing: `StreamSession`, its responses, and the clients they share.

The provider sends every request through a `StreamSession`, on curl_cffi (browser
impersonation) by default or on httpx. Sessions built by the library share one client
per event loop, backend, proxy and browser profile, so keep-alive connections and TLS
sessions are reused across calls; those clients close when their loop shuts down
(`asyncio.run` does that), on `aclose()`, or at the end of a `session_scope()` block.
A client the user passes in is used as is and never closed here.

Cookies never live in a client's jar: the caller passes them per request and reads
`StreamResponse.cookies`, so that one site's cookies cannot reach another.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Mapping,
)
from contextlib import asynccontextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import Any, Literal, TypeVar

from ._backends import (
    Backend,
    Outgoing,
    RawResponse,
    close_client,
    open_client,
    pick_backend,
    send,
)
from ._config import check_proxy, describe_proxy
from ._constants import DEFAULT_IMPERSONATE, DEFAULT_TIMEOUT
from ._exceptions import HTTPStatusError, ResponseError, redact

__all__ = [
    "SessionScope",
    "StreamResponse",
    "StreamSession",
    "aclose_shared_sessions",
    "check_proxy",
    "describe_proxy",
    "loop_local",
    "session_scope",
    "shared_session_count",
]

logger = logging.getLogger(__name__)

Method = Literal["GET", "POST"]


# -- shared clients, one pool per event loop (or per scope) ------------------------------

_ClientKey = tuple[Backend, str | None, str, bool | str]


class SessionScope:
    """HTTP clients, one per backend, proxy and browser profile, opened on demand.

    Every event loop has one, closed when the loop shuts down; `Chatgpt4o.session()`
    opens a private one for a block of code and closes it when the block ends.
    """

    def __init__(self) -> None:
        self._clients: dict[_ClientKey, Any] = {}
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._clients)} open"
        return f"<SessionScope {state}>"

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._clients)

    def client(
        self, backend: Backend, proxy: str | None, impersonate: str, verify: bool | str
    ) -> Any:
        if self._closed:
            raise RuntimeError("This chatgpt4o session scope is closed")
        key = (backend, proxy, impersonate, verify)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = open_client(backend, proxy, impersonate, verify)
        return client

    async def _close_clients(self) -> None:
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await close_client(client)

    async def aclose(self) -> None:
        """Close every client; the scope cannot be used after."""
        self._closed = True
        await self._close_clients()


class _LoopScope(SessionScope):
    """The loop's own scope, closed when the loop shuts down.

    `asyncio.run` (and `asyncio.Runner`) finalize live async generators before they
    close the loop; a parked generator is the hook to close the clients then, without
    a task that would show up in `asyncio.all_tasks()`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._loop = loop
        #: State that other modules keep per loop (see `loop_local`), keyed by owner.
        self.locals: weakref.WeakKeyDictionary[object, Any] = weakref.WeakKeyDictionary()
        self._watcher: AsyncGenerator[None, None] | None = None

    async def aclose(self) -> None:
        """Close every client; new ones open on demand, as long as the loop runs."""
        await self._close_clients()

    async def watch_loop_shutdown(self) -> None:
        self._watcher = self._close_at_shutdown()
        await self._watcher.__anext__()

    async def _close_at_shutdown(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            # The parked generator refers to the loop (through its finalizer hook): let
            # go of both, or every loop ever used would stay in memory.
            _loop_scopes.pop(self._loop, None)
            self._watcher = None
            self.locals.clear()
            await self.aclose()


_loop_scopes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopScope] = (
    weakref.WeakKeyDictionary()
)
_current_scope: ContextVar[SessionScope | None] = ContextVar("chatgpt4o_scope", default=None)


async def _loop_scope() -> _LoopScope:
    loop = asyncio.get_running_loop()
    scope = _loop_scopes.get(loop)
    if scope is None:
        scope = _loop_scopes[loop] = _LoopScope(loop)
        await scope.watch_loop_shutdown()
    return scope


async def _current_session_scope() -> SessionScope:
    scope: SessionScope | None = _current_scope.get()
    if scope is None:  # (not `or`: an empty scope is falsy)
        scope = _loop_scopes.get(asyncio.get_running_loop())
    return scope if scope is not None else await _loop_scope()


_State = TypeVar("_State")


async def loop_local(owner: object, factory: Callable[[], _State]) -> _State:
    """`owner`'s state in the running event loop, made by `factory` on first use.

    It lives as long as the loop runs (asyncio objects such as locks and futures
    belong to one loop) and is dropped when the loop shuts down.
    """
    scope = await _loop_scope()
    state = scope.locals.get(owner)
    if state is None:
        state = scope.locals[owner] = factory()
    return state


@asynccontextmanager
async def session_scope() -> AsyncIterator[SessionScope]:
    """Requests made inside the block (and tasks it starts) use clients of their
    own, closed when the block ends."""
    scope = SessionScope()
    token = _current_scope.set(scope)
    try:
        yield scope
    finally:
        _current_scope.reset(token)
        await scope.aclose()


async def aclose_shared_sessions() -> None:
    """Close the shared clients of the running event loop (new ones open on demand)."""
    scope = _loop_scopes.get(asyncio.get_running_loop())
    if scope is not None:
        await scope.aclose()


def shared_session_count() -> int:
    """How many shared clients the running loop holds (for tests and stats)."""
    scope = _loop_scopes.get(asyncio.get_running_loop())
    return 0 if scope is None else len(scope)


# -- the session and its responses -------------------------------------------------------


class StreamResponse:
    """One answer: status and headers at once, the body read whole or as it arrives."""

    def __init__(self, raw: RawResponse) -> None:
        self._raw = raw
        self._finished = False
        self.status_code: int = raw.status_code
        self.url: str = raw.url

    def __repr__(self) -> str:
        return f"<StreamResponse [{self.status_code}]>"

    @property
    def headers(self) -> Mapping[str, str]:
        """The answer's headers; names are looked up case-insensitively."""
        return self._raw.headers

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies this answer set (Set-Cookie), name to value."""
        return self._raw.cookies

    def raise_for_status(self) -> StreamResponse:
        """Raise `HTTPStatusError` unless the status is 2xx (the body is not read)."""
        if not self.ok:
            raise HTTPStatusError(
                f"{self.url} answered HTTP {self.status_code}", status_code=self.status_code
            )
        return self

    async def aiter_bytes(self) -> AsyncGenerator[bytes, None]:
        """The body in the pieces the network delivers."""
        try:
            async for chunk in self._raw.chunks:
                yield chunk
        except Exception:
            self._finished = True  # the transfer failed: nothing left to abort
            raise
        self._finished = True

    async def iter_lines(self) -> AsyncIterator[bytes]:
        """The body line by line, without line endings (g4f's `iter_lines`)."""
        pending = b""
        async for chunk in self.aiter_bytes():
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                yield line.rstrip(b"\r")
        if pending:
            yield pending

    async def aread(self, max_bytes: int | None = None) -> bytes:
        """The whole body; more than `max_bytes` raises `ResponseError` (and aborts)."""
        whole = self._raw.content
        if whole is not None:  # read already: a request that was not streamed
            self._finished = True
            if max_bytes is not None and len(whole) > max_bytes:
                raise ResponseError(f"The answer from {self.url} is larger than {max_bytes} bytes")
            return whole
        parts: list[bytes] = []
        size = 0
        async for chunk in self.aiter_bytes():
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                await self.aclose()
                raise ResponseError(f"The answer from {self.url} is larger than {max_bytes} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def text(self) -> str:
        return (await self.aread()).decode("utf-8", "replace")

    async def json(self) -> Any:
        import json

        return json.loads(await self.aread())

    async def aclose(self) -> None:
        """End the transfer now, whether or not the body was read."""
        if not self._finished:
            self._finished = True
            await self._raw.abort()
        await self._raw.chunks.aclose()

    async def __aenter__(self) -> StreamResponse:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class _PendingResponse(Awaitable[StreamResponse]):
    """`await session.get(...)` or `async with session.get(...) as response:`."""

    def __init__(self, sending: Awaitable[StreamResponse]) -> None:
        self._sending = sending
        self._response: StreamResponse | None = None

    def __await__(self) -> Generator[Any, None, StreamResponse]:
        return self._sending.__await__()

    async def __aenter__(self) -> StreamResponse:
        self._response = await self._sending
        return self._response

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._response is not None:
            await self._response.aclose()


class StreamSession:
    """An HTTP session that looks like a browser to the site (g4f's `StreamSession`).

    Built with default headers, cookies, a proxy and a timeout; each request may
    override them. `backend` is "curl_cffi" (impersonating `impersonate`) or "httpx";
    None takes curl_cffi when it can be imported, else httpx. With no `client` it uses
    the shared client of the event loop (or of the current `session_scope`); a
    `client` passed in (a curl_cffi `AsyncSession` or an `httpx.AsyncClient`) is used
    as is and never closed by this library.
    """

    def __init__(
        self,
        *,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        proxy: str | None = None,
        proxies: Mapping[str, str] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        impersonate: str = DEFAULT_IMPERSONATE,
        verify: bool | str = True,
        backend: Backend | None = None,
        client: Any = None,
    ) -> None:
        if proxy is None and proxies:
            proxy = proxies.get("all") or proxies.get("https") or proxies.get("http")
        self.headers: dict[str, str] = dict(headers or {})
        self.cookies: dict[str, str] = dict(cookies or {})
        self.proxy = check_proxy(proxy)
        self.timeout = timeout
        self.impersonate = impersonate
        self.verify = verify
        self.backend: Backend = pick_backend(backend, client)
        if self.backend == "httpx" and self.proxy and self.proxy.lower().startswith("socks"):
            import importlib.util

            if importlib.util.find_spec("socksio") is None:  # httpx needs it for SOCKS
                raise ImportError(
                    "a SOCKS proxy on the httpx backend needs socksio: "
                    "pip install 'httpx[socks]'"
                )
        self._client = client
        self._closed = False

    def __repr__(self) -> str:
        proxy = describe_proxy(self.proxy) if self.proxy else None
        return (
            f"<StreamSession backend={self.backend!r} impersonate={self.impersonate!r} "
            f"proxy={proxy!r} timeout={self.timeout!r}>"
        )

    @property
    def closed(self) -> bool:
        return self._closed

    async def send(
        self,
        method: Method,
        url: str,
        *,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stream: bool = False,
        allow_redirects: bool = True,
    ) -> StreamResponse:
        """Send a request and return its response (what `request` wraps)."""
        if self._closed:
            raise RuntimeError("This StreamSession is closed; make a new one")
        client = self._client
        if client is None:
            scope = await _current_session_scope()
            client = scope.client(self.backend, self.proxy, self.impersonate, self.verify)
        if logger.isEnabledFor(logging.DEBUG):  # redacting costs more than the log call
            logger.debug("%s %s", method, redact(url))
        outgoing = Outgoing(
            method=method,
            url=url,
            data=data,
            headers={**self.headers, **(headers or {})},
            cookies={**self.cookies, **(cookies or {})},
            timeout=self.timeout if timeout is None else timeout,
            stream=stream,
            follow_redirects=allow_redirects,
        )
        raw = await send(client, outgoing, proxy=self.proxy, owned=self._client is None)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s %s -> %s", method, redact(url), raw.status_code)
        return StreamResponse(raw)

    def request(
        self,
        method: Method,
        url: str,
        *,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stream: bool = False,
        allow_redirects: bool = True,
    ) -> _PendingResponse:
        """Send a request; await the result or use it as an async context manager."""
        return _PendingResponse(
            self.send(
                method, url, data=data, headers=headers, cookies=cookies,
                timeout=timeout, stream=stream, allow_redirects=allow_redirects,
            )
        )

    def get(self, url: str, **kwargs: Any) -> _PendingResponse:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> _PendingResponse:
        return self.request("POST", url, **kwargs)

    async def close(self) -> None:
        """Mark this session closed; shared clients stay with their loop or scope."""
        self._closed = True

    async def __aenter__(self) -> StreamSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
