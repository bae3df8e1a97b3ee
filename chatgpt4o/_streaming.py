"""`ReplyStream`: a streamed reply, read piece by piece within the call's deadline.

The stream owns the answer's response, the protocol's reader of it and the call's
deadline; `aclose()` (or leaving `async with`) ends the transfer and the deadline. The
engine reads a stream up to its first piece (`start`) while retries are still allowed;
after that, an error ends the stream. `__anext__` is a plain method over a list of
ready pieces, so that a piece costs no more than a list look-up: chunks are read only
when the pieces they carried are used up.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from ._deadline import Deadline
from ._exceptions import ProviderTimeoutError
from ._transports.base import Response
from .protocols.base import ReplyReader

__all__ = ["ReplyStream"]


class ReplyStream:
    """The reply's text pieces as the site streams them: `async for piece in stream`.

    An answer that is not streamed (plain JSON) comes as one piece, the whole reply.
    A stream that ends badly (an error event, no end marker) raises the typed error
    after the pieces that came before it.
    """

    __slots__ = ("_closed", "_deadline", "_ended", "_index", "_on_end", "_pieces", "_reader",
                 "_response", "_scope", "_streamed")

    def __init__(
        self,
        response: Response,
        reader: ReplyReader,
        deadline: Deadline,
        *,
        on_end: Callable[[str], None] | None = None,
    ) -> None:
        self._response = response
        self._scope = deadline.scope()
        self._on_end = on_end
        self._reader = reader
        self._deadline = deadline
        self._pieces: list[str] = []
        self._index = 0
        self._streamed = False  # some piece came from the stream itself
        self._ended = False
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "ended" if self._ended else "open"
        return f"<ReplyStream [{state}] from {self._response.url or '?'}>"

    @property
    def response(self) -> Response:
        """The answer being read (status, headers)."""
        return self._response

    def __aiter__(self) -> ReplyStream:
        return self

    async def __anext__(self) -> str:
        if self._closed:
            raise StopAsyncIteration
        while self._index >= len(self._pieces):
            if self._ended:
                await self.aclose()
                raise StopAsyncIteration
            try:
                await self._read()
            except ProviderTimeoutError as err:
                await self.aclose()
                raise self._deadline.explain(err) from err
            except BaseException:
                await self.aclose()
                raise
        piece = self._pieces[self._index]
        self._index += 1
        return piece

    async def start(self) -> None:
        """Read up to the first piece, or to the end of an answer that has none.

        On an error the transfer is ended but the deadline kept: the call may retry.
        """
        try:
            while self._index >= len(self._pieces) and not self._ended:
                await self._read()
        except BaseException:
            await self._response.aclose()
            raise

    async def _read(self) -> None:
        """Read one chunk into pieces; at the end, check the answer's ending."""
        async with self._scope:
            chunk = await self._response.read_chunk()
        if chunk:
            pieces = self._reader.feed(chunk)
            if pieces:
                self._pieces, self._index, self._streamed = pieces, 0, True
            return
        self._ended = True
        whole = self._reader.close()  # raises if the answer ended badly
        if not self._streamed and whole:
            self._pieces, self._index = [whole], 0
        if self._on_end is not None:
            self._on_end(whole)

    async def aclose(self) -> None:
        """End the transfer (if still running) and the call's deadline; idempotent."""
        if not self._closed:
            self._closed = True
            self._deadline.close()
            await self._response.aclose()

    async def __aenter__(self) -> ReplyStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
