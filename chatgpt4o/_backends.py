"""The two HTTP backends: curl_cffi (browser impersonation, the default) and httpx.

Each opens and closes its client and sends one request, handing back the parts of a
backend-neutral `StreamResponse`: status, headers, cookies set, the body as an async
iterator, and a way to abort the transfer. Both map their errors onto the library's
own, with secrets left out. Neither library is imported before it is used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import unquote

from ._config import describe_proxy
from ._constants import FALLBACK_USER_AGENT
from ._exceptions import ProviderConnectionError, ProviderError, ProviderTimeoutError, redact

__all__ = [
    "BACKENDS",
    "Backend",
    "Outgoing",
    "RawResponse",
    "backend_of",
    "close_client",
    "open_client",
    "pick_backend",
    "send",
]

logger = logging.getLogger(__name__)

Backend = Literal["curl_cffi", "httpx"]
BACKENDS: tuple[Backend, ...] = ("curl_cffi", "httpx")
# A body this large is refused outright (the parsers stop far earlier; this guards the
# memory of an answer read whole).
_MAX_DOWNLOAD_BYTES = 64 * 1024 * 1024
_INSTALL_HINT = {"curl_cffi": "pip install curl_cffi", "httpx": "pip install httpx"}


def _importable(backend: Backend) -> bool:
    if backend in sys.modules:  # the usual case, and cheap: once imported, always there
        return sys.modules[backend] is not None
    try:
        __import__(backend)
    except ImportError:
        return False
    return True


_backend_of_type: dict[type, Backend] = {}


def backend_of(client: object) -> Backend:
    """Which backend a user's own client belongs to."""
    known = _backend_of_type.get(type(client))
    if known is not None:
        return known
    for cls in type(client).__mro__:  # subclasses of either count (ours included)
        module = cls.__module__.split(".", 1)[0]
        if module in BACKENDS:
            backend: Backend = "curl_cffi" if module == "curl_cffi" else "httpx"
            _backend_of_type[type(client)] = backend
            return backend
    raise TypeError(
        "client must be a curl_cffi.requests.AsyncSession or an httpx.AsyncClient, "
        f"not {type(client).__name__}"
    )


def pick_backend(requested: object, client: object | None = None) -> Backend:
    """The backend to use: the client's, the one asked for, or curl_cffi if it imports."""
    if client is not None:
        return backend_of(client)
    if requested is None:
        for candidate in BACKENDS:
            if _importable(candidate):
                return candidate
        raise ImportError("chatgpt4o needs curl_cffi (or httpx): pip install curl_cffi")
    for backend in BACKENDS:
        if requested == backend:
            if not _importable(backend):
                raise ImportError(f"backend={backend!r} needs {_INSTALL_HINT[backend]}")
            return backend
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {requested!r}")


def open_client(backend: Backend, proxy: str | None, impersonate: str, verify: bool | str) -> Any:
    """A client of `backend` that this library owns (and closes)."""
    logger.debug(
        "new %s client (impersonate=%s, proxy=%s)",
        backend, impersonate, describe_proxy(proxy) if proxy else None,
    )
    if backend == "curl_cffi":
        from curl_cffi import CurlOpt

        return _curl_session(
            impersonate=impersonate,
            proxy=proxy,
            verify=verify,  # a CA bundle path works too
            trust_env=False,
            discard_cookies=True,  # cookies are the caller's, per site
            max_clients=64,
            curl_options={CurlOpt.MAXFILESIZE_LARGE: _MAX_DOWNLOAD_BYTES},
        )
    import httpx

    if isinstance(verify, str):
        verify = ssl.create_default_context(cafile=verify)  # type: ignore[assignment]
    return httpx.AsyncClient(
        proxy=proxy,
        verify=verify,
        trust_env=False,
        follow_redirects=True,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
    )


async def close_client(client: Any) -> None:
    if backend_of(client) == "curl_cffi":
        await client.close()
    else:
        await client.aclose()


@dataclass(slots=True)  # not frozen: made on every request, and frozen init is slow
class Outgoing:
    """One request, as the session hands it to a backend."""

    method: str
    url: str
    data: Mapping[str, str] | None = field(repr=False)
    headers: Mapping[str, str]
    cookies: Mapping[str, str] = field(repr=False)
    timeout: float | None
    stream: bool
    follow_redirects: bool = True


@dataclass(slots=True)
class RawResponse:
    """What a backend hands back for one request."""

    status_code: int
    url: str
    headers: Mapping[str, str]
    cookies: dict[str, str]
    chunks: AsyncGenerator[bytes, None]
    abort: Callable[[], Awaitable[None]]
    #: The whole body, when the request was not streamed (it is read already).
    content: bytes | None = None


def _map_error(err: BaseException, *, url: str, proxy: str | None) -> ProviderError:
    """A backend's transport error as the library's own, without secrets."""
    via = f" via proxy {describe_proxy(proxy)}" if proxy else ""
    # curl appends a pointer to its docs to every message; it says nothing here
    detail = str(err).split(" See https://curl.se/")[0]
    if proxy:  # before redact, which would change the text to look for
        for spelling in {proxy, unquote(proxy)}:
            detail = detail.replace(spelling, describe_proxy(proxy))
    detail = redact(detail) or type(err).__name__
    url = redact(url)
    timed_out = getattr(err, "code", None) == 28 or any(
        cls.__name__ in ("Timeout", "TimeoutException") for cls in type(err).__mro__
    )
    if timed_out:
        return ProviderTimeoutError(f"Timed out talking to {url}{via}: {detail}")
    if type(err).__name__ == "ProxyError":
        return ProviderConnectionError(f"The proxy {describe_proxy(proxy or '')} failed: {detail}")
    return ProviderConnectionError(f"Could not reach {url}{via}: {detail}")


async def send(client: Any, request: Outgoing, *, proxy: str | None, owned: bool) -> RawResponse:
    """Send `request` with `client`; the body is read as the caller iterates.

    `owned` says the client is the library's own (its cookie jar may be emptied).
    """
    if backend_of(client) == "curl_cffi":
        raw = await _send_curl(client, request, proxy)
    else:
        raw = await _send_httpx(client, request, proxy, owned)
    if raw.status_code == 407 and proxy:
        await raw.abort()
        raise ProviderConnectionError(
            f"The proxy {describe_proxy(proxy)} refused the request (HTTP 407): "
            "check its user name and password"
        )
    return raw


# -- curl_cffi ---------------------------------------------------------------------------


# The curl handle a request took from its session's pool, for the caller that started
# it: a list handed down through the context, filled by `_CurlSession.pop_curl`.
_claimed_handle: ContextVar[list[Any] | None] = ContextVar("chatgpt4o_curl", default=None)
_curl_session_class: type[Any] | None = None


def _curl_session(**options: Any) -> Any:
    """A curl_cffi AsyncSession that tells the caller which curl handle a request took.

    curl_cffi's streamed request cannot be cancelled while it waits for the headers:
    the transfer goes on in a task of its own and its handle stays taken. Knowing the
    handle lets `_send_curl` end that transfer when the caller gives up.
    """
    global _curl_session_class
    if _curl_session_class is None:
        from curl_cffi.requests import AsyncSession

        class _CurlSession(AsyncSession):  # type: ignore[type-arg]
            async def pop_curl(self) -> Any:
                curl = await super().pop_curl()
                claimed = _claimed_handle.get()
                if claimed is not None:
                    claimed.append(curl)
                return curl

        _curl_session_class = _CurlSession
    return _curl_session_class(**options)


def _abort_curl_response(raw: Any) -> asyncio.Task[Any] | None:
    """Stop a streamed curl_cffi transfer; the task that carries it, if still running."""
    quit_now = getattr(raw, "quit_now", None)
    if quit_now is not None:
        quit_now.set()
    task: asyncio.Task[Any] | None = getattr(raw, "astream_task", None)
    if task is None or task.done():
        return None
    task.cancel()
    return task


def _give_up_curl_request(client: Any, request: asyncio.Task[Any], claimed: list[Any]) -> None:
    """The caller was cancelled while curl_cffi waited for the headers: end the transfer
    now, and throw away whatever the request still comes back with."""

    def discard(done: asyncio.Task[Any]) -> None:
        if done.cancelled():
            return
        if done.exception() is None:  # headers came after all: end that transfer too
            _abort_curl_response(done.result())

    request.add_done_callback(discard)
    if request.done():
        return
    if not claimed:
        request.cancel()  # no handle taken yet: nothing is on the wire
        return
    from curl_cffi.curl import CurlError

    # Fails the transfer the way a network error would; curl_cffi then returns the
    # handle to its pool and the request ends with that error, which `discard` takes.
    with contextlib.suppress(Exception):
        client.acurl.set_exception(claimed[-1], CurlError("cancelled by the caller", 42))


async def _streamed_request(client: Any, sending: Coroutine[Any, Any, Any]) -> Any:
    """Await a streamed curl_cffi request so that cancelling the caller ends it."""
    claimed: list[Any] = []
    token = _claimed_handle.set(claimed)
    try:
        request = asyncio.ensure_future(sending)  # the new task sees `claimed`
    finally:
        _claimed_handle.reset(token)
    try:
        return await asyncio.shield(request)
    except asyncio.CancelledError:
        _give_up_curl_request(client, request, claimed)
        raise


async def _send_curl(client: Any, request: Outgoing, proxy: str | None) -> RawResponse:
    from curl_cffi.requests.exceptions import ImpersonateError, RequestException

    url, stream = request.url, request.stream
    sending = client.request(
        request.method,
        url,
        data=request.data,
        headers=request.headers,
        cookies=request.cookies or None,
        timeout=request.timeout if request.timeout is not None else 0,
        stream=stream,
        allow_redirects=request.follow_redirects,
    )
    try:
        if stream:
            raw = await _streamed_request(client, sending)
        else:
            raw = await sending  # curl_cffi cleans up after a cancellation here itself
    except ImpersonateError as err:
        raise ValueError(f"curl_cffi cannot impersonate this browser: {err}") from err
    except RequestException as err:
        raise _map_error(err, url=url, proxy=proxy) from err
    if raw.status_code == 0:  # the session was closed under the request
        _abort_curl_response(raw)
        raise ProviderConnectionError(
            f"The request to {redact(url)} was cut off: its session was closed"
        )

    async def chunks() -> AsyncGenerator[bytes, None]:
        if not stream:
            if raw.content:
                yield raw.content
            return
        try:
            async for chunk in raw.aiter_content():
                yield chunk
        except RequestException as err:
            raise _map_error(err, url=url, proxy=proxy) from err

    async def abort() -> None:
        # curl_cffi's own close waits for the whole body; a stalled or endless answer
        # must not hold the caller, so the transfer task is cancelled instead.
        task = _abort_curl_response(raw)
        if task is not None:
            # If this task is itself cancelled meanwhile, asyncio.wait lets that through.
            await asyncio.wait([task])
        task = getattr(raw, "astream_task", None)
        if task is not None and task.done() and not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as lost

    return RawResponse(
        status_code=raw.status_code,
        url=raw.url or url,
        headers=raw.headers,
        cookies=(
            {name: value for name, value in raw.cookies.items() if value is not None}
            if "set-cookie" in raw.headers
            else {}
        ),
        chunks=chunks(),
        abort=abort,
        content=None if stream else raw.content,
    )


# -- httpx -------------------------------------------------------------------------------


async def _send_httpx(
    client: Any, request: Outgoing, proxy: str | None, owned: bool
) -> RawResponse:
    import httpx

    url = request.url
    headers = {"user-agent": FALLBACK_USER_AGENT, **request.headers}
    if request.cookies:
        # A Cookie header, not cookies=: httpx's per-request cookies are deprecated
        # and its jar would carry one site's cookies to another on the same host.
        headers["cookie"] = "; ".join(f"{name}={value}" for name, value in request.cookies.items())
    built = client.build_request(
        request.method, url, data=dict(request.data) if request.data is not None else None,
        headers=headers, timeout=httpx.Timeout(request.timeout),
    )
    try:
        response = await client.send(
            built, stream=True, follow_redirects=request.follow_redirects
        )
    except httpx.HTTPError as err:
        raise _map_error(err, url=url, proxy=proxy) from err
    set_cookies = {cookie.name: cookie.value or "" for cookie in response.cookies.jar}
    if owned:
        client.cookies.clear()  # our client keeps no jar: cookies are per site, ours to hold

    async def chunks() -> AsyncGenerator[bytes, None]:
        try:
            async for chunk in response.aiter_bytes():
                if chunk:
                    yield chunk
        except httpx.HTTPError as err:
            raise _map_error(err, url=url, proxy=proxy) from err

    if not request.stream:
        try:
            await response.aread()
        except httpx.HTTPError as err:
            await response.aclose()
            raise _map_error(err, url=url, proxy=proxy) from err

    return RawResponse(
        status_code=response.status_code,
        url=str(response.url),
        headers=response.headers,
        cookies=set_cookies,
        chunks=chunks(),
        abort=response.aclose,
        content=None if request.stream else response.content,
    )
