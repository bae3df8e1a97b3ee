"""The two HTTP backends: curl_cffi (browser impersonation, the default) and httpx.

Each opens and closes its client and sends one request, handing back the parts of a
backend-neutral `StreamResponse`: status, headers, cookies set, the body as an async
iterator, and a way to abort the transfer. Both map their errors onto the library's
own, with secrets left out. Neither library is imported before it is used.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._constants import FALLBACK_USER_AGENT
from ._exceptions import ProviderConnectionError, ProviderError, ProviderTimeoutError, redact

__all__ = [
    "BACKENDS",
    "Backend",
    "Outgoing",
    "RawResponse",
    "backend_of",
    "close_client",
    "describe_proxy",
    "open_client",
    "pick_backend",
    "send",
]

logger = logging.getLogger(__name__)

Backend = Literal["curl_cffi", "httpx"]
BACKENDS: tuple[Backend, ...] = ("curl_cffi", "httpx")
_INSTALL_HINT = {"curl_cffi": "pip install curl_cffi", "httpx": "pip install httpx"}


def describe_proxy(proxy: str) -> str:
    """The proxy as it may be shown: scheme, host and port, never the password."""
    from urllib.parse import urlsplit

    parts = urlsplit(proxy)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{parts.hostname or '?'}{port}"


def _importable(backend: Backend) -> bool:
    try:
        __import__(backend)
    except ImportError:
        return False
    return True


def backend_of(client: object) -> Backend:
    """Which backend a user's own client belongs to."""
    module = type(client).__module__.split(".", 1)[0]
    if module == "curl_cffi":
        return "curl_cffi"
    if module == "httpx":
        return "httpx"
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
        from curl_cffi.requests import AsyncSession

        return AsyncSession(
            impersonate=impersonate,
            proxy=proxy,
            verify=verify,  # type: ignore[arg-type]  # a CA bundle path works too
            trust_env=False,
            discard_cookies=True,  # cookies are the caller's, per site
            max_clients=64,
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


@dataclass(frozen=True)
class Outgoing:
    """One request, as the session hands it to a backend."""

    method: str
    url: str
    data: Mapping[str, str] | None
    headers: Mapping[str, str]
    cookies: Mapping[str, str] = field(repr=False)
    timeout: float | None
    stream: bool


@dataclass
class RawResponse:
    """What a backend hands back for one request."""

    status_code: int
    url: str
    headers: Mapping[str, str]
    cookies: dict[str, str]
    chunks: AsyncGenerator[bytes, None]
    abort: Callable[[], Awaitable[None]]


def _map_error(err: BaseException, *, url: str, proxy: str | None) -> ProviderError:
    """A backend's transport error as the library's own, without secrets."""
    via = f" via proxy {describe_proxy(proxy)}" if proxy else ""
    # curl appends a pointer to its docs to every message; it says nothing here
    detail = redact(str(err).split(" See https://curl.se/")[0]) or type(err).__name__
    if proxy:
        detail = detail.replace(proxy, describe_proxy(proxy))
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
        return await _send_curl(client, request, proxy)
    return await _send_httpx(client, request, proxy, owned)


# -- curl_cffi ---------------------------------------------------------------------------


async def _send_curl(client: Any, request: Outgoing, proxy: str | None) -> RawResponse:
    from curl_cffi.requests.exceptions import RequestException

    url, stream = request.url, request.stream
    try:
        raw = await client.request(
            request.method,
            url,
            data=dict(request.data) if request.data is not None else None,
            headers=dict(request.headers),
            cookies=dict(request.cookies) or None,
            timeout=request.timeout if request.timeout is not None else 0,
            stream=stream,
            allow_redirects=True,
        )
    except RequestException as err:
        raise _map_error(err, url=url, proxy=proxy) from err

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
        quit_now = getattr(raw, "quit_now", None)
        if quit_now is not None:
            quit_now.set()
        task = getattr(raw, "astream_task", None)
        if task is None:
            return
        if not task.done():
            task.cancel()
            # If this task is itself cancelled meanwhile, asyncio.wait lets that through.
            await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it as lost

    return RawResponse(
        status_code=raw.status_code,
        url=raw.url or url,
        headers=raw.headers,
        cookies={name: value for name, value in raw.cookies.items() if value is not None},
        chunks=chunks(),
        abort=abort,
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
        response = await client.send(built, stream=True)
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
    )
