"""Make our providers known to gpt4free (g4f) by name.

Handing the class to g4f needs nothing from this module::

    from g4f.client import Client
    from chatgpt4o import Chatgpt4o

    Client().chat.completions.create(model="gpt-4o-mini", messages=..., provider=Chatgpt4o)

To name it with a string instead (``provider="Chatgpt4o"``; with g4f >= 8.6 also
``model="Chatgpt4o:gpt-4o-mini"``; g4f's API server), register it in the installed g4f
first::

    import chatgpt4o.g4f

    chatgpt4o.g4f.register()               # Chatgpt4o
    chatgpt4o.g4f.register(MySite)         # a subclass for another site, as "MySite"

g4f is imported only when a function here is called, so this module imports without
it. g4f >= 8.0 is needed (the extra ``g4f``). Registered providers stay
subject to g4f's checks: ``working = False`` (as for ``Chatgpt4o`` itself) makes
``g4f.ChatCompletion.create`` refuse them unless ``ignore_working=True`` is passed.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from ._base import BaseProvider

if TYPE_CHECKING:
    from ._provider import Chatgpt4o

__all__ = ["MIN_G4F_VERSION", "register", "registered", "unregister"]

#: The oldest g4f whose provider registry and client this module knows.
MIN_G4F_VERSION = (8, 0)

_INSTALL_HINT = "pip install 'g4f>=8.0,<9'"

_P = TypeVar("_P", bound=type[BaseProvider])

# What this module added to g4f, by name: only these are ever taken out again.
_registered: dict[str, type[BaseProvider]] = {}


def _installed_version() -> str | None:
    """g4f's version from the installed distribution's metadata, if there is one."""
    import importlib.metadata

    try:
        return importlib.metadata.version("g4f")
    except importlib.metadata.PackageNotFoundError:
        return None


def _version_tuple(text: str) -> tuple[int, ...] | None:
    match = re.match(r"v?(\d+(?:\.\d+)*)", text.strip())
    if match is None:
        return None
    return tuple(int(part) for part in match.group(1).split("."))


def _check_version(version: str | None) -> None:
    numbers = _version_tuple(version) if version else None
    if numbers is not None and numbers < MIN_G4F_VERSION:
        wanted = ".".join(map(str, MIN_G4F_VERSION))
        raise RuntimeError(
            f"g4f {version} is too old for chatgpt4o.g4f, which needs g4f >= {wanted}; "
            f"upgrade it: {_INSTALL_HINT}"
        )


def _g4f_registry() -> ModuleType:
    """`g4f.Provider`, once g4f is known to be there and recent enough."""
    _check_version(_installed_version())
    try:
        g4f = importlib.import_module("g4f")
        registry = importlib.import_module("g4f.Provider")
    except ImportError as err:
        raise ImportError(
            f"chatgpt4o.g4f needs the g4f package (gpt4free), which cannot be imported "
            f"({err}); install it: {_INSTALL_HINT}"
        ) from err
    version = getattr(g4f, "__version__", None)
    _check_version(version if isinstance(version, str) else None)
    return registry


def _normalized(name: str) -> str:
    # How g4f >= 8.6 matches provider names loosely ("chat-gpt" finds "ChatGPT").
    return name.lower().replace("-", "").replace("_", "")


class _Layout(Protocol):
    """One way g4f keeps its providers."""

    def add(self, name: str, provider: type[BaseProvider]) -> None: ...

    def remove(self, name: str, provider: type[BaseProvider]) -> None: ...


class _NamesAndLoaded:
    """A list of provider names, and the classes loaded so far by name.

    g4f >= 8.6 keeps them as `ProviderLoader.names` and `ProviderLoader.loaded` (which
    also answers to normalized names); g4f 8.0 to 8.5 as the module globals
    `_provider_names` and `_loaded_providers`.
    """

    def __init__(self, names: list[str], loaded: dict[str, Any], *, loose: bool) -> None:
        self.names = names
        self.loaded = loaded
        self.loose = loose

    def _keys(self, name: str) -> list[str]:
        return list(dict.fromkeys([name, _normalized(name)])) if self.loose else [name]

    def add(self, name: str, provider: type[BaseProvider]) -> None:
        for key in self._keys(name):
            if self.loaded.get(key, provider) is provider:  # never take a key of another
                self.loaded[key] = provider
        if name not in self.names:
            self.names.append(name)

    def remove(self, name: str, provider: type[BaseProvider]) -> None:
        for key in self._keys(name):
            if self.loaded.get(key) is provider:
                del self.loaded[key]
        if name in self.names:
            self.names.remove(name)


class _PlainDict:
    """`ProviderUtils.convert` as a plain dict, with a `__providers__` list of classes."""

    def __init__(self, convert: dict[str, Any], listed: list[Any] | None) -> None:
        self.convert = convert
        self.listed = listed

    def add(self, name: str, provider: type[BaseProvider]) -> None:
        self.convert[name] = provider
        if self.listed is not None and provider not in self.listed:
            self.listed.append(provider)

    def remove(self, name: str, provider: type[BaseProvider]) -> None:
        if self.convert.get(name) is provider:
            del self.convert[name]
        if self.listed is not None and provider not in self.convert.values():
            while provider in self.listed:
                self.listed.remove(provider)


def _layout(registry: ModuleType) -> _Layout:
    # Read module globals through __dict__: g4f.Provider's module class turns other
    # attribute reads into provider look-ups.
    namespace = vars(registry)
    loader = namespace.get("ProviderLoader")
    names = getattr(loader, "names", None)
    loaded = getattr(loader, "loaded", None)
    if isinstance(names, list) and isinstance(loaded, dict):
        return _NamesAndLoaded(names, loaded, loose=True)
    names = namespace.get("_provider_names")
    loaded = namespace.get("_loaded_providers")
    if isinstance(names, list) and isinstance(loaded, dict):
        return _NamesAndLoaded(names, loaded, loose=False)
    convert = getattr(namespace.get("ProviderUtils"), "convert", None)
    if type(convert) is dict:
        listed = namespace.get("__providers__")
        return _PlainDict(convert, listed if isinstance(listed, list) else None)
    version = _installed_version() or "of unknown version"
    raise RuntimeError(
        f"chatgpt4o.g4f does not know how this g4f ({version}) keeps its providers; "
        f"pass the class itself (provider=Chatgpt4o) instead of its name, or use a "
        f"g4f that chatgpt4o supports: {_INSTALL_HINT}"
    )


def _look_up(registry: ModuleType, name: str) -> object:
    """The provider g4f finds for `name` today, or None."""
    convert = getattr(vars(registry).get("ProviderUtils"), "convert", None)
    if convert is None:
        return None
    try:
        return convert.get(name)
    except Exception:  # g4f imports provider modules to answer; any failure means "none"
        return None


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"a provider name must be a non-empty str, got {name!r}")
    if any(char.isspace() for char in name) or ":" in name:
        raise ValueError(
            f"provider name {name!r}: g4f splits names on spaces (a provider list) and "
            f"on ':' (provider:model), so neither may appear in it"
        )
    return name


def _check_provider(provider: object) -> type[BaseProvider]:
    if not isinstance(provider, type) or not issubclass(provider, BaseProvider):
        raise TypeError(
            f"register() takes a provider class derived from chatgpt4o.BaseProvider "
            f"(such as Chatgpt4o or a subclass of it), not {provider!r}"
        )
    return provider


@overload
def register(provider: None = None, *, name: str | None = None) -> type[Chatgpt4o]: ...


@overload
def register(provider: _P, *, name: str | None = None) -> _P: ...


def register(
    provider: type[BaseProvider] | None = None, *, name: str | None = None
) -> type[BaseProvider]:
    """Make `provider` known to the installed g4f as `name` (default: the class's name).
    Without a provider, the built-in ones: `Chatgpt4o` and `AIEngine` (the returned
    class is `Chatgpt4o`). Returns the class, so it also works as a decorator.

    Registering the same class under the same name again does nothing. Raises
    ImportError without g4f, RuntimeError for a g4f older than `MIN_G4F_VERSION` (or
    one that keeps its providers in a way this module does not know), TypeError for
    something that is not a provider class, and ValueError for a bad name or one that
    g4f already uses for another provider.
    """
    if provider is None:
        from ._provider import AIEngine, Chatgpt4o

        if name is not None:
            raise ValueError("register() names one provider: pass it too, register(cls, name=...)")
        register(AIEngine)
        return register(Chatgpt4o)
    chosen = _check_provider(provider)
    key = _check_name(chosen.__name__ if name is None else name)
    registry = _g4f_registry()
    layout = _layout(registry)
    known = _look_up(registry, key)
    if known is chosen and _registered.get(key) is chosen:
        return chosen
    if known is not None and known is not chosen:
        described = getattr(known, "__module__", "?") + "." + getattr(known, "__name__", "?")
        remedy = (
            f"call chatgpt4o.g4f.unregister({key!r}) first, or register "
            if _registered.get(key) is known
            else "register "
        )
        raise ValueError(
            f"g4f already has a provider named {key!r} ({described}); {remedy}"
            f"{chosen.__name__} under another name: register({chosen.__name__}, name=...)"
        )
    layout.add(key, chosen)
    _registered[key] = chosen
    if _look_up(registry, key) is not chosen:
        unregister(key)
        raise RuntimeError(
            f"registered {chosen.__name__} as {key!r}, but this g4f does not find it by "
            f"that name; pass the class itself (provider={chosen.__name__}) instead"
        )
    return chosen


def unregister(provider: str | type[BaseProvider]) -> None:
    """Take out of g4f what `register()` put there, by name or by class.

    Raises KeyError for a name (or class) that `register()` did not add.
    """
    if isinstance(provider, str):
        names = [provider] if provider in _registered else []
    else:
        names = [key for key, cls in _registered.items() if cls is provider]
    if not names:
        raise KeyError(f"{provider!r} was not registered with g4f by chatgpt4o.g4f.register()")
    layout = _layout(_g4f_registry())
    for key in names:
        layout.remove(key, _registered.pop(key))


def registered() -> dict[str, type[BaseProvider]]:
    """The providers `register()` added to g4f, by name (a copy)."""
    return dict(_registered)
