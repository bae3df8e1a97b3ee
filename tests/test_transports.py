"""Transports and their pool: curl_cffi's private API, error mapping, the mock, and both
real transports against the emulator and a loopback proxy."""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from curl_cffi.curl import CurlError
from curl_cffi.requests import AsyncSession
from curl_cffi.requests import exceptions as curl_exceptions

from chatgpt4o import ProviderConnectionError, ProviderTimeoutError, ResponseError
from chatgpt4o import _pool as pool
from chatgpt4o._constants import FALLBACK_USER_AGENT
from chatgpt4o._transports import curl as curl_module
from chatgpt4o._transports import httpx as httpx_module
from chatgpt4o._transports.base import AsyncTransport, Headers
from chatgpt4o._transports.curl import CURL_CFFI_VERSION, CurlTransport, missing_private_api
from chatgpt4o._transports.httpx import HttpxTransport
from chatgpt4o.testing import Fault, MockTransport, Request, Response, SiteEmulator

from .conftest import BACKENDS, chat_fields, sent_headers
from .proxy import running_proxy

SECRET = "hunter2-secret"


def chat_request(emulator: SiteEmulator, *, stream: bool = True, **kwargs: Any) -> Request:
    return Request(
        "POST",
        emulator.ajax_url,
        headers={"content-type": "application/x-www-form-urlencoded"},
        content=urlencode(chat_fields(emulator)).encode(),
        stream=stream,
        **kwargs,
    )


async def read_all(response: Response) -> list[bytes]:
    chunks = []
    while chunk := await response.read_chunk():
        chunks.append(chunk)
    return chunks


@pytest.fixture(params=BACKENDS)
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[AsyncTransport]:
    opened = pool.open_transport(request.param, None, "chrome", True)
    try:
        yield opened
    finally:
        await opened.aclose()


# -- the contract with curl_cffi ----------------------------------------------------------


def test_curl_cffi_still_has_the_private_api_we_use() -> None:
    missing = missing_private_api()
    assert not missing, (
        f"curl_cffi {CURL_CFFI_VERSION} lacks what chatgpt4o/_transports/curl.py relies on: "
        f"{', '.join(missing)}. Pin curl_cffi below this release in pyproject.toml, or "
        "adapt _transports/curl.py to it."
    )


def test_curl_cffi_takes_the_session_options_we_use() -> None:
    try:
        CurlTransport()
    except TypeError as err:  # e.g. discard_cookies, new in 0.11.x
        pytest.fail(
            f"curl_cffi {CURL_CFFI_VERSION} does not take the AsyncSession options "
            f"chatgpt4o/_transports/curl.py passes: {err}"
        )


def test_the_contract_check_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    from curl_cffi.aio import AsyncCurl

    monkeypatch.delattr(AsyncCurl, "set_exception")
    monkeypatch.delattr(curl_exceptions, "code2error")
    assert missing_private_api() == ["AsyncCurl.set_exception", "exceptions.code2error"]


async def test_a_streamed_curl_response_carries_its_task_and_quit_event(
    emulator: SiteEmulator,
) -> None:
    async with AsyncSession() as session:  # type: ignore[type-arg]
        raw = await session.get(emulator.url + "/", stream=True)
        try:
            assert isinstance(raw.astream_task, asyncio.Task), CURL_CFFI_VERSION
            assert isinstance(raw.quit_now, asyncio.Event), CURL_CFFI_VERSION
        finally:
            await raw.aclose()


async def test_our_curl_session_learns_the_handle_a_request_took(emulator: SiteEmulator) -> None:
    transport = CurlTransport()
    claimed: list[Any] = []
    token = curl_module._claimed_handle.set(claimed)
    try:
        response = await transport.send(Request("GET", emulator.url + "/"))
    finally:
        curl_module._claimed_handle.reset(token)
        await transport.aclose()
    assert response.status_code == 200
    assert len(claimed) == 1, f"curl_cffi {CURL_CFFI_VERSION} no longer calls pop_curl"


# -- error mapping: each row, with real exceptions -----------------------------------------

CURL_DOCS = " See https://curl.se/libcurl/c/libcurl-errors.html first for more details."
URL = "https://wp.example/wp-admin/admin-ajax.php?_wpnonce=5e2498d71a"
PROXY = f"http://alice:{SECRET}@127.0.0.1:3128"


@pytest.mark.parametrize(
    ("error", "expected", "words"),
    [
        (curl_exceptions.Timeout("Operation timed out" + CURL_DOCS, 28), ProviderTimeoutError,
         "Timed out talking to"),
        (curl_exceptions.ConnectTimeout("Connection timed out", 28), ProviderTimeoutError,
         "Timed out talking to"),
        (curl_exceptions.ProxyError(f"Could not connect to {PROXY}" + CURL_DOCS, 97),
         ProviderConnectionError, "The proxy http://127.0.0.1:3128 failed"),
        (curl_exceptions.DNSError("Could not resolve host", 6), ProviderConnectionError,
         "Could not reach"),
        (curl_exceptions.SSLError("TLS handshake failed", 35), ProviderConnectionError,
         "Could not reach"),
        (curl_exceptions.RequestException("Recv failure: reset", 56), ProviderConnectionError,
         "Could not reach"),
        # older releases hand mid-stream failures over as the base class, with curl's code
        (curl_exceptions.RequestException("Operation timed out", 28), ProviderTimeoutError,
         "Timed out talking to"),
        (CurlError("Failed in perform" + CURL_DOCS, 56), ProviderConnectionError,
         "Could not reach"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_curl_errors_map_to_ours(
    error: CurlError, expected: type[Exception], words: str
) -> None:
    mapped = curl_module._map_error(error, url=URL, proxy=PROXY)
    assert type(mapped) is expected
    text = str(mapped)
    assert words in text
    assert "curl.se" not in text
    assert SECRET not in text
    assert "5e2498d71a" not in text
    assert "127.0.0.1:3128" in text


def test_curl_impersonate_error_is_a_value_error() -> None:
    error = curl_exceptions.ImpersonateError("Impersonating netscape4 is not supported")
    mapped = curl_module._map_error(error, url=URL, proxy=None)
    assert type(mapped) is ValueError
    assert "netscape4" in str(mapped)


@pytest.mark.parametrize(
    ("error", "expected", "words"),
    [
        (httpx.ConnectTimeout("timed out"), ProviderTimeoutError, "Timed out talking to"),
        (httpx.ReadTimeout("timed out"), ProviderTimeoutError, "Timed out talking to"),
        (httpx.PoolTimeout("no connection free"), ProviderTimeoutError, "Timed out talking to"),
        (httpx.ProxyError(f"{PROXY} refused"), ProviderConnectionError,
         "The proxy http://127.0.0.1:3128 failed"),
        (httpx.ConnectError("refused"), ProviderConnectionError, "Could not reach"),
        (httpx.RemoteProtocolError("peer closed"), ProviderConnectionError, "Could not reach"),
        (httpx.ReadError("reset"), ProviderConnectionError, "Could not reach"),
        (httpx.DecodingError("bad gzip"), ProviderConnectionError, "Could not reach"),
        (httpx.TooManyRedirects("30 of them"), ProviderConnectionError, "Could not reach"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_httpx_errors_map_to_ours(
    error: httpx.HTTPError, expected: type[Exception], words: str
) -> None:
    mapped = httpx_module._map_error(error, url=URL, proxy=PROXY)
    assert type(mapped) is expected
    text = str(mapped)
    assert words in text
    assert SECRET not in text
    assert "5e2498d71a" not in text


def test_an_empty_message_names_the_exception() -> None:
    mapped = httpx_module._map_error(httpx.ReadError(""), url="http://x/", proxy=None)
    assert str(mapped) == "Could not reach http://x/: ReadError"


# -- the mock transport --------------------------------------------------------------------


async def test_mock_transport_with_a_plain_handler() -> None:
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response(
            201, headers={"Content-Type": "text/plain"}, content="héllo", cookies={"a": "1"}
        )

    transport = MockTransport(handler)
    response = await transport.send(Request("GET", "https://wp.example/"))
    assert response.status_code == 201
    assert response.ok
    assert response.url == "https://wp.example/"  # filled in from the request
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["CONTENT-TYPE"] == "text/plain"
    assert response.cookies == {"a": "1"}
    assert await response.aread() == "héllo".encode()
    assert [request.method for request in seen] == ["GET"]


async def test_mock_transport_with_an_async_handler_and_bytes() -> None:
    async def handler(request: Request) -> Response:
        await asyncio.sleep(0)
        return Response(200, content=request.content, url="https://elsewhere/")

    async with MockTransport(handler) as transport:
        response = await transport.send(Request("POST", "https://wp.example/", content=b"\x00x"))
    assert response.url == "https://elsewhere/"
    assert await response.read_chunk() == b"\x00x"
    assert await response.read_chunk() == b""


async def test_mock_transport_refuses_what_is_not_a_response() -> None:
    transport = MockTransport(lambda request: "200 OK")  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match=r"not a chatgpt4o\.testing\.Response"):
        await transport.send(Request("GET", "https://wp.example/"))
    with pytest.raises(TypeError, match="callable"):
        MockTransport("not a function")  # type: ignore[arg-type]


def test_reprs_show_no_secrets() -> None:
    cookie = f"wp_session={SECRET}"

    def handler(request: Request) -> Response:
        return Response(200, headers={"Set-Cookie": cookie}, cookies={"wp_session": SECRET})

    request = Request(
        "POST",
        "https://wp.example/?_wpnonce=5e2498d71a",
        headers={"Cookie": cookie, "Authorization": f"Bearer {SECRET}"},
        content=f"_wpnonce={SECRET}".encode(),
        cookies={"wp_session": SECRET},
    )
    response = handler(request)
    shown = " ".join(
        repr(thing) for thing in (request, response, response.headers, MockTransport(handler))
    )
    assert SECRET not in shown
    assert "5e2498d71a" not in shown
    assert "cookie" in shown  # the header's name is shown, its value is not
    assert repr(Headers({"Set-Cookie": cookie})) == "Headers({'set-cookie': '***'})"


def test_the_testing_package_exports_what_a_handler_needs() -> None:
    import chatgpt4o.testing as testing
    from chatgpt4o._transports import base, mock

    assert testing.Request is base.Request
    assert testing.Response is base.Response
    assert testing.MockTransport is mock.MockTransport
    assert {"MockTransport", "Request", "Response"} <= set(testing.__all__)


def test_response_takes_content_or_stream_not_both() -> None:
    from chatgpt4o._transports.base import _Bytes

    with pytest.raises(TypeError, match="not both"):
        Response(200, content=b"x", stream=_Bytes(b"y"))


async def test_aread_over_max_bytes_raises_and_closes() -> None:
    response = Response(200, content=b"x" * 10)
    with pytest.raises(ResponseError, match="larger than 5 bytes"):
        await response.aread(max_bytes=5)


# -- both transports on loopback -------------------------------------------------------------


async def test_a_page_read_whole(transport: AsyncTransport, emulator: SiteEmulator) -> None:
    emulator.page_cookies = {"wp_visitor": "v1"}
    response = await transport.send(
        Request("GET", emulator.url + "/", cookies={"cf_clearance": "abc"})
    )
    assert response.status_code == 200
    assert response.content is not None  # read whole: the request was not streamed
    assert b"wpaicg-chat-shortcode" in response.content
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["Content-Type"] == response.headers["CONTENT-TYPE"]
    assert response.cookies == {"wp_visitor": "v1"}
    assert response.url == emulator.url + "/"
    assert emulator.requests[-1].cookies == {"cf_clearance": "abc"}
    # no cookie jar: what the site set is not sent back by itself
    await transport.send(Request("GET", emulator.url + "/"))
    assert emulator.requests[-1].cookies == {}


async def test_a_streamed_answer_chunk_by_chunk(
    transport: AsyncTransport, emulator: SiteEmulator
) -> None:
    emulator.stream = True
    emulator.stream_chunks = 4
    emulator.chunk_delay = 0.05
    response = await transport.send(chat_request(emulator))
    assert response.status_code == 200
    assert response.content is None
    chunks = await read_all(response)
    assert len(chunks) > 1
    body = b"".join(chunks)
    assert body.rstrip().endswith(b"data: [DONE]")  # 1.8.85+: nothing follows it
    assert await response.read_chunk() == b""  # and it stays ended
    await response.aclose()


async def test_aborting_a_stream_does_not_wait_for_its_end(
    transport: AsyncTransport, emulator: SiteEmulator
) -> None:
    emulator.stream = True
    emulator.stream_chunks = 30
    emulator.chunk_delay = 1.0  # the whole answer would take 30 s
    started = time.monotonic()
    response = await transport.send(chat_request(emulator))
    assert await response.read_chunk()
    await response.aclose()
    await response.aclose()  # twice is fine
    assert time.monotonic() - started < 1.5
    emulator.stream = False
    again = await transport.send(chat_request(emulator, stream=False))
    assert b'"status":"success"' in await again.aread()


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_cancelled_while_waiting_for_headers_frees_the_connection(
    transport: AsyncTransport, emulator: SiteEmulator, stream: bool
) -> None:
    emulator.fail_next(Fault.stall(30, target="page"), times=70)  # more than 64 handles
    sends = [
        asyncio.create_task(transport.send(Request("GET", emulator.url + "/", stream=stream)))
        for _ in range(70)
    ]
    await asyncio.sleep(0.5)
    started = time.monotonic()
    for send in sends:
        send.cancel()
    results = await asyncio.gather(*sends, return_exceptions=True)
    assert all(isinstance(result, asyncio.CancelledError) for result in results)
    assert time.monotonic() - started < 0.5
    emulator.clear_faults()
    started = time.monotonic()
    response = await transport.send(Request("GET", emulator.url + "/", timeout=5))
    assert response.status_code == 200
    assert time.monotonic() - started < 2


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_the_request_timeout(
    transport: AsyncTransport, emulator: SiteEmulator, stream: bool
) -> None:
    emulator.fail_next(Fault.stall(30, target="page"))
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError, match="Timed out talking to"):
        await transport.send(Request("GET", emulator.url + "/", timeout=1, stream=stream))
    assert time.monotonic() - started < 2


async def test_a_timeout_mid_stream(transport: AsyncTransport, emulator: SiteEmulator) -> None:
    emulator.stream = True
    emulator.fail_next(Fault.stream_stall(after_chunks=1, seconds=30))
    response = await transport.send(chat_request(emulator, timeout=1))
    with pytest.raises(ProviderTimeoutError):
        await read_all(response)
    await response.aclose()


async def test_a_connection_reset_mid_body(
    transport: AsyncTransport, emulator: SiteEmulator
) -> None:
    emulator.fail_next(Fault.reset_after_headers(target="page"))
    response = await transport.send(Request("GET", emulator.url + "/", stream=True))
    with pytest.raises(ProviderConnectionError):
        await read_all(response)
    await response.aclose()


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_a_proxy_refusing_the_password_is_a_connection_error(
    backend: pool.Backend, emulator: SiteEmulator, stream: bool
) -> None:
    async with running_proxy("http") as proxy:
        wrong = proxy.url.replace(proxy.password, "wrong-pw")
        transport = pool.open_transport(backend, wrong, "chrome", True)
        try:
            with pytest.raises(ProviderConnectionError, match="407") as caught:
                await transport.send(Request("GET", emulator.url + "/", stream=stream))
        finally:
            await transport.aclose()
    assert f"The proxy http://127.0.0.1:{proxy.port} refused" in str(caught.value)
    assert "user name and password" in str(caught.value)
    assert "wrong-pw" not in str(caught.value)
    assert proxy.refused_auth == 1


async def test_through_a_proxy_with_credentials(
    backend: pool.Backend, emulator: SiteEmulator
) -> None:
    async with running_proxy("http") as proxy:
        transport = pool.open_transport(backend, proxy.url, "chrome", True)
        try:
            response = await transport.send(Request("GET", emulator.url + "/"))
        finally:
            await transport.aclose()
    assert response.status_code == 200
    assert proxy.tunnels
    assert proxy.refused_auth == 0


async def test_a_dead_proxy_is_named_without_its_password(
    backend: pool.Backend, unused_tcp_port: int
) -> None:
    dead = f"http://alice:{SECRET}@127.0.0.1:{unused_tcp_port}"
    transport = pool.open_transport(backend, dead, "chrome", True)
    try:
        with pytest.raises(ProviderConnectionError) as caught:
            await transport.send(Request("GET", "http://127.0.0.1:9/", timeout=5))
    finally:
        await transport.aclose()
    assert f"127.0.0.1:{unused_tcp_port}" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(transport)


async def test_the_environment_proxy_is_ignored(
    backend: pool.Backend, emulator: SiteEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    transport = pool.open_transport(backend, None, "chrome", True)
    try:
        response = await transport.send(Request("GET", emulator.url + "/", timeout=5))
    finally:
        await transport.aclose()
    assert response.status_code == 200
    # nor does no_proxy send around the proxy the caller chose
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    async with running_proxy("http") as proxy:
        transport = pool.open_transport(backend, proxy.url, "chrome", True)
        try:
            await transport.send(Request("GET", emulator.url + "/", timeout=5))
        finally:
            await transport.aclose()
    assert proxy.tunnels


async def test_user_agents(transport: AsyncTransport, emulator: SiteEmulator) -> None:
    await transport.send(Request("GET", emulator.url + "/"))
    sent = sent_headers(emulator, "User-Agent")
    if isinstance(transport, HttpxTransport):
        assert sent == [FALLBACK_USER_AGENT]
    else:
        assert len(sent) == 1
        assert "Chrome/" in sent[0]  # the impersonated browser's own
    await transport.send(Request("GET", emulator.url + "/", headers={"User-Agent": "mine/1"}))
    assert sent_headers(emulator, "User-Agent") == ["mine/1"]


async def test_redirects_follow_or_not(
    transport: AsyncTransport, emulator: SiteEmulator
) -> None:
    moved = {"Location": emulator.url + "/?moved=1"}
    emulator.fail_next(Fault.status(301, headers=moved, target="page"), times=2)
    response = await transport.send(Request("GET", emulator.url + "/", follow_redirects=False))
    assert response.status_code == 301
    assert response.headers["location"] == moved["Location"]
    response = await transport.send(Request("GET", emulator.url + "/"))
    assert response.status_code == 200
    assert response.url == emulator.url + "/?moved=1"


async def test_curl_refuses_a_body_over_the_download_limit(
    emulator: SiteEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(curl_module, "MAX_DOWNLOAD_BYTES", 1024)
    emulator.page_padding = 8192
    transport = CurlTransport()
    try:
        with pytest.raises(ProviderConnectionError, match="Could not reach"):
            await transport.send(Request("GET", emulator.url + "/"))
    finally:
        await transport.aclose()


def test_curl_transport_settings() -> None:
    transport = CurlTransport(impersonate="chrome")
    client = transport._client
    assert transport.owns_client
    assert client.max_clients == 64
    assert client.trust_env is False
    assert client.discard_cookies is True
    expected = {curl_module.CurlOpt.MAXFILESIZE_LARGE: curl_module.MAX_DOWNLOAD_BYTES}
    if curl_module._ENVIRONMENT_PROXY_LEAKS:  # curl_cffi < 0.17 needs these on every request
        expected |= {curl_module.CurlOpt.NOPROXY: "", curl_module.CurlOpt.PROXY: ""}
    assert client.curl_options == expected
    proxied = CurlTransport(proxy="http://127.0.0.1:3128")._client
    assert curl_module.CurlOpt.PROXY not in proxied.curl_options


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "whole"])
async def test_closing_the_curl_transport_under_a_request(
    emulator: SiteEmulator, stream: bool
) -> None:
    emulator.fail_next(Fault.stall(3, target="page"))
    transport = CurlTransport()
    sending = asyncio.create_task(
        transport.send(Request("GET", emulator.url + "/", stream=stream))
    )
    await asyncio.sleep(0.3)
    await transport.aclose()
    with pytest.raises(ProviderConnectionError, match="session was closed"):
        await sending


async def test_a_bad_browser_profile_is_a_value_error(emulator: SiteEmulator) -> None:
    transport = CurlTransport(impersonate="netscape4")
    try:
        with pytest.raises(ValueError, match="impersonate"):
            await transport.send(Request("GET", emulator.url + "/"))
    finally:
        await transport.aclose()
    assert emulator.requests == []


def test_socks_on_httpx_needs_socksio(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "socksio" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ImportError, match=r"pip install 'httpx\[socks\]'"):
        HttpxTransport(proxy="socks5://127.0.0.1:1080")
    HttpxTransport(proxy="http://127.0.0.1:1080")  # only SOCKS needs it


# -- a user's own clients: used as they are, never closed ------------------------------------


async def test_a_users_curl_session_is_used_and_left_open(emulator: SiteEmulator) -> None:
    async with AsyncSession() as session:  # type: ignore[type-arg]
        transport = pool.wrap_client(session)
        assert isinstance(transport, CurlTransport)
        assert not transport.owns_client
        whole = await transport.send(Request("GET", emulator.url + "/"))
        streamed = await transport.send(Request("GET", emulator.url + "/", stream=True))
        assert b"wpaicg" in b"".join(await read_all(streamed))
        await streamed.aclose()
        await transport.aclose()
        assert whole.status_code == 200
        assert (await session.get(emulator.url + "/")).status_code == 200  # still open


async def test_a_users_httpx_client_is_used_and_left_open(emulator: SiteEmulator) -> None:
    seen: list[str] = []

    async def hook(request: httpx.Request) -> None:
        seen.append(request.method)

    async with httpx.AsyncClient(event_hooks={"request": [hook]}) as client:
        transport = pool.wrap_client(client)
        assert isinstance(transport, HttpxTransport)
        response = await transport.send(Request("GET", emulator.url + "/"))
        await transport.aclose()
        assert not client.is_closed
    assert response.status_code == 200
    assert seen == ["GET"]


def test_wrap_client_takes_only_clients_and_transports() -> None:
    mock = MockTransport(lambda request: Response(204))
    assert pool.wrap_client(mock) is mock
    with pytest.raises(TypeError, match="client must be a curl_cffi"):
        pool.wrap_client(object())
    with pytest.raises(TypeError, match="not dict"):
        pool.wrap_client({})


# -- TLS with a CA of the site's own -----------------------------------------------------------

trustme = pytest.importorskip("trustme")


async def test_a_ca_bundle_path_for_verify(backend: pool.Backend, tmp_path: Path) -> None:
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    async with SiteEmulator(ssl_context=context) as site:
        trusting = pool.open_transport(backend, None, "chrome", str(bundle))
        doubting = pool.open_transport(backend, None, "chrome", True)
        try:
            assert (await trusting.send(Request("GET", site.url + "/"))).status_code == 200
            with pytest.raises(ProviderConnectionError):
                await doubting.send(Request("GET", site.url + "/"))
        finally:
            await trusting.aclose()
            await doubting.aclose()


# -- the pool ----------------------------------------------------------------------------------


async def test_one_shared_transport_per_settings() -> None:
    first = await pool.transport_for("curl_cffi", None, "chrome", True)
    assert await pool.transport_for("curl_cffi", None, "chrome", True) is first
    other = await pool.transport_for("curl_cffi", "http://127.0.0.1:9", "chrome", True)
    assert other is not first
    assert await pool.transport_for("httpx", None, "chrome", True) is not first
    assert pool.shared_session_count() == 3
    await pool.aclose_shared_sessions()
    assert pool.shared_session_count() == 0
    assert first._closed  # type: ignore[attr-defined]
    assert await pool.transport_for("curl_cffi", None, "chrome", True) is not first


async def test_a_scope_has_transports_of_its_own() -> None:
    shared = await pool.transport_for("httpx", None, "chrome", True)
    async with pool.session_scope() as scope:
        inside = await pool.transport_for("httpx", None, "chrome", True)
        in_task = await asyncio.create_task(pool.transport_for("httpx", None, "chrome", True))
        assert inside is in_task is not shared
        assert len(scope) == 1
        assert "1 open" in repr(scope)
    assert scope.closed
    assert len(scope) == 0
    with pytest.raises(RuntimeError, match="closed"):
        scope.transport("httpx", None, "chrome", True)
    assert await pool.transport_for("httpx", None, "chrome", True) is shared


def test_the_loops_transports_close_when_asyncio_run_ends() -> None:
    held: list[Any] = []

    async def main() -> None:
        held.append(await pool.transport_for("curl_cffi", None, "chrome", True))
        held.append(await pool.transport_for("httpx", None, "chrome", True))
        held.append(await pool.loop_local(main, dict))
        assert await pool.loop_local(main, dict) is held[2]
        assert len(asyncio.all_tasks()) == 1  # the hook is a parked generator, not a task

    asyncio.run(main())
    curl, httpx_transport, _ = held
    assert curl._closed
    assert httpx_transport._client.is_closed


def test_picking_a_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    assert pool.pick_backend(None) == "curl_cffi"
    assert pool.pick_backend("httpx") == "httpx"
    with pytest.raises(ValueError, match="backend must be one of"):
        pool.pick_backend("requests")
    monkeypatch.setitem(sys.modules, "curl_cffi", None)  # makes `import curl_cffi` fail
    assert pool.pick_backend(None) == "httpx"
    with pytest.raises(ImportError, match="pip install curl_cffi"):
        pool.pick_backend("curl_cffi")
    monkeypatch.setitem(sys.modules, "httpx", None)
    with pytest.raises(ImportError, match="needs curl_cffi \\(or httpx\\)"):
        pool.pick_backend(None)


async def test_a_clients_backend() -> None:
    async with httpx.AsyncClient() as client:
        assert pool.pick_backend("curl_cffi", client) == "httpx"
    session: AsyncSession = AsyncSession()  # type: ignore[type-arg]
    assert pool.backend_of(session) == "curl_cffi"
    await session.close()


async def test_new_transports_are_logged_without_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="chatgpt4o")
    transport = pool.open_transport("httpx", f"http://alice:{SECRET}@127.0.0.1:3128", "x", True)
    await transport.aclose()
    assert "new httpx transport" in caplog.text
    assert "127.0.0.1:3128" in caplog.text
    assert SECRET not in caplog.text
