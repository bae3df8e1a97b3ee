"""The event-loop runner: how it shuts down, Ctrl-C, and blocking iteration.

Every test runs twice: with the runner of this Python (`asyncio.Runner` on 3.11+) and
with the copy written for 3.10, so the fallback is checked on every version.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from chatgpt4o import _runner
from chatgpt4o._base import iterate_blocking
from chatgpt4o._runner import Runner

NATIVE = sys.version_info >= (3, 11)


# (on 3.10 the copy is all there is)
@pytest.fixture(params=["asyncio.Runner", "3.10 copy"] if NATIVE else ["3.10 copy"], autouse=True)
def runner_kind(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    kind: str = request.param
    if kind == "3.10 copy":
        monkeypatch.setattr(_runner, "_new_loop_runner", _runner._Runner310)
    return kind


needs_sigint = pytest.mark.skipif(
    sys.platform == "win32" or signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="needs POSIX signals and Python's own SIGINT handler",
)


# -- shutdown ----------------------------------------------------------------------------


def test_close_cancels_leftover_tasks_and_waits_for_them() -> None:
    unwound: list[str] = []

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0)  # a cleanup that needs the loop
            unwound.append("task")

    async def start() -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(forever())

    runner = Runner()
    task = runner.run(start())
    runner.close()
    assert task.cancelled()
    assert unwound == ["task"]
    with pytest.raises(RuntimeError, match="closed"):
        runner.run(asyncio.sleep(0))


def test_close_finalizes_async_generators() -> None:
    finalized: list[str] = []

    async def pieces() -> AsyncIterator[int]:
        try:
            yield 1
            yield 2
        finally:
            await asyncio.sleep(0)
            finalized.append("generator")

    async def first(generator: AsyncIterator[int]) -> int:
        return await generator.__anext__()

    with Runner() as runner:
        generator = pieces()  # left suspended at its first yield
        assert runner.run(first(generator)) == 1
    assert finalized == ["generator"]


def test_close_shuts_down_the_default_executor_and_the_loop() -> None:
    async def in_thread() -> int:
        return await asyncio.get_running_loop().run_in_executor(None, sum, [1, 2])

    runner = Runner()
    assert runner.run(in_thread()) == 3
    loop = runner.loop
    runner.close()
    assert loop.is_closed()
    runner.close()  # twice is fine


def test_cleanups_run_last_registered_first_and_all_of_them() -> None:
    ran: list[str] = []

    def cleanup(name: str, *, fail: bool = False) -> Any:
        async def run() -> None:
            asyncio.get_running_loop()  # inside the loop, which is still open
            ran.append(name)
            if fail:
                raise OSError(name)

        return run

    runner = Runner()
    runner.on_close(cleanup("emulator"))
    runner.on_close(cleanup("sessions", fail=True))
    loop = runner.loop
    with pytest.raises(OSError, match="sessions"):
        runner.close()
    assert ran == ["sessions", "emulator"]
    assert loop.is_closed()


def test_a_refused_run_leaves_no_unawaited_coroutine() -> None:
    runner = Runner()
    runner.close()
    with pytest.raises(RuntimeError):
        runner.run(asyncio.sleep(0))
    gc.collect()  # a "never awaited" warning would be an error here (-W error)


async def test_run_inside_a_running_loop_is_refused() -> None:
    runner = Runner()
    try:
        with pytest.raises(RuntimeError, match="running event loop"):
            runner.run(asyncio.sleep(0))
    finally:
        runner.close()
    gc.collect()


def test_the_threads_current_loop_is_left_alone() -> None:
    policy = asyncio.get_event_loop_policy()
    own = asyncio.new_event_loop()
    policy.set_event_loop(own)
    try:
        with Runner() as runner:
            runner.run(asyncio.sleep(0))
        assert policy.get_event_loop() is own
    finally:
        policy.set_event_loop(None)
        own.close()


# -- Ctrl-C ------------------------------------------------------------------------------


@needs_sigint
def test_ctrl_c_cancels_the_call_and_raises_keyboard_interrupt() -> None:
    seen: list[str] = []

    async def slow() -> None:
        asyncio.get_running_loop().call_later(0.05, signal.raise_signal, signal.SIGINT)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    with Runner() as runner:
        with pytest.raises(KeyboardInterrupt):
            runner.run(slow())
        assert seen == ["cancelled"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert runner.run(asyncio.sleep(0, "next")) == "next"  # the runner carries on


@needs_sigint
def test_a_second_ctrl_c_while_unwinding_leaves_nothing_running() -> None:
    seen: list[str] = []

    async def stubborn() -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(0.05, signal.raise_signal, signal.SIGINT)
        loop.call_later(0.10, signal.raise_signal, signal.SIGINT)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("first")
        try:
            await asyncio.sleep(10)  # a slow cleanup, interrupted again
        except asyncio.CancelledError:
            seen.append("second")
            raise

    with Runner() as runner:
        with pytest.raises(KeyboardInterrupt):
            runner.run(stubborn())
        assert seen == ["first", "second"]
        assert asyncio.all_tasks(runner.loop) == set()


# -- blocking iteration ------------------------------------------------------------------


def test_iterate_blocking_yields_everything() -> None:
    async def pieces() -> AsyncIterator[str]:
        for piece in ("a", "b", "c"):
            await asyncio.sleep(0)
            yield piece

    assert list(iterate_blocking(pieces())) == ["a", "b", "c"]


def test_stopping_early_closes_the_async_iterator_in_its_loop() -> None:
    closed: list[str] = []

    async def pieces() -> AsyncIterator[str]:
        try:
            yield "a"
            yield "b"
        finally:
            await asyncio.sleep(0)  # needs the loop: it must still run
            closed.append("pieces")

    blocking = iterate_blocking(pieces())
    assert next(blocking) == "a"
    assert closed == []
    blocking.close()  # type: ignore[attr-defined]
    assert closed == ["pieces"]


def test_a_break_closes_an_async_iterator_that_is_not_a_generator() -> None:
    class Pieces:
        def __init__(self) -> None:
            self.closed = False

        def __aiter__(self) -> Pieces:
            return self

        def __anext__(self) -> asyncio.Future[str]:
            # Not a coroutine: any awaitable will do.
            future = asyncio.get_running_loop().create_future()
            future.set_result("x")
            return future

        async def aclose(self) -> None:
            self.closed = True

    source = Pieces()
    for piece in iterate_blocking(source):  # noqa: B007 - one piece is enough
        break
    gc.collect()  # the abandoned generator is closed when collected
    assert piece == "x"
    assert source.closed


def test_an_error_in_a_piece_propagates_and_cleans_up() -> None:
    started: list[asyncio.Task[None]] = []

    async def pieces() -> AsyncIterator[str]:
        started.append(asyncio.get_running_loop().create_task(asyncio.sleep(3600)))
        yield "a"
        raise OSError("reset")

    blocking = iterate_blocking(pieces())
    assert next(blocking) == "a"
    with pytest.raises(OSError, match="reset"):
        next(blocking)
    assert started[0].cancelled()  # the leftover task, at shutdown


def _drain(blocking: Iterator[str]) -> list[str]:
    return list(blocking)


@needs_sigint
def test_ctrl_c_during_a_blocking_piece_closes_everything() -> None:
    closed: list[str] = []

    async def pieces() -> AsyncIterator[str]:
        try:
            yield "a"
            asyncio.get_running_loop().call_later(0.05, signal.raise_signal, signal.SIGINT)
            await asyncio.sleep(10)
            yield "never"
        finally:
            closed.append("pieces")

    with pytest.raises(KeyboardInterrupt):
        _drain(iterate_blocking(pieces()))
    assert closed == ["pieces"]
