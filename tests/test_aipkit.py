"""`Chatgpt4o` on AI Power 2.3+ (AIPKit), end to end against its emulator
(docs/protocol.md §8), and the choice between the two AI Power protocols."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import chatgpt4o
from chatgpt4o import (
    Chatgpt4o,
    ResponseError,
    ServiceError,
)
from chatgpt4o.testing import SiteEmulator
from chatgpt4o.testing._aiengine import AIEngineEmulator
from chatgpt4o.testing._aipkit import AipkitEmulator
from chatgpt4o.testing._aipkit import default_reply as aipkit_reply
from chatgpt4o.testing._aipkit_faults import AipkitFault

from .conftest import USER_HELLO


@pytest.fixture
async def aipkit_site() -> AsyncIterator[AipkitEmulator]:
    async with AipkitEmulator() as site:
        yield site


def bound(site: AipkitEmulator, **settings: object) -> type[Chatgpt4o]:
    provider = Chatgpt4o.for_site(site.url, **settings)
    provider.reset_cache()
    return provider


async def test_two_steps_a_reply_and_no_page_load_per_call(aipkit_site: AipkitEmulator) -> None:
    provider = bound(aipkit_site)
    assert await provider.create_async("", USER_HELLO) == aipkit_reply("Привет!")
    pieces = [piece async for piece in provider.create_async_generator("", USER_HELLO)]
    assert len(pieces) > 1
    assert "".join(pieces) == aipkit_reply("Привет!")
    assert aipkit_site.page_loads == 1
    assert (aipkit_site.posts, aipkit_site.streams) == (2, 2)


async def test_a_continued_conversation_uses_the_sites_history(
    aipkit_site: AipkitEmulator,
) -> None:
    provider = bound(aipkit_site)
    first = [{"role": "user", "content": "My name is Ann."}]
    reply = await provider.create_async("", first)
    second = [*first, {"role": "assistant", "content": reply},
              {"role": "user", "content": "Who am I?"}]
    reply2 = await provider.create_async("", second)
    assert "earlier message" in reply2  # the site gave the model the stored turns
    cache_posts = [r for r in aipkit_site.requests if r.form.get("action") ==
                   "aipkit_cache_sse_message"]
    assert cache_posts[-1].form["message"] == "Who am I?"  # only the new message
    streams = [r for r in aipkit_site.requests if r.query.get("action") ==
               "aipkit_frontend_chat_stream"]
    assert streams[0].query["conversation_uuid"] == streams[1].query["conversation_uuid"]
    assert len(aipkit_site.conversations) == 1


async def test_a_conversation_this_process_never_had_is_folded(
    aipkit_site: AipkitEmulator,
) -> None:
    provider = bound(aipkit_site)
    turns = [{"role": "system", "content": "Be brief."},
             {"role": "user", "content": "Hi"},
             {"role": "assistant", "content": "Hello!"},
             {"role": "user", "content": "Again"}]
    await provider.create_async("", turns)
    message = [r for r in aipkit_site.requests if r.form.get("action") ==
               "aipkit_cache_sse_message"][-1].form["message"]
    assert "Be brief." in message
    assert "Hello!" in message
    assert message.rstrip().endswith("Assistant:")


async def test_separate_conversations_never_share_server_state(
    aipkit_site: AipkitEmulator,
) -> None:
    provider = bound(aipkit_site)
    await provider.create_async("", [{"role": "user", "content": "one"}])
    await provider.create_async("", [{"role": "user", "content": "two"}])
    assert len(aipkit_site.conversations) == 2


async def test_a_stale_nonce_is_refreshed_without_the_page(aipkit_site: AipkitEmulator) -> None:
    provider = bound(aipkit_site)
    await provider.create_async("", USER_HELLO)
    aipkit_site.rotate_nonce()
    aipkit_site.rotate_nonce()
    assert await provider.create_async("", USER_HELLO) == aipkit_reply("Привет!")
    assert aipkit_site.page_loads == 1
    refreshes = [r for r in aipkit_site.requests if r.form.get("action") ==
                 "aipkit_get_frontend_chat_nonce"]
    assert len(refreshes) == 1


async def test_before_the_nonce_endpoint_the_page_is_read_again() -> None:
    async with AipkitEmulator(plugin_version="2.3.20") as site:
        provider = bound(site)
        await provider.create_async("", USER_HELLO)
        site.rotate_nonce()
        site.rotate_nonce()
        assert await provider.create_async("", USER_HELLO)
        assert site.page_loads == 2


async def test_no_origin_is_sent(aipkit_site: AipkitEmulator) -> None:
    await bound(aipkit_site).create_async("", USER_HELLO)
    for request in aipkit_site.requests:
        assert "origin" not in {name.lower() for name in request.headers}


async def test_the_json_action_for_a_bot_that_does_not_stream() -> None:
    from dataclasses import replace

    async with AipkitEmulator(plugin_version="2.4.0") as site:
        provider = bound(site)
        await provider.create_async("", USER_HELLO)
        # a bot with streaming off says "streamEnabled": false (2.3-2.4.0)
        provider._site.credentials = replace(provider._site.credentials, streams=False)
        streams = site.streams
        reply = await provider.create_async("", [{"role": "user", "content": "plain"}])
        assert reply.startswith(aipkit_reply("plain"))
        assert site.streams == streams  # no stream: the JSON action answered
        assert site.requests[-1].form["action"] == "aipkit_frontend_chat_message"


async def test_quota_is_a_token_limit(aipkit_site: AipkitEmulator) -> None:
    aipkit_site.fail_next(AipkitFault.quota_reached(target="stream"))
    with pytest.raises(ServiceError) as caught:
        await bound(aipkit_site).create_async("", USER_HELLO)
    assert caught.value.kind == "token_limit"


async def test_a_model_error_and_a_cut_stream(aipkit_site: AipkitEmulator) -> None:
    provider = bound(aipkit_site)
    aipkit_site.fail_next(AipkitFault.model_error("API Error: overloaded", after_chunks=2))
    with pytest.raises(ServiceError, match="overloaded"):
        await provider.create_async("", USER_HELLO)
    aipkit_site.fail_next(AipkitFault.stream_cut(after_chunks=2, clean=True))
    with pytest.raises(ResponseError, match="incomplete"):
        await provider.create_async("", USER_HELLO)


async def test_bot_id_picks_a_bot() -> None:
    async with AipkitEmulator(bots=[4, 9]) as site:
        provider = bound(site, bot_id=9)
        await provider.create_async("", USER_HELLO)
        stream = [r for r in site.requests if r.query.get("action") ==
                  "aipkit_frontend_chat_stream"][-1]
        assert stream.query["bot_id"] == "9"


async def test_a_site_that_upgrades_while_the_process_runs() -> None:
    async with SiteEmulator() as legacy:
        provider = Chatgpt4o.for_site(legacy.url)
        provider.reset_cache()
        assert await provider.create_async("", USER_HELLO)
        port = int(legacy.url.rsplit(":", 1)[1])
    async with AipkitEmulator(port=port) as upgraded:
        # the same address now runs 2.4.71: the legacy action would answer 400 `0`
        assert await provider.create_async("", USER_HELLO) == aipkit_reply("Привет!")
        assert upgraded.page_loads == 1


async def test_discover_tells_the_three_plugins_apart(emulator: SiteEmulator) -> None:
    async with AipkitEmulator() as aipkit, AIEngineEmulator() as engine:
        legacy_class = await chatgpt4o.discover(emulator.url)
        aipkit_class = await chatgpt4o.discover(aipkit.url)
        engine_class = await chatgpt4o.discover(engine.url + "/")
        assert issubclass(legacy_class, Chatgpt4o)
        assert issubclass(aipkit_class, Chatgpt4o)
        assert issubclass(engine_class, chatgpt4o.AIEngine)
        assert type(legacy_class._site.credentials).__name__ == "PageInfo"
        assert type(aipkit_class._site.credentials).__name__ == "AipkitInfo"
        for provider in (legacy_class, aipkit_class, engine_class):
            assert await provider.create_async("", USER_HELLO)
        assert (emulator.page_loads, aipkit.page_loads, engine.page_loads) == (1, 1, 1)


async def test_discover_names_the_plugins_it_looked_for(emulator: SiteEmulator) -> None:
    from chatgpt4o.testing import Fault

    emulator.fail_next(Fault.page("<html><body><p>A blog</p></body></html>"))
    with pytest.raises(chatgpt4o.ScrapeError, match=r"AI Power.*AI Engine"):
        await chatgpt4o.discover(emulator.url)


@pytest.mark.chatgpt4o_emulator(plugin="aipkit")
def test_the_pytest_fixtures_play_aipkit(
    chatgpt4o_provider: type[Chatgpt4o], chatgpt4o_emulator: AipkitEmulator
) -> None:
    reply = "".join(chatgpt4o_provider.create_completion("", USER_HELLO))
    assert reply == aipkit_reply("Привет!")


async def test_json_action_refusals_are_service_errors_not_retried(
    sleeps: list[float],
) -> None:
    from dataclasses import replace

    async with AipkitEmulator(plugin_version="2.4.0") as site:
        provider = bound(site)
        await provider.create_async("", USER_HELLO)
        provider._site.credentials = replace(provider._site.credentials, streams=False)
        site.fail_next(AipkitFault.model_error("Rate limit reached", code=429))
        posts = site.posts
        with pytest.raises(ServiceError, match="Rate limit reached"):
            await provider.create_async("", USER_HELLO)
        assert site.posts == posts + 1  # the plugin's refusal is not retried
        assert sleeps == []


def test_the_plugin_version_comes_from_its_script_not_a_stylesheet() -> None:
    from chatgpt4o.protocols.aipkit import AipkitScraper

    config = (
        "{&quot;botId&quot;:4,&quot;ajaxUrl&quot;:&quot;https:\\/\\/h\\/wp-admin\\/"
        "admin-ajax.php&quot;,&quot;nonce&quot;:&quot;3f2a9c1b7e&quot;}"
    )
    page = (
        "<link href='https://h/wp-content/plugins/gpt3-ai-content-generator/dist/css/"
        "public-main.bundle.css?ver=1787344627'>"
        f"<div class='aipkit_chat_container' data-config='{config}'></div>"
        "<script src='https://h/wp-content/plugins/gpt3-ai-content-generator/dist/js/"
        "public-main.bundle.js?ver=2.4.71'></script>"
    ).encode()
    scraper = AipkitScraper()
    scraper.feed(page)
    info = scraper.result(page_url="https://h/chat/")
    assert info is not None
    assert info.version == "2.4.71"


async def test_no_nonce_or_session_in_logs_reprs_or_errors(
    aipkit_site: AipkitEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG, logger="chatgpt4o")
    provider = bound(aipkit_site)
    await provider.create_async("", USER_HELLO)
    nonce = aipkit_site.current_nonce()
    assert nonce not in caplog.text  # the stream URL carries it: redacted in the log
    assert nonce not in repr(provider._site.credentials)
    aipkit_site.fail_next(AipkitFault.stale_nonce(), times=3)
    with pytest.raises(chatgpt4o.ProviderError) as caught:
        await provider.create_async("", USER_HELLO)
    assert nonce not in str(caught.value)
