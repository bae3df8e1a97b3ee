"""uvicorn's `Server` as `chatgpt4o serve` runs it: it says when it is ready, and takes
SIGINT and SIGTERM itself; and its HTTP protocol, which sends a response's head with
the body that follows it (`HTTP_PROTOCOL`).

uvicorn's own handlers raise the signal again once the server has stopped, which would
end the command by SIGTERM or with a KeyboardInterrupt traceback; these only ask the
server to stop (a second signal stops the wait for requests in flight) and remember
which signal it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol

__all__ = ["HTTP_PROTOCOL", "ReadyServer"]


class ReadyServer(uvicorn.Server):
    """A uvicorn server that calls `on_ready` once it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_ready: Callable[[], None]) -> None:
        super().__init__(config)
        self._on_ready = on_ready
        #: The signal that stopped the server, if one did.
        self.stopped_by: int | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and not self.should_exit:
            self._on_ready()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signals reach the main thread only
            return
        previous = {
            number: signal.signal(number, self._on_signal)
            for number in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            yield
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True
        if self.stopped_by is None:
            self.stopped_by = number


# -- one send for a head and its body ----------------------------------------------------


class _HeadWithBody:
    """A connection's transport that sends a response's head together with what follows.

    uvicorn writes a response's head (status line and headers) when the application
    starts the response, and its body when that is sent: two sends, two TCP segments,
    and a client woken twice, though the body comes straight after. This transport holds
    a head back and sends it with the next write, in one send. A head that nothing
    follows before the event loop's next turn (the answer to a HEAD request, a body
    that waits for something) goes out alone then. Everything else is the transport's.
    """

    __slots__ = ("_flush", "_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._flush: asyncio.Handle | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is not None:
            self._transport.write(self._take() + data)
        elif data[:5] == b"HTTP/":  # a head (or a body that starts like one: no matter)
            self._held = bytes(data)
            self._flush = self._loop.call_soon(self._send_held)
        else:
            self._transport.write(data)

    def _take(self) -> bytes:
        held = self._held or b""
        self._held = None
        flush = self._flush
        if flush is not None:
            self._flush = None
            flush.cancel()
        return held

    def _send_held(self) -> None:
        if self._held is not None:
            self._transport.write(self._take())

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def close(self) -> None:
        self._send_held()
        self._transport.close()

    def write_eof(self) -> None:
        self._send_held()
        self._transport.write_eof()

    def abort(self) -> None:
        self._take()
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Protocol(AutoHTTPProtocol):  # type: ignore[misc,valid-type]
    """uvicorn's HTTP protocol (httptools' parser if installed, else h11's), writing to
    its connection through `_HeadWithBody`."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        connection = cast(asyncio.Transport, transport)
        super().connection_made(_HeadWithBody(connection, asyncio.get_running_loop()))


#: The `http` of the command's uvicorn.Config.
HTTP_PROTOCOL: type[asyncio.Protocol] = _Protocol
