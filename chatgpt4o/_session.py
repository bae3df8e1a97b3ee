"""`StreamSession` and `StreamResponse`: g4f's HTTP session, on the library's transports.

    async with StreamSession(proxy=proxy) as session:
        async with session.post(url, json=payload, stream=True) as response:
            response.raise_for_status()
            async for event in response.sse():
                ...

With no `client`, requests go through the shared transport of the event loop (or of
the current `session_scope()`); a `client` of the user's is used as it is and never
closed here. Cookies never live in a client's jar: pass them per session or request,
and read what a site set from `StreamResponse.cookies`.
"""

from __future__ import annotations

import codecs
import json as jsonlib
import logging
import re
from collections.abc import AsyncGenerator, Coroutine, Generator, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeAlias
from urllib.parse import urlencode, urlsplit, urlunsplit

from ._config import check_proxy, describe_proxy
from ._constants import DEFAULT_IMPERSONATE, DEFAULT_TIMEOUT
from ._exceptions import HTTPStatusError, redact
from ._pool import (
    Backend,
    SessionScope,
    aclose_shared_sessions,
    loop_local,
    pick_backend,
    session_scope,
    shared_session_count,
    transport_for,
    wrap_client,
)
from ._transports.base import AsyncTransport, Request, Response

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

#: Query parameters: a mapping, or pairs (repeated names allowed); values may be lists.
Params: TypeAlias = Mapping[str, Any] | Iterable[tuple[str, Any]]
#: A request body: a form (a mapping, encoded as x-www-form-urlencoded) or raw bytes/text.
Data: TypeAlias = Mapping[str, Any] | bytes | str

_CHARSET = re.compile(r"charset\s*=\s*[\"']?([\w.:-]+)", re.IGNORECASE)


def _with_params(url: str, params: Params | None) -> str:
    """`url` with `params` added to its query (existing ones kept, fragment kept)."""
    if not params:
        return url
    extra = urlencode(params, doseq=True)  # type: ignore[arg-type]
    if not extra:
        return url
    parts = urlsplit(url)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit(parts._replace(query=query))


def _encode_body(data: Data | None, json: Any) -> tuple[bytes | None, str | None]:
    """The body and the content type it needs (None: leave the header alone)."""
    if json is not None:
        if data is not None:
            raise TypeError("pass data= or json=, not both")
        encoded = jsonlib.dumps(json, ensure_ascii=False, separators=(",", ":"))
        return encoded.encode("utf-8"), "application/json"
    if data is None:
        return None, None
    if isinstance(data, bytes):
        return data, None
    if isinstance(data, str):
        return data.encode("utf-8"), None
    if isinstance(data, Mapping):
        return urlencode(data, doseq=True).encode("ascii"), "application/x-www-form-urlencoded"
    raise TypeError(f"data must be a dict, bytes or str, not {type(data).__name__}")


def _merge_headers(
    base: Mapping[str, str], extra: Mapping[str, str] | None, content_type: str | None
) -> dict[str, str]:
    """`base` overridden by `extra`, names compared case-insensitively."""
    merged = dict(base)
    if extra:
        if merged:
            lowered = {name.lower(): name for name in merged}
            for name in extra:
                old = lowered.get(name.lower())
                if old is not None and old != name:
                    del merged[old]
        merged.update(extra)
    if content_type is not None and not any(name.lower() == "content-type" for name in merged):
        merged["content-type"] = content_type
    return merged


class StreamResponse:
    """One answer: status, headers and cookies at once, the body whole or as it arrives.

    `status` and `status_code` are the same. A request made with `stream=False` (the
    default) has its body read already; with `stream=True` it is read as you iterate
    (`aiter_bytes`, `iter_lines`, `iter_content`, `sse`) or whole (`text`, `json`).
    Leaving `async with` (or `aclose()`) ends the transfer at once.
    """

    def __init__(self, response: Response) -> None:
        self._response = response
        self.status_code: int = response.status_code
        self.url: str = response.url

    def __repr__(self) -> str:
        return f"<StreamResponse [{self.status_code}]>"

    @property
    def status(self) -> int:
        """The status code (aiohttp's and g4f's name for it)."""
        return self.status_code

    @property
    def headers(self) -> Mapping[str, str]:
        """The answer's headers; names are looked up case-insensitively."""
        return self._response.headers

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    @property
    def cookies(self) -> dict[str, str]:
        """The cookies this answer set (Set-Cookie), name to value."""
        return self._response.cookies

    @property
    def encoding(self) -> str:
        """The charset the Content-Type names, if Python knows it; else UTF-8."""
        match = _CHARSET.search(self.headers.get("content-type", ""))
        if match is not None:
            try:
                return codecs.lookup(match.group(1)).name
            except LookupError:
                pass
        return "utf-8"

    def raise_for_status(self) -> StreamResponse:
        """Raise `HTTPStatusError` unless the status is 2xx (the body is not read)."""
        if not self.ok:
            raise HTTPStatusError(
                f"{redact(self.url)} answered HTTP {self.status_code}",
                status_code=self.status_code,
            )
        return self

    async def aiter_bytes(self) -> AsyncGenerator[bytes, None]:
        """The body in the pieces the network delivers (all of it at once if it was
        read already)."""
        response = self._response
        if response.content is not None:
            if response.content:
                yield response.content
            return
        read = response.read_chunk
        while chunk := await read():
            yield chunk

    async def iter_content(self, chunk_size: int | None = None) -> AsyncGenerator[bytes, None]:
        """The body in pieces of `chunk_size` bytes (the last may be shorter), or as the
        network delivers them when `chunk_size` is None."""
        if chunk_size is None:
            async for chunk in self.aiter_bytes():
                yield chunk
            return
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be at least 1, got {chunk_size!r}")
        pending = b""
        async for chunk in self.aiter_bytes():
            pending += chunk
            while len(pending) >= chunk_size:
                yield pending[:chunk_size]
                pending = pending[chunk_size:]
        if pending:
            yield pending

    async def iter_lines(self) -> AsyncGenerator[bytes, None]:
        """The body line by line, without line endings (g4f's `iter_lines`)."""
        pending = b""
        async for chunk in self.aiter_bytes():
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            for line in lines:
                yield line.rstrip(b"\r")
        if pending:
            yield pending.rstrip(b"\r")

    async def sse(self) -> AsyncGenerator[Any, None]:
        """The JSON objects of an event stream's `data:` lines, until `data: [DONE]`.

        Lines that are not `data:` (comments, `event:`, blank lines) and data that is
        not JSON are skipped, as g4f does.
        """
        async for line in self.iter_lines():
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            try:
                yield jsonlib.loads(data)
            except ValueError:
                continue

    async def aread(self, max_bytes: int | None = None) -> bytes:
        """The whole body; more than `max_bytes` raises `ResponseError` (and ends the
        transfer)."""
        return await self._response.aread(max_bytes)

    async def text(self, encoding: str | None = None) -> str:
        """The whole body as text, in `encoding` or the one the answer names."""
        body = await self._response.aread()
        return body.decode(encoding or self.encoding, "replace")

    async def json(self, **kwargs: Any) -> Any:
        """The whole body, parsed as JSON (`kwargs` go to `json.loads`)."""
        return jsonlib.loads(await self._response.aread(), **kwargs)

    async def aclose(self) -> None:
        """End the transfer now, whether or not the body was read."""
        await self._response.aclose()

    async def __aenter__(self) -> StreamResponse:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class _PendingResponse(Coroutine[Any, Any, StreamResponse]):
    """`await session.get(...)`, `async with session.get(...) as response:`, or a task
    (`asyncio.create_task(session.get(...))`): a coroutine that is also a context
    manager."""

    __slots__ = ("_response", "_sending")

    def __init__(self, sending: Coroutine[Any, Any, StreamResponse]) -> None:
        self._sending = sending
        self._response: StreamResponse | None = None

    def __await__(self) -> Generator[Any, None, StreamResponse]:
        return self._sending.__await__()

    def send(self, value: Any) -> Any:
        return self._sending.send(value)

    def throw(self, *args: Any) -> Any:
        return self._sending.throw(*args)

    def close(self) -> None:
        self._sending.close()

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

    Built with default headers, cookies, a proxy (`proxy`, or `proxies` as requests
    spells it) and a timeout in seconds; each request may override them. `backend` is
    "curl_cffi" (impersonating `impersonate`) or "httpx"; None takes curl_cffi when it
    can be imported, else httpx. `verify` is True, False or a CA bundle's path.

    With no `client`, requests use the shared transport of the event loop (or of the
    current `session_scope`). A `client` (a curl_cffi `AsyncSession` or an
    `httpx.AsyncClient`) is used as it is, with its own proxy and settings, and never
    closed by this library; so is a `transport` (any `AsyncTransport`, such as
    `chatgpt4o.testing.MockTransport`), which may also be passed as `client`.
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
        transport: AsyncTransport | None = None,
    ) -> None:
        if proxy is None and proxies:
            proxy = proxies.get("all") or proxies.get("https") or proxies.get("http")
        self.headers: dict[str, str] = dict(headers or {})
        self.cookies: dict[str, str] = dict(cookies or {})
        self.proxy = check_proxy(proxy)
        self.timeout = timeout
        self.impersonate = impersonate
        self.verify = verify
        self._transport: AsyncTransport | None = None
        if isinstance(client, AsyncTransport):  # a transport passed where a client goes
            client, transport = (None, client) if transport is None else (client, transport)
        if transport is not None:
            if client is not None:
                raise TypeError("pass client= or transport=, not both")
            if not isinstance(transport, AsyncTransport):
                raise TypeError(
                    f"transport must be an AsyncTransport, not {type(transport).__name__}"
                )
            self._transport = transport
            self.backend: Backend | None = None
        else:
            self.backend = pick_backend(backend, client)
            if client is not None:
                self._transport = wrap_client(client, proxy=self.proxy)
            elif self.backend == "httpx":
                from ._transports.httpx import require_socks_support

                require_socks_support(self.proxy)  # now, not at the first request
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
        method: str,
        url: str,
        *,
        params: Params | None = None,
        data: Data | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stream: bool = False,
        allow_redirects: bool = True,
    ) -> StreamResponse:
        """Send a request and return its response (what `request` wraps).

        `data` is a form (a dict) or a raw body (bytes or str); `json` is encoded
        compactly as application/json; `params` are added to the URL's query.
        """
        if self._closed:
            raise RuntimeError("This StreamSession is closed; make a new one")
        content, content_type = _encode_body(data, json)
        request = Request(
            method=method.upper(),
            url=_with_params(url, params),
            headers=_merge_headers(self.headers, headers, content_type),
            content=content,
            cookies={**self.cookies, **cookies} if cookies else self.cookies,
            timeout=self.timeout if timeout is None else timeout,
            stream=stream,
            follow_redirects=allow_redirects,
        )
        transport = self._transport
        if transport is None:
            transport = await transport_for(
                self.backend or "curl_cffi", self.proxy, self.impersonate, self.verify
            )
        debug = logger.isEnabledFor(logging.DEBUG)  # redacting costs more than the call
        if debug:
            logger.debug("%s %s", request.method, redact(request.url))
        response = await transport.send(request)
        if debug:
            logger.debug("%s %s -> %s", request.method, redact(request.url), response.status_code)
        return StreamResponse(response)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        data: Data | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
        timeout: float | None = None,
        stream: bool = False,
        allow_redirects: bool = True,
    ) -> _PendingResponse:
        """Send a request; await the result or use it as an async context manager."""
        return _PendingResponse(
            self.send(
                method, url, params=params, data=data, json=json, headers=headers,
                cookies=cookies, timeout=timeout, stream=stream,
                allow_redirects=allow_redirects,
            )
        )

    def get(self, url: str, **kwargs: Any) -> _PendingResponse:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> _PendingResponse:
        return self.request("POST", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> _PendingResponse:
        return self.request("HEAD", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> _PendingResponse:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> _PendingResponse:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> _PendingResponse:
        return self.request("DELETE", url, **kwargs)

    async def close(self) -> None:
        """Mark this session closed; shared transports stay with their loop or scope,
        and a user's client or transport with the user."""
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
