"""The ASGI application: OpenAI's chat completions in front of one site.

    GET  /v1/models              the provider's models and aliases
    GET  /v1/models/{model}      one of them
    POST /v1/chat/completions    plain or streamed (server-sent events)
    GET  /health                 {"status": "ok"}

One provider class serves every request (`_Site`): the one given, or the one
`discover()` finds on the site's page, found once however many requests wait for it.
Its cache (credentials, cookies, conversations) and the library's pooled HTTP session
of the event loop are shared by all requests; the stale-nonce recovery, retries and
deadline are the library's. A client that goes away cancels its call at once, which
closes the upstream transfer.

The chat completions endpoint is a plain ASGI callable: it reads the body itself (and
stops reading past the size limit), and watches for the client's disconnect while the
site answers. Its requests go to it straight from the application (`_Server`), with the
access log and the answer to an unexpected error that every route has, but past the
router and the exception middleware, which it has no use for: it answers its own
errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import sys
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .._constants import DEFAULT_SITE_URL
from .._discover import discover
from .._exceptions import ModelNotSupportedError
from .._provider import Chatgpt4o, WordPressChat
from .._session import aclose_shared_sessions
from ._access import AccessLog, note
from ._errors import APIError, error_for
from ._openai import (
    DONE,
    ChatRequest,
    ChunkFormat,
    completion_body,
    completion_id,
    error_event,
    model_list_body,
    model_names,
    parse_chat_request,
)
from ._settings import ServerConfig

__all__ = ["build_app"]

logger = logging.getLogger(__name__)


#: The path of the chat completions endpoint.
CHAT_PATH = "/v1/chat/completions"

_JSON = [(b"content-type", b"application/json")]
_EVENT_STREAM = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


# -- the site --------------------------------------------------------------------------


class _Site:
    """The provider class for the configured site, found once and shared."""

    def __init__(self, config: ServerConfig) -> None:
        self._config = config
        site = config.site
        provider = config.provider
        if provider is None and site.url is None:
            provider = Chatgpt4o
            if config.bot_id is not None:
                provider = Chatgpt4o.for_site(DEFAULT_SITE_URL, bot_id=config.bot_id)
        self._provider: type[WordPressChat] | None = provider
        #: Answers model questions before the provider is known (no I/O for them).
        self.family: type[WordPressChat] = provider or Chatgpt4o
        self.owner = urlsplit(site.site_url).hostname or "chatgpt4o"
        self._finding: asyncio.Task[type[WordPressChat]] | None = None
        self.call_options: dict[str, Any] = site.call_options

    @property
    def known(self) -> type[WordPressChat]:
        """The provider if found, else the class that answers for it until then."""
        return self._provider or self.family

    async def provider(self) -> type[WordPressChat]:
        """The provider class: found by `discover()` on the first call, then kept.

        Concurrent first calls share one page load; a failure is not kept, the next
        call tries again. A caller that is cancelled does not stop the search.
        """
        provider = self._provider
        if provider is not None:
            return provider
        finding = self._finding
        if finding is None or finding.get_loop() is not asyncio.get_running_loop():
            finding = asyncio.get_running_loop().create_task(self._discover())
            finding.add_done_callback(_retrieve)
            self._finding = finding
        return await asyncio.shield(finding)

    async def _discover(self) -> type[WordPressChat]:
        site = self._config.site
        assert site.url is not None
        try:
            provider = await discover(site.url, bot_id=self._config.bot_id, **site.call_options)
        finally:
            self._finding = None
        self._provider = provider
        logger.debug("%s: %s", site.url, provider.__name__)
        return provider


def _retrieve(task: asyncio.Task[Any]) -> None:
    # Every waiter may have gone (their clients left): the outcome is still looked at.
    if not task.cancelled():
        task.exception()


# -- ASGI helpers ------------------------------------------------------------------------


async def _send_bytes(
    send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _send_error(send: Send, error: APIError) -> None:
    headers = list(_JSON)
    headers.extend(
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in error.headers.items()
    )
    await _send_bytes(send, error.status, headers, error.body())


def _error_response(error: APIError) -> Response:
    return Response(error.body(), error.status, error.headers, "application/json")


class _ClientGone(Exception):
    """The client closed the connection before its request was read."""


class _ClientWatch:
    """Cancels the task that handles a request when its client disconnects.

    The task is told by `gone`; `stop()` ends the watch (before the last bytes are
    sent, as the server reports a disconnect once the answer is complete).

    The watching task's coroutine refers to this object, and this object drops the
    task when it stops: no reference cycle is left behind (a cancelled task keeps its
    CancelledError, whose traceback holds the coroutine's frame), so a request's
    objects are freed at once instead of by the cyclic garbage collector.
    """

    __slots__ = ("_task", "_watcher", "gone", "started")

    def __init__(self, receive: Receive) -> None:
        self._task = asyncio.current_task()
        self.gone = False
        #: The answer has begun (its status is sent).
        self.started = False
        self._watcher: asyncio.Task[None] | None = asyncio.get_running_loop().create_task(
            _watch(self, receive)
        )

    def stop(self) -> None:
        self._task = None
        watcher = self._watcher
        if watcher is not None:
            self._watcher = None
            watcher.cancel()


async def _watch(watch: _ClientWatch, receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    task = watch._task
    if task is not None:
        watch.gone = True
        task.cancel()


def _uncancel() -> bool:
    """Take back the watch's cancellation; False if another one is pending too."""
    if sys.version_info < (3, 11):
        return True
    task = asyncio.current_task()
    return task is None or task.uncancel() == 0


# -- endpoints ---------------------------------------------------------------------------


class _Auth:
    """The API key check: `Authorization: Bearer <key>`, compared in constant time."""

    def __init__(self, key: str | None) -> None:
        self._expected = f"Bearer {key}".encode() if key else None

    @property
    def needed(self) -> bool:
        return self._expected is not None

    def check(self, authorization: bytes | None) -> None:
        expected = self._expected
        if expected is None:
            return
        if authorization is None:
            raise APIError(
                401,
                "No API key given: send it as 'Authorization: Bearer <key>'",
                code="invalid_api_key",
                headers={"www-authenticate": "Bearer"},
            )
        # compare_digest takes as long whatever the key's first wrong byte is.
        if not hmac.compare_digest(authorization.strip(), expected):
            raise APIError(
                401,
                "Incorrect API key given",
                code="invalid_api_key",
                headers={"www-authenticate": "Bearer"},
            )


class _ChatCompletions:
    """`POST /v1/chat/completions`, as a plain ASGI callable."""

    def __init__(self, config: ServerConfig, site: _Site, auth: _Auth) -> None:
        self._config = config
        self._site = site
        self._auth = auth
        self._limit = config.max_body_size
        self._scrub = config.scrub

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            request = await self._read(scope, receive)
        except _ClientGone:
            note(scope, outcome="client-gone")
            return
        except APIError as error:
            await _send_error(send, error)
            return
        site = self._site
        try:
            # Before any I/O: an unknown model costs the site nothing.
            model = site.known.get_model(request.model)
        except ModelNotSupportedError as error:
            note(scope, model=request.model[:100] or "-")
            await _send_error(send, error_for(error, self._scrub))
            return
        note(scope, model=model)
        watch = _ClientWatch(receive)
        try:
            provider = await site.provider()
            if request.stream:
                await self._stream(provider, model, request, scope, send, watch)
            else:
                await self._complete(provider, model, request, send, watch)
        except asyncio.CancelledError:
            if not _uncancel():
                raise
            if watch.gone:
                note(scope, outcome="client-gone")
            else:
                # The server cancelled the request (its shutdown): the client is told,
                # and the server sees a request that ended, not a failure.
                note(scope, outcome="cancelled")
                await _farewell(send, watch.started)
        except Exception as error:
            watch.stop()
            if watch.started:  # sending failed: nothing more can be said
                raise
            await self._fail(scope, send, error)
        finally:
            watch.stop()

    async def _read(self, scope: Scope, receive: Receive) -> ChatRequest:
        authorization: bytes | None = None
        length: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"content-length":
                length = value
        self._auth.check(authorization)
        limit = self._limit
        if length is not None and length.isdigit() and int(length) > limit:
            raise _too_large(limit)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk: bytes = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        request = parse_chat_request(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        if request.ignored and logger.isEnabledFor(logging.DEBUG):
            logger.debug("ignored (the site cannot honour them): %s", ", ".join(request.ignored))
        return request

    async def _complete(
        self,
        provider: type[WordPressChat],
        model: str,
        request: ChatRequest,
        send: Send,
        watch: _ClientWatch,
    ) -> None:
        reply = await provider.create_async(model, request.messages, **self._site.call_options)
        watch.stop()
        body = completion_body(
            completion_id(), int(time.time()), model, reply, request.prompt_chars
        )
        watch.started = True
        await _send_bytes(send, 200, _JSON, body)

    async def _stream(
        self,
        provider: type[WordPressChat],
        model: str,
        request: ChatRequest,
        scope: Scope,
        send: Send,
        watch: _ClientWatch,
    ) -> None:
        # Up to the first piece: an error until then is an ordinary error answer.
        reply = await provider.stream(model, request.messages, **self._site.call_options)
        async with reply:
            chunks = ChunkFormat(completion_id(), int(time.time()), model)
            watch.started = True
            await send({"type": "http.response.start", "status": 200, "headers": _EVENT_STREAM})
            await send({"type": "http.response.body", "body": chunks.role(), "more_body": True})
            sent = 0
            try:
                async for piece in reply:
                    if piece:
                        sent += len(piece)
                        await send(
                            {
                                "type": "http.response.body",
                                "body": chunks.content(piece),
                                "more_body": True,
                            }
                        )
            except Exception as error:
                # Too late for a status: a last event carries the error, and no [DONE].
                failure = error_for(error, self._scrub)
                _log_failure(error, failure)
                note(scope, outcome=f"stream-error-{failure.status}")
                watch.stop()
                await send(
                    {"type": "http.response.body", "body": error_event(failure), "more_body": False}
                )
                return
            tail = chunks.stop()
            if request.include_usage:
                tail += chunks.usage(request.prompt_chars, sent)
            watch.stop()
            await send({"type": "http.response.body", "body": tail + DONE, "more_body": False})

    async def _fail(self, scope: Scope, send: Send, error: Exception) -> None:
        failure = error_for(error, self._scrub)
        _log_failure(error, failure)
        await _send_error(send, failure)


async def _farewell(send: Send, started: bool) -> None:
    """Tell a client whose request the server cancelled: a 503, or a last event."""
    error = APIError(
        503, "The server is shutting down", type="server_error", code="server_shutting_down"
    )
    with contextlib.suppress(Exception):  # the connection may be gone already
        if started:
            await send(
                {"type": "http.response.body", "body": error_event(error), "more_body": False}
            )
        else:
            await _send_error(send, error)


def _log_failure(error: BaseException, failure: APIError) -> None:
    if failure.status >= 500 and failure.code == "internal_error":
        logger.error("unexpected %s", type(error).__name__, exc_info=error)
    elif logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s: %s", failure.status, failure.message)


def _too_large(limit: int) -> APIError:
    return APIError(
        413,
        f"The request body is larger than this server takes ({limit} bytes)",
        code="request_too_large",
    )


# -- the application ---------------------------------------------------------------------


class _Server(Starlette):
    """Starlette, with `POST /v1/chat/completions` taken to its endpoint directly.

    The endpoint gets what it would get through Starlette's middleware stack, less the
    router and the exception middleware: the access log, and a 500 in OpenAI's shape
    (and the error logged) for an unexpected error. Any other request, and one whose
    path Starlette would match only after taking a `root_path` off, goes the usual way.
    """

    def __init__(self, chat: ASGIApp, **settings: Any) -> None:
        super().__init__(**settings)
        self._chat = ServerErrorMiddleware(AccessLog(chat), handler=_internal_error)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"] == CHAT_PATH
            and not scope.get("root_path")
        ):
            scope["app"] = self
            await self._chat(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def build_app(config: ServerConfig) -> Starlette:
    """The ASGI application for `config` (`create_app` resolves one from arguments and
    the environment)."""
    site = _Site(config)
    auth = _Auth(config.api_key)
    if config.api_key:
        config.scrub.add(config.api_key)
    chat = _ChatCompletions(config, site, auth)

    async def list_models(request: Request) -> Response:
        auth.check(_header(request, "authorization"))
        provider = site.known
        names = model_names(provider.get_models(), provider.model_aliases)
        return Response(model_list_body(names, site.owner), media_type="application/json")

    async def get_model(request: Request) -> Response:
        auth.check(_header(request, "authorization"))
        name: str = request.path_params["model"]
        provider = site.known
        if name not in model_names(provider.get_models(), provider.model_aliases):
            raise error_for(ModelNotSupportedError(name, "", []), config.scrub)
        body = {"id": name, "object": "model", "created": 0, "owned_by": site.owner}
        return Response(json.dumps(body), media_type="application/json")

    async def health(request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await aclose_shared_sessions()

    routes = [
        Route(CHAT_PATH, chat, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", get_model, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
    return _Server(
        chat,
        routes=routes,
        middleware=[Middleware(AccessLog)],
        exception_handlers={
            APIError: _api_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
        lifespan=lifespan,
    )


def _header(request: Request, name: str) -> bytes | None:
    value = request.headers.get(name)
    return value.encode("latin-1") if value is not None else None


async def _api_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, APIError)
    return _error_response(error)


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    if error.status_code == 404:
        message = f"Unknown request URL: {request.method} {request.url.path}"
        code = "unknown_url"
    elif error.status_code == 405:
        message = f"Method {request.method} is not allowed for {request.url.path}"
        code = "method_not_allowed"
    else:
        message, code = str(error.detail), None
    headers = dict(error.headers or {})
    return _error_response(APIError(error.status_code, message, code=code, headers=headers))


async def _internal_error(request: Request, error: Exception) -> Response:
    logger.error("unexpected %s", type(error).__name__, exc_info=error)
    return _error_response(
        APIError(500, "The server failed to answer (see its log)", type="server_error",
                 code="internal_error")
    )
