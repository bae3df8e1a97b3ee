"""`chatgpt4o.testing.chat_page`: a page with a chat, for tests without a server.

The page must be what the client reads on the emulated site: served in place of each
emulator's own page (respx, httpx backend), the rest of the call still goes to the
emulator, which checks the nonce. Through `MockTransport` (curl_cffi's backend by default)
the whole site is a function. A nonce that is not 10 hex digits is reported as such.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import respx

from chatgpt4o import AIEngine, Chatgpt4o, ScrapeError, discover
from chatgpt4o.testing import MockTransport, Request, Response, chat_page
from chatgpt4o.testing._aiengine import AIEngineEmulator
from chatgpt4o.testing._aipkit import AipkitEmulator
from chatgpt4o.testing._chat_page import Plugin

from .conftest import USER_HELLO

HI = [{"role": "user", "content": "hi"}]


def _emulator(plugin: Plugin, **settings: Any) -> Any:
    from chatgpt4o.testing import SiteEmulator

    kinds: dict[str, Any] = {
        "wpaicg": SiteEmulator,
        "aipkit": AipkitEmulator,
        "aiengine": AIEngineEmulator,
    }
    return kinds[plugin](**settings)


@pytest.mark.parametrize(
    ("plugin", "stream"),
    [("wpaicg", False), ("wpaicg", True), ("aipkit", True), ("aiengine", False),
     ("aiengine", True)],
)
async def test_the_page_stands_in_for_the_emulators_own(plugin: Plugin, stream: bool) -> None:
    settings = {"stream": stream} if plugin != "aipkit" else {}
    async with _emulator(plugin, **settings) as site:
        nonce = None if plugin == "aiengine" else site.current_nonce()
        page = chat_page(plugin, url=site.url, nonce=nonce, stream=stream)
        provider = (AIEngine if plugin == "aiengine" else Chatgpt4o).for_site(
            site.url, backend="httpx"
        )
        provider.reset_cache()
        with respx.mock(assert_all_called=True) as router:
            router.get(site.url + "/").respond(html=page)
            router.route().pass_through()
            pieces = [p async for p in provider.create_async_generator("", USER_HELLO)]
        assert site.page_loads == 0
        reply = site.reply("Привет!") if callable(site.reply) else site.reply
        assert "".join(pieces).startswith(reply)  # AI Engine adds what the model saw
        if plugin == "wpaicg":  # the legacy page says whether the chat streams
            assert (len(pieces) > 1) == stream, pieces


@pytest.mark.parametrize("plugin", ["wpaicg", "aipkit", "aiengine"])
async def test_discover_reads_each_plugins_page(plugin: Plugin) -> None:
    def fake_site(request: Request) -> Response:
        return Response(200, headers={"content-type": "text/html"}, content=chat_page(plugin))

    found = await discover("https://wp.example/", transport=MockTransport(fake_site))
    assert issubclass(found, AIEngine if plugin == "aiengine" else Chatgpt4o)


async def test_a_whole_site_in_a_function_on_curl_cffis_default_backend() -> None:
    answered: list[dict[str, str]] = []

    def fake_site(request: Request) -> Response:
        if request.method == "GET":
            page = chat_page(nonce="0123456789", post_id=77)
            return Response(200, headers={"content-type": "text/html"}, content=page)
        form = dict(re.findall(r"([^&=]+)=([^&]*)", request.content.decode()))
        answered.append(form)
        return Response(200, content='{"status":"success","data":"Hi from the page"}')

    mocked = Chatgpt4o.for_site("https://wp.example", transport=MockTransport(fake_site))
    mocked.reset_cache()
    assert await mocked.create_async("", HI) == "Hi from the page"
    assert answered[0]["_wpnonce"] == "0123456789"
    assert answered[0]["post_id"] == "77"


@pytest.mark.parametrize("plugin", ["wpaicg", "aipkit", "aiengine"])
@pytest.mark.parametrize("nonce", ["abc", "5e2498d71a00", "5e2498d71g"])
async def test_a_nonce_that_is_not_ten_hex_digits_is_reported_as_such(
    plugin: Plugin, nonce: str
) -> None:
    with respx.mock(assert_all_called=True) as router:
        router.get("https://wp.example/").respond(html=chat_page(plugin, nonce=nonce))
        provider = (AIEngine if plugin == "aiengine" else Chatgpt4o).for_site(
            "https://wp.example", backend="httpx"
        )
        provider.reset_cache()
        with pytest.raises(ScrapeError, match="not 10 hex digits") as caught:
            await provider.create_async("", HI)
    assert f"it has {len(nonce)} characters" in str(caught.value)
    assert "No nonce found" not in str(caught.value)


def test_the_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="plugin must be"):
        chat_page("wordpress")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="always carries a nonce"):
        chat_page("aipkit", nonce=None)
    assert "restNonce&quot;:null" in chat_page("aiengine", nonce=None)
    assert 'data-openai_stream_nav="1"' in chat_page(stream=True)
    old_aipkit = chat_page("aipkit", stream=False, plugin_version="2.4.0")
    assert "streamEnabled&quot;:false" in old_aipkit
    with pytest.raises(ValueError, match=r"only up to 2\.4\.0"):
        chat_page("aipkit", stream=False)
    assert 'data-bot-id="3"' in chat_page(bot_id=3)
    # a release's markup: data-ai-name is gone after 1.8.95
    assert "data-ai-name" in chat_page(plugin_version="1.8.84")
    assert "data-ai-name" not in chat_page(plugin_version="2.2")
