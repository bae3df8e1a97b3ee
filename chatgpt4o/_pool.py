"""The transports the library shares: one pool per event loop, or per `session_scope()`.

A pool holds one transport per backend, proxy, browser profile and `verify`, opened on
first use, so keep-alive connections and TLS sessions are reused across calls. The
event loop's pool closes when the loop shuts down (`asyncio.run` does that), on
`aclose_shared_sessions()`, and a scope's pool when its block ends. A user's own client
is wrapped (`wrap_client`) and never closed here.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, Literal, TypeVar

from ._config import describe_proxy
from ._transports.base import AsyncTransport

__all__ = [
    "BACKENDS",
    "Backend",
    "LastTransport",
    "SessionScope",
    "aclose_shared_sessions",
    "backend_of",
    "loop_local",
    "open_transport",
    "pick_backend",
    "session_scope",
    "shared_session_count",
    "transport_for",
    "wrap_client",
]

logger = logging.getLogger(__name__)

Backend = Literal["curl_cffi", "httpx"]
BACKENDS: tuple[Backend, ...] = ("curl_cffi", "httpx")
_INSTALL_HINT = {"curl_cffi": "pip install curl_cffi", "httpx": "pip install httpx"}


# -- which backend ---------------------------------------------------------------------


def _importable(backend: Backend) -> bool:
    if backend in sys.modules:  # the usual case, and cheap: once imported, always there
        return sys.modules[backend] is not None
    try:
        __import__(backend)
    except ImportError:
        return False
    return True


def _client_classes() -> list[tuple[type, Backend]]:
    """The client classes of the libraries imported so far; a library that was never
    imported cannot have made the user's client, so none is imported here."""
    classes: list[tuple[type, Backend]] = []
    curl = sys.modules.get("curl_cffi.requests")
    if curl is not None:
        classes.append((curl.AsyncSession, "curl_cffi"))
    httpx = sys.modules.get("httpx")
    if httpx is not None:
        classes.append((httpx.AsyncClient, "httpx"))
    return classes


def backend_of(client: object) -> Backend:
    """Which backend a user's own client belongs to; TypeError for anything else."""
    for cls, backend in _client_classes():
        if isinstance(client, cls):
            return backend
    raise TypeError(
        "client must be a curl_cffi.requests.AsyncSession or an httpx.AsyncClient, "
        f"not {type(client).__name__}"
    )


def pick_backend(requested: object, client: object | None = None) -> Backend:
    """The backend to use: the client's, the one asked for, or curl_cffi if it imports
    (else httpx)."""
    if client is not None:
        return backend_of(client)
    if requested is None:
        for candidate in BACKENDS:
            if _importable(candidate):
                return candidate
        raise ImportError("chatgpt4o needs curl_cffi (or httpx): pip install curl_cffi")
    for backend in BACKENDS:
        if requested == backend:
            if not _importable(backend):
                raise ImportError(f"backend={backend!r} needs {_INSTALL_HINT[backend]}")
            return backend
    raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {requested!r}")


def open_transport(
    backend: Backend, proxy: str | None, impersonate: str, verify: bool | str
) -> AsyncTransport:
    """A transport of `backend` with a client of its own (closed with it)."""
    logger.debug(
        "new %s transport (impersonate=%s, proxy=%s)",
        backend, impersonate, describe_proxy(proxy) if proxy else None,
    )
    # Imported here: `import chatgpt4o` must not load an HTTP library.
    if backend == "curl_cffi":
        from ._transports.curl import CurlTransport

        return CurlTransport(impersonate=impersonate, proxy=proxy, verify=verify)
    from ._transports.httpx import HttpxTransport

    return HttpxTransport(proxy=proxy, verify=verify)


def wrap_client(client: object, *, proxy: str | None = None) -> AsyncTransport:
    """A transport over a user's own client, which stays the user's (never closed here).

    `client` is a `curl_cffi.requests.AsyncSession` or an `httpx.AsyncClient`; an
    `AsyncTransport` is taken as it is. `proxy` only names the client's proxy in errors.
    """
    if isinstance(client, AsyncTransport):
        return client
    if backend_of(client) == "curl_cffi":
        from ._transports.curl import CurlTransport

        return CurlTransport(proxy=proxy, client=client)  # type: ignore[arg-type]
    from ._transports.httpx import HttpxTransport

    return HttpxTransport(proxy=proxy, client=client)  # type: ignore[arg-type]


# -- pools -------------------------------------------------------------------------------

_Key = tuple[Backend, str | None, str, bool | str]


class SessionScope:
    """Transports, one per backend, proxy, browser profile and `verify`, opened on demand.

    Every event loop has one, closed when the loop shuts down; `Chatgpt4o.session()`
    opens a private one for a block of code and closes it when the block ends.
    """

    def __init__(self) -> None:
        self._transports: dict[_Key, AsyncTransport] = {}
        self._closed = False
        #: How often its transports were closed: a transport it gave before is its
        #: answer still while this has not changed.
        self.closings = 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._transports)} open"
        return f"<SessionScope {state}>"

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        return len(self._transports)

    def transport(
        self, backend: Backend, proxy: str | None, impersonate: str, verify: bool | str
    ) -> AsyncTransport:
        """The scope's transport for these settings, opened on first use."""
        if self._closed:
            raise RuntimeError("This chatgpt4o session scope is closed")
        key = (backend, proxy, impersonate, verify)
        transport = self._transports.get(key)
        if transport is None:
            transport = self._transports[key] = open_transport(
                backend, proxy, impersonate, verify
            )
        return transport

    async def _close_transports(self) -> None:
        transports = list(self._transports.values())
        self._transports.clear()
        self.closings += 1
        for transport in transports:
            await transport.aclose()

    async def aclose(self) -> None:
        """Close every transport; the scope cannot be used after."""
        self._closed = True
        await self._close_transports()


class _LoopScope(SessionScope):
    """The event loop's own scope, closed when the loop shuts down.

    `asyncio.run` (and `asyncio.Runner`) finalize the live async generators before they
    close the loop: a generator parked at its `yield` is the hook that closes the
    transports then, with no task that would show in `asyncio.all_tasks()`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        #: State other modules keep per loop (see `loop_local`), keyed by its owner.
        self.locals: weakref.WeakKeyDictionary[object, Any] = weakref.WeakKeyDictionary()
        self._watcher: AsyncGenerator[None, None] | None = None

    async def aclose(self) -> None:
        """Close every transport; new ones open on demand while the loop runs."""
        await self._close_transports()

    async def watch_loop_shutdown(self) -> None:
        self._watcher = self._close_at_shutdown()
        await self._watcher.__anext__()

    async def _close_at_shutdown(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            # The parked generator holds the loop (through its finalizer hook): let go
            # of both, or every loop ever used would stay in memory.
            _loop_scopes.pop(self.loop, None)
            self._watcher = None
            self.locals.clear()
            await self.aclose()


_loop_scopes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopScope] = (
    weakref.WeakKeyDictionary()
)
_current_scope: ContextVar[SessionScope | None] = ContextVar("chatgpt4o_scope", default=None)


async def _loop_scope() -> _LoopScope:
    loop = asyncio.get_running_loop()
    scope = _loop_scopes.get(loop)
    if scope is None:
        scope = _loop_scopes[loop] = _LoopScope(loop)
        await scope.watch_loop_shutdown()
    return scope


async def transport_for(
    backend: Backend, proxy: str | None, impersonate: str, verify: bool | str
) -> AsyncTransport:
    """The shared transport for these settings: the current `session_scope()`'s, else
    the running event loop's."""
    scope: SessionScope | None = _current_scope.get()
    if scope is None:  # (not `or`: an empty scope is falsy)
        scope = _loop_scopes.get(asyncio.get_running_loop())
        if scope is None:
            scope = await _loop_scope()
    return scope.transport(backend, proxy, impersonate, verify)


class LastTransport:
    """The shared transport that one set of settings got last, for the next call.

    It is taken again, with no pool lookup, while the pool would answer it anyway: in
    the same event loop (the one of the scope that gave it), outside any
    `session_scope()`, and before that scope closed its transports. Weak references
    only, so that no finished loop is kept in memory; and one tuple, read at once, so
    that threads that each run a loop never mix one loop's scope with another's
    transport.
    """

    __slots__ = ("_kept",)

    def __init__(self) -> None:
        self._kept: tuple[weakref.ref[_LoopScope], int, weakref.ref[AsyncTransport]] | None = (
            None
        )

    def get(self) -> AsyncTransport | None:
        """The kept transport, if it is still the pool's answer here; else None."""
        kept = self._kept
        if kept is None or _current_scope.get() is not None:
            return None
        scope = kept[0]()
        if (
            scope is None
            or scope.loop is not asyncio.get_running_loop()
            or scope.closings != kept[1]
        ):
            return None
        return kept[2]()

    async def open(
        self, backend: Backend, proxy: str | None, impersonate: str, verify: bool | str
    ) -> AsyncTransport:
        """`transport_for` these settings, kept for the next call."""
        transport = await transport_for(backend, proxy, impersonate, verify)
        if _current_scope.get() is None:
            scope = _loop_scopes.get(asyncio.get_running_loop())
            if scope is not None:
                self._kept = (weakref.ref(scope), scope.closings, weakref.ref(transport))
        return transport


_State = TypeVar("_State")


async def loop_local(owner: object, factory: Callable[[], _State]) -> _State:
    """`owner`'s state in the running event loop, made by `factory` on first use.

    It lives as long as the loop runs (asyncio objects such as locks and futures
    belong to one loop) and is dropped when the loop shuts down.
    """
    scope = await _loop_scope()
    state = scope.locals.get(owner)
    if state is None:
        state = scope.locals[owner] = factory()
    return state


@asynccontextmanager
async def session_scope() -> AsyncIterator[SessionScope]:
    """Requests made inside the block (and in tasks it starts) use transports of their
    own, closed when the block ends."""
    scope = SessionScope()
    token = _current_scope.set(scope)
    try:
        yield scope
    finally:
        _current_scope.reset(token)
        await scope.aclose()


async def aclose_shared_sessions() -> None:
    """Close the running event loop's shared transports (new ones open on demand)."""
    scope = _loop_scopes.get(asyncio.get_running_loop())
    if scope is not None:
        await scope.aclose()


def shared_session_count() -> int:
    """How many shared transports the running loop holds (for tests and stats)."""
    scope = _loop_scopes.get(asyncio.get_running_loop())
    return 0 if scope is None else len(scope)
