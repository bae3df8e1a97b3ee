"""One deadline for a whole call: page scrape, POST, retries and the sleeps between.

Everything the call awaits runs inside `Deadline.scope()`, so no single step can outlive
the deadline, and each request also tells curl how long it has left, so that curl
itself stops the transfer at the same moment.
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ._exceptions import ProviderTimeoutError

__all__ = ["Deadline"]

# Retry sleeps go through this name, so tests can skip them without touching the clock.
_sleep = asyncio.sleep


class Deadline:
    """A point in time (the loop's clock) by which the call must end; None for never."""

    def __init__(self, timeout: float | None) -> None:
        self.timeout = timeout
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._at = None if timeout is None else loop.time() + timeout

    def remaining(self) -> float:
        """Seconds left (infinity without a deadline); raises once it has passed."""
        if self._at is None:
            return math.inf
        left = self._at - self._loop.time()
        if left <= 0:
            raise self.expired()
        return left

    def request_timeout(self) -> float | None:
        """What to hand curl for the next request: the time left, or no limit."""
        left = self.remaining()
        return None if math.isinf(left) else left

    def expired(self) -> ProviderTimeoutError:
        return ProviderTimeoutError(
            f"The call did not finish within its timeout of {self.timeout:g} s"
        )

    async def sleep(self, seconds: float) -> None:
        """Sleep, unless the deadline comes first: then raise at once."""
        if seconds >= self.remaining():
            raise self.expired()
        await _sleep(seconds)

    @asynccontextmanager
    async def scope(self) -> AsyncIterator[None]:
        """Run the block under the deadline; when it passes, raise ProviderTimeoutError."""
        if self._at is None:
            yield
            return
        self.remaining()
        if sys.version_info >= (3, 11):
            try:
                async with asyncio.timeout_at(self._at):
                    yield
            except TimeoutError as err:
                if isinstance(err, ProviderTimeoutError):
                    raise
                raise self.expired() from err
            return
        # Python 3.10: cancel the task when the deadline passes, and turn that
        # cancellation (and only that one) into the timeout error.
        task = asyncio.current_task()
        assert task is not None
        fired = False

        def fire() -> None:
            nonlocal fired
            fired = True
            task.cancel()

        handle = self._loop.call_at(self._at, fire)
        try:
            yield
        except asyncio.CancelledError as err:
            if fired:
                raise self.expired() from err
            raise
        finally:
            handle.cancel()
