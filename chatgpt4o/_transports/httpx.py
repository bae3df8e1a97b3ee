"""The httpx transport: for where curl_cffi cannot be installed, and for respx in tests.

httpx does not impersonate a browser, so requests carry a browser's user agent unless
the caller sends one. Cookies go as a `Cookie` header: httpx's per-request cookies are
deprecated, and a shared jar would carry one site's cookies to another on the same host.
"""

from __future__ import annotations

import importlib.util
import logging
import ssl
from collections.abc import AsyncIterator

import httpx

from .._config import check_proxy, describe_proxy
from .._constants import FALLBACK_USER_AGENT
from ._dns import gaierror_says_no_such_name
from ._errors import FailureKind, proxy_refused, transport_error
from .base import AsyncTransport, ByteStream, Request, Response

__all__ = ["HttpxTransport", "require_socks_support"]

logger = logging.getLogger(__name__)

# Which kind of failure each httpx exception is; the first match wins.
_FAILURES: tuple[tuple[type[BaseException], FailureKind], ...] = (
    (httpx.TimeoutException, "timeout"),
    (httpx.ProxyError, "proxy"),
    (httpx.TransportError, "connect"),
    (httpx.HTTPError, "connect"),
)


def require_socks_support(proxy: str | None) -> None:
    """Raise ImportError if `proxy` is SOCKS and httpx's SOCKS support is missing."""
    if proxy and proxy[:5].lower() == "socks" and importlib.util.find_spec("socksio") is None:
        raise ImportError(
            "a SOCKS proxy on the httpx backend needs socksio: pip install 'httpx[socks]'"
        )


def _map_error(err: httpx.HTTPError, *, url: str, proxy: str | None) -> Exception:
    """An httpx exception as the library's own; a failed name lookup is a
    `HostNotFoundError` when the resolver said the name does not exist (see `_dns`)."""
    for failure, kind in _FAILURES:
        if isinstance(err, failure):
            if kind == "connect" and gaierror_says_no_such_name(err):
                kind = "no_such_host"
            return transport_error(kind, err, url=url, proxy=proxy)
    return transport_error("connect", err, url=url, proxy=proxy)  # pragma: no cover


class _HttpxStream(ByteStream):
    """A streamed body, read from httpx's own (decoded) chunk iterator."""

    __slots__ = ("_chunks", "_closed", "_next", "_proxy", "_response", "_url")

    def __init__(self, response: httpx.Response, url: str, proxy: str | None) -> None:
        self._response = response
        self._url = url
        self._proxy = proxy
        self._chunks: AsyncIterator[bytes] = response.aiter_bytes()
        self._next = self._chunks.__anext__
        self._closed = False

    async def read_chunk(self) -> bytes:
        while True:
            try:
                chunk = await self._next()
            except StopAsyncIteration:
                return b""
            except httpx.HTTPError as err:
                raise _map_error(err, url=self._url, proxy=self._proxy) from err
            if chunk:  # httpx's decoders may hand out empty pieces
                return chunk

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        chunks = self._chunks
        if not getattr(chunks, "ag_running", False):
            await chunks.aclose()  # type: ignore[attr-defined]
        await self._response.aclose()


class HttpxTransport(AsyncTransport):
    """Sends requests with httpx.

    Without `client` it makes an `httpx.AsyncClient` of its own (through `proxy`,
    checking certificates per `verify`: True, False or a CA bundle's path) and closes it
    in `aclose()`. A `client` is used as it is, with its own proxy and settings, and
    never closed here; `proxy` then only names the proxy in errors.
    """

    def __init__(
        self,
        *,
        proxy: str | None = None,
        verify: bool | str = True,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.proxy = check_proxy(proxy)
        #: Whether the client is this transport's own (closed by `aclose`).
        self.owns_client = client is None
        if client is None:
            require_socks_support(self.proxy)
            client = httpx.AsyncClient(
                proxy=self.proxy,
                # httpx takes a CA bundle's path only through an SSL context now.
                verify=ssl.create_default_context(cafile=verify)
                if isinstance(verify, str)
                else verify,
                trust_env=False,  # the caller's proxy, not the environment's
                follow_redirects=True,
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
            )
        self._client = client

    def __repr__(self) -> str:
        proxy = describe_proxy(self.proxy) if self.proxy else None
        owner = "own client" if self.owns_client else "user's client"
        return f"<HttpxTransport proxy={proxy!r} {owner}>"

    async def send(self, request: Request) -> Response:
        url = request.url
        headers = dict(request.headers)
        if not any(name.lower() == "user-agent" for name in headers):
            headers["user-agent"] = FALLBACK_USER_AGENT
        if request.cookies:
            headers["cookie"] = "; ".join(
                f"{name}={value}" for name, value in request.cookies.items()
            )
        client = self._client
        built = client.build_request(
            request.method,
            url,
            content=request.content,
            headers=headers,
            timeout=httpx.Timeout(request.timeout),
        )
        try:
            response = await client.send(
                built, stream=True, follow_redirects=request.follow_redirects
            )
        except httpx.HTTPError as err:
            raise _map_error(err, url=url, proxy=self.proxy) from err
        if self.owns_client:
            client.cookies.clear()  # no jar: cookies are the caller's, per site
        if response.status_code == 407 and self.proxy:
            await response.aclose()
            raise proxy_refused(self.proxy)
        set_cookies = (
            {cookie.name: cookie.value or "" for cookie in response.cookies.jar}
            if "set-cookie" in response.headers
            else None
        )
        final_url = str(response.url)
        if request.stream:
            return Response(
                response.status_code,
                headers=response.headers,
                url=final_url,
                cookies=set_cookies,
                stream=_HttpxStream(response, url, self.proxy),
            )
        try:
            content = await response.aread()  # closes the response once it is read
        except BaseException as err:
            await response.aclose()
            if isinstance(err, httpx.HTTPError):
                raise _map_error(err, url=url, proxy=self.proxy) from err
            raise
        return Response(
            response.status_code,
            headers=response.headers,
            url=final_url,
            cookies=set_cookies,
            content=content,
        )

    async def aclose(self) -> None:
        if self.owns_client and not self._client.is_closed:
            logger.debug("closing %r", self)
            await self._client.aclose()
