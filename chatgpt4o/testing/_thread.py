"""Run a :class:`SiteEmulator` on its own event loop in a daemon thread.

For synchronous tests, and for tests on any async framework: the emulator's loop is
private, so the test's own loop (or none) does not matter.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from ._emulator import SiteEmulator


def emulator_class(plugin: str) -> Any:
    """The emulator class of `plugin`: "wpaicg" (AI Power <= 2.2, `SiteEmulator`),
    "aipkit" (AI Power 2.3+) or "aiengine" (AI Engine)."""
    if plugin == "wpaicg":
        return SiteEmulator
    if plugin == "aiengine":
        from ._aiengine import AIEngineEmulator

        return AIEngineEmulator
    if plugin == "aipkit":
        from . import _aipkit  # type: ignore[attr-defined,unused-ignore]

        return _aipkit.AipkitEmulator
    raise ValueError(f"plugin must be one of wpaicg, aipkit, aiengine, not {plugin!r}")

__all__ = ["EmulatorThread"]


class EmulatorThread:
    """Run ``emulator`` (or a new one: ``SiteEmulator(**kwargs)``, or the emulator of
    ``plugin``, "aipkit" or "aiengine") in a background thread.

    ::

        with EmulatorThread(stream=True) as site:
            requests.get(site.url)

    The emulator's attributes and methods (``fail_next``, ``rotate_nonce``, counters...)
    may be used from the calling thread while it runs.
    """

    def __init__(
        self,
        emulator: SiteEmulator | None = None,
        *,
        start_timeout: float = 10.0,
        plugin: str = "wpaicg",
        **kwargs: Any,
    ) -> None:
        if emulator is not None and kwargs:
            raise TypeError("pass either an emulator or SiteEmulator keyword arguments")
        if emulator is None:
            emulator = emulator_class(plugin)(**kwargs)
        # (an AIPKit or AI Engine emulator has the same start/stop/url and counters)
        self.emulator: SiteEmulator = emulator
        self.start_timeout = start_timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """The running emulator's URL."""
        return self.emulator.url

    def start(self) -> SiteEmulator:
        """Start the thread and wait until the emulator listens; return the emulator."""
        if self._thread is not None:
            raise RuntimeError("EmulatorThread is already started")
        self._ready.clear()
        self._error = None
        thread = threading.Thread(target=self._run, name="chatgpt4o-emulator", daemon=True)
        self._thread = thread
        thread.start()
        if not self._ready.wait(self.start_timeout):
            self.stop()
            raise TimeoutError(f"the emulator did not start within {self.start_timeout} s")
        if self._error is not None:
            thread.join()
            self._thread = None
            raise RuntimeError("the emulator failed to start") from self._error
        return self.emulator

    def stop(self) -> None:
        """Stop the emulator, close its loop and join the thread (idempotent)."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                loop.call_soon_threadsafe(stop.set)
        thread.join()

    def __enter__(self) -> SiteEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self._thread is not None else "stopped"
        return f"<EmulatorThread {state} {self.emulator!r}>"

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        try:
            await self.emulator.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.emulator.stop()
            self._loop = None
            self._stop = None
