"""HTTP plumbing: `StreamSession` on curl_cffi, with browser impersonation.

The provider sends every request through a `StreamSession`. Sessions built by the
provider share one curl_cffi `AsyncSession` per event loop, proxy and browser profile,
so keep-alive connections and TLS sessions are reused across calls; those shared
sessions close when their loop shuts down (`asyncio.run` does that) or on `aclose()`.

curl_cffi is imported on first use, not on `import chatgpt4o`.

Cookies never go into curl_cffi's session jar: the caller passes them per request and
reads `StreamResponse.cookies`, so that one site's cookies cannot reach another.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Generator, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from ._constants import DEFAULT_IMPERSONATE, DEFAULT_TIMEOUT
from ._exceptions import (
    HTTPStatusError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    ResponseError,
    redact,
)

if TYPE_CHECKING:
    from curl_cffi.requests import AsyncSession
    from curl_cffi.requests import Response as CurlResponse

__all__ = [
    "SessionScope",
    "StreamResponse",
    "StreamSession",
    "aclose_shared_sessions",
    "check_proxy",
    "describe_proxy",
    "session_scope",
    "shared_session_count",
]

logger = logging.getLogger(__name__)

Method = Literal["GET", "POST"]
_PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")


def describe_proxy(proxy: str) -> str:
    """The proxy as it may be shown: scheme, host and port, never the password."""
    parts = urlsplit(proxy)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}"


def check_proxy(proxy: object) -> str | None:
    """Validate a proxy URL before any I/O; return it, or None for no proxy."""
    if proxy is None or proxy == "":
        return None
    if not isinstance(proxy, str):
        raise TypeError(f"proxy must be a URL string, not {type(proxy).__name__}")
    parts = urlsplit(proxy)
    if parts.scheme.lower() not in _PROXY_SCHEMES or not parts.hostname:
        raise ValueError(
            f"proxy must look like scheme://[user:password@]host:port with a scheme of "
            f"{', '.join(_PROXY_SCHEMES)}; got {redact(proxy)!r}"
        )
    try:
        parts.port  # noqa: B018 - parsing it validates it
    except ValueError as err:
        raise ValueError(f"proxy has a bad port: {redact(proxy)!r}") from err
    return proxy


def _map_transport_error(err: BaseException, *, url: str, proxy: str | None) -> ProviderError:
    """A curl_cffi error as the library's own, with secrets left out of the text."""
    from curl_cffi.requests.exceptions import ProxyError, Timeout

    via = f" via proxy {describe_proxy(proxy)}" if proxy else ""
    detail = redact(str(err))
    if proxy:
        detail = detail.replace(proxy, describe_proxy(proxy))
    if isinstance(err, Timeout) or getattr(err, "code", None) == 28:
        return ProviderTimeoutError(f"Timed out talking to {url}{via}: {detail}")
    if isinstance(err, ProxyError):
        return ProviderConnectionError(f"The proxy {describe_proxy(proxy or '')} failed: {detail}")
    return ProviderConnectionError(f"Could not reach {url}{via}: {detail}")


# -- shared curl_cffi sessions, one pool per event loop (or per scope) -----------------

_SessionKey = tuple[str | None, str, bool | str]


class SessionScope:
    """curl_cffi sessions, one per proxy and browser profile, opened on demand.

    Every event loop has one, closed when the loop shuts down; `Chatgpt4o.session()`
    opens a private one for a block of code and closes it when the block ends.
    """

    def __init__(self) -> None:
        self._sessions: dict[_SessionKey, AsyncSession[CurlResponse]] = {}
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._sessions)} open"
        return f"<SessionScope {state}>"

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._sessions)

    def get(
        self, proxy: str | None, impersonate: str, verify: bool | str
    ) -> AsyncSession[CurlResponse]:
        if self._closed:
            raise RuntimeError("This chatgpt4o session scope is closed")
        key = (proxy, impersonate, verify)
        session = self._sessions.get(key)
        if session is None:
            from curl_cffi.requests import AsyncSession

            logger.debug(
                "new curl_cffi session (impersonate=%s, proxy=%s)",
                impersonate, describe_proxy(proxy) if proxy else None,
            )
            session = AsyncSession(
                impersonate=impersonate,
                proxy=proxy,
                verify=verify,  # type: ignore[arg-type]  # a CA path works too
                trust_env=False,
                discard_cookies=True,
                max_clients=64,
            )
            self._sessions[key] = session
        return session

    async def _close_sessions(self) -> None:
        sessions = list(self._sessions.values())
        self._sessions.clear()
        for session in sessions:
            await session.close()

    async def aclose(self) -> None:
        """Close every session; the scope cannot be used after."""
        self._closed = True
        await self._close_sessions()


class _LoopScope(SessionScope):
    """The loop's own scope, closed when the loop shuts down.

    `asyncio.run` (and `asyncio.Runner`) finalize live async generators before they
    close the loop; a parked generator is the hook to close the sessions then, without
    a task that would show up in `asyncio.all_tasks()`.
    """

    async def aclose(self) -> None:
        """Close every session; new ones open on demand, as long as the loop runs."""
        await self._close_sessions()

    async def watch_loop_shutdown(self) -> None:
        self._watcher = self._close_at_shutdown()
        await self._watcher.__anext__()

    async def _close_at_shutdown(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self.aclose()


_loop_scopes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopScope] = (
    weakref.WeakKeyDictionary()
)
_current_scope: ContextVar[SessionScope | None] = ContextVar("chatgpt4o_scope", default=None)


async def _current_session_scope() -> SessionScope:
    scope = _current_scope.get()
    if scope is not None:
        return scope
    loop = asyncio.get_running_loop()
    scope = _loop_scopes.get(loop)
    if scope is None:
        scope = _loop_scopes[loop] = _LoopScope()
        await scope.watch_loop_shutdown()
    return scope


@asynccontextmanager
async def session_scope() -> AsyncIterator[SessionScope]:
    """Requests made inside the block (and tasks it starts) use sessions of their
    own, closed when the block ends."""
    scope = SessionScope()
    token = _current_scope.set(scope)
    try:
        yield scope
    finally:
        _current_scope.reset(token)
        await scope.aclose()


async def aclose_shared_sessions() -> None:
    """Close the shared sessions of the running event loop (new ones open on demand)."""
    scope = _loop_scopes.get(asyncio.get_running_loop())
    if scope is not None:
        await scope.aclose()


def shared_session_count() -> int:
    """How many shared curl_cffi sessions the running loop holds (for tests and stats)."""
    scope = _loop_scopes.get(asyncio.get_running_loop())
    return 0 if scope is None else len(scope)


# -- the session and its responses -----------------------------------------------------


class StreamResponse:
    """One answer: status and headers at once, the body read whole or as it arrives."""

    def __init__(
        self, raw: CurlResponse, *, streaming: bool, url: str, proxy: str | None
    ) -> None:
        self._raw = raw
        self._streaming = streaming
        self._finished = not streaming
        self._url = url
        self._proxy = proxy
        self.status_code: int = raw.status_code
        self.url: str = raw.url or url

    def __repr__(self) -> str:
        return f"<StreamResponse [{self.status_code}]>"

    @property
    def headers(self) -> Mapping[str, str]:
        """The answer's headers; names are looked up case-insensitively."""
        return self._raw.headers  # type: ignore[return-value]

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies this answer set (Set-Cookie), name to value."""
        return {name: value for name, value in self._raw.cookies.items() if value is not None}

    def raise_for_status(self) -> StreamResponse:
        """Raise `HTTPStatusError` unless the status is 2xx (the body is not read)."""
        if not self.ok:
            raise HTTPStatusError(
                f"{self._url} answered HTTP {self.status_code}", status_code=self.status_code
            )
        return self

    async def aiter_bytes(self) -> AsyncGenerator[bytes, None]:
        """The body in the pieces the network delivers."""
        if not self._streaming:
            if self._raw.content:
                yield self._raw.content
            return
        from curl_cffi.requests.exceptions import RequestException

        try:
            async for chunk in self._raw.aiter_content():  # type: ignore[no-untyped-call]
                yield chunk
        except RequestException as err:
            self._finished = True
            raise _map_transport_error(err, url=self._url, proxy=self._proxy) from err
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
        parts: list[bytes] = []
        size = 0
        async for chunk in self.aiter_bytes():
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                await self.aclose()
                raise ResponseError(f"The answer from {self._url} is larger than {max_bytes} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def text(self) -> str:
        return (await self.aread()).decode("utf-8", "replace")

    async def json(self) -> Any:
        import json

        return json.loads(await self.aread())

    async def aclose(self) -> None:
        """End the transfer now, whether or not the body was read.

        curl_cffi's own close waits for the whole body; a stalled or endless answer
        must not hold the caller, so the transfer is cancelled instead.
        """
        if self._finished:
            return
        self._finished = True
        raw = self._raw
        quit_now = getattr(raw, "quit_now", None)
        if quit_now is not None:
            quit_now.set()
        task = getattr(raw, "astream_task", None)
        if task is not None and not task.done():
            task.cancel()
            # Wait for curl to let go of the handle; if this task is itself cancelled
            # meanwhile, asyncio.wait lets that through.
            await asyncio.wait([task])
        if task is not None and task.done() and not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as lost

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

    def __init__(self, send: Awaitable[StreamResponse]) -> None:
        self._send = send
        self._response: StreamResponse | None = None

    def __await__(self) -> Generator[Any, None, StreamResponse]:
        return self._send.__await__()

    async def __aenter__(self) -> StreamResponse:
        self._response = await self._send
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
    override them. With no `session` given it uses the event loop's shared curl_cffi
    session for its proxy and browser profile; a `session` passed in is used as is and
    never closed by this library.
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
        session: AsyncSession[CurlResponse] | None = None,
    ) -> None:
        if proxy is None and proxies:
            proxy = proxies.get("all") or proxies.get("https") or proxies.get("http")
        self.headers: dict[str, str] = dict(headers or {})
        self.cookies: dict[str, str] = dict(cookies or {})
        self.proxy = check_proxy(proxy)
        self.timeout = timeout
        self.impersonate = impersonate
        self.verify = verify
        self._session = session
        self._closed = False

    def __repr__(self) -> str:
        proxy = describe_proxy(self.proxy) if self.proxy else None
        return (
            f"<StreamSession impersonate={self.impersonate!r} proxy={proxy!r} "
            f"timeout={self.timeout!r}>"
        )

    @property
    def closed(self) -> bool:
        return self._closed

    async def _curl_session(self) -> AsyncSession[CurlResponse]:
        if self._session is not None:
            return self._session
        scope = await _current_session_scope()
        return scope.get(self.proxy, self.impersonate, self.verify)

    async def _send(
        self,
        method: Method,
        url: str,
        *,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        cookies: Mapping[str, str] | None,
        timeout: float | None,
        stream: bool,
    ) -> StreamResponse:
        if self._closed:
            raise RuntimeError("This StreamSession is closed; make a new one")
        from curl_cffi.requests.exceptions import RequestException

        session = await self._curl_session()
        merged_headers = {**self.headers, **(headers or {})}
        merged_cookies = {**self.cookies, **(cookies or {})}
        wait = self.timeout if timeout is None else timeout
        logger.debug("%s %s", method, url)
        try:
            raw = await session.request(
                method,
                url,
                data=dict(data) if data is not None else None,
                headers=merged_headers,
                cookies=merged_cookies or None,
                timeout=wait if wait is not None else 0,
                stream=stream,
                allow_redirects=True,
            )
        except RequestException as err:
            raise _map_transport_error(err, url=url, proxy=self.proxy) from err
        logger.debug("%s %s -> %s", method, url, raw.status_code)
        return StreamResponse(raw, streaming=stream, url=url, proxy=self.proxy)

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
    ) -> _PendingResponse:
        """Send a request; await the result or use it as an async context manager."""
        return _PendingResponse(
            self._send(
                method, url, data=data, headers=headers, cookies=cookies,
                timeout=timeout, stream=stream,
            )
        )

    def get(self, url: str, **kwargs: Any) -> _PendingResponse:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> _PendingResponse:
        return self.request("POST", url, **kwargs)

    async def close(self) -> None:
        """Mark this session closed; the shared curl_cffi session stays with its loop."""
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
