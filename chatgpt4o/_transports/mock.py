"""`MockTransport`: answers requests with a function of yours, with no network at all.

    from chatgpt4o.testing import MockTransport, Request, Response

    def handler(request: Request) -> Response:
        return Response(200, content='{"status":"success","data":"Hi"}')

    transport = MockTransport(handler)

The handler may be a plain function or a coroutine function.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from .base import AsyncTransport, Request, Response

__all__ = ["Handler", "MockTransport"]

Handler = Callable[[Request], "Response | Awaitable[Response]"]


class MockTransport(AsyncTransport):
    """A transport whose answers come from `handler(request)` (sync or async)."""

    def __init__(self, handler: Handler) -> None:
        if not callable(handler):
            raise TypeError(f"handler must be callable, not {type(handler).__name__}")
        self.handler = handler

    def __repr__(self) -> str:
        # The handler's name only: a closure's repr could show what it holds.
        name = getattr(self.handler, "__qualname__", type(self.handler).__name__)
        return f"<MockTransport handler={name}>"

    async def send(self, request: Request) -> Response:
        answer = self.handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        if not isinstance(answer, Response):
            raise TypeError(
                f"the MockTransport handler returned {type(answer).__name__}, "
                "not a chatgpt4o.testing.Response"
            )
        if not answer.url:
            answer.url = request.url
        return answer
