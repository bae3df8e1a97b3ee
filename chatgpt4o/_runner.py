"""One event loop driven from blocking code, for a series of calls.

`Runner` runs coroutines one after another on a private loop (never installed as the
thread's current loop) and shuts it down the way `asyncio.run` does: leftover tasks
cancelled and awaited, async generators finalized, the default executor shut down,
the loop closed. It is `asyncio.Runner` on Python 3.11+, and a small copy of it on
3.10. Both turn Ctrl-C (in the main thread, with Python's own SIGINT handler in place)
into a cancellation of the running call, and raise KeyboardInterrupt once it unwound.

The command line keeps one Runner for a whole chat; `_base.iterate_blocking` uses one
per blocking call.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import sys
import threading
from collections.abc import Callable, Coroutine
from types import FrameType, TracebackType
from typing import Any, Protocol, TypeVar

__all__ = ["Runner"]

_T = TypeVar("_T")


class _LoopRunner(Protocol):
    """What `Runner` needs of `asyncio.Runner` (and of the 3.10 copy)."""

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T: ...

    def get_loop(self) -> asyncio.AbstractEventLoop: ...

    def close(self) -> None: ...


def _cancel_all_tasks(loop: asyncio.AbstractEventLoop) -> None:
    # As asyncio.run does it: cancel, wait, and report what failed on the way out.
    leftover = asyncio.all_tasks(loop)
    if not leftover:
        return
    for task in leftover:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
    for task in leftover:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception during event loop shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )


class _Runner310:
    """`asyncio.Runner` for Python 3.10, which lacks it: `run`, `get_loop`, `close`.

    One difference is left: each `run` gets a copy of the caller's context, not the
    runner's own (3.10's `create_task` takes no context).
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._interrupts = 0

    def get_loop(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            raise RuntimeError("Runner is closed")
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        if not asyncio.iscoroutine(coro):
            raise ValueError(f"a coroutine was expected, got {coro!r}")
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError("Runner.run() cannot be called from a running event loop")
        loop = self.get_loop()
        task = loop.create_task(coro)
        handler: Callable[[int, FrameType | None], None] | None = None
        if (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        ):
            handler = functools.partial(self._on_sigint, task=task)
            try:
                signal.signal(signal.SIGINT, handler)
            except ValueError:  # an embedded interpreter without signals
                handler = None
        self._interrupts = 0
        try:
            return loop.run_until_complete(task)
        except asyncio.CancelledError:
            if self._interrupts:
                raise KeyboardInterrupt from None
            raise
        finally:
            if handler is not None and signal.getsignal(signal.SIGINT) is handler:
                signal.signal(signal.SIGINT, signal.default_int_handler)

    def _on_sigint(self, signum: int, frame: FrameType | None, task: asyncio.Task[Any]) -> None:
        self._interrupts += 1
        if self._interrupts == 1 and not task.done():
            task.cancel()
            # The loop may sleep in select() for long: wake it up to see the cancel.
            self.get_loop().call_soon_threadsafe(lambda: None)
            return
        raise KeyboardInterrupt

    def close(self) -> None:
        loop, self._loop = self._loop, None
        self._closed = True
        if loop is None or loop.is_closed():
            return
        try:
            _cancel_all_tasks(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


def _new_loop_runner() -> _LoopRunner:
    if sys.version_info >= (3, 11):
        # The loop_factory keeps the runner from installing its loop as the thread's
        # current one (and from resetting that to None when it closes): the caller's
        # own loop, if any, stays as it was.
        return asyncio.Runner(loop_factory=asyncio.new_event_loop)
    return _Runner310()


class Runner:
    """A private event loop for a series of `run` calls; `close` shuts it down.

    Also a context manager. Cleanups registered with `on_close` run in the loop,
    last registered first, before it shuts down.
    """

    def __init__(self) -> None:
        self._runner = _new_loop_runner()
        self._closed = False
        self._closing = contextlib.ExitStack()
        # Registered first, so it runs last: even when a cleanup fails.
        self._closing.callback(self._runner.close)

    def __enter__(self) -> Runner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        self._check_open()
        return self._runner.get_loop()

    def _check_open(self) -> None:
        # (asyncio.Runner closed before its first run would start a new loop)
        if self._closed:
            raise RuntimeError("Runner is closed")

    def on_close(self, cleanup: Callable[[], Coroutine[Any, Any, object]]) -> None:
        """Run `cleanup()` in the loop when the runner closes."""
        self._closing.callback(lambda: self.run(cleanup()))

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        """Run `coro` to its end in the loop; Ctrl-C cancels it and raises
        KeyboardInterrupt."""
        main: asyncio.Task[Any] | None = None

        async def tracked() -> _T:
            nonlocal main
            main = asyncio.current_task()
            return await coro

        wrapper = tracked()
        try:
            self._check_open()
            return self._runner.run(wrapper)
        finally:
            if main is None:
                # Never started (a closed runner, a running loop, a Ctrl-C at once):
                # close both, or each may warn that it was never awaited.
                wrapper.close()
                coro.close()
            elif not main.done():
                # A KeyboardInterrupt raised inside the loop itself (a second Ctrl-C,
                # say) leaves the call pending; it must not run on during the next one.
                main.cancel()
                with contextlib.suppress(BaseException):
                    self.loop.run_until_complete(main)

    def close(self) -> None:
        """Run the cleanups, then shut the loop down (see the module docstring). Safe
        to call more than once."""
        try:
            self._closing.close()
        finally:
            self._closed = True
