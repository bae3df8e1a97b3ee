"""One INFO line per request: method, path, status, duration, model.

`AccessLog` is a plain ASGI middleware (no request objects, one wrapped `send`). The
path is logged without its query string, and nothing of the body or the headers: no
key, cookie or message text reaches the log. What a client chose (the path, a model's
name) is written with its control characters escaped, so that it cannot start a line
of its own. What the endpoints learn on the way (the
model, a client gone, a stream cut by an error) they leave in the request's scope under
`NOTES`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["NOTES", "AccessLog", "note"]

logger = logging.getLogger(__name__)

#: The scope key of the notes for the access line: {"model": ..., "outcome": ...}.
NOTES = "chatgpt4o.access"


def note(scope: Scope, **values: str) -> None:
    """Add `values` to the request's access line."""
    notes: dict[str, str] | None = scope.get(NOTES)
    if notes is None:
        scope[NOTES] = dict(values)
    else:
        notes.update(values)


class AccessLog:
    """Logs each HTTP request once it is answered (or abandoned)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            notes: dict[str, Any] = scope.get(NOTES) or {}
            extra = "".join(f" {name}={_shown(str(value))}" for name, value in notes.items())
            logger.info(
                "%s %s %s %.1f ms%s",
                scope.get("method", "-"),
                _shown(scope.get("path", "-")),
                status or "-",
                elapsed,
                extra,
            )


def _shown(text: str) -> str:
    """`text` with its non-printable characters (a newline, say) escaped."""
    if text.isprintable():
        return text
    return text.encode("unicode_escape").decode("ascii")
