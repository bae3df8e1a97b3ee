"""The transport interface: send one request, get one response, close.

A transport is the only part of the library that talks to an HTTP library. The call
engine hands it a `Request` (everything already encoded) and gets back a `Response`
whose status, headers and cookies are there at once and whose body is read chunk by
chunk with `await response.read_chunk()` (b"" at the end) or whole with `aread()`.

Transports raise only the library's own errors for transport failures:
`ProviderConnectionError`, and `ProviderTimeoutError` when the request's timeout ran
out. Neither a request's cookies nor a proxy password ever appear in a repr or an error.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import ClassVar, TypeVar

from .._exceptions import ResponseError, redact

__all__ = ["SECRET_HEADERS", "AsyncTransport", "ByteStream", "Headers", "Request", "Response"]

#: Headers whose values are never shown in a repr.
SECRET_HEADERS = frozenset({"cookie", "set-cookie", "authorization", "proxy-authorization"})


class Headers(Mapping[str, str]):
    """Header names looked up case-insensitively; the first of repeated names wins."""

    __slots__ = ("_items",)

    def __init__(self, headers: Mapping[str, str] | Iterable[tuple[str, str]] = ()) -> None:
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        self._items: dict[str, str] = {}
        for name, value in pairs:
            self._items.setdefault(name.lower(), value)

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        shown = {
            name: ("***" if name in SECRET_HEADERS else value)
            for name, value in self._items.items()
        }
        return f"Headers({shown!r})"


@dataclass(slots=True, repr=False)  # not frozen: made on every request, and frozen init is slower
class Request:
    """One HTTP request, ready to go: the body is encoded, the headers merged."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    #: The encoded body (a form or JSON), or None for none.
    content: bytes | None = field(default=None, repr=False)
    #: Cookies for this request only; transports keep no cookie jar of their own.
    cookies: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: Seconds the whole request may take; None for no limit of its own.
    timeout: float | None = None
    #: True: the body is read as the caller asks for it. False: the transport may read
    #: it whole before returning (and should, when that is cheaper).
    stream: bool = False
    follow_redirects: bool = True

    def __repr__(self) -> str:
        # The URL may carry a nonce and the headers a cookie; neither is shown.
        names = sorted(name.lower() for name in self.headers)
        return (
            f"<Request {self.method} {redact(self.url)} headers={names} "
            f"timeout={self.timeout!r} stream={self.stream}>"
        )


class ByteStream(ABC):
    """A response body, read as it arrives."""

    @abstractmethod
    async def read_chunk(self) -> bytes:
        """The next piece of the body; b"" once the body has ended."""

    @abstractmethod
    async def aclose(self) -> None:
        """End the transfer now (whether or not the body was read); idempotent."""


class _Bytes(ByteStream):
    """A body that is in memory already."""

    __slots__ = ("_content",)

    def __init__(self, content: bytes) -> None:
        self._content = content

    async def read_chunk(self) -> bytes:
        content, self._content = self._content, b""
        return content

    async def aclose(self) -> None:
        self._content = b""


class Response:
    """One answer: status, headers and cookies at once; the body whole or in chunks.

    Build one with `content=` (bytes or text) for a body in memory, or `stream=` for a
    `ByteStream` that a transport reads from the network.
    """

    __slots__ = ("_closed", "_stream", "content", "cookies", "headers", "status_code", "url")

    def __init__(
        self,
        status_code: int,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        content: bytes | str | None = None,
        stream: ByteStream | None = None,
        url: str = "",
        cookies: Mapping[str, str] | None = None,
    ) -> None:
        if content is not None and stream is not None:
            raise TypeError("Response takes content= or stream=, not both")
        self.status_code = status_code
        self.url = url
        # Mappings from the HTTP libraries are case-insensitive already; keep them.
        self.headers: Mapping[str, str] = (
            headers
            if isinstance(headers, Mapping) and not isinstance(headers, dict)
            else Headers(headers or ())
        )
        #: The cookies this answer set (Set-Cookie), name to value.
        self.cookies: dict[str, str] = dict(cookies) if cookies else {}
        if isinstance(content, str):
            content = content.encode("utf-8")
        #: The whole body, when it is in memory (not a streamed transfer).
        self.content: bytes | None = content if stream is None else None
        self._stream: ByteStream = stream if stream is not None else _Bytes(content or b"")
        self._closed = False

    def __repr__(self) -> str:
        return f"<Response [{self.status_code}]>"

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300

    async def read_chunk(self) -> bytes:
        """The next piece of the body; b"" once it has ended."""
        chunk = await self._stream.read_chunk()
        if not chunk:
            self._closed = True
        return chunk

    async def aread(self, max_bytes: int | None = None) -> bytes:
        """The whole (rest of the) body; more than `max_bytes` raises `ResponseError`
        (and ends the transfer)."""
        if self.content is None:
            parts: list[bytes] = []
            size = 0
            while chunk := await self.read_chunk():
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    await self.aclose()
                    break
                parts.append(chunk)
            else:
                self.content = b"".join(parts)
        self._closed = True
        if self.content is None or (max_bytes is not None and len(self.content) > max_bytes):
            raise ResponseError(f"The answer from {self.url} is larger than {max_bytes} bytes")
        return self.content

    async def aclose(self) -> None:
        """End the transfer now, read or not; idempotent."""
        if not self._closed:
            self._closed = True
            await self._stream.aclose()

    async def __aenter__(self) -> Response:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


_Transport = TypeVar("_Transport", bound="AsyncTransport")


class AsyncTransport(ABC):
    """Sends requests. `send` returns once the status and headers are in."""

    #: True when the transport itself ends a request that is not streamed, body included,
    #: once its `Request.timeout` has passed (curl does): the caller's deadline then needs
    #: no timer of its own around that transfer.
    enforces_timeout: ClassVar[bool] = False

    @abstractmethod
    async def send(self, request: Request) -> Response:
        """Send `request`; transport failures raise `ProviderConnectionError`."""

    async def aclose(self) -> None:  # noqa: B027 - most transports hold nothing
        """Release what the transport holds (a client it owns); idempotent."""

    async def __aenter__(self: _Transport) -> _Transport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
