"""Regressions found in review: cancelled transfers, redirects, page caches, loops that
must be freed, Retry-After on every status, secrets in page quotes, bad input."""

from __future__ import annotations

import asyncio

import pytest

from chatgpt4o import (
    Chatgpt4o,
    CloudflareError,
    HTTPStatusError,
    NonceError,
    ScrapeError,
)
from chatgpt4o.testing import Fault, SiteEmulator

from .conftest import USER_HELLO, expected_reply

Site = type[Chatgpt4o]


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


