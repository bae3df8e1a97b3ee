"""The curl_cffi transport: a browser's TLS and HTTP/2 fingerprint (the default).

This is the one module that touches curl_cffi's private API; `PRIVATE_API` lists what it
relies on, and `missing_private_api()` (run by the tests) says what a release lacks:

* `AsyncSession.pop_curl`: overridden, to learn which curl handle a streamed request
  took, so that cancelling the caller while it waits for the headers can end that
  transfer (curl_cffi itself leaves it running, and the handle taken, until the server
  is done);
* `AsyncSession.acurl.set_exception`: fails that handle's transfer;
* a streamed response's `astream_task` and `quit_now`: ending a transfer without
  waiting for the rest of the body, which curl_cffi's own `aclose` does;
* `exceptions.code2error`: older releases hand a streamed transfer's failure over as a
  bare `RequestException` with curl's code; this names the class it stands for.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Coroutine
from contextvars import ContextVar
from typing import Any, ClassVar, Literal, cast
from urllib.parse import urlsplit

import curl_cffi
from curl_cffi import CurlECode, CurlOpt
from curl_cffi.curl import CurlError
from curl_cffi.requests import AsyncSession
from curl_cffi.requests import exceptions as curl_exceptions

from .._config import check_proxy, describe_proxy
from .._constants import DEFAULT_IMPERSONATE, MAX_DOWNLOAD_BYTES
from ._dns import curl_resolve_failure, system_says_no_such_name
from ._errors import (
    FailureKind,
    closed_under_request,
    proxy_refused,
    transport_error,
    value_error_detail,
)
from .base import AsyncTransport, ByteStream, Request, Response

__all__ = [
    "CURL_CFFI_VERSION",
    "MAX_DOWNLOAD_BYTES",
    "PRIVATE_API",
    "CurlTransport",
    "missing_private_api",
]

logger = logging.getLogger(__name__)

CURL_CFFI_VERSION: str = getattr(curl_cffi, "__version__", "unknown")
_ENVIRONMENT_PROXY_LEAKS = tuple(
    int(part) if part.isdigit() else 0 for part in CURL_CFFI_VERSION.split(".")[:2]
) < (0, 17)

#: What this module uses of curl_cffi beyond its documented API (see the docstring).
PRIVATE_API = (
    "AsyncSession.pop_curl",
    "AsyncSession.acurl",
    "AsyncCurl.set_exception",
    "Response.astream_task",
    "Response.quit_now",
    "exceptions.code2error",
)

# What each curl_cffi exception is; the first match wins. "value": the caller's
# arguments are wrong (a ValueError); the others are transport failures.
_FAILURES: tuple[tuple[type[BaseException], FailureKind | Literal["value"]], ...] = (
    (curl_exceptions.ImpersonateError, "value"),
    (curl_exceptions.Timeout, "timeout"),
    (curl_exceptions.ProxyError, "proxy"),
    (curl_exceptions.RequestException, "connect"),
    (CurlError, "connect"),
)


def missing_private_api() -> list[str]:
    """The entries of `PRIVATE_API` the installed curl_cffi lacks (none, if it fits)."""
    from curl_cffi.aio import AsyncCurl
    from curl_cffi.requests.models import Response as CurlResponse

    missing: list[str] = []
    if not inspect.iscoroutinefunction(getattr(AsyncSession, "pop_curl", None)):
        missing.append("AsyncSession.pop_curl")
    if not isinstance(getattr(AsyncSession, "acurl", None), property):
        missing.append("AsyncSession.acurl")
    if not callable(getattr(AsyncCurl, "set_exception", None)):
        missing.append("AsyncCurl.set_exception")
    blank = CurlResponse()
    for name in ("astream_task", "quit_now"):
        if not hasattr(blank, name):
            missing.append(f"Response.{name}")
    if not callable(getattr(curl_exceptions, "code2error", None)):
        missing.append("exceptions.code2error")
    return missing


def _kind_of(err: CurlError) -> FailureKind | Literal["value"]:
    cls: type[BaseException] = type(err)
    if cls in (curl_exceptions.RequestException, CurlError) and err.code:
        # Older releases raise mid-stream failures as the base class; curl_cffi's own
        # table names the class the code stands for (a timeout, say).
        cls = curl_exceptions.code2error(cast(Any, err.code), str(err))
    for failure, kind in _FAILURES:
        if issubclass(cls, failure):
            return kind
    return "connect"  # pragma: no cover - CurlError is the last row


def _map_error(
    err: CurlError, *, url: str, proxy: str | None, no_such_host: bool = False
) -> Exception:
    """A curl_cffi exception as the library's own. A failed name lookup is a
    `HostNotFoundError` when curl's message (or, in `send`, the system resolver: see
    `_dns`) says the name does not exist, or when the caller knows it (`no_such_host`)."""
    kind = _kind_of(err)
    if kind == "value":
        return ValueError(f"curl_cffi cannot impersonate this browser: {value_error_detail(err)}")
    if kind == "connect" and (no_such_host or _resolve_verdict(err) is True):
        kind = "no_such_host"
    return transport_error(kind, err, url=url, proxy=proxy)


def _resolve_verdict(err: CurlError) -> bool | None:
    """For a failed name lookup: True when curl said there is no such name, False when
    it said the lookup failed otherwise, None when it did not say (or another error)."""
    if err.code != CurlECode.COULDNT_RESOLVE_HOST:
        return None
    failure = curl_resolve_failure(str(err))
    return None if failure is None else failure[1]


async def _map_send_error(err: CurlError, *, url: str, proxy: str | None) -> Exception:
    """`_map_error`, asking the system resolver about a failed lookup curl said nothing
    more about (a build with curl's threaded resolver, which is the system's)."""
    no_such_host = False
    if err.code == CurlECode.COULDNT_RESOLVE_HOST and _resolve_verdict(err) is None:
        failure = curl_resolve_failure(str(err))
        host = failure[0] if failure is not None else urlsplit(url).hostname
        if host:
            no_such_host = await system_says_no_such_name(host)
    return _map_error(err, url=url, proxy=proxy, no_such_host=no_such_host)


# -- cancelling a streamed request that waits for its headers ----------------------------

# The curl handle a streamed request took from its session's pool, for the caller that
# started it: a list handed down through the context, filled by `_Session.pop_curl`.
_claimed_handle: ContextVar[list[Any] | None] = ContextVar("chatgpt4o_curl", default=None)


class _Session(AsyncSession):  # type: ignore[type-arg]
    """curl_cffi's session, telling the caller which curl handle a request took."""

    def pop_curl(self) -> Coroutine[Any, Any, Any]:  # curl_cffi awaits it
        claimed = _claimed_handle.get()
        if claimed is None:  # nobody asks (not a streamed request): no extra coroutine
            return super().pop_curl()
        return self._pop_claimed(claimed)

    async def _pop_claimed(self, claimed: list[Any]) -> Any:
        curl = await super().pop_curl()
        claimed.append(curl)
        return curl


def _stop_transfer(raw: Any) -> asyncio.Task[Any] | None:
    """Stop a streamed transfer; the task that carries it, if it still runs."""
    if raw.quit_now is not None:
        raw.quit_now.set()
    task: asyncio.Task[Any] | None = raw.astream_task
    if task is None or task.done():
        return None
    task.cancel()
    return task


def _give_up(client: Any, request: asyncio.Task[Any], claimed: list[Any]) -> None:
    """The caller was cancelled while curl_cffi waited for the headers: end the transfer
    now, and throw away whatever the request still comes back with."""

    def discard(done: asyncio.Task[Any]) -> None:
        if done.cancelled():
            return
        if done.exception() is None:  # the headers came after all: end that transfer too
            _stop_transfer(done.result())

    request.add_done_callback(discard)
    if request.done():
        return
    if not claimed:  # no handle taken yet (or a user's session): nothing to fail
        request.cancel()
        return
    # Failing the handle the way a network error would makes curl_cffi put it back in
    # its pool and end the request with that error, which `discard` retrieves.
    with contextlib.suppress(Exception):
        client.acurl.set_exception(
            claimed[-1], CurlError("cancelled by the caller", CurlECode.ABORTED_BY_CALLBACK)
        )


async def _await_headers(client: Any, sending: Awaitable[Any]) -> Any:
    """Await a streamed request so that cancelling the caller ends its transfer."""
    claimed: list[Any] = []
    token = _claimed_handle.set(claimed)
    try:
        request = asyncio.ensure_future(sending)  # the new task's context has `claimed`
    finally:
        _claimed_handle.reset(token)
    try:
        return await asyncio.shield(request)
    except asyncio.CancelledError:
        _give_up(client, request, claimed)
        raise


# -- the body of a streamed answer --------------------------------------------------------


class _CurlStream(ByteStream):
    """A streamed body, read from curl_cffi's own chunk iterator."""

    __slots__ = ("_chunks", "_closed", "_next", "_proxy", "_raw", "_url")

    def __init__(self, raw: Any, url: str, proxy: str | None) -> None:
        self._raw = raw
        self._url = url
        self._proxy = proxy
        self._chunks: AsyncIterator[bytes] = raw.aiter_content()
        self._next = self._chunks.__anext__
        self._closed = False

    async def read_chunk(self) -> bytes:
        while True:
            try:
                chunk: bytes = await self._next()
            except StopAsyncIteration:  # the end, or closed (or failed) before
                return b""
            except CurlError as err:
                raise _map_error(err, url=self._url, proxy=self._proxy) from err
            if chunk:
                return chunk

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # curl_cffi's own close waits for the whole body; a stalled or endless answer
        # must not hold the caller, so the transfer's task is cancelled instead.
        task = _stop_transfer(self._raw)
        if task is not None:
            await asyncio.wait([task])  # a cancellation of the caller still gets through
        task = self._raw.astream_task
        if task is not None and task.done() and not task.cancelled():
            task.exception()  # retrieved, so that asyncio does not report it as lost
        chunks = self._chunks
        # A read under way in another task ends by itself (the transfer is over).
        if not getattr(chunks, "ag_running", False):
            await chunks.aclose()  # type: ignore[attr-defined]


# -- the transport ------------------------------------------------------------------------


def _curl_options(proxy: str | None) -> dict[CurlOpt, Any]:
    # (curl_cffi sets these on every request: each one is a cost per call)
    options: dict[CurlOpt, Any] = {CurlOpt.MAXFILESIZE_LARGE: MAX_DOWNLOAD_BYTES}
    if _ENVIRONMENT_PROXY_LEAKS:
        # libcurl reads http_proxy, all_proxy and no_proxy by itself, and curl_cffi
        # before 0.17 does not stop it for trust_env=False: empty values do.
        options[CurlOpt.NOPROXY] = ""
        if proxy is None:
            options[CurlOpt.PROXY] = ""
    return options


class CurlTransport(AsyncTransport):
    """Sends requests with curl_cffi, impersonating the browser `impersonate`.

    Without `client` it makes a session of its own (through `proxy`, checking
    certificates per `verify`: True, False or a CA bundle's path) and closes it in
    `aclose()`. A `client` (a `curl_cffi.requests.AsyncSession`) is used as it is, with
    its own proxy and settings, and never closed here; `proxy` then only names the proxy
    in errors.
    """

    # CURLOPT_TIMEOUT_MS bounds a whole transfer read at once (a streamed body read in
    # pieces is bounded by the caller's deadline).
    enforces_timeout: ClassVar[bool] = True

    def __init__(
        self,
        *,
        impersonate: str = DEFAULT_IMPERSONATE,
        proxy: str | None = None,
        verify: bool | str = True,
        client: AsyncSession | None = None,  # type: ignore[type-arg]
    ) -> None:
        self.proxy = check_proxy(proxy)
        self.impersonate = impersonate
        #: Whether the session is this transport's own (closed by `aclose`).
        self.owns_client = client is None
        if client is None:
            client = _Session(
                impersonate=impersonate,
                proxy=self.proxy,
                verify=verify,  # type: ignore[arg-type]  # a CA bundle's path works too
                trust_env=False,  # the caller's proxy, not the environment's
                discard_cookies=True,  # cookies are the caller's, per site: no jar
                max_clients=64,
                curl_options=_curl_options(self.proxy),
            )
        self._client: Any = client
        self._closed = False

    def __repr__(self) -> str:
        proxy = describe_proxy(self.proxy) if self.proxy else None
        owner = "own session" if self.owns_client else "user's session"
        return f"<CurlTransport impersonate={self.impersonate!r} proxy={proxy!r} {owner}>"

    async def send(self, request: Request) -> Response:
        url = request.url
        stream = request.stream
        headers = request.headers
        sending = self._client.request(
            request.method,
            url,
            data=request.content,
            headers=headers if isinstance(headers, dict) else dict(headers),
            cookies=request.cookies or None,
            # 0, not None: older releases read None as "the session's default".
            timeout=request.timeout if request.timeout is not None else 0,
            stream=stream,
            allow_redirects=request.follow_redirects,
        )
        try:
            if stream:
                raw = await _await_headers(self._client, sending)
            else:
                raw = await sending  # curl_cffi cleans up after a cancellation here itself
        except CurlError as err:
            raise await _map_send_error(err, url=url, proxy=self.proxy) from err
        status = raw.status_code
        if status == 0 or (status == 407 and self.proxy):
            if stream:
                await _CurlStream(raw, url, self.proxy).aclose()
            if status == 0:  # what curl_cffi answers when its session closed meanwhile
                raise closed_under_request(url)
            raise proxy_refused(self.proxy or "")
        headers = raw.headers
        cookies = (
            # From the jar, not `items()`: that raises when a name comes twice (two paths).
            {c.name: c.value for c in raw.cookies.jar if c.value is not None}
            if "set-cookie" in headers
            else None
        )
        if stream:
            return Response(
                status,
                headers=headers,
                url=raw.url or url,
                cookies=cookies,
                stream=_CurlStream(raw, url, self.proxy),
            )
        return Response(
            status, headers=headers, url=raw.url or url, cookies=cookies, content=raw.content
        )

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.owns_client:
            logger.debug("closing %r", self)
            await self._client.close()

