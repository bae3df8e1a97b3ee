"""gpt4free interoperability: the provider classes handed to the real g4f client.

The tests that need g4f skip without it (the extra ``g4f``). They talk
to the local emulator only: g4f's config and cache directories point at a temporary
directory (it writes usage logs there), its version check is off, and any connection
or name look-up from Python code to anything but loopback fails the test.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import socket
import subprocess
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

import chatgpt4o.g4f as chatgpt4o_g4f
from chatgpt4o import (
    AIEngine,
    AsyncGeneratorProvider,
    AsyncProvider,
    Chatgpt4o,
    Messages,
    ProviderError,
)
from chatgpt4o.testing import Fault, SiteEmulator

from .conftest import ThreadedSite, expected_reply

TEXT = "Привет, g4f!"
MESSAGES = [{"role": "user", "content": TEXT}]
MODEL = "gpt-4o-mini"


# -- no network but loopback ------------------------------------------------------------

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_network_guard: dict[str, Any] = {"on": False, "blocked": [], "installed": False}


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if not _network_guard["on"]:
        return
    if event == "socket.connect":
        address = args[1]
        host = address[0] if isinstance(address, tuple) else None  # None: a Unix socket
    elif event == "socket.getaddrinfo":
        host = args[0]
    else:
        return
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if host is None or host in _LOOPBACK:
        return
    _network_guard["blocked"].append(f"{event} {host}")
    raise OSError(f"the g4f tests may not reach {host!r}")


@pytest.fixture
def no_network() -> Iterator[None]:
    if not _network_guard["installed"]:
        sys.addaudithook(_audit)  # audit hooks stay for the process; this one is inert
        _network_guard["installed"] = True
    _network_guard["blocked"] = []
    _network_guard["on"] = True
    try:
        yield
    finally:
        _network_guard["on"] = False
    assert _network_guard["blocked"] == [], "network access outside loopback"


# -- g4f, confined ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def g4f_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[types.ModuleType]:
    config = tmp_path_factory.mktemp("g4f-config")
    with pytest.MonkeyPatch.context() as patch:
        # Read when g4f is first imported (config dir) or on each use (cache dir).
        patch.setenv("G4F_CONFIG_DIR", str(config))
        patch.setenv("G4F_CACHE_DIR", str(config / "cache"))
        g4f = pytest.importorskip("g4f")
        for submodule in ("client", "errors", "Provider", "providers.retry_provider"):
            importlib.import_module(f"g4f.{submodule}")
        cookies = importlib.import_module("g4f.cookies")
        debug = importlib.import_module("g4f.debug")
        # In case g4f was imported before this fixture ran.
        patch.setattr(cookies.CookiesConfig, "cookies_dir", str(config / "cookies"))
        # Else the first request starts a thread that asks PyPI for g4f's latest version.
        patch.setattr(debug, "version_check", False)
        yield g4f


@pytest.fixture
def g4f(g4f_module: types.ModuleType, no_network: None) -> Iterator[types.ModuleType]:
    yield g4f_module
    for name in chatgpt4o_g4f.registered():
        chatgpt4o_g4f.unregister(name)


def g4f_version() -> tuple[int, ...]:
    return tuple(int(part) for part in importlib.metadata.version("g4f").split(".")[:2])


# -- what g4f reads from a provider class (no g4f needed) ---------------------------------


def test_the_attributes_g4f_reads_have_g4f_defaults() -> None:
    assert Chatgpt4o.use_stream_timeout is True
    assert isinstance(Chatgpt4o.live, int)
    assert Chatgpt4o.active_by_default is None
    assert Chatgpt4o.get_dict() == {
        "name": "Chatgpt4o",
        "url": "https://chatgpt4o.one",
        "label": "chatgpt4o.one",
    }
    assert Chatgpt4o.get_parent() == "Chatgpt4o"


def test_get_parameters_lists_the_named_parameters_of_the_call() -> None:
    parameters = Chatgpt4o.get_parameters()
    assert list(parameters) == ["model", "messages", "stream", "proxy", "timeout", "cookies"]
    assert parameters["stream"].default is True


def test_get_parameters_as_json_is_an_example_request() -> None:
    request = Chatgpt4o.get_parameters(as_json=True)
    assert json.loads(json.dumps(request)) == request
    assert request["provider"] == "Chatgpt4o"
    assert request["model"] == Chatgpt4o.default_model
    assert request["messages"][-1] == {"role": "user", "content": ""}
    assert request["stream"] is True
    assert request["proxy"] is None


def test_params_is_the_text_of_get_params() -> None:
    text = Chatgpt4o.params
    assert text == Chatgpt4o.get_params()
    assert text.startswith("Chatgpt4o supports: (")
    assert f"model: str = {Chatgpt4o.default_model!r}," in text
    assert "proxy: str | None = None," in text


def test_parameters_of_providers_of_each_kind() -> None:
    class Whole(AsyncProvider):
        @classmethod
        async def create_async(
            cls, model: str, messages: Messages, temperature: float = 1.0, **kwargs: Any
        ) -> str:
            return ""

    class Pieces(AsyncGeneratorProvider):
        supports_stream = False

        @classmethod
        async def create_async_generator(
            cls, model: str, messages: Messages, stream: bool = True, **kwargs: Any
        ) -> Any:
            yield ""

    assert list(Whole.get_parameters()) == ["model", "messages", "temperature"]
    assert "stream" not in Pieces.get_parameters()  # it does not stream
    assert Whole.get_parameters(as_json=True)["messages"] == [{"role": "user", "content": ""}]


# -- chatgpt4o.g4f without a usable g4f ---------------------------------------------------


def test_importing_chatgpt4o_g4f_does_not_import_g4f() -> None:
    code = "import sys, chatgpt4o.g4f; assert 'g4f' not in sys.modules, 'g4f was imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_register_without_g4f_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chatgpt4o_g4f, "_installed_version", lambda: None)
    monkeypatch.setitem(sys.modules, "g4f", None)  # an import of g4f now fails
    monkeypatch.setitem(sys.modules, "g4f.Provider", None)
    with pytest.raises(ImportError, match=r"needs the g4f package.*pip install 'g4f>=8\.0,<9'"):
        chatgpt4o_g4f.register()


@pytest.mark.parametrize("version", ["7.9.6", "0.6.4.3"])
def test_register_refuses_an_old_g4f(monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setattr(chatgpt4o_g4f, "_installed_version", lambda: version)
    with pytest.raises(RuntimeError, match=rf"g4f {version} is too old.*>= 8\.0"):
        chatgpt4o_g4f.register()


def fake_g4f(monkeypatch: pytest.MonkeyPatch, registry: types.ModuleType) -> None:
    g4f = types.ModuleType("g4f")
    g4f.__version__ = "8.9.0"  # type: ignore[attr-defined]
    monkeypatch.setattr(chatgpt4o_g4f, "_installed_version", lambda: None)
    monkeypatch.setitem(sys.modules, "g4f", g4f)
    monkeypatch.setitem(sys.modules, "g4f.Provider", registry)


def test_register_refuses_a_registry_it_does_not_know(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_g4f(monkeypatch, types.ModuleType("g4f.Provider"))
    with pytest.raises(RuntimeError, match="does not know how this g4f"):
        chatgpt4o_g4f.register()


def test_register_into_a_plain_dict_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = types.ModuleType("g4f.Provider")
    convert: dict[str, Any] = {}
    providers: list[Any] = []
    registry.ProviderUtils = type("ProviderUtils", (), {"convert": convert})  # type: ignore[attr-defined]
    registry.__providers__ = providers  # type: ignore[attr-defined]
    fake_g4f(monkeypatch, registry)

    assert chatgpt4o_g4f.register() is Chatgpt4o
    assert convert == {"AIEngine": AIEngine, "Chatgpt4o": Chatgpt4o}
    assert providers == [AIEngine, Chatgpt4o]
    chatgpt4o_g4f.unregister(Chatgpt4o)
    chatgpt4o_g4f.unregister("AIEngine")
    assert convert == {}
    assert providers == []


@pytest.mark.parametrize("provider", [int, "Chatgpt4o", object()])
def test_register_takes_provider_classes_only(provider: Any) -> None:
    with pytest.raises(TypeError, match="provider class"):
        chatgpt4o_g4f.register(provider)


@pytest.mark.parametrize("name", ["", "two words", "Chatgpt4o:gpt-4o-mini", "tab\there"])
def test_register_refuses_names_g4f_would_split(name: str) -> None:
    with pytest.raises(ValueError, match="name"):
        chatgpt4o_g4f.register(Chatgpt4o, name=name)


def test_unregister_what_was_not_registered() -> None:
    with pytest.raises(KeyError, match="was not registered"):
        chatgpt4o_g4f.unregister("NeverRegistered")


# -- the provider class handed to g4f's async client --------------------------------------


async def test_async_client(
    g4f: types.ModuleType, emulator: SiteEmulator, site: type[Chatgpt4o]
) -> None:
    live = site.live
    client = g4f.client.AsyncClient()
    response = await client.chat.completions.create(model=MODEL, messages=MESSAGES, provider=site)
    assert response.choices[0].message.content == expected_reply(emulator, TEXT)
    assert response.choices[0].finish_reason == "stop"
    assert response.provider == site.__name__
    assert response.model == MODEL
    assert site.live == live + 1
    assert emulator.posts == 1


async def test_async_client_streams(
    g4f: types.ModuleType, emulator: SiteEmulator, site: type[Chatgpt4o]
) -> None:
    emulator.stream = True
    client = g4f.client.AsyncClient(provider=site)  # the client's default provider
    chunks = [
        chunk
        async for chunk in client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_timeout=30
        )
    ]
    pieces = [chunk.choices[0].delta.content for chunk in chunks[:-1]]
    assert len(pieces) > 1
    assert "".join(pieces) == expected_reply(emulator, TEXT)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_async_client_raises_our_errors(
    g4f: types.ModuleType, emulator: SiteEmulator, site: type[Chatgpt4o]
) -> None:
    emulator.fail_next(Fault.token_limit())
    live = site.live
    client = g4f.client.AsyncClient()
    with pytest.raises(ProviderError):
        await client.chat.completions.create(model=MODEL, messages=MESSAGES, provider=site)
    assert site.live == live - 1  # g4f's health score


async def test_g4f_retry_list_of_our_providers(
    g4f: types.ModuleType, emulator: SiteEmulator, site: type[Chatgpt4o]
) -> None:
    IterListProvider = g4f.providers.retry_provider.IterListProvider

    client = g4f.client.AsyncClient()
    response = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, provider=IterListProvider([site], shuffle=False)
    )
    assert response.choices[0].message.content == expected_reply(emulator, TEXT)


async def test_chat_completion_create_async(
    g4f: types.ModuleType, emulator: SiteEmulator, site: type[Chatgpt4o]
) -> None:
    reply = await g4f.ChatCompletion.create_async(
        MODEL, MESSAGES, provider=site, ignore_working=True
    )
    assert reply == expected_reply(emulator, TEXT)


async def test_client_lists_the_models(g4f: types.ModuleType, site: type[Chatgpt4o]) -> None:
    client = g4f.client.AsyncClient(provider=site)
    assert client.models.get_all() == site.get_models()


# -- the blocking APIs: g4f.client.Client and g4f.ChatCompletion --------------------------


def test_client(g4f: types.ModuleType, threaded_site: ThreadedSite) -> None:
    site, emulator = threaded_site
    response = g4f.client.Client().chat.completions.create(
        model=MODEL, messages=MESSAGES, provider=site
    )
    assert response.choices[0].message.content == expected_reply(emulator, TEXT)
    # (g4f 8.8's blocking client drops the provider's name from the response)


def test_client_streams(g4f: types.ModuleType, threaded_site: ThreadedSite) -> None:
    site, emulator = threaded_site
    emulator.stream = True
    chunks = list(
        g4f.client.Client(provider=site).chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True
        )
    )
    pieces = [chunk.choices[0].delta.content for chunk in chunks[:-1]]
    assert len(pieces) > 1
    assert "".join(pieces) == expected_reply(emulator, TEXT)


@pytest.mark.parametrize("stream", [False, True])
def test_chat_completion_create(
    g4f: types.ModuleType, threaded_site: ThreadedSite, stream: bool
) -> None:
    site, emulator = threaded_site
    emulator.stream = stream
    result = g4f.ChatCompletion.create(
        MODEL, MESSAGES, provider=site, stream=stream, ignore_working=True
    )
    if stream:
        pieces = list(result)
        assert len(pieces) > 1
        result = "".join(pieces)
    assert result == expected_reply(emulator, TEXT)


def test_chat_completion_honours_the_working_flag(
    g4f: types.ModuleType, threaded_site: ThreadedSite
) -> None:
    site, emulator = threaded_site

    class Down(site):  # type: ignore[valid-type,misc]
        working = False  # as Chatgpt4o itself says of the public site

    with pytest.raises(g4f.errors.ProviderNotWorkingError):
        g4f.ChatCompletion.create(MODEL, MESSAGES, provider=Down)

    assert site.working is True  # for_site() vouches for the site it was given
    reply = g4f.ChatCompletion.create(MODEL, MESSAGES, provider=site)
    assert reply == expected_reply(emulator, TEXT)


# -- chatgpt4o.g4f.register(): providers by name ------------------------------------------


def test_register_makes_chatgpt4o_known_by_name(g4f: types.ModuleType) -> None:
    assert "Chatgpt4o" not in g4f.Provider.ProviderUtils.convert
    assert chatgpt4o_g4f.register() is Chatgpt4o
    assert chatgpt4o_g4f.register() is Chatgpt4o  # again: nothing changes
    assert "Chatgpt4o" in g4f.Provider.ProviderUtils.convert
    assert g4f.Provider.ProviderUtils.convert["Chatgpt4o"] is Chatgpt4o
    assert g4f.Provider.Chatgpt4o is Chatgpt4o
    # listed too (not read through `__providers__`: in g4f 8.8 that goes online)
    assert "Chatgpt4o" in list(g4f.Provider.ProviderUtils.convert.keys())
    assert g4f.Provider.ProviderUtils.convert["AIEngine"] is AIEngine  # registered too
    assert chatgpt4o_g4f.registered() == {"Chatgpt4o": Chatgpt4o, "AIEngine": AIEngine}

    chatgpt4o_g4f.unregister("Chatgpt4o")
    chatgpt4o_g4f.unregister(AIEngine)
    assert "Chatgpt4o" not in g4f.Provider.ProviderUtils.convert
    assert chatgpt4o_g4f.registered() == {}


async def test_provider_by_name_in_the_async_client(
    g4f: types.ModuleType, emulator: SiteEmulator, site: type[Chatgpt4o]
) -> None:
    chatgpt4o_g4f.register(site, name="EmulatedChat")
    client = g4f.client.AsyncClient()
    response = await client.chat.completions.create(
        model=MODEL, messages=MESSAGES, provider="EmulatedChat"
    )
    assert response.choices[0].message.content == expected_reply(emulator, TEXT)
    assert response.provider == site.__name__


def test_provider_by_name_in_the_blocking_apis(
    g4f: types.ModuleType, threaded_site: ThreadedSite
) -> None:
    site, emulator = threaded_site
    assert chatgpt4o_g4f.register(site) is site
    client = g4f.client.Client()
    response = client.chat.completions.create(
        model=MODEL, messages=MESSAGES, provider=site.__name__
    )
    assert response.choices[0].message.content == expected_reply(emulator, TEXT)
    reply = g4f.ChatCompletion.create(MODEL, MESSAGES, provider=site.__name__, ignore_working=True)
    assert reply == expected_reply(emulator, TEXT)


def test_provider_and_model_in_one_name(g4f: types.ModuleType, threaded_site: ThreadedSite) -> None:
    site, emulator = threaded_site
    if g4f_version() < (8, 6):
        pytest.skip("g4f reads 'provider:model' names since 8.6")
    chatgpt4o_g4f.register(site)
    reply = g4f.ChatCompletion.create(f"{site.__name__}:{MODEL}", MESSAGES, ignore_working=True)
    assert reply == expected_reply(emulator, TEXT)


def test_register_refuses_a_name_g4f_uses(g4f: types.ModuleType, site: type[Chatgpt4o]) -> None:
    with pytest.raises(ValueError, match="g4f already has a provider named 'Yqcloud'"):
        chatgpt4o_g4f.register(site, name="Yqcloud")
    assert chatgpt4o_g4f.registered() == {}


def test_register_refuses_a_second_class_for_a_name(
    g4f: types.ModuleType, site: type[Chatgpt4o]
) -> None:
    class Other(Chatgpt4o):
        url = site.url

    chatgpt4o_g4f.register(site, name="EmulatedChat")
    with pytest.raises(ValueError, match=r"unregister\('EmulatedChat'\) first"):
        chatgpt4o_g4f.register(Other, name="EmulatedChat")
    chatgpt4o_g4f.unregister(site)
    assert chatgpt4o_g4f.register(Other, name="EmulatedChat") is Other


def test_unregister_leaves_g4f_as_it_was(g4f: types.ModuleType, site: type[Chatgpt4o]) -> None:
    convert = g4f.Provider.ProviderUtils.convert
    before = list(convert.keys())
    chatgpt4o_g4f.register(site, name="EmulatedChat")
    chatgpt4o_g4f.unregister("EmulatedChat")
    assert list(convert.keys()) == before
    with pytest.raises(g4f.errors.ProviderNotFoundError):
        g4f.ChatCompletion.create(MODEL, MESSAGES, provider="EmulatedChat")


def test_the_network_guard_blocks(no_network: None) -> None:
    with pytest.raises(OSError, match="may not reach"):
        socket.getaddrinfo("example.com", 443)
    _network_guard["blocked"].clear()
