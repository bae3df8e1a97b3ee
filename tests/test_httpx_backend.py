"""The httpx backend: the same scenarios with respx routes, and once end to end."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
import respx

from chatgpt4o import (
    Chatgpt4o,
    CloudflareError,
    HTTPStatusError,
    NonceError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseError,
    ServiceError,
)
from chatgpt4o.testing import SiteEmulator

from .conftest import USER_HELLO, Site, expected_reply
from .proxy import running_proxy

SITE = "https://wp.example"
AJAX = SITE + "/wp-admin/admin-ajax.php"
NONCE = "5e2498d71a"
FRESH_NONCE = "0a1b2c3d4e"


def page(nonce: str = NONCE, stream: bool = False) -> str:
    return f"""<!DOCTYPE html><html><head>
<input type="hidden" id="wpaicg-img-nonce" value="ffffffffff"></head><body>
<div class="wpaicg-chat-shortcode"
     data-nonce="{nonce}"
     data-post-id="11"
     data-url="{SITE}"
     data-bot-id="0"
     data-openai_stream_nav="{int(stream)}"
     data-type="shortcode"
>
</body></html>"""


def success(data: object) -> httpx.Response:
    body = {"status": "success", "msg": "Something went wrong", "data": data, "log": False}
    return httpx.Response(
        200,
        content=json.dumps(body).replace("/", "\\/"),
        headers={"content-type": "application/json; charset=UTF-8"},
    )


def event_stream(*pieces: str) -> httpx.Response:
    events = b"".join(
        b"data: "
        + json.dumps({"choices": [{"index": 0, "delta": {"content": p}}]}).encode()
        + b"\n\n"
        for p in pieces
    )
    trailer = json.dumps({"status": "success", "data": "".join(pieces)}).encode()
    return httpx.Response(
        200,
        content=events + b"data: [DONE]\n\n" + trailer,
        headers={"content-type": "text/event-stream"},
    )


@pytest.fixture
def respx_site() -> Site:
    """The provider for SITE on the httpx backend (respx routes stand in for it), cold."""
    provider = Chatgpt4o.for_site(SITE, backend="httpx")
    provider.reset_cache()
    return provider


@pytest.fixture
def httpx_site(emulator: SiteEmulator) -> Site:
    """The provider for the emulator on the httpx backend, cold."""
    provider = Chatgpt4o.for_site(emulator.url, backend="httpx")
    provider.reset_cache()
    return provider


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as mock:
        yield mock


async def test_the_documented_call_over_httpx(
    respx_site: Site, router: respx.MockRouter
) -> None:
    page_route = router.get(SITE + "/").respond(200, html=page())
    post_route = router.post(AJAX).mock(return_value=success("Привет/hello"))
    reply = await respx_site.create_async("gpt-4o-mini", USER_HELLO)
    assert reply == "Привет/hello"
    assert page_route.call_count == 1
    form = dict(httpx.QueryParams(post_route.calls.last.request.content.decode()))
    assert form["_wpnonce"] == NONCE
    assert form["post_id"] == "11"
    assert form["action"] == "wpaicg_chat_shortcode_message"
    assert form["message"] == "Привет!"
    headers = post_route.calls.last.request.headers
    assert "x-requested-with" not in headers  # the plugin's fetch sends none
    assert headers["origin"] == SITE
    assert "Mozilla/5.0" in headers["user-agent"]


async def test_cached_page_and_single_flight(
    respx_site: Site, router: respx.MockRouter
) -> None:
    import asyncio

    page_route = router.get(SITE + "/").respond(200, html=page())
    router.post(AJAX).mock(return_value=success("ok"))
    await asyncio.gather(*(respx_site.create_async("", USER_HELLO) for _ in range(20)))
    await respx_site.create_async("", USER_HELLO)
    assert page_route.call_count == 1


async def test_stale_nonce_rescraped_once(respx_site: Site, router: respx.MockRouter) -> None:
    router.get(SITE + "/").mock(
        side_effect=[httpx.Response(200, html=page()), httpx.Response(200, html=page(FRESH_NONCE))]
    )
    expired = httpx.Response(403, html="<p>The link you followed has expired.</p>")
    post = router.post(AJAX).mock(side_effect=[expired, success("fresh")])
    assert await respx_site.create_async("", USER_HELLO) == "fresh"
    sent = [dict(httpx.QueryParams(c.request.content.decode()))["_wpnonce"] for c in post.calls]
    assert sent == [NONCE, FRESH_NONCE]


async def test_nonce_rejected_twice(respx_site: Site, router: respx.MockRouter) -> None:
    router.get(SITE + "/").respond(200, html=page())
    stale = httpx.Response(200, json={"status": "error", "msg": "Nonce verification failed"})
    router.post(AJAX).mock(side_effect=[stale, stale])
    with pytest.raises(NonceError):
        await respx_site.create_async("", USER_HELLO)


async def test_streaming_over_httpx(respx_site: Site, router: respx.MockRouter) -> None:
    router.get(SITE + "/").respond(200, html=page(stream=True))
    router.post(AJAX).mock(return_value=event_stream("Hel", "lo"))
    pieces = [p async for p in respx_site.create_async_generator("", USER_HELLO)]
    assert pieces == ["Hel", "lo"]


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (httpx.Response(429, headers={"retry-after": "120"}), RateLimitError),
        (httpx.Response(403, headers={"cf-mitigated": "challenge"}), CloudflareError),
        (httpx.Response(404, text="nope"), HTTPStatusError),
        (httpx.Response(200, json={"status": "error", "msg": "Upstream broke"}), ServiceError),
        (httpx.Response(200, json={"status": "success"}), ResponseError),
        (httpx.Response(200, html="<html></html>"), ResponseError),
    ],
)
async def test_error_answers_over_httpx(
    respx_site: Site, router: respx.MockRouter, answer: httpx.Response, error: type[Exception]
) -> None:
    router.get(SITE + "/").respond(200, html=page())
    router.post(AJAX).mock(return_value=answer)
    with pytest.raises(error):
        await respx_site.create_async("", USER_HELLO, timeout=5)


async def test_5xx_retried_over_httpx(
    respx_site: Site, router: respx.MockRouter, sleeps: list[float]
) -> None:
    router.get(SITE + "/").respond(200, html=page())
    post = router.post(AJAX).mock(side_effect=[httpx.Response(502), success("after retry")])
    assert await respx_site.create_async("", USER_HELLO) == "after retry"
    assert post.call_count == 2
    assert len(sleeps) == 1


# Factories, not instances: an exception raised in a test keeps its traceback, and with it
# the test's event loop, for as long as the parameter lives (the whole session).
@pytest.mark.parametrize(
    ("failure", "error"),
    [
        (lambda: httpx.ConnectError("refused"), ProviderConnectionError),
        (lambda: httpx.ReadTimeout("slow"), ProviderTimeoutError),
        (lambda: httpx.RemoteProtocolError("reset"), ProviderConnectionError),
    ],
    ids=["ConnectError", "ReadTimeout", "RemoteProtocolError"],
)
async def test_transport_errors_map_to_ours(
    respx_site: Site,
    router: respx.MockRouter,
    sleeps: list[float],
    failure: Callable[[], Exception],
    error: type[Exception],
) -> None:
    router.get(SITE + "/").mock(side_effect=failure())
    with pytest.raises(error):
        await respx_site.create_async("", USER_HELLO, max_retries=0)


async def test_cookies_over_httpx(respx_site: Site, router: respx.MockRouter) -> None:
    router.get(SITE + "/").respond(
        200, html=page(), headers={"set-cookie": "wp_visitor=v1; Path=/"}
    )
    post = router.post(AJAX).mock(return_value=success("ok"))
    await respx_site.create_async("", USER_HELLO, cookies={"cf_clearance": "abc"})
    cookie = post.calls.last.request.headers["cookie"]
    assert "cf_clearance=abc" in cookie
    assert "wp_visitor=v1" in cookie


async def test_users_own_client_is_used_and_left_open(
    respx_site: Site, router: respx.MockRouter
) -> None:
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.method)

    router.get(SITE + "/").respond(200, html=page())
    router.post(AJAX).mock(return_value=success("ok"))
    async with httpx.AsyncClient(event_hooks={"request": [hook]}) as client:
        assert await respx_site.create_async("", USER_HELLO, client=client) == "ok"
        assert not client.is_closed
    assert seen == ["GET", "POST"]


async def test_users_own_curl_session_is_used_and_left_open(site: Site) -> None:
    from curl_cffi.requests import AsyncSession

    session: AsyncSession = AsyncSession()  # type: ignore[type-arg]
    try:
        assert await site.create_async("", USER_HELLO, client=session)
        assert not session._closed
    finally:
        await session.close()


async def test_httpx_end_to_end_against_the_emulator(
    httpx_site: Site, emulator: SiteEmulator
) -> None:
    emulator.stream = True
    reply = expected_reply(emulator)
    pieces = [p async for p in httpx_site.create_async_generator("", USER_HELLO)]
    assert "".join(pieces) == reply
    assert len(pieces) > 1
    emulator.rotate_nonce()
    assert await httpx_site.create_async("", USER_HELLO) == reply
    assert emulator.page_loads == 2
    assert emulator.connections == 1  # keep-alive on httpx too


async def test_httpx_through_a_proxy(httpx_site: Site) -> None:
    async with running_proxy("http") as proxy:
        assert await httpx_site.create_async("", USER_HELLO, proxy=proxy.url)
    assert proxy.tunnels


async def test_httpx_timeout_is_one_deadline(
    httpx_site: Site, emulator: SiteEmulator
) -> None:
    from chatgpt4o.testing import Fault

    emulator.fail_next(Fault.stall(30))
    with pytest.raises(ProviderTimeoutError):
        await httpx_site.create_async("", USER_HELLO, timeout=1)


@respx.mock
async def test_the_readme_respx_example() -> None:
    # as the README writes it: a subclass (not for_site)
    class Site(Chatgpt4o):
        url = "https://wp.example"
        backend = "httpx"

    respx.get("https://wp.example/").respond(html=page())
    respx.post("https://wp.example/wp-admin/admin-ajax.php").respond(
        json={"status": "success", "msg": "", "data": "Hi"}
    )
    assert await Site.create_async("", [{"role": "user", "content": "hi"}]) == "Hi"
