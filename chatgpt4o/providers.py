"""Our providers, listed the way g4f's `g4f.Provider` lists its own.

- `__providers__`: the provider classes, in the order they were added;
- `__map__` (the same dict as `ProviderUtils.convert`): name to class;
- `__all__`: the names this module exports, providers included;
- each provider is an attribute: `from chatgpt4o.providers import Chatgpt4o, AIEngine`.

`register(cls)` adds a provider of your own (typically a `Chatgpt4o` subclass for another
site running the plugin) to all of them; `get(name)` finds one by name, loosely.
"""

from __future__ import annotations

from typing import ClassVar, TypeVar

from ._base import BaseProvider
from ._provider import AIEngine, Chatgpt4o

__all__ = ["AIEngine", "Chatgpt4o", "ProviderUtils", "get", "register", "unregister"]

_P = TypeVar("_P", bound=type[BaseProvider])

__providers__: list[type[BaseProvider]] = [Chatgpt4o, AIEngine]
__map__: dict[str, type[BaseProvider]] = {provider.__name__: provider for provider in __providers__}

# The providers that ship with the package: they stay.
_BUILT_IN = frozenset(__map__)


class ProviderUtils:
    """g4f's name for the registry: `ProviderUtils.convert[name]` is the class."""

    convert: ClassVar[dict[str, type[BaseProvider]]] = __map__


def _loose(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


def get(name: str) -> type[BaseProvider]:
    """The provider called `name`; case, "-" and "_" are not told apart.

    Raises KeyError, listing the known names, for a name no provider has.
    """
    if not isinstance(name, str):
        raise TypeError(f"a provider name is a str, not {type(name).__name__}")
    provider = __map__.get(name)
    if provider is not None:
        return provider
    wanted = _loose(name)
    for known, provider in __map__.items():
        if _loose(known) == wanted:
            return provider
    raise KeyError(f"no provider named {name!r}; known: {', '.join(__map__)}")


def register(provider: _P, *, name: str | None = None) -> _P:
    """Add `provider` to this registry as `name` (default: its class name).

    Returns the class, so it also works as a class decorator. Registering the same
    class under the same name again does nothing. Raises TypeError unless `provider`
    is a `BaseProvider` subclass, ValueError for a name that is not an identifier or
    that is taken (by another provider, or by a name of this module).
    """
    if not isinstance(provider, type) or not issubclass(provider, BaseProvider):
        raise TypeError(
            f"register() takes a provider class derived from chatgpt4o.BaseProvider, "
            f"not {provider!r}"
        )
    key = provider.__name__ if name is None else name
    if not isinstance(key, str) or not key.isidentifier():
        raise ValueError(f"a provider name must be a Python identifier, got {key!r}")
    namespace = globals()
    if __map__.get(key) is provider:
        return provider
    taken = namespace.get(key)
    if taken is None:
        loose = _loose(key)
        taken = next((cls for known, cls in __map__.items() if _loose(known) == loose), None)
    if taken is not None:
        raise ValueError(
            f"the name {key!r} is taken (by {taken!r}); register {provider.__name__} "
            f"under another name: register({provider.__name__}, name=...)"
        )
    __map__[key] = provider
    if provider not in __providers__:
        __providers__.append(provider)
    namespace[key] = provider
    __all__.append(key)
    return provider


def unregister(name: str) -> type[BaseProvider]:
    """Take out the provider `register()` added as `name`, and return it.

    Raises KeyError for an unknown name and ValueError for a provider that ships with
    the package.
    """
    if name in _BUILT_IN:
        raise ValueError(f"{name!r} ships with chatgpt4o and cannot be unregistered")
    provider = __map__.pop(name, None)
    if provider is None:
        raise KeyError(f"no provider was registered as {name!r}")
    if provider not in __map__.values():
        __providers__.remove(provider)
    globals().pop(name, None)
    __all__.remove(name)
    return provider
