"""`AIEngine` end to end against the AI Engine emulator (docs/protocol.md §9)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

import chatgpt4o
from chatgpt4o import (
    AIEngine,
    PluginUnavailableError,
    RateLimitError,
    ResponseError,
    ServiceError,
)
from chatgpt4o.testing._aiengine import AIEngineEmulator
from chatgpt4o.testing._aiengine_faults import EngineFault
from chatgpt4o.testing._aiengine_rules import Chatbot
from chatgpt4o.testing._aiengine_rules import default_reply as engine_reply

from .conftest import USER_HELLO

TURNS = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Again"},
]


@pytest.fixture
async def engine_site() -> AsyncIterator[AIEngineEmulator]:
    async with AIEngineEmulator() as site:
        yield site


def bound(site: AIEngineEmulator, **settings: object) -> type[AIEngine]:
    provider = AIEngine.for_site(site.url + "/", **settings)
    provider.reset_cache()
    return provider


async def test_a_call_starts_a_guest_session_then_submits(engine_site: AIEngineEmulator) -> None:
    provider = bound(engine_site)
    # the browser sends the chatbot's greeting first: the model sees it as an earlier turn
    greeted = engine_reply("Привет!") + " (the model saw 1 earlier message)"
    assert await provider.create_async("", USER_HELLO) == greeted
    assert (engine_site.page_loads, engine_site.sessions_started, engine_site.posts) == (1, 1, 1)
    assert "mwai_session_id" in provider._site.cookies
    # cached: no page load, no new session per call
    await provider.create_async("", USER_HELLO)
    assert (engine_site.page_loads, engine_site.sessions_started, engine_site.posts) == (1, 1, 2)


async def test_streamed_pieces_and_the_end_reply(engine_site: AIEngineEmulator) -> None:
    provider = bound(engine_site)
    pieces = [piece async for piece in provider.create_async_generator("", USER_HELLO)]
    assert len(pieces) > 1
    assert "".join(pieces) == engine_reply("Привет!") + " (the model saw 1 earlier message)"
    body = json.loads(engine_site.requests[-1].raw_body)
    assert body["stream"] is True


async def test_the_model_gets_the_conversation_as_turns(engine_site: AIEngineEmulator) -> None:
    provider = bound(engine_site)
    reply = await provider.create_async("", TURNS)
    assert "earlier message" in reply
    body = json.loads(engine_site.requests[-1].raw_body)
    assert body["newMessage"] == "Again"
    assert [m["role"] for m in body["messages"]] == ["assistant", "user", "assistant"]
    seen = engine_site.model_calls[-1]
    contents = [message["content"] for message in seen]
    assert any("Be brief." in content for content in contents)
    assert contents[-1] == "Again"


async def test_the_length_limit_is_checked_before_sending(engine_site: AIEngineEmulator) -> None:
    provider = bound(engine_site)
    await provider.create_async("", USER_HELLO)
    posts = engine_site.posts
    with pytest.raises(ValueError, match="at most 512"):
        await provider.create_async("", [{"role": "user", "content": "я" * 513}])
    assert engine_site.posts == posts
    assert await provider.create_async("", [{"role": "user", "content": "я" * 512}])


async def test_a_stale_nonce_gets_a_new_session_once(engine_site: AIEngineEmulator) -> None:
    provider = bound(engine_site)
    await provider.create_async("", USER_HELLO)
    engine_site.rotate_nonce()
    engine_site.rotate_nonce()
    assert await provider.create_async("", USER_HELLO)
    assert engine_site.sessions_started == 2
    assert engine_site.page_loads == 1  # a new session, not a new page load
    session_request = [r for r in engine_site.requests if r.path.endswith("start_session")][-1]
    assert "x-wp-nonce" not in {name.lower() for name in session_request.headers}


async def test_new_token_is_adopted(engine_site: AIEngineEmulator) -> None:
    provider = bound(engine_site)
    await provider.create_async("", USER_HELLO)
    first = provider._site.credentials.nonce
    engine_site.advance(13 * 3600)  # the nonce is in its second half of life now
    await provider.create_async("", USER_HELLO)
    assert provider._site.credentials.nonce != first
    assert provider._site.credentials.nonce == engine_site.current_nonce()


async def test_over_limit_is_a_rate_limit_that_is_not_hammered(
    engine_site: AIEngineEmulator, sleeps: list[float]
) -> None:
    engine_site.guest_limit = 1
    provider = bound(engine_site)
    await provider.create_async("", USER_HELLO)
    posts = engine_site.posts
    with pytest.raises(RateLimitError) as caught:
        await provider.create_async("", USER_HELLO)
    assert caught.value.status_code == 429
    assert "usage limit" in str(caught.value).lower()
    assert engine_site.posts == posts + 1
    assert sleeps == []
    with pytest.raises(ServiceError) as streamed:
        await anext(aiter(provider.create_async_generator("", USER_HELLO)))
    assert streamed.value.kind == "token_limit"


async def test_no_route_means_the_chatbot_module_is_off(
    engine_site: AIEngineEmulator,
) -> None:
    provider = bound(engine_site)
    await provider.create_async("", USER_HELLO)
    engine_site.fail_next(EngineFault.no_route())
    with pytest.raises(PluginUnavailableError, match="Chatbots module is off"):
        await provider.create_async("", USER_HELLO)


async def test_a_page_with_the_module_off_has_no_chatbot() -> None:
    async with AIEngineEmulator(chatbots_module=False) as site:
        with pytest.raises(chatgpt4o.ScrapeError, match="No AI Engine chatbot"):
            await bound(site).create_async("", USER_HELLO)


async def test_a_waf_on_start_session_and_cloudflare_are_typed(
    engine_site: AIEngineEmulator,
) -> None:
    engine_site.fail_next(EngineFault.cloudflare(403, target="session"))
    with pytest.raises(chatgpt4o.CloudflareError):
        await bound(engine_site).create_async("", USER_HELLO)


async def test_plain_permalinks() -> None:
    async with AIEngineEmulator(plain_permalinks=True) as site:
        provider = bound(site)
        assert await provider.create_async("", USER_HELLO)
        assert all("rest_route" in r.query or r.path == "/" for r in site.requests)


async def test_a_provider_error_is_a_service_error(engine_site: AIEngineEmulator) -> None:
    provider = bound(engine_site)
    engine_site.fail_next(EngineFault.provider_error("Model down", after_chunks=2))
    with pytest.raises(ServiceError):
        await provider.create_async("", USER_HELLO)
    engine_site.fail_next(EngineFault.stream_cut(after_chunks=2))
    with pytest.raises(ResponseError, match="incomplete"):
        [piece async for piece in provider.create_async_generator("", USER_HELLO)]


async def test_bot_id_picks_a_chatbot() -> None:
    bots = (Chatbot(), Chatbot(bot_id="chatbot-help", instructions="You help."))
    async with AIEngineEmulator(chatbots=bots) as site:
        provider = bound(site, bot_id="chatbot-help")
        await provider.create_async("", USER_HELLO)
        assert json.loads(site.requests[-1].raw_body)["botId"] == "chatbot-help"


async def test_aiengine_needs_a_url_before_any_io() -> None:
    with pytest.raises(ValueError, match="AIEngine needs the address"):
        await AIEngine.create_async("", USER_HELLO)


async def test_discover_finds_ai_engine_and_reuses_the_page(
    engine_site: AIEngineEmulator,
) -> None:
    provider = await chatgpt4o.discover(engine_site.url + "/")
    assert issubclass(provider, AIEngine)
    assert await provider.create_async("", USER_HELLO)
    assert engine_site.page_loads == 1


@pytest.mark.chatgpt4o_emulator(plugin="aiengine")
def test_the_pytest_fixtures_play_ai_engine(
    chatgpt4o_provider: type[chatgpt4o.Chatgpt4o], chatgpt4o_emulator: AIEngineEmulator
) -> None:
    assert issubclass(chatgpt4o_provider, AIEngine)
    reply = "".join(chatgpt4o_provider.create_completion("", USER_HELLO))
    assert reply.startswith(engine_reply("Привет!"))
    assert chatgpt4o_emulator.posts == 1


async def test_g4f_async_client_with_ai_engine(engine_site: AIEngineEmulator) -> None:
    import g4f.debug

    g4f.debug.version_check = False
    from g4f.client import AsyncClient

    provider = bound(engine_site)
    response = await AsyncClient().chat.completions.create(
        model="gpt-4o-mini", messages=USER_HELLO, provider=provider
    )
    assert response.choices[0].message.content.startswith(engine_reply("Привет!"))


def test_the_command_line_talks_to_an_ai_engine_emulator() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "chatgpt4o", "--local", "--no-stream",
         "--emulator=--plugin aiengine --plugin-version 2.9.2", "Hallo"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(engine_reply("Hallo"))


async def test_no_nonce_or_session_in_logs_reprs_or_errors(
    engine_site: AIEngineEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="chatgpt4o")
    provider = bound(engine_site)
    await provider.create_async("", USER_HELLO)
    credentials = provider._site.credentials
    assert credentials.nonce not in caplog.text
    assert credentials.nonce not in repr(credentials)
    assert credentials.session not in repr(credentials)
    engine_site.fail_next(EngineFault.stale_nonce(), times=3)
    with pytest.raises(chatgpt4o.ProviderError) as caught:
        await provider.create_async("", USER_HELLO)
    assert engine_site.current_nonce() not in str(caught.value)
