"""Faults: one deadline, aborting streams, cancellation, retries, connection reuse,
cookies, proxies and resource hygiene - all on loopback."""

from __future__ import annotations

import asyncio
import email.utils
import gc
import logging
import subprocess
import sys
import textwrap
import time

import pytest

import chatgpt4o
from chatgpt4o import (
    Chatgpt4o,
    CloudflareError,
    HTTPStatusError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    ServiceError,
)
from chatgpt4o._session import shared_session_count
from chatgpt4o.testing import EmulatorThread, Fault, SiteEmulator

from .conftest import USER_HELLO, Site, expected_reply
from .proxy import running_proxy


async def consume(site: Site) -> str:
    """The whole streamed reply to the greeting."""
    return "".join([piece async for piece in site.create_async_generator("", USER_HELLO)])


# -- one deadline ------------------------------------------------------------------------


@pytest.mark.parametrize("target", ["page", "post"])
async def test_timeout_bounds_a_stalled_server(
    site: Site, emulator: SiteEmulator, target: str
) -> None:
    emulator.fail_next(Fault.stall(30, target=target))  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError):
        await site.create_async("", USER_HELLO, timeout=1)
    assert 0.9 < time.monotonic() - started < 1.6


async def test_timeout_bounds_a_stream_that_stalls_midway(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.stream = True
    emulator.fail_next(Fault.stream_stall(after_chunks=2, seconds=30))
    started = time.monotonic()
    pieces: list[str] = []

    async def consume() -> None:
        async for piece in site.create_async_generator("", USER_HELLO, timeout=1):
            pieces.append(piece)

    with pytest.raises(ProviderTimeoutError):
        await consume()
    assert pieces  # what came before the stall was delivered
    assert 0.9 < time.monotonic() - started < 1.6


async def test_timeout_covers_retries_and_their_sleeps(site: Site, emulator: SiteEmulator) -> None:
    emulator.fail_next(Fault.server_error(503), times=10)
    started = time.monotonic()
    with pytest.raises((ProviderTimeoutError, HTTPStatusError)):
        await site.create_async("", USER_HELLO, timeout=1, max_retries=10)
    assert time.monotonic() - started < 1.6


# -- streams end at once -----------------------------------------------------------------


async def test_breaking_out_of_a_slow_stream_ends_the_transfer_at_once(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.stream = True
    emulator.stream_chunks = 30
    emulator.chunk_delay = 1.0  # one chunk per second: the whole stream takes 30 s
    started = time.monotonic()
    pieces = site.create_async_generator("", USER_HELLO)
    async for _ in pieces:
        break
    await pieces.aclose()  # type: ignore[attr-defined]
    assert time.monotonic() - started < 1.5
    # the site, the cache and the shared session are fine afterwards
    emulator.stream = False
    assert await site.create_async("", USER_HELLO) == expected_reply(emulator)
    assert emulator.page_loads == 1


async def test_wait_for_on_a_slow_stream_cancels_promptly(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.stream = True
    emulator.stream_chunks = 30
    emulator.chunk_delay = 1.0
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(consume(site), 1.5)
    assert time.monotonic() - started < 2.5


async def test_cancelling_a_call_is_prompt_and_harmless(site: Site, emulator: SiteEmulator) -> None:
    await site.create_async("", USER_HELLO)
    emulator.fail_next(Fault.stall(30))
    task = asyncio.create_task(site.create_async("", USER_HELLO))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.5
    assert await site.create_async("", USER_HELLO) == expected_reply(emulator)
    assert emulator.page_loads == 1
    assert shared_session_count() == 1


async def test_cancelling_a_cold_call_leaves_no_half_cache(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.fail_next(Fault.stall(30, target="page"))
    task = asyncio.create_task(site.create_async("", USER_HELLO))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert site._nonce is None
    assert await site.create_async("", USER_HELLO) == expected_reply(emulator)


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


# -- retries -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
async def test_retryable_statuses(
    site: Site, emulator: SiteEmulator, sleeps: list[float], status: int
) -> None:
    emulator.fail_next(Fault.status(status, "busy"), times=2)
    assert await site.create_async("", USER_HELLO) == expected_reply(emulator)
    assert emulator.posts == 3
    assert len(sleeps) == 2
    assert 0.375 <= sleeps[0] <= 0.5  # 0.5 s shortened by up to 25 % jitter
    assert 0.75 <= sleeps[1] <= 1.0


async def test_retries_give_up_after_max_retries(
    site: Site, emulator: SiteEmulator, sleeps: list[float]
) -> None:
    emulator.fail_next(Fault.server_error(500), times=5)
    with pytest.raises(HTTPStatusError) as caught:
        await site.create_async("", USER_HELLO)
    assert caught.value.status_code == 500
    assert emulator.posts == 3  # the first try and the default 2 retries


async def test_backoff_is_capped(site: Site, emulator: SiteEmulator, sleeps: list[float]) -> None:
    emulator.fail_next(Fault.server_error(502), times=7)
    await site.create_async("", USER_HELLO, max_retries=7)
    assert max(sleeps) <= 8
    assert sleeps[-1] >= 6  # min(0.5 * 2**6, 8) less at most 25 %


async def test_max_retries_class_attribute(
    emulator: SiteEmulator, sleeps: list[float]
) -> None:
    patient = Chatgpt4o.for_site(emulator.url, max_retries=4)
    patient.reset_cache()
    emulator.fail_next(Fault.server_error(503), times=4)
    assert await patient.create_async("", USER_HELLO) == expected_reply(emulator)
    assert emulator.posts == 5


async def test_retry_after_seconds_is_honoured(
    site: Site, emulator: SiteEmulator, sleeps: list[float]
) -> None:
    emulator.fail_next(Fault.rate_limited(retry_after="3"))
    await site.create_async("", USER_HELLO)
    assert sleeps == [3.0]


async def test_retry_after_http_date_is_honoured(
    site: Site, emulator: SiteEmulator, sleeps: list[float]
) -> None:
    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    emulator.fail_next(Fault.rate_limited(retry_after=when))
    await site.create_async("", USER_HELLO)
    assert len(sleeps) == 1
    assert 3 <= sleeps[0] <= 5


async def test_retry_after_is_honoured_on_503(
    site: Site, emulator: SiteEmulator, sleeps: list[float]
) -> None:
    emulator.fail_next(Fault.status(503, "busy", headers={"Retry-After": "3"}))
    assert await site.create_async("", USER_HELLO) == expected_reply(emulator)
    assert sleeps == [3.0]


async def test_retry_after_beyond_the_deadline_gives_up_at_once(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.fail_next(Fault.rate_limited(retry_after="60"))
    started = time.monotonic()
    with pytest.raises(RateLimitError) as caught:
        await site.create_async("", USER_HELLO, timeout=10)
    assert caught.value.retry_after == 60
    assert time.monotonic() - started < 1
    assert emulator.posts == 1


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


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.cloudflare(403), CloudflareError),
        (Fault.cloudflare(503), CloudflareError),
        (Fault.upstream_error("Upstream says no"), ServiceError),
        (Fault.token_limit(), ServiceError),
        (Fault.status(404, "nope"), HTTPStatusError),
    ],
)
async def test_not_retried(
    site: Site, emulator: SiteEmulator, sleeps: list[float], fault: Fault, error: type[Exception]
) -> None:
    emulator.fail_next(fault)
    with pytest.raises(error):
        await site.create_async("", USER_HELLO)
    assert emulator.posts == 1
    assert sleeps == []


@pytest.mark.parametrize("fault", [Fault.reset_before_headers(), Fault.reset_after_headers()])
async def test_transport_errors_are_retried(
    site: Site, emulator: SiteEmulator, sleeps: list[float], fault: Fault
) -> None:
    emulator.fail_next(fault)
    assert await site.create_async("", USER_HELLO) == expected_reply(emulator)
    # On a reused keep-alive connection curl itself may resend a request whose
    # connection died before any answer; otherwise the policy retries after a sleep.
    assert emulator.posts == 2
    assert len(sleeps) <= 1


@pytest.mark.parametrize(
    "fault",
    [Fault.reset_before_headers(target="page"), Fault.reset_after_headers(target="page")],
)
async def test_transport_errors_on_a_fresh_connection_are_retried_by_the_policy(
    site: Site, emulator: SiteEmulator, sleeps: list[float], fault: Fault
) -> None:
    emulator.fail_next(fault)
    assert await site.create_async("", USER_HELLO) == expected_reply(emulator)
    assert emulator.page_loads == 2
    assert len(sleeps) == 1


async def test_page_errors_are_retried_too(
    site: Site, emulator: SiteEmulator, sleeps: list[float]
) -> None:
    emulator.fail_next(Fault.server_error(502, target="page"))
    assert await site.create_async("", USER_HELLO) == expected_reply(emulator)
    assert emulator.page_loads == 2


async def test_a_stream_is_not_retried_once_pieces_went_out(
    site: Site, emulator: SiteEmulator, sleeps: list[float]
) -> None:
    emulator.stream = True
    emulator.fail_next(Fault.stream_no_done())
    pieces: list[str] = []

    async def consume() -> None:
        async for piece in site.create_async_generator("", USER_HELLO):
            pieces.append(piece)

    with pytest.raises(chatgpt4o.ResponseError, match="before \\[DONE\\]"):
        await consume()
    assert pieces
    assert emulator.posts == 1


# -- logging -----------------------------------------------------------------------------


async def test_one_info_line_per_retry_and_no_secrets(
    site: Site, emulator: SiteEmulator, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="chatgpt4o")
    emulator.page_cookies = {"wp_session": "cookie-secret-value"}
    emulator.fail_next(Fault.server_error(500), times=2)
    await site.create_async("", USER_HELLO, cookies={"cf_clearance": "clearance-secret"})
    retries = [r for r in caplog.records if r.levelno == logging.INFO and "retry" in r.message]
    assert len(retries) == 2
    assert any(r.levelno == logging.DEBUG and "POST" in r.message for r in caplog.records)
    assert all(r.name.startswith("chatgpt4o") for r in caplog.records)
    text = caplog.text
    for secret in (emulator.current_nonce(), "cookie-secret-value", "clearance-secret"):
        assert secret not in text
    assert not logging.getLogger("chatgpt4o").handlers  # the library installs none


# -- connection reuse ----------------------------------------------------------------------


async def test_sequential_calls_reuse_one_connection(site: Site, emulator: SiteEmulator) -> None:
    for index in range(200):
        await site.create_async("", [{"role": "user", "content": f"q{index}"}])
    assert emulator.page_loads == 1
    assert emulator.posts == 200
    assert emulator.connections == 1
    assert shared_session_count() == 1


async def test_aclose_closes_and_the_next_call_reopens(site: Site, emulator: SiteEmulator) -> None:
    await site.create_async("", USER_HELLO)
    assert shared_session_count() == 1
    await Chatgpt4o.aclose()
    assert shared_session_count() == 0
    await chatgpt4o.aclose()  # the module-level spelling; closing twice is fine
    assert await site.create_async("", USER_HELLO) == expected_reply(emulator)
    assert emulator.connections == 2


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


async def test_session_scope(site: Site, emulator: SiteEmulator) -> None:
    async with site.session() as scope:
        await site.create_async("", USER_HELLO)
        await asyncio.gather(*(site.create_async("", USER_HELLO) for _ in range(3)))
        assert len(scope) == 1
        assert shared_session_count() == 0  # the loop's own pool was not touched
    assert scope.closed
    assert len(scope) == 0


async def test_a_scope_after_calls_outside_it_gets_its_own_transport(
    site: Site, emulator: SiteEmulator
) -> None:
    await site.create_async("", USER_HELLO)
    await site.create_async("", USER_HELLO)
    assert emulator.connections == 1
    async with site.session() as scope:
        await site.create_async("", USER_HELLO)
        assert len(scope) == 1
        assert emulator.connections == 2
    await site.create_async("", USER_HELLO)  # the loop's transport again, still open
    assert emulator.connections == 2
    assert shared_session_count() == 1


LEAK_CHECK = textwrap.dedent(
    """
    import asyncio, gc, sys, warnings
    warnings.simplefilter("error")
    from chatgpt4o import Chatgpt4o
    from chatgpt4o.testing import EmulatorThread
    from chatgpt4o._session import shared_session_count

    with EmulatorThread(stream=True) as emu:
        local = Chatgpt4o.for_site(emu.url)

        async def main():
            reply = await local.create_async("", [{"role": "user", "content": "hi"}])
            async for piece in local.create_async_generator("", [{"role": "user", "content": "x"}]):
                break
            return reply, shared_session_count()

        first = asyncio.run(main())
        second = asyncio.run(main())   # a new loop gets a new session
        print(first[1], second[1], emu.connections)
        list(local.create_completion("", [{"role": "user", "content": "sync"}]))
    gc.collect()
    """
)


def test_no_unclosed_warnings_when_asyncio_run_ends() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error", "-c", LEAK_CHECK],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # -X dev turns on asyncio's debug mode, which also notes slow callbacks when the
    # machine is busy; anything else on stderr is a leak or a warning.
    noise = [line for line in result.stderr.splitlines() if "Executing <" not in line]
    assert noise == []
    sessions_first, sessions_second, connections = map(int, result.stdout.split())
    assert (sessions_first, sessions_second) == (1, 1)
    assert connections >= 2  # each loop opened its own connection


def test_event_loops_are_freed_after_use() -> None:
    def loops() -> list[asyncio.AbstractEventLoop]:
        gc.collect()
        return [obj for obj in gc.get_objects() if isinstance(obj, asyncio.AbstractEventLoop)]

    # (loops of earlier tests, still held by what they left, are not this test's)
    before = {id(loop) for loop in loops()}
    with EmulatorThread() as emu:
        local = Chatgpt4o.for_site(emu.url)
        for _ in range(10):
            asyncio.run(local.create_async("", USER_HELLO))
        list(local.create_completion("", USER_HELLO))
    left = [loop for loop in loops() if id(loop) not in before]
    assert len(left) <= 2  # not one per call


# -- cookies -------------------------------------------------------------------------------


async def test_user_cookies_go_with_the_page_and_the_post(
    site: Site, emulator: SiteEmulator
) -> None:
    await site.create_async("", USER_HELLO, cookies={"cf_clearance": "abc"})
    page, post = emulator.requests
    assert page.cookies["cf_clearance"] == "abc"
    assert post.cookies["cf_clearance"] == "abc"


async def test_cookies_the_page_sets_are_kept_for_the_post(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.page_cookies = {"wp_visitor": "v1"}
    await site.create_async("", USER_HELLO)
    assert "wp_visitor" not in emulator.requests[0].cookies
    assert emulator.requests[-1].cookies["wp_visitor"] == "v1"
    await site.create_async("", USER_HELLO)  # and for later calls, with the cached nonce
    assert emulator.requests[-1].cookies["wp_visitor"] == "v1"


async def test_clearance_cookie_lets_a_challenged_site_through(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.required_cookies = {"cf_clearance": "ok"}
    with pytest.raises(CloudflareError):
        await site.create_async("", USER_HELLO)
    assert await site.create_async("", USER_HELLO, cookies={"cf_clearance": "ok"})


async def test_cookie_jars_never_cross_sites() -> None:
    async with SiteEmulator() as one, SiteEmulator() as two:
        one.page_cookies = {"only_for_one": "1"}
        site_one, site_two = Chatgpt4o.for_site(one.url), Chatgpt4o.for_site(two.url)
        site_one.reset_cache()
        site_two.reset_cache()
        await site_one.create_async("", USER_HELLO)
        await site_two.create_async("", USER_HELLO)
        assert "only_for_one" in one.requests[-1].cookies
        assert all("only_for_one" not in request.cookies for request in two.requests)


# -- proxies -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["http", "socks5"])
async def test_proxy_with_credentials(site: Site, emulator: SiteEmulator, kind: str) -> None:
    async with running_proxy(kind) as proxy:
        reply = await site.create_async("", USER_HELLO, proxy=proxy.url)
        await site.create_async("", USER_HELLO, proxy=proxy.url)
    assert reply == expected_reply(emulator)
    assert proxy.refused_auth == 0
    port = int(emulator.url.rsplit(":", 1)[1])
    assert proxy.tunnels
    assert all(tunnel == ("127.0.0.1", port) for tunnel in proxy.tunnels)
    assert emulator.page_loads == 1
    assert emulator.posts == 2


async def test_wrong_proxy_password_is_a_connection_error(
    site: Site, emulator: SiteEmulator
) -> None:
    async with running_proxy("socks5") as proxy:
        wrong = proxy.url.replace(proxy.password, "wrong-pw")
        with pytest.raises(ProviderConnectionError) as caught:
            await site.create_async("", USER_HELLO, proxy=wrong, max_retries=0)
    assert "wrong-pw" not in str(caught.value)
    assert emulator.requests == []


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


@pytest.mark.parametrize("scheme", ["http", "socks5"])
async def test_dead_proxy(
    site: Site, emulator: SiteEmulator, unused_tcp_port: int, scheme: str
) -> None:
    proxy = f"{scheme}://alice:hunter2-secret@127.0.0.1:{unused_tcp_port}"
    with pytest.raises(ProviderConnectionError) as caught:
        await site.create_async("", USER_HELLO, proxy=proxy, max_retries=0)
    text = str(caught.value)
    assert f"127.0.0.1:{unused_tcp_port}" in text
    assert "hunter2-secret" not in text
    assert "hunter2-secret" not in repr(caught.value)


# -- keep-alive across retries: a failed response is closed before the sleep -----------------


async def test_retry_after_an_error_answer_reuses_the_connection(
    site: Site, emulator: SiteEmulator, sleeps: list[float]
) -> None:
    await site.create_async("", USER_HELLO)
    emulator.fail_next(Fault.server_error(500))
    await site.create_async("", USER_HELLO)
    assert emulator.connections == 1


def test_importing_loads_no_http_stack() -> None:
    # importing must not start anything; curl_cffi is loaded lazily
    code = "import sys, chatgpt4o; print('curl_cffi' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert result.stdout.strip() == "False"

