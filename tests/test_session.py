"""StreamSession and StreamResponse, g4f's shape on our transports: every request option
and every way to read an answer, on the emulator with both backends."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from chatgpt4o import HTTPStatusError, ProviderTimeoutError, ResponseError, StreamSession
from chatgpt4o._pool import Backend, session_scope, shared_session_count
from chatgpt4o._session import StreamResponse, _with_params
from chatgpt4o.testing import Fault, MockTransport, Request, Response, SiteEmulator
from chatgpt4o.testing._emulator import default_reply

from .conftest import BACKENDS, chat_fields, sent_headers


@pytest.fixture(params=BACKENDS)
async def session(request: pytest.FixtureRequest) -> AsyncIterator[StreamSession]:
    async with StreamSession(backend=request.param, timeout=10) as opened:
        yield opened


def mocked(*answers: Response) -> StreamSession:
    """A session whose requests get `answers`, one after another."""
    queue = list(answers)
    return StreamSession(transport=MockTransport(lambda request: queue.pop(0)))


# -- requests --------------------------------------------------------------------------------


async def test_a_page_as_a_context_manager(session: StreamSession, emulator: SiteEmulator) -> None:
    emulator.page_cookies = {"wp_visitor": "v1"}
    async with session.get(emulator.url + "/") as response:
        assert isinstance(response, StreamResponse)
        assert response.status == response.status_code == 200
        assert response.ok
        assert response.url == emulator.url + "/"
        assert response.headers["Content-Type"] == response.headers["content-type"]
        assert response.cookies == {"wp_visitor": "v1"}
        assert "wpaicg-chat-shortcode" in await response.text()
        assert repr(response) == "<StreamResponse [200]>"


async def test_awaiting_a_request(session: StreamSession, emulator: SiteEmulator) -> None:
    response = await session.get(emulator.url + "/")
    assert response.raise_for_status() is response
    assert "wpaicg" in await response.text()
    response = await session.send("GET", emulator.url + "/missing")
    assert response.status_code == 404
    assert not response.ok
    with pytest.raises(HTTPStatusError, match="404") as caught:
        response.raise_for_status()
    assert caught.value.status_code == 404


async def test_a_form_post_with_data(session: StreamSession, emulator: SiteEmulator) -> None:
    fields = chat_fields(emulator, "Привет!")
    async with session.post(emulator.ajax_url, data=fields) as response:
        answer = await response.json()
    assert answer["status"] == "success"
    assert answer["data"] == default_reply("Привет!")
    sent = emulator.requests[-1]
    assert sent.form == fields
    assert sent.headers["Content-Type"] == "application/x-www-form-urlencoded"


async def test_a_json_post(session: StreamSession, emulator: SiteEmulator) -> None:
    response = await session.post(emulator.ajax_url, json={"message": "héllo", "n": [1, 2]})
    assert response.status == 400  # the plugin reads forms only
    assert await response.text() == "0"
    sent = emulator.requests[-1]
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.raw_body == '{"message":"héllo","n":[1,2]}'.encode()


@pytest.mark.parametrize("body", [b"raw\x00bytes", "plain text é"])
async def test_a_raw_body(
    session: StreamSession, emulator: SiteEmulator, body: bytes | str
) -> None:
    await session.post(
        emulator.url + "/missing", data=body, headers={"content-type": "text/plain"}
    )
    sent = emulator.requests[-1]
    assert sent.raw_body == (body.encode() if isinstance(body, str) else body)
    assert sent_headers(emulator, "Content-Type") == ["text/plain"]


async def test_bad_bodies_fail_before_io() -> None:
    session = mocked()
    with pytest.raises(TypeError, match="not both"):
        await session.post("https://wp.example/", data={"a": "1"}, json={"a": 1})
    with pytest.raises(TypeError, match="data must be"):
        await session.post("https://wp.example/", data=42)  # type: ignore[arg-type]


async def test_params_join_the_query(session: StreamSession, emulator: SiteEmulator) -> None:
    await session.get(emulator.url + "/?a=1", params={"b": "x y&z", "c": ["1", "2"]})
    sent = emulator.requests[-1]
    assert sent.path == "/"
    assert sent.query == {"a": "1", "b": "x y&z", "c": "2"}  # the emulator keeps the last c


def test_params_keep_the_fragment_and_take_pairs() -> None:
    assert _with_params("http://h/p?a=1#top", [("b", "2"), ("b", "3")]) == (
        "http://h/p?a=1&b=2&b=3#top"
    )
    assert _with_params("http://h/p", {"q": "ü"}) == "http://h/p?q=%C3%BC"
    assert _with_params("http://h/p", {}) == "http://h/p"


async def test_request_headers_override_the_sessions_whatever_their_case(
    backend: Backend, emulator: SiteEmulator
) -> None:
    session = StreamSession(backend=backend, headers={"Accept": "text/html", "X-One": "1"})
    await session.get(emulator.url + "/", headers={"accept": "application/json"})
    assert sent_headers(emulator, "Accept") == ["application/json"]
    assert sent_headers(emulator, "X-One") == ["1"]


async def test_request_cookies_join_the_sessions(backend: Backend, emulator: SiteEmulator) -> None:
    session = StreamSession(backend=backend, cookies={"a": "1", "b": "2"})
    await session.get(emulator.url + "/", cookies={"b": "3"})
    assert emulator.requests[-1].cookies == {"a": "1", "b": "3"}
    await session.get(emulator.url + "/")
    assert emulator.requests[-1].cookies == {"a": "1", "b": "2"}


async def test_timeouts(backend: Backend, emulator: SiteEmulator) -> None:
    emulator.fail_next(Fault.stall(30, target="page"), times=2)
    session = StreamSession(backend=backend, timeout=1)
    started = time.monotonic()
    with pytest.raises(ProviderTimeoutError):
        await session.get(emulator.url + "/")
    with pytest.raises(ProviderTimeoutError):
        await StreamSession(backend=backend).get(emulator.url + "/", timeout=1)
    assert time.monotonic() - started < 4


async def test_redirects(session: StreamSession, emulator: SiteEmulator) -> None:
    moved = {"Location": emulator.url + "/?moved=1"}
    emulator.fail_next(Fault.status(301, headers=moved, target="page"), times=2)
    response = await session.get(emulator.url + "/", allow_redirects=False)
    assert response.status == 301
    assert response.headers["location"] == moved["Location"]
    response = await session.get(emulator.url + "/")
    assert response.status == 200
    assert response.url == moved["Location"]


async def test_other_methods(session: StreamSession, emulator: SiteEmulator) -> None:
    for send in (session.put, session.patch, session.delete, session.head):
        assert (await send(emulator.url + "/missing")).status == 404
    assert (await session.request("get", emulator.url + "/")).ok
    assert [r.method for r in emulator.requests] == ["PUT", "PATCH", "DELETE", "HEAD", "GET"]


# -- reading a streamed answer -----------------------------------------------------------------


@pytest.fixture
def streaming(emulator: SiteEmulator) -> SiteEmulator:
    emulator.stream = True
    emulator.stream_chunks = 5
    emulator.chunk_delay = 0.02  # each event arrives on its own
    return emulator


async def test_sse_on_a_streamed_answer(session: StreamSession, streaming: SiteEmulator) -> None:
    async with session.post(
        streaming.ajax_url, data=chat_fields(streaming, "Привет!"), stream=True
    ) as response:
        events = [event async for event in response.sse()]
    text = "".join(event["choices"][0]["delta"].get("content", "") for event in events)
    assert text == default_reply("Привет!")
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert events[-1]["choices"][0]["finish_reason"] == "stop"  # [DONE] ended it


async def test_iter_lines_on_a_streamed_answer(
    session: StreamSession, streaming: SiteEmulator
) -> None:
    async with session.post(streaming.ajax_url, data=chat_fields(streaming), stream=True) as r:
        lines = [line async for line in r.iter_lines()]
    data = [line for line in lines if line.startswith(b"data: ")]
    assert data[-1] == b"data: [DONE]"
    assert lines[-1] == b""  # the blank line that ends the last event; nothing follows
    assert not any(line.endswith(b"\n") for line in lines)


async def test_aiter_bytes_and_iter_content(
    session: StreamSession, streaming: SiteEmulator
) -> None:
    async with session.post(streaming.ajax_url, data=chat_fields(streaming), stream=True) as r:
        pieces = [chunk async for chunk in r.aiter_bytes()]
    assert len(pieces) > 1
    whole = b"".join(pieces)
    async with session.post(streaming.ajax_url, data=chat_fields(streaming), stream=True) as r:
        sized = [chunk async for chunk in r.iter_content(chunk_size=7)]
    assert all(len(chunk) == 7 for chunk in sized[:-1])
    assert 1 <= len(sized[-1]) <= 7
    async with session.post(streaming.ajax_url, data=chat_fields(streaming), stream=True) as r:
        as_delivered = [chunk async for chunk in r.iter_content()]
    for body in (b"".join(sized), b"".join(as_delivered)):
        # the same answer but for the stream's id and timestamps
        assert body.count(b"data: ") == whole.count(b"data: ")
        assert body.endswith(whole[-40:])


async def test_leaving_a_slow_stream_early_ends_it_at_once(
    session: StreamSession, emulator: SiteEmulator
) -> None:
    emulator.stream = True
    emulator.stream_chunks = 30
    emulator.chunk_delay = 1.0
    started = time.monotonic()
    async with session.post(emulator.ajax_url, data=chat_fields(emulator), stream=True) as r:
        async for _ in r.sse():
            break
    assert time.monotonic() - started < 1.5


async def test_text_and_json_read_a_stream_whole(
    session: StreamSession, streaming: SiteEmulator
) -> None:
    async with session.get(streaming.url + "/", stream=True) as response:
        assert "wpaicg" in await response.text()
    async with session.post(streaming.ajax_url, data=chat_fields(streaming), stream=True) as r:
        body = await r.aread()
    assert body.startswith(b"data: ")


async def test_a_body_read_whole_is_still_iterable() -> None:
    session = mocked(Response(200, content=b"one\ntwo"))
    response = await session.get("https://wp.example/")
    assert await response.aread() == b"one\ntwo"
    assert [chunk async for chunk in response.aiter_bytes()] == [b"one\ntwo"]
    assert [line async for line in response.iter_lines()] == [b"one", b"two"]


# -- reading, with a mock transport -------------------------------------------------------------


async def test_sse_skips_what_is_not_json_data() -> None:
    body = (
        ": a comment\r\n"
        "event: delta\r\n"
        'data: {"a": 1}\r\n\r\n'
        "data: not json\n\n"
        'data:{"b": 2}\n\n'
        "data: [DONE]\n\n"
        'data: {"after": "done"}\n\n'
    )
    async with mocked(Response(200, content=body)).get("https://wp.example/") as response:
        assert [event async for event in response.sse()] == [{"a": 1}, {"b": 2}]


async def test_iter_lines_strips_crlf_and_keeps_a_last_line() -> None:
    response = await mocked(Response(200, content=b"a\r\nb\n\nc\r")).get("https://wp.example/")
    assert [line async for line in response.iter_lines()] == [b"a", b"b", b"", b"c"]


async def test_text_follows_the_charset() -> None:
    latin = Response(200, headers={"Content-Type": "text/plain; charset=ISO-8859-1"},
                     content="café".encode("latin-1"))
    unknown = Response(200, headers={"Content-Type": "text/plain; charset=x-nonsense"},
                       content="café")
    session = mocked(latin, unknown, Response(200, content=b"caf\xe9"))
    response = await session.get("https://wp.example/")
    assert response.encoding == "iso8859-1"
    assert await response.text() == "café"
    response = await session.get("https://wp.example/")
    assert response.encoding == "utf-8"
    assert await response.text() == "café"
    response = await session.get("https://wp.example/")
    assert await response.text() == "caf\ufffd"
    assert await response.text("latin-1") == "café"


async def test_json_passes_options_on() -> None:
    from decimal import Decimal

    response = await mocked(Response(200, content='{"x": 1.5}')).get("https://wp.example/")
    assert await response.json(parse_float=Decimal) == {"x": Decimal("1.5")}


async def test_iter_content_checks_its_size() -> None:
    response = await mocked(Response(200, content=b"abc")).get("https://wp.example/")
    with pytest.raises(ValueError, match="at least 1"):
        [chunk async for chunk in response.iter_content(chunk_size=0)]


async def test_aread_with_a_limit() -> None:
    response = await mocked(Response(200, content=b"x" * 100)).get("https://wp.example/")
    with pytest.raises(ResponseError, match="larger than 10 bytes"):
        await response.aread(max_bytes=10)


async def test_what_the_transport_is_handed() -> None:
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response(200)

    session = StreamSession(
        transport=MockTransport(handler),
        headers={"X-Session": "1"},
        cookies={"a": "1"},
        timeout=30,
    )
    await session.post("https://wp.example/p", params={"q": "1"}, data={"f": "ü"}, timeout=5)
    await session.get("https://wp.example/", stream=True, allow_redirects=False)
    post, get = seen
    assert (post.method, post.url) == ("POST", "https://wp.example/p?q=1")
    assert post.content == b"f=%C3%BC"
    assert post.headers == {
        "X-Session": "1",
        "content-type": "application/x-www-form-urlencoded",
    }
    assert post.cookies == {"a": "1"}
    assert (post.timeout, post.stream, post.follow_redirects) == (5, False, True)
    assert (get.content, get.timeout, get.stream, get.follow_redirects) == (None, 30, True, False)


# -- the session itself --------------------------------------------------------------------------


async def test_a_closed_session_refuses_requests(emulator: SiteEmulator) -> None:
    async with StreamSession() as session:
        await session.get(emulator.url + "/")
    assert session.closed
    assert shared_session_count() == 1  # the shared transport stays with the loop
    with pytest.raises(RuntimeError, match="closed"):
        await session.get(emulator.url + "/")


async def test_sessions_share_the_loops_transport(emulator: SiteEmulator) -> None:
    for _ in range(3):
        await StreamSession().get(emulator.url + "/")
    assert shared_session_count() == 1
    assert emulator.connections == 1
    async with session_scope() as scope:
        await StreamSession().get(emulator.url + "/")
        assert len(scope) == 1
    assert shared_session_count() == 1


async def test_a_users_client_or_transport(emulator: SiteEmulator) -> None:
    async with httpx.AsyncClient() as client:
        session = StreamSession(client=client, backend="curl_cffi")
        assert session.backend == "httpx"  # the client decides
        assert (await session.get(emulator.url + "/")).ok
        await session.close()
        assert not client.is_closed
    session = StreamSession(transport=MockTransport(lambda request: Response(418)))
    assert session.backend is None
    assert (await session.get(emulator.url + "/")).status == 418
    assert emulator.requests == [emulator.requests[0]]  # the mock made no request
    with pytest.raises(TypeError, match="not both"):
        StreamSession(client=httpx.AsyncClient(), transport=MockTransport(lambda r: Response(200)))
    with pytest.raises(TypeError, match="must be an AsyncTransport"):
        StreamSession(transport=object())  # type: ignore[arg-type]


def test_proxies_as_requests_spells_them() -> None:
    session = StreamSession(proxies={"https": "http://127.0.0.1:1", "http": "http://127.0.0.1:2"})
    assert session.proxy == "http://127.0.0.1:1"
    assert StreamSession(proxies={"all": "socks5://127.0.0.1:3"}).proxy == "socks5://127.0.0.1:3"


def test_session_repr_hides_the_proxy_password() -> None:
    session = StreamSession(proxy="http://alice:hunter2@127.0.0.1:8080")
    assert "hunter2" not in repr(session)
    assert "127.0.0.1:8080" in repr(session)


def test_falls_back_to_httpx_without_curl_cffi(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "curl_cffi", None)  # makes `import curl_cffi` fail
    assert StreamSession().backend == "httpx"
    with pytest.raises(ImportError, match="pip install curl_cffi"):
        StreamSession(backend="curl_cffi")


def test_bad_backend_and_client_fail_before_io() -> None:
    with pytest.raises(ValueError, match="backend must be one of"):
        StreamSession(backend="requests")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="client must be"):
        StreamSession(client=object())


def test_socks_proxy_on_httpx_needs_socksio(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "socksio" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    with pytest.raises(ImportError, match="httpx\\[socks\\]"):
        StreamSession(backend="httpx", proxy="socks5://127.0.0.1:1080")


async def test_cancelling_a_request_is_prompt(backend: Backend, emulator: SiteEmulator) -> None:
    emulator.fail_next(Fault.stall(30, target="page"))
    task = asyncio.create_task(StreamSession(backend=backend).get(emulator.url + "/"))
    await asyncio.sleep(0.3)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.monotonic() - started < 0.5


async def test_a_mock_transport_passed_as_client_stands_in_for_the_site() -> None:
    from chatgpt4o import Chatgpt4o

    page = (
        '<div class="wpaicg-chat-shortcode" data-nonce="5e2498d71a" data-post-id="11" '
        'data-url="https://wp.example" data-bot-id="0" data-type="shortcode"></div>'
    )
    seen: list[str] = []

    def handler(request: Request) -> Response:
        seen.append(f"{request.method} {request.url}")
        if request.method == "GET":
            return Response(200, headers={"Content-Type": "text/html"}, content=page)
        return Response(
            200,
            headers={"Content-Type": "application/json"},
            content='{"status":"success","data":"Hi from the mock"}',
        )

    site = Chatgpt4o.for_site("https://wp.example")
    site.reset_cache()
    messages = [{"role": "user", "content": "hi"}]
    reply = await site.create_async("", messages, client=MockTransport(handler))
    assert reply == "Hi from the mock"
    assert seen == ["GET https://wp.example/", "POST https://wp.example/wp-admin/admin-ajax.php"]
