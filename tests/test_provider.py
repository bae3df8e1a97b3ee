"""Chatgpt4o against the emulated site, through the real curl_cffi stack on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from chatgpt4o import (
    Chatgpt4o,
    CloudflareError,
    HTTPStatusError,
    ModelNotSupportedError,
    NonceError,
    PluginUnavailableError,
    ProviderConnectionError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseError,
    ScrapeError,
    ServiceError,
)
from chatgpt4o.testing import Fault, SiteEmulator

from .conftest import USER_HELLO, Site, expected_reply

# -- the documented call----------------------------------------------------------------


async def test_the_documented_call(site: Site, emulator: SiteEmulator) -> None:
    response = await site.create_async(
        model="gpt-4o-mini-2024-07-18", messages=USER_HELLO, proxy=None, timeout=120, cookies=None
    )
    assert response == expected_reply(emulator)
    assert "Привет!" in response
    assert (emulator.page_loads, emulator.posts) == (1, 1)


async def test_the_wire_form_and_headers(site: Site, emulator: SiteEmulator) -> None:
    await site.create_async("gpt-4o-mini", USER_HELLO)
    page, post = emulator.requests
    assert (page.method, page.path) == ("GET", "/")
    assert (post.method, post.path) == ("POST", "/wp-admin/admin-ajax.php")
    form = dict(post.form)
    client_id = form.pop("wpaicg_chat_client_id")
    assert len(client_id) == 10
    assert client_id.isalnum()
    assert form == {
        "_wpnonce": emulator.current_nonce(),
        "post_id": "11",
        "url": emulator.url,
        "action": "wpaicg_chat_shortcode_message",
        "message": "Привет!",
        "bot_id": "0",
        "chatbot_identity": "shortcode",
        "wpaicg_chat_history": "[]",
    }
    headers = {name.lower(): value for name, value in post.headers.items()}
    assert "x-requested-with" not in headers  # the plugin's fetch sends none
    assert headers["origin"] == emulator.url
    assert headers["referer"] == emulator.url + "/"
    assert "Mozilla/5.0" in headers["user-agent"]
    assert headers["accept-language"]
    page_headers = {name.lower(): value for name, value in page.headers.items()}
    assert "text/html" in page_headers["accept"]
    assert "Mozilla/5.0" in page_headers["user-agent"]


async def test_conversation_goes_in_the_plugins_history_field(
    site: Site, emulator: SiteEmulator
) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Again"},
    ]
    await site.create_async("", messages)
    form = emulator.requests[-1].form
    assert form["message"] == "Again"
    assert json.loads(form["wpaicg_chat_history"]) == [
        {"id": 1, "text": "Human: Be brief. Hi"},
        {"id": 2, "text": "AI: Hello!"},
    ]


async def test_infinite_timeout_means_none(site: Site, emulator: SiteEmulator) -> None:
    assert await site.create_async("", USER_HELLO, timeout=float("inf")) == expected_reply(emulator)


# -- scraping --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    ["standard", "minified", "single_quoted", "params_only", "post_id_bug", "two_widgets",
     "reordered"],
)
async def test_page_variants(site: Site, emulator: SiteEmulator, variant: str) -> None:
    emulator.page_variant = variant
    reply = await site.create_async("", USER_HELLO)
    assert reply == expected_reply(emulator)
    post = emulator.requests[-1]
    assert post.form["_wpnonce"] == emulator.current_nonce()
    # a page with only wpaicgParams names no post: it is sent empty, never guessed
    assert post.form["post_id"] == ("" if variant == "params_only" else "11")


async def test_site_widget_variant_uses_its_action(site: Site, emulator: SiteEmulator) -> None:
    emulator.widget = "widget"
    await site.create_async("", USER_HELLO)
    assert emulator.requests[-1].form["action"] == "wpaicg_chatbox_message"


async def test_custom_bot_id_is_sent(site: Site, emulator: SiteEmulator) -> None:
    emulator.bot_id = 5
    await site.create_async("", USER_HELLO)
    assert emulator.requests[-1].form["bot_id"] == "5"


@pytest.mark.parametrize(
    ("variant", "message"), [("no_nonce", "No nonce found")]
)
async def test_page_without_widget_data(
    site: Site, emulator: SiteEmulator, variant: str, message: str
) -> None:
    emulator.page_variant = variant
    with pytest.raises(ScrapeError, match=message) as caught:
        await site.create_async("", USER_HELLO)
    assert isinstance(caught.value, RuntimeError)  # the original provider promised RuntimeError
    assert emulator.posts == 0
    assert site._nonce is None


async def test_page_quotes_in_errors_hide_the_nonce(site: Site, emulator: SiteEmulator) -> None:
    nonce = emulator.current_nonce()
    emulator.fail_next(
        Fault.page(f'<html><div class="not-the-chat" data-nonce="{nonce}"></div>')
    )
    with pytest.raises(ScrapeError) as caught:
        await site.create_async("", USER_HELLO)
    assert nonce not in str(caught.value)
    assert nonce not in repr(caught.value.body)


async def test_a_page_without_a_post_id_sends_it_empty(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.page_variant = "no_post_id"
    assert await site.create_async("", USER_HELLO)
    assert emulator.requests[-1].form["post_id"] == ""


async def test_large_page_with_the_widget_far_down(site: Site, emulator: SiteEmulator) -> None:
    emulator.page_padding = 3 * 1024 * 1024
    assert await site.create_async("", USER_HELLO)


# -- caching ---------------------------------------------------------------------------


async def test_post_id_and_nonce_are_cached_on_the_class(
    site: Site, emulator: SiteEmulator
) -> None:
    for _ in range(5):
        await site.create_async("", USER_HELLO)
    assert (emulator.page_loads, emulator.posts) == (1, 5)
    assert site._post_id == "11"
    assert site._nonce == emulator.current_nonce()
    assert Chatgpt4o._nonce is None  # the base class keeps its own (empty) cache


async def test_one_page_load_for_100_concurrent_cold_calls(
    site: Site, emulator: SiteEmulator
) -> None:
    replies = await asyncio.gather(
        *(site.create_async("", [{"role": "user", "content": f"q{i}"}]) for i in range(100))
    )
    assert replies == [expected_reply(emulator, f"q{i}") for i in range(100)]
    assert emulator.page_loads == 1
    assert emulator.posts == 100


async def test_cold_calls_share_a_failed_scrape(site: Site, emulator: SiteEmulator) -> None:
    emulator.fail_next(Fault.cloudflare(403, target="page"), times=100)
    results = await asyncio.gather(
        *(site.create_async("", USER_HELLO) for _ in range(50)), return_exceptions=True
    )
    assert all(isinstance(result, CloudflareError) for result in results)
    assert emulator.page_loads == 1


async def test_reset_cache_scrapes_again(site: Site, emulator: SiteEmulator) -> None:
    await site.create_async("", USER_HELLO)
    site.reset_cache()
    await site.create_async("", USER_HELLO)
    assert emulator.page_loads == 2


async def test_the_second_scrape_asks_past_page_caches(site: Site, emulator: SiteEmulator) -> None:
    await site.create_async("", USER_HELLO)
    emulator.rotate_nonce()
    await site.create_async("", USER_HELLO)
    first, second = (r for r in emulator.requests if r.method == "GET")
    assert "_" not in first.query
    assert second.query["_"].isdigit()
    assert second.headers["Cache-Control"] == "no-cache"
    assert second.headers["Pragma"] == "no-cache"


# -- stale nonces ----------------------------------------------------------------------


@pytest.mark.parametrize("plugin_version", ["1.8.90", "1.8.91", "2.2"])
async def test_stale_nonce_is_scraped_again_once(
    site: Site, emulator: SiteEmulator, plugin_version: str
) -> None:
    emulator.plugin_version = plugin_version
    await site.create_async("", USER_HELLO)
    old = site._nonce
    emulator.rotate_nonce()
    assert await site.create_async("", USER_HELLO) == expected_reply(emulator)
    assert site._nonce == emulator.current_nonce() != old
    assert (emulator.page_loads, emulator.posts) == (2, 3)


async def test_nonce_expires_with_the_wordpress_clock(site: Site, emulator: SiteEmulator) -> None:
    await site.create_async("", USER_HELLO)
    emulator.advance(43200)  # one tick later the nonce still verifies
    await site.create_async("", USER_HELLO)
    assert emulator.page_loads == 1
    emulator.advance(2 * 43200)  # two ticks later it does not
    await site.create_async("", USER_HELLO)
    assert emulator.page_loads == 2


async def test_nonce_rejected_twice_is_a_nonce_error(site: Site, emulator: SiteEmulator) -> None:
    emulator.fail_next(Fault.stale_nonce(), times=2)
    with pytest.raises(NonceError) as caught:
        await site.create_async("", USER_HELLO)
    assert caught.value.server_message
    assert emulator.current_nonce() not in str(caught.value)
    assert (emulator.page_loads, emulator.posts) == (2, 2)


async def test_a_dead_nonce_is_not_kept_after_nonce_error(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.fail_next(Fault.stale_nonce(), times=2)
    with pytest.raises(NonceError):
        await site.create_async("", USER_HELLO)
    assert site._nonce is None
    assert await site.create_async("", USER_HELLO) == expected_reply(emulator)


# -- streaming -------------------------------------------------------------------------


async def test_streaming_site_yields_pieces_as_they_arrive(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.stream = True
    pieces = [piece async for piece in site.create_async_generator("", USER_HELLO)]
    assert len(pieces) > 1
    assert "".join(pieces) == expected_reply(emulator)


async def test_streaming_site_through_create_async(site: Site, emulator: SiteEmulator) -> None:
    emulator.stream = True
    assert await site.create_async("", USER_HELLO) == expected_reply(emulator)


async def test_stream_false_gives_one_piece(site: Site, emulator: SiteEmulator) -> None:
    emulator.stream = True
    pieces = [p async for p in site.create_async_generator("", USER_HELLO, stream=False)]
    assert pieces == [expected_reply(emulator)]


async def test_plain_site_through_the_generator_gives_the_whole_reply_once(
    site: Site, emulator: SiteEmulator
) -> None:
    pieces = [piece async for piece in site.create_async_generator("", USER_HELLO)]
    assert pieces == [expected_reply(emulator)]


async def test_streamed_reply_only_in_the_closing_json_is_not_lost(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.stream = True
    emulator.fail_next(
        Fault.status(
            200,
            'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n'
            'data: [DONE]\n\n{"status":"success","data":"Only here"}',
            content_type="text/event-stream",
        )
    )
    pieces = [piece async for piece in site.create_async_generator("", USER_HELLO)]
    assert pieces == ["Only here"]


async def test_first_piece_arrives_before_the_stream_ends(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.stream = True
    emulator.reply = "one two three four five six"
    emulator.stream_chunks = 6
    emulator.chunk_delay = 0.15
    started = time.monotonic()
    stamps = [time.monotonic() - started async for _ in site.create_async_generator("", USER_HELLO)]
    assert stamps[0] < stamps[-1] - 0.4


# -- redirects -------------------------------------------------------------------------


async def test_a_post_is_never_redirected_into_a_get(site: Site, emulator: SiteEmulator) -> None:
    emulator.fail_next(Fault.status(301, headers={"Location": emulator.url + "/elsewhere"}))
    with pytest.raises(HTTPStatusError, match="redirected") as caught:
        await site.create_async("", USER_HELLO, max_retries=0)
    assert caught.value.status_code == 301
    assert [(r.method, r.path) for r in emulator.requests] == [
        ("GET", "/"),
        ("POST", "/wp-admin/admin-ajax.php"),
    ]


async def test_the_post_follows_the_page_to_where_it_was_redirected() -> None:
    async with SiteEmulator(reply="old host") as old, SiteEmulator(reply="new host") as new:
        moved = Chatgpt4o.for_site(old.url)
        moved.reset_cache()
        old.fail_next(Fault.status(301, headers={"Location": new.url + "/"}, target="page"))
        assert await moved.create_async("", USER_HELLO) == "new host"
        assert old.posts == 0
        post = new.requests[-1]
        assert post.path == "/wp-admin/admin-ajax.php"
        assert post.headers["Origin"] == new.url
        assert post.headers["Referer"] == new.url + "/"


# -- error rows ------------------------------------------------------------------------

NO_RETRY: dict[str, Any] = {"max_retries": 0}


@pytest.mark.parametrize(
    ("fault", "error", "match"),
    [
        (Fault.rate_limited(), RateLimitError, "429"),
        (Fault.token_limit(), ServiceError, "token limit"),
        (Fault.cloudflare(403), CloudflareError, "Cloudflare"),
        (Fault.cloudflare(503), CloudflareError, "Cloudflare"),
        (Fault.server_error(500), HTTPStatusError, "HTTP 500"),
        (Fault.status(404, "<h1>Not Found</h1>"), HTTPStatusError, "Not Found"),
        (Fault.upstream_error("Incorrect API key"), ServiceError, "Incorrect API key"),
        (Fault.no_data(), ResponseError, "'data' field missing"),
        (Fault.html_instead_of_json(), ResponseError, "not JSON"),
        (Fault.truncated_json(), ResponseError, "not JSON"),
        (Fault.data_wrong_type(), ResponseError, "'data' is not a string"),
        (Fault.empty_body(), ResponseError, "empty"),
        (Fault.plugin_gone(), PluginUnavailableError, "no longer speaks this protocol"),
    ],
    ids=lambda value: getattr(value, "kind", None) or getattr(value, "__name__", None) or "",
)
async def test_error_answers(
    site: Site, emulator: SiteEmulator, fault: Fault, error: type[ProviderError], match: str
) -> None:
    emulator.fail_next(fault)
    with pytest.raises(error, match=match):
        await site.create_async("", USER_HELLO, **NO_RETRY)
    # the next call works again, with the cache intact (after 400 `0` the page was read
    # once more, in case the site had upgraded to AIPKit)
    assert await site.create_async("", USER_HELLO) == expected_reply(emulator)
    assert emulator.page_loads == (2 if fault.kind == "plugin_gone" else 1)


async def test_http_status_error_carries_code_and_body(site: Site, emulator: SiteEmulator) -> None:
    emulator.fail_next(Fault.status(418, "I'm a teapot"))
    with pytest.raises(HTTPStatusError) as caught:
        await site.create_async("", USER_HELLO, **NO_RETRY)
    assert caught.value.status_code == 418
    assert "teapot" in caught.value.body


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (lambda emu: emu.banned_words.add("forbidden"), "prohibited words"),
        (lambda emu: emu.banned_ips.add("127.0.0.1"), "not allowed to access"),
    ],
)
async def test_plugin_refusals(
    site: Site, emulator: SiteEmulator, setup: Any, match: str
) -> None:
    setup(emulator)
    with pytest.raises(ServiceError, match=match) as caught:
        await site.create_async("", [{"role": "user", "content": "a forbidden word"}])
    assert caught.value.server_message
    assert emulator.posts == 1  # never retried


async def test_message_that_sanitizes_to_nothing(site: Site, emulator: SiteEmulator) -> None:
    with pytest.raises(ServiceError, match="nothing was inputted") as caught:
        await site.create_async("", [{"role": "user", "content": "%41%42"}])
    assert caught.value.kind == "empty_message"


async def test_token_limit_of_the_plugin(site: Site, emulator: SiteEmulator) -> None:
    emulator.token_limit = 1
    await site.create_async("", USER_HELLO)
    with pytest.raises(ServiceError, match="token limit") as caught:
        await site.create_async("", USER_HELLO)
    assert caught.value.kind == "token_limit"
    assert emulator.posts == 2  # a token limit is not retried


async def test_deadline_passed_is_a_timeout_error(site: Site, emulator: SiteEmulator) -> None:
    emulator.fail_next(Fault.stall(5))
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError) as caught:
        await site.create_async("", USER_HELLO, timeout=0.5)
    assert time.monotonic() - started < 1.5
    assert isinstance(caught.value, TimeoutError)
    assert isinstance(caught.value, ProviderConnectionError)


async def test_connection_refused(unused_tcp_port: int) -> None:
    nowhere = Chatgpt4o.for_site(f"http://127.0.0.1:{unused_tcp_port}")
    with pytest.raises(ProviderConnectionError) as caught:
        await nowhere.create_async("", USER_HELLO, max_retries=0, timeout=5)
    assert isinstance(caught.value, ConnectionError)
    assert not isinstance(caught.value, ProviderTimeoutError)
    assert f"127.0.0.1:{unused_tcp_port}" in str(caught.value)


# -- models and bad input, before any I/O -------------------------------------------------


async def test_unknown_model(site: Site, emulator: SiteEmulator) -> None:
    with pytest.raises(ModelNotSupportedError, match="gpt-4o-mini-2024-07-18") as caught:
        await site.create_async("gpt-5", USER_HELLO)
    assert isinstance(caught.value, ValueError)
    assert emulator.page_loads == 0


def test_model_resolution() -> None:
    assert Chatgpt4o.get_model("gpt-4o-mini") == "gpt-4o-mini-2024-07-18"
    assert Chatgpt4o.get_model("gpt-4o-mini-2024-07-18") == "gpt-4o-mini-2024-07-18"
    assert Chatgpt4o.get_model("") == Chatgpt4o.get_model(None) == Chatgpt4o.default_model


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"messages": []}, ValueError, "empty"),
        ({"messages": "hi"}, TypeError, "list"),
        ({"messages": [{"role": "user"}]}, ValueError, "no content"),
        ({"messages": [{"role": "robot", "content": "x"}]}, ValueError, "unknown role"),
        ({"messages": [{"role": "user", "content": None}]}, TypeError, "content"),
        ({"messages": [{"role": "user", "content": "  "}]}, ValueError, "prompt is empty"),
        ({"timeout": 0}, ValueError, "timeout"),
        ({"timeout": "10"}, TypeError, "timeout"),
        ({"proxy": "ftp://host:1"}, ValueError, "proxy"),
        ({"proxy": "http://user:hunter2@"}, ValueError, "proxy"),
        ({"cookies": [("a", "b")]}, TypeError, "cookies"),
        ({"max_retries": -1}, ValueError, "max_retries"),
    ],
)
async def test_bad_arguments_fail_before_any_io(
    site: Site, emulator: SiteEmulator, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    arguments: dict[str, Any] = {"model": "", "messages": USER_HELLO, **kwargs}
    with pytest.raises(error, match=match) as caught:
        await site.create_async(**arguments)
    assert "hunter2" not in str(caught.value)
    assert emulator.requests == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"timeout": 0}, ValueError),
        ({"timeout": True}, TypeError),  # equal to 1, and still refused
        ({"max_retries": 1.0}, ValueError),  # equal to 1, and still refused
        ({"proxy": "ftp://host:1"}, ValueError),
        ({"backend": "requests"}, ValueError),
        ({"transport": object()}, TypeError),
    ],
)
async def test_settings_are_checked_after_good_calls_too(
    site: Site, emulator: SiteEmulator, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    good = {"timeout": 1, "max_retries": 1}
    assert await site.create_async("", USER_HELLO, **good) == expected_reply(emulator)
    posts = emulator.posts
    for _ in range(2):  # and again: a refused setting is never taken as checked
        with pytest.raises(error):
            await site.create_async("", USER_HELLO, **kwargs)
    assert emulator.posts == posts
    assert await site.create_async("", USER_HELLO, **good) == expected_reply(emulator)


@pytest.mark.parametrize(
    ("cookies", "match"),
    [
        ({"a": "b;c=d"}, "cannot carry"),
        ({"a": "line\r\nX-Evil: 1"}, "cannot carry"),
        ({"a": "café"}, "cannot carry"),
        ({"bad name": "x"}, "not a valid cookie name"),
    ],
)
async def test_bad_cookies_fail_before_io_without_echoing_the_value(
    site: Site, emulator: SiteEmulator, cookies: dict[str, str], match: str
) -> None:
    with pytest.raises(ValueError, match=match) as caught:
        await site.create_async("", USER_HELLO, cookies=cookies)
    for value in cookies.values():
        assert value not in str(caught.value)
    assert emulator.requests == []


async def test_unknown_browser_profile_is_a_value_error_without_retries(
    site: Site, emulator: SiteEmulator
) -> None:
    with pytest.raises(ValueError, match="impersonate"):
        await site.create_async("", USER_HELLO, impersonate="netscape4")
    assert emulator.requests == []


# -- other sites -------------------------------------------------------------------------


async def test_subclasses_for_other_sites_keep_their_own_cache() -> None:
    async with SiteEmulator(reply="from A") as one, SiteEmulator(reply="from B", post_id=7) as two:

        class SiteA(Chatgpt4o):
            url = one.url

        class SiteB(Chatgpt4o):
            url = two.url + "/"  # a trailing slash is fine

        assert await SiteA.create_async("", USER_HELLO) == "from A"
        assert await SiteB.create_async("", USER_HELLO) == "from B"
        assert await SiteA.create_async("", USER_HELLO) == "from A"
        assert (SiteA._post_id, SiteB._post_id) == ("11", "7")
        assert SiteA._nonce == one.current_nonce()
        assert SiteB._nonce == two.current_nonce()
        assert (one.page_loads, two.page_loads) == (1, 1)
        assert two.requests[-1].form["url"] == two.url  # the widget's data-url, as printed
    assert Chatgpt4o._post_id is None


def test_provider_metadata() -> None:
    assert Chatgpt4o.url == "https://chatgpt4o.one"
    assert Chatgpt4o.working is False
    assert Chatgpt4o.default_model == "gpt-4o-mini-2024-07-18"
    assert Chatgpt4o.models == ["gpt-4o-mini-2024-07-18"]
    assert Chatgpt4o.model_aliases == {"gpt-4o-mini": "gpt-4o-mini-2024-07-18"}
    assert Chatgpt4o.supports_stream is True
    assert Chatgpt4o.needs_auth is False
    assert Chatgpt4o.get_dict()["name"] == "Chatgpt4o"
    assert Chatgpt4o.get_parent() == "Chatgpt4o"
    assert issubclass(Chatgpt4o, RuntimeError) is False
