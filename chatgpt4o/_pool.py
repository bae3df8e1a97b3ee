"""TEMPORARY shim over the old backends, until the transports land."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ._backends import Backend, Outgoing, pick_backend, send
from ._session import (
    SessionScope,
    _current_session_scope,
    aclose_shared_sessions,
    loop_local,
    session_scope,
)
from ._transports.base import AsyncTransport, ByteStream, Request, Response

__all__ = ["Backend", "SessionScope", "aclose_shared_sessions", "loop_local", "pick_backend", "session_scope", "transport_for", "wrap_client"]

_S = TypeVar("_S")


class _Stream(ByteStream):
    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.done = False

    async def read_chunk(self) -> bytes:
        if self.done:
            return b""
        try:
            return await self.raw.chunks.__anext__()  # type: ignore[no-any-return]
        except StopAsyncIteration:
            self.done = True
            return b""

    async def aclose(self) -> None:
        if not self.done:
            self.done = True
            await self.raw.abort()
        await self.raw.chunks.aclose()


class _Legacy(AsyncTransport):
    def __init__(self, client: Any, proxy: str | None, owned: bool) -> None:
        self.client, self.proxy, self.owned = client, proxy, owned

    async def send(self, request: Request) -> Response:
        raw = await send(
            self.client,
            Outgoing(request.method, request.url, request.content,  # type: ignore[arg-type]
                     dict(request.headers), request.cookies, request.timeout, request.stream,
                     request.follow_redirects),
            proxy=self.proxy, owned=self.owned,
        )
        if raw.content is not None:
            return Response(raw.status_code, headers=raw.headers, content=raw.content,
                            url=raw.url, cookies=raw.cookies)
        return Response(raw.status_code, headers=raw.headers, stream=_Stream(raw), url=raw.url,
                        cookies=raw.cookies)


async def transport_for(
    backend: Backend, proxy: str | None, impersonate: str, verify: bool | str
) -> AsyncTransport:
    scope = await _current_session_scope()
    return _Legacy(scope.client(backend, proxy, impersonate, verify), proxy, True)


def wrap_client(client: Any) -> AsyncTransport:
    return _Legacy(client, None, False)


_unused: Callable[..., Any] = loop_local
