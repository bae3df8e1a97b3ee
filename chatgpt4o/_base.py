"""g4f-style provider bases: the names and behaviours a gpt4free user expects.

`BaseProvider` describes a provider; `AsyncProvider` answers with `create_async` and
gets a blocking `create_completion` for free; `AsyncGeneratorProvider` answers with
`create_async_generator` and gets both of the others; `ProviderModelMixin` resolves
model names and aliases.

The class attributes are the ones gpt4free's client reads from a provider class
(`working`, `supports_stream`, `use_stream_timeout`, `live`, `get_dict()`,
`get_parent()`, `get_parameters()`...), so every provider here can be handed to
`g4f.client.Client` or `g4f.ChatCompletion` as it is.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Literal, overload

from ._exceptions import ModelNotSupportedError
from ._messages import Messages

if TYPE_CHECKING:
    import inspect

__all__ = [
    "AsyncGeneratorProvider",
    "AsyncProvider",
    "BaseProvider",
    "ProviderModelMixin",
    "iterate_blocking",
]


def _refuse_inside_running_loop(provider: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"{provider}.create_completion() blocks, so it cannot run inside a running event "
        f"loop; use `await {provider}.create_async(...)` or "
        f"`async for piece in {provider}.create_async_generator(...)` instead"
    )


def iterate_blocking(pieces: AsyncIterator[str]) -> Iterator[str]:
    """Drive an async iterator from blocking code, on a private event loop.

    Pieces come out as they arrive. When the caller stops early (or a piece fails),
    the async iterator is closed in its loop; then the loop is shut down as
    `asyncio.run` would do it (see `_runner`).
    """
    from ._runner import Runner  # only blocking callers need it

    with Runner() as runner:
        try:
            while True:
                piece = runner.run(_next(pieces))
                if isinstance(piece, _Exhausted):
                    return
                yield piece
        finally:
            closer = getattr(pieces, "aclose", None)
            if closer is not None:
                runner.run(closer())


class _Exhausted:
    """What `_next` returns at the end: StopAsyncIteration must not cross a task."""


async def _next(pieces: AsyncIterator[str]) -> str | _Exhausted:
    # A coroutine, for the runner: `__anext__` may return any awaitable.
    try:
        return await pieces.__anext__()
    except StopAsyncIteration:
        return _Exhausted()


async def _one(value: Any) -> AsyncIterator[str]:
    yield await value


class _ParamsText:
    """`Provider.params`: the text of `get_params()`, computed when read."""

    def __get__(self, instance: object, owner: type[BaseProvider]) -> str:
        return owner.get_params()


def _example_messages(with_system: bool) -> list[dict[str, str]]:
    user = {"role": "user", "content": ""}
    return [{"role": "system", "content": ""}, user] if with_system else [user]


def _signature(function: Callable[..., Any]) -> inspect.Signature:
    import inspect  # slow to import, and only g4f's GUI asks for parameters

    return inspect.signature(function)


def _format_annotation(annotation: object) -> str:
    import inspect

    return inspect.formatannotation(annotation)


def _json_value(value: object) -> object:
    """`value` if JSON can carry it as it is, else its text."""
    if value is None or isinstance(value, (bool, int, float, str, list, dict)):
        return value
    return str(value)


class BaseProvider(ABC):
    """What every provider says about itself, and the calls it answers."""

    url: ClassVar[str | None] = None
    working: ClassVar[bool] = False
    needs_auth: ClassVar[bool] = False
    supports_stream: ClassVar[bool] = False
    supports_message_history: ClassVar[bool] = False
    supports_system_message: ClassVar[bool] = False
    label: ClassVar[str | None] = None
    parent: ClassVar[str | None] = None
    #: None: g4f's own judgement decides whether its GUI ticks the provider.
    active_by_default: ClassVar[bool | None] = None
    #: With a stream, g4f's client bounds the wait for each piece by the call's
    #: `stream_timeout` (True) or by its `timeout` (False). Our `timeout` bounds the
    #: whole call either way.
    use_stream_timeout: ClassVar[bool] = True
    #: g4f's health score: its client adds 1 after a good answer, takes 1 on an error.
    live: ClassVar[int] = 0
    #: The call's parameters as text (`get_params()`), as g4f shows them.
    params = _ParamsText()

    @classmethod
    @abstractmethod
    def create_completion(
        cls, model: str, messages: Messages, stream: bool = False, **kwargs: Any
    ) -> Iterator[str]:
        """The blocking API: an iterator of reply text."""

    @classmethod
    @abstractmethod
    async def create_async(cls, model: str, messages: Messages, **kwargs: Any) -> str:
        """The whole reply."""

    @classmethod
    def get_dict(cls) -> dict[str, str | None]:
        """Name, URL and label, as g4f lists providers."""
        return {"name": cls.__name__, "url": cls.url, "label": cls.label}

    @classmethod
    def get_parent(cls) -> str:
        """The name of the provider family (the class's own name unless `parent` says)."""
        return cls.parent or cls.__name__

    @classmethod
    def _native_method(cls) -> Callable[..., Any]:
        """The call the provider implements itself, whose parameters are documented."""
        native: object = getattr(cls, "create_async_generator", None)
        if callable(native):
            return native
        if issubclass(cls, AsyncProvider):
            return cls.create_async
        return cls.create_completion

    @overload
    @classmethod
    def get_parameters(cls, as_json: Literal[False] = False) -> dict[str, inspect.Parameter]: ...

    @overload
    @classmethod
    def get_parameters(cls, as_json: Literal[True]) -> dict[str, Any]: ...

    @classmethod
    def get_parameters(cls, as_json: bool = False) -> dict[str, inspect.Parameter] | dict[str, Any]:
        """The named parameters of the provider's call (`**kwargs` left out).

        With `as_json`, an example request instead: each parameter with its default,
        or an example value, and the provider's name (g4f's GUI shows it).
        """
        parameters = {
            name: parameter
            for name, parameter in _signature(cls._native_method()).parameters.items()
            if parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
            and (name != "stream" or cls.supports_stream)
        }
        if not as_json:
            return parameters
        examples: dict[str, Any] = {
            "model": getattr(cls, "default_model", None) or "",
            "messages": _example_messages(cls.supports_system_message),
        }
        request: dict[str, Any] = {"provider": cls.__name__}
        for name, parameter in parameters.items():
            if parameter.default is not parameter.empty:
                request[name] = _json_value(parameter.default)
            else:
                request[name] = examples.get(name)
        if "model" in request:
            request["model"] = examples["model"]
        return request

    @classmethod
    def get_params(cls) -> str:
        """The call's parameters as text: `Name supports: (model: str = "...", ...)`."""
        default_model = getattr(cls, "default_model", None)
        lines: list[str] = []
        for name, parameter in cls.get_parameters().items():
            line = name
            annotation = parameter.annotation
            if annotation is not parameter.empty:
                kind = (
                    annotation
                    if isinstance(annotation, str)
                    else _format_annotation(annotation)
                )
                line += f": {kind}"
            default = parameter.default
            if name == "model" and default_model:
                default = default_model
            if default is not parameter.empty:
                line += f" = {default!r}"
            lines.append(f"    {line},")
        return f"{cls.__name__} supports: (\n" + "\n".join(lines) + "\n)"


class AsyncProvider(BaseProvider):
    """A provider whose native call is `create_async`."""

    @classmethod
    def create_completion(
        cls, model: str, messages: Messages, stream: bool = False, **kwargs: Any
    ) -> Iterator[str]:
        """Blocking: the reply as an iterator of text. Not for a running event loop.

        A provider that also has `create_async_generator` streams its pieces (with
        `stream`); otherwise the reply of `create_async` comes as one piece.
        """
        _refuse_inside_running_loop(cls.__name__)
        generator = getattr(cls, "create_async_generator", None)
        if generator is not None:
            return iterate_blocking(generator(model, messages, stream=stream, **kwargs))
        return iterate_blocking(_one(cls.create_async(model, messages, **kwargs)))

    @classmethod
    @abstractmethod
    async def create_async(cls, model: str, messages: Messages, **kwargs: Any) -> str:
        """The whole reply."""


class AsyncGeneratorProvider(AsyncProvider):
    """A provider whose native call is `create_async_generator`."""

    supports_stream: ClassVar[bool] = True

    @classmethod
    def create_completion(
        cls, model: str, messages: Messages, stream: bool = True, **kwargs: Any
    ) -> Iterator[str]:
        """Blocking: the reply's pieces as they arrive (streaming by default)."""
        return super().create_completion(model, messages, stream=stream, **kwargs)

    @classmethod
    async def create_async(cls, model: str, messages: Messages, **kwargs: Any) -> str:
        """The whole reply, joined from the generator's pieces."""
        kwargs.pop("stream", None)
        pieces = [
            piece
            async for piece in cls.create_async_generator(model, messages, stream=False, **kwargs)
        ]
        return "".join(pieces)

    @classmethod
    @abstractmethod
    def create_async_generator(
        cls, model: str, messages: Messages, stream: bool = True, **kwargs: Any
    ) -> AsyncIterator[str]:
        """The reply in pieces, as they arrive."""


class ProviderModelMixin:
    """Model names, aliases and the default model of a provider."""

    default_model: ClassVar[str | None] = None
    models: ClassVar[list[str]] = []
    model_aliases: ClassVar[dict[str, str]] = {}
    last_model: ClassVar[str | None] = None

    @classmethod
    def get_models(cls, **kwargs: Any) -> list[str]:
        """The models this provider serves (not counting aliases)."""
        if not cls.models and cls.default_model is not None:
            return [cls.default_model]
        return list(cls.models)

    @classmethod
    def get_model(cls, model: str | None, **kwargs: Any) -> str:
        """The model to use for `model`: an alias resolved, "" or None the default.

        Raises ModelNotSupportedError for a name the provider does not serve.
        """
        if model is not None and not isinstance(model, str):
            raise TypeError(f"model must be a str, not {type(model).__name__}")
        if not model:
            if cls.default_model is None:
                raise ModelNotSupportedError("", cls.__name__, cls.get_models())
            model = cls.default_model
        model = cls.model_aliases.get(model, model)
        if model not in cls.get_models():
            raise ModelNotSupportedError(
                model, cls.__name__, [*cls.get_models(), *cls.model_aliases]
            )
        if cls.__dict__.get("last_model") != model:
            # Setting a class attribute invalidates Python's attribute caches for the
            # class and every subclass: only when the model changes, not on every call.
            cls.last_model = model
        return model
