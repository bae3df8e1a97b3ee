"""Regressions found in review: cancelled transfers, redirects, page caches, loops that
must be freed, Retry-After on every status, secrets in page quotes, bad input."""

from __future__ import annotations

import asyncio
import gc
import time

import pytest

from chatgpt4o import (
    Chatgpt4o,
    CloudflareError,
    HTTPStatusError,
    NonceError,
    ProviderConnectionError,
    ScrapeError,
)
from chatgpt4o.testing import EmulatorThread, Fault, SiteEmulator

from .conftest import USER_HELLO, expected_reply
from .proxy import running_proxy

Site = type[Chatgpt4o]


async def consume(site: Site) -> str:
    return "".join([piece async for piece in site.create_async_generator("", USER_HELLO)])


@pytest.mark.parametrize("streamed", [False, True], ids=["create_async", "generator"])
async def test_calls_cancelled_before_the_headers_free_their_connections(
    site: Site, emulator: SiteEmulator, streamed: bool
) -> None:
    await site.create_async("", USER_HELLO)
    emulator.fail_next(Fault.stall(30), times=70)  # more than the pool's 64 handles
    calls = [
        asyncio.create_task(consume(site) if streamed else site.create_async("", USER_HELLO))
        for _ in range(70)
    ]
    await asyncio.sleep(0.5)
    for call in calls:
        call.cancel()
    await asyncio.gather(*calls, return_exceptions=True)
    emulator.clear_faults()
    started = time.monotonic()
    assert await site.create_async("", USER_HELLO, timeout=5) == expected_reply(emulator)
    assert time.monotonic() - started < 2


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

        class Moved(Chatgpt4o):
            url = old.url

        old.fail_next(Fault.status(301, headers={"Location": new.url + "/"}, target="page"))
        assert await Moved.create_async("", USER_HELLO) == "new host"
        assert old.posts == 0
        post = new.requests[-1]
        assert post.path == "/wp-admin/admin-ajax.php"
        assert post.headers["Origin"] == new.url
        assert post.headers["Referer"] == new.url + "/"


async def test_the_second_scrape_asks_past_page_caches(site: Site, emulator: SiteEmulator) -> None:
    await site.create_async("", USER_HELLO)
    emulator.rotate_nonce()
    await site.create_async("", USER_HELLO)
    first, second = (r for r in emulator.requests if r.method == "GET")
    assert "_" not in first.query
    assert second.query["_"].isdigit()
    assert second.headers["Cache-Control"] == "no-cache"
    assert second.headers["Pragma"] == "no-cache"


async def test_a_dead_nonce_is_not_kept_after_nonce_error(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.fail_next(Fault.stale_nonce(), times=2)
    with pytest.raises(NonceError):
        await site.create_async("", USER_HELLO)
    assert site._nonce is None
    assert await site.create_async("", USER_HELLO) == expected_reply(emulator)


async def test_cold_calls_share_a_failed_scrape(site: Site, emulator: SiteEmulator) -> None:
    emulator.fail_next(Fault.cloudflare(403, target="page"), times=100)
    results = await asyncio.gather(
        *(site.create_async("", USER_HELLO) for _ in range(50)), return_exceptions=True
    )
    assert all(isinstance(result, CloudflareError) for result in results)
    assert emulator.page_loads == 1


async def test_retry_after_is_honoured_on_503(
    site: Site, emulator: SiteEmulator, sleeps: list[float]
) -> None:
    emulator.fail_next(Fault.status(503, "busy", headers={"Retry-After": "3"}))
    assert await site.create_async("", USER_HELLO) == expected_reply(emulator)
    assert sleeps == [3.0]


async def test_retry_after_past_the_deadline_gives_up_on_503(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.fail_next(Fault.status(503, "busy", headers={"Retry-After": "60"}), times=3)
    started = time.monotonic()
    with pytest.raises(HTTPStatusError) as caught:
        await site.create_async("", USER_HELLO, timeout=5)
    assert caught.value.retry_after == 60
    assert emulator.posts == 1
    assert time.monotonic() - started < 1


async def test_without_a_deadline_a_long_retry_after_is_not_waited_for(
    site: Site, emulator: SiteEmulator, sleeps: list[float]
) -> None:
    emulator.fail_next(Fault.rate_limited(retry_after="3600"))
    with pytest.raises(Exception, match="429"):
        await site.create_async("", USER_HELLO, timeout=None)
    assert sleeps == []


def test_event_loops_are_freed_after_use() -> None:
    with EmulatorThread() as emu:

        class Local(Chatgpt4o):
            url = emu.url

        for _ in range(10):
            asyncio.run(Local.create_async("", USER_HELLO))
        list(Local.create_completion("", USER_HELLO))
    gc.collect()
    loops = [obj for obj in gc.get_objects() if isinstance(obj, asyncio.AbstractEventLoop)]
    assert len(loops) <= 2  # not one per call


async def test_page_quotes_in_errors_hide_the_nonce(site: Site, emulator: SiteEmulator) -> None:
    nonce = emulator.current_nonce()
    emulator.fail_next(
        Fault.page(f'<html><div class="not-the-chat" data-nonce="{nonce}"></div>')
    )
    with pytest.raises(ScrapeError) as caught:
        await site.create_async("", USER_HELLO)
    assert nonce not in str(caught.value)
    assert nonce not in repr(caught.value.body)


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


async def test_infinite_timeout_means_none(site: Site, emulator: SiteEmulator) -> None:
    assert await site.create_async("", USER_HELLO, timeout=float("inf")) == expected_reply(emulator)


async def test_unknown_browser_profile_is_a_value_error_without_retries(
    site: Site, emulator: SiteEmulator
) -> None:
    with pytest.raises(ValueError, match="impersonate"):
        await site.create_async("", USER_HELLO, impersonate="netscape4")
    assert emulator.requests == []


async def test_closing_the_session_under_a_call_is_a_connection_error(
    site: Site, emulator: SiteEmulator
) -> None:
    await site.create_async("", USER_HELLO)
    emulator.fail_next(Fault.stall(3))
    call = asyncio.create_task(site.create_async("", USER_HELLO, max_retries=0))
    await asyncio.sleep(0.3)
    await Chatgpt4o.aclose()
    with pytest.raises(ProviderConnectionError, match="session was closed"):
        await call


async def test_wrong_http_proxy_password_names_the_proxy(
    site: Site, emulator: SiteEmulator
) -> None:
    async with running_proxy("http") as proxy:
        wrong = proxy.url.replace(proxy.password, "wrong-pw")
        with pytest.raises(ProviderConnectionError, match="407") as caught:
            await site.create_async("", USER_HELLO, proxy=wrong, max_retries=0)
    assert f"127.0.0.1:{proxy.port}" in str(caught.value)
    assert "wrong-pw" not in str(caught.value)


@pytest.mark.parametrize("proxy", ["http://bob:pa/ss@127.0.0.1:9", "http://bob:p@ss@127.0.0.1:9"])
async def test_odd_proxy_passwords_never_show(site: Site, proxy: str) -> None:
    with pytest.raises((ValueError, ProviderConnectionError)) as caught:
        await site.create_async("", USER_HELLO, proxy=proxy, max_retries=0, timeout=5)
    text = str(caught.value)
    assert "pa/ss" not in text
    assert "ss@" not in text
