"""`chatgpt4o.providers`: our g4f-style registry of provider classes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import chatgpt4o.providers as providers
from chatgpt4o import AIEngine, BaseProvider, Chatgpt4o
from chatgpt4o.providers import ProviderUtils
from chatgpt4o.testing import SiteEmulator

from .conftest import USER_HELLO


@pytest.fixture(autouse=True)
def registry() -> Iterator[None]:
    """Each test starts from, and leaves, the registry as the package ships it."""
    names = dict(vars(providers))
    listed = list(providers.__providers__)
    mapped = dict(providers.__map__)
    exported = list(providers.__all__)
    yield
    for name in set(vars(providers)) - set(names):
        delattr(providers, name)
    providers.__providers__[:] = listed
    providers.__map__.clear()
    providers.__map__.update(mapped)
    providers.__all__[:] = exported


def test_the_built_in_providers_are_in_every_list() -> None:
    assert providers.__providers__ == [Chatgpt4o, AIEngine]
    assert providers.__map__ == {"Chatgpt4o": Chatgpt4o, "AIEngine": AIEngine}
    assert providers.AIEngine is AIEngine
    assert ProviderUtils.convert is providers.__map__
    assert "Chatgpt4o" in providers.__all__
    assert providers.Chatgpt4o is Chatgpt4o


def test_all_names_what_the_module_has() -> None:
    for name in providers.__all__:
        assert hasattr(providers, name), name


def test_get_finds_a_provider_loosely() -> None:
    assert providers.get("Chatgpt4o") is Chatgpt4o
    assert providers.get("chatgpt4o") is Chatgpt4o
    assert providers.get("CHATGPT_4O") is Chatgpt4o


def test_get_names_the_known_providers_when_it_finds_none() -> None:
    with pytest.raises(KeyError, match="no provider named 'Nope'; known: Chatgpt4o"):
        providers.get("Nope")
    with pytest.raises(TypeError):
        providers.get(Chatgpt4o)  # type: ignore[arg-type]


def test_register_adds_a_subclass_everywhere() -> None:
    class MySite(Chatgpt4o):
        url = "https://chat.example.org"

    assert providers.register(MySite) is MySite
    assert providers.__providers__ == [Chatgpt4o, AIEngine, MySite]
    assert ProviderUtils.convert["MySite"] is MySite
    assert "MySite" in providers.__all__
    assert providers.MySite is MySite  # type: ignore[attr-defined]
    assert providers.get("mysite") is MySite
    # again: nothing changes
    assert providers.register(MySite) is MySite
    assert providers.__providers__ == [Chatgpt4o, AIEngine, MySite]
    assert providers.__all__.count("MySite") == 1


def test_register_is_a_class_decorator() -> None:
    @providers.register
    class Decorated(Chatgpt4o):
        url = "https://chat.example.org"

    assert providers.get("Decorated") is Decorated


def test_register_under_another_name() -> None:
    class MySite(Chatgpt4o):
        url = "https://chat.example.org"

    providers.register(MySite, name="ExampleChat")
    assert providers.get("ExampleChat") is MySite
    assert "MySite" not in providers.__map__


def test_register_any_provider_kind() -> None:
    from chatgpt4o import AsyncProvider, Messages

    class Echo(AsyncProvider):
        working = True

        @classmethod
        async def create_async(cls, model: str, messages: Messages, **kwargs: Any) -> str:
            return str(messages[-1]["content"])

    providers.register(Echo)
    assert providers.get("Echo") is Echo


@pytest.mark.parametrize("thing", [Chatgpt4o(), int, "Chatgpt4o", None])
def test_register_takes_provider_classes_only(thing: Any) -> None:
    with pytest.raises(TypeError, match="BaseProvider"):
        providers.register(thing)


def test_register_refuses_a_taken_name() -> None:
    class Impostor(Chatgpt4o):
        url = "https://chat.example.org"

    with pytest.raises(ValueError, match="'Chatgpt4o' is taken"):
        providers.register(Impostor, name="Chatgpt4o")
    with pytest.raises(ValueError, match="'chatgpt_4o' is taken"):  # get() would be ambiguous
        providers.register(Impostor, name="chatgpt_4o")


@pytest.mark.parametrize("name", ["register", "ProviderUtils", "BaseProvider", "__map__"])
def test_register_refuses_the_names_of_the_module(name: str) -> None:
    class MySite(Chatgpt4o):
        url = "https://chat.example.org"

    with pytest.raises(ValueError, match="is taken"):
        providers.register(MySite, name=name)
    assert getattr(providers, name) is not MySite


@pytest.mark.parametrize("name", ["", "my site", "my-site", "1st", 42])
def test_register_wants_an_identifier(name: Any) -> None:
    class MySite(Chatgpt4o):
        url = "https://chat.example.org"

    with pytest.raises(ValueError, match="identifier"):
        providers.register(MySite, name=name)


def test_unregister_takes_out_what_register_added() -> None:
    class MySite(Chatgpt4o):
        url = "https://chat.example.org"

    providers.register(MySite)
    assert providers.unregister("MySite") is MySite
    assert providers.__providers__ == [Chatgpt4o, AIEngine]
    assert providers.__map__ == {"Chatgpt4o": Chatgpt4o, "AIEngine": AIEngine}
    assert "MySite" not in providers.__all__
    assert not hasattr(providers, "MySite")
    with pytest.raises(KeyError):
        providers.unregister("MySite")


def test_one_class_under_two_names_stays_listed_until_both_go() -> None:
    class MySite(Chatgpt4o):
        url = "https://chat.example.org"

    providers.register(MySite)
    providers.register(MySite, name="Alias")
    assert providers.__providers__ == [Chatgpt4o, AIEngine, MySite]
    providers.unregister("Alias")
    assert providers.__providers__ == [Chatgpt4o, AIEngine, MySite]
    providers.unregister("MySite")
    assert providers.__providers__ == [Chatgpt4o, AIEngine]


def test_the_shipped_provider_stays() -> None:
    with pytest.raises(ValueError, match="ships with chatgpt4o"):
        providers.unregister("Chatgpt4o")


def test_everything_listed_is_a_provider() -> None:
    for provider in providers.__providers__:
        assert issubclass(provider, BaseProvider)


async def test_a_registered_provider_answers(emulator: SiteEmulator) -> None:
    class Emulated(Chatgpt4o):
        url = emulator.url

    providers.register(Emulated)
    reply = await providers.get("Emulated").create_async("gpt-4o-mini", USER_HELLO)
    assert "Привет!" in reply
    assert emulator.posts == 1
