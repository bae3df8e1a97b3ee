"""One deadline for a whole call: page scrape, POST, retries and the sleeps between.

Everything the call awaits runs inside `Deadline.scope()`, so no single step can outlive
the deadline, and each request also tells curl how long it has left, so that curl
itself stops the transfer at the same moment.

One timer serves the whole call: armed by the first scope, it cancels whichever task is
inside a scope when the deadline passes (outside any scope it only marks the deadline
passed, and the next scope raises). That keeps a scope to a few attribute writes, which
matters on a call that enters one per chunk of a stream.
"""

from __future__ import annotations

import asyncio
import math
import sys
from types import TracebackType

from ._constants import MAX_REQUEST_TIMEOUT
from ._exceptions import ProviderTimeoutError

__all__ = ["Deadline"]

# Retry sleeps go through this name, so tests can skip them without touching the clock.
_sleep = asyncio.sleep



class Deadline:
    """A point in time (the loop's clock) by which the call must end; None for never."""

    __slots__ = ("_at", "_fired", "_inside", "_loop", "_scope", "_struck", "_timer", "timeout")

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._at = None if timeout is None else loop.time() + timeout
        self._timer: asyncio.TimerHandle | None = None
        self._inside: asyncio.Task[object] | None = None  # the task in a scope now
        self._struck: asyncio.Task[object] | None = None  # the task the timer cancelled
        self._fired = False
        # Made when first asked for: the scope and the deadline refer to each other, a
        # cycle that only the garbage collector frees, and most calls never need one.
        self._scope: _Scope | None = None

    def remaining(self) -> float:
        """Seconds left (infinity without a deadline); raises once it has passed."""
        if self._at is None:
            return math.inf
        left = self._at - self._loop.time()
        if left <= 0 or self._fired:
            raise self.expired()
        return left

    def request_timeout(self) -> float | None:
        """What to hand curl for the next request: the time left, or no limit."""
        left = self.remaining()
        return None if math.isinf(left) else min(left, MAX_REQUEST_TIMEOUT)

    def passed(self) -> bool:
        """Whether the deadline has passed (never raises)."""
        return self._fired or (self._at is not None and self._loop.time() >= self._at)

    def scope_for(self, transport_keeps_time: bool) -> _Scope | _NoScope:
        """The scope for awaiting a transfer read whole: none when the transport ends it at
        the deadline itself (it was handed `request_timeout()`), so no timer is armed."""
        return _NO_SCOPE if transport_keeps_time else self.scope()

    def explain(self, error: ProviderTimeoutError) -> ProviderTimeoutError:
        """A transport's timeout, said as the call's when the call's deadline is what
        ran out."""
        return self.expired() if self.passed() else error

    def expired(self) -> ProviderTimeoutError:
        return ProviderTimeoutError(
            f"The call did not finish within its timeout of {self.timeout:g} s"
        )

    async def sleep(self, seconds: float) -> None:
        """Sleep, unless the deadline comes first: then raise at once."""
        if seconds >= self.remaining():
            raise self.expired()
        await _sleep(seconds)

    def scope(self) -> _Scope:
        """`async with deadline.scope():` the block ends with ProviderTimeoutError when the
        deadline passes while it runs."""
        scope = self._scope
        if scope is None:
            scope = self._scope = _Scope(self)
        return scope

    def close(self) -> None:
        """The call is over: drop the timer."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fire(self) -> None:
        self._timer = None
        self._fired = True
        task = self._inside
        if task is not None and not task.done():
            self._struck = task
            task.cancel()


class _Scope:
    """The deadline's scope; one per deadline, entered once at a time by its call."""

    __slots__ = ("_deadline",)

    def __init__(self, deadline: Deadline) -> None:
        self._deadline = deadline

    async def __aenter__(self) -> None:
        deadline = self._deadline
        if deadline._at is None:
            return
        left = deadline.remaining()  # raises if it has already passed
        deadline._inside = asyncio.current_task()
        if deadline._timer is None:
            deadline._timer = deadline._loop.call_later(left, deadline._fire)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        deadline = self._deadline
        task, deadline._inside = deadline._inside, None
        struck, deadline._struck = deadline._struck, None
        if task is None or struck is not task:
            return
        # The timer cancelled this task: take that cancellation back, unless somebody
        # else cancelled the task too (Python 3.11+ can tell; 3.10 cannot).
        if sys.version_info >= (3, 11) and task.uncancel() > 0:
            return
        if exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            raise deadline.expired() from exc


class _NoScope:
    """A scope that does nothing: the transport keeps the time."""

    __slots__ = ()

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


_NO_SCOPE = _NoScope()
