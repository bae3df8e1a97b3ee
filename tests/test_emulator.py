"""Tests of chatgpt4o.testing, the chatgpt4o.one emulator, on the wire (aiohttp client)."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import os
import re
import signal
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDictProxy

from chatgpt4o.testing import EmulatorThread, Fault, RecordedRequest, SiteEmulator, make_nonce
from chatgpt4o.testing._emulator import default_reply
from chatgpt4o.testing._nonces import IMAGE_NONCE_ACTION, nonce_tick
from chatgpt4o.testing._php import php_json, sanitize_text_field

from .emulator_process import emulator_process

# The plugin is a pytest11 entry point once chatgpt4o is installed; register it here only
# when it is not loaded already (registering a module twice is an error).
if "chatgpt4o.testing.pytest_plugin" not in sys.modules:
    pytest_plugins = ["chatgpt4o.testing.pytest_plugin"]

ACTION = "wpaicg_chat_shortcode_message"
DAY_HALF = 43200


# helpers ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The emulator must never make aiohttp log an error, whatever the fault."""
    caplog.set_level(logging.WARNING, logger="aiohttp")
    yield
    errors = [r for r in caplog.records if r.name.startswith("aiohttp") and r.levelno >= 40]
    assert not errors, [r.getMessage() for r in errors]


@pytest.fixture
async def emu() -> AsyncIterator[SiteEmulator]:
    async with SiteEmulator() as emulator:
        yield emulator


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def chat_form(emu: SiteEmulator, message: str = "Hi", **extra: str) -> dict[str, str]:
    form = {
        "action": ACTION,
        "_wpnonce": emu.current_nonce(),
        "post_id": "11",
        "url": emu.url,
        "bot_id": "0",
        "message": message,
        "chatbot_identity": "shortcode",
    }
    form.update(extra)
    return form


async def post(
    session: aiohttp.ClientSession, emu: SiteEmulator, message: str = "Hi", **extra: Any
) -> tuple[int, CIMultiDictProxy[str], bytes]:
    headers = extra.pop("headers", None)
    async with session.post(
        emu.ajax_url, data=chat_form(emu, message, **extra), headers=headers
    ) as response:
        return response.status, response.headers, await response.read()


async def post_json(
    session: aiohttp.ClientSession, emu: SiteEmulator, message: str = "Hi", **extra: Any
) -> Any:
    status, headers, body = await post(session, emu, message, **extra)
    assert status == 200
    assert headers["Content-Type"] == "application/json; charset=UTF-8"
    return json.loads(body)


async def get_page(session: aiohttp.ClientSession, emu: SiteEmulator) -> str:
    async with session.get(emu.url + "/") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "text/html; charset=UTF-8"
        return await response.text()


def parse_stream(text: str) -> tuple[list[str], str]:
    """Split an answer into its ``data:`` payloads and what follows them."""
    events = []
    rest = text
    while rest.startswith("data: "):
        event, _, rest = rest.partition("\n\n")
        events.append(event[len("data: ") :])
    return events, rest


def stream_text(events: list[str]) -> str:
    text = []
    for event in events:
        if event.startswith("{"):
            for choice in json.loads(event)["choices"]:
                text.append(choice["delta"].get("content", ""))
    return "".join(text)


def _seconds(total: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=total)


def attribute(page: str, name: str) -> str | None:
    """A tolerant widget attribute reader (quoted, single-quoted, unquoted, spaced ``=``)."""
    match = re.search(rf"""\s{re.escape(name)}\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>"']+))""", page)
    if match is None:
        return None
    return next(group for group in match.groups() if group is not None)


# the page -----------------------------------------------------------------------------


async def test_standard_page_has_the_protocol_markup(
    emu: SiteEmulator, session: aiohttp.ClientSession
) -> None:
    page = await get_page(session, emu)
    nonce = emu.current_nonce()
    assert re.fullmatch(r"[0-9a-f]{10}", nonce)
    widget = f"""<div class="wpaicg-chat-shortcode"
     data-user-bg-color="#ccf5e1"
     data-ai-name="AI"
     data-nonce="{nonce}"
     data-post-id="11"
     data-url="{emu.url}"
     data-bot-id="0"
     data-typewriter-effect = "0"
     data-openai_stream_nav="0"
     data-memory-limit = "10"
     data-type="shortcode"
>"""
    assert widget in page
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    params = re.search(r"var wpaicgParams = (\{.*?\});", page)
    assert params is not None
    assert json.loads(params.group(1))["search_nonce"] == nonce
    escaped_url = emu.url.replace("/", "\\/")
    assert f'"ajax_url":"{escaped_url}\\/wp-admin\\/admin-ajax.php"' in params.group(1)
    image = re.search(r'id="wpaicg-img-nonce"[^>]*value="([0-9a-f]{10})"', page)
    assert image is not None
    assert image.group(1) == emu.current_image_nonce() != nonce
    assert page.index("wpaicg-img-nonce") < page.index("data-nonce")
    rest = re.search(r'"nonce":"([0-9a-f]{10})"', page)
    assert rest is not None
    assert rest.group(1) != nonce
    assert emu.page_loads == 1


@pytest.mark.parametrize(
    ("variant", "post_id"),
    [
        ("standard", "11"),
        ("minified", "11"),
        ("single_quoted", "11"),
        ("params_only", None),
        ("post_id_bug", "<11"),
        ("no_post_id", None),
        ("no_nonce", "11"),
        ("two_widgets", "11"),
        ("reordered", "11"),
    ],
)
async def test_page_variants(
    emu: SiteEmulator, session: aiohttp.ClientSession, variant: str, post_id: str | None
) -> None:
    emu.page_variant = variant
    emu.post_id = 11
    page = await get_page(session, emu)
    nonce = emu.current_nonce()
    assert attribute(page, "data-post-id") == post_id
    widget_nonce = attribute(page, "data-nonce")
    if variant in ("params_only", "no_nonce"):
        assert widget_nonce is None
    else:
        assert widget_nonce == nonce
    assert ("search_nonce" in page) == (variant != "no_nonce")
    if variant == "no_nonce":
        assert nonce not in page
    else:
        assert f'"search_nonce":"{nonce}"' in page
    hints = ["postid-11", "/?p=11'", 'id="post-11"']
    for hint in hints:
        assert (hint in page) == (variant == "params_only")
    if variant == "no_post_id":
        assert not re.search(r"(?<![\w:.#-])11(?!\w)", page.replace(emu.url, ""))
    assert f'value="{emu.current_image_nonce()}"' in page


async def test_variant_specifics(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    nonce = emu.current_nonce()
    emu.page_variant = "minified"
    page = await get_page(session, emu)
    assert "\n" not in page
    assert f"data-nonce={nonce} data-post-id=11 data-url={emu.url} " in page
    emu.page_variant = "single_quoted"
    page = await get_page(session, emu)
    assert f"     data-nonce='{nonce}'\n" in page
    emu.page_variant = "reordered"
    page = await get_page(session, emu)
    tag = re.search(r"<div data-type=\"shortcode\"[^>]*>", page)
    assert tag is not None
    assert tag.group().index("data-bot-id") < tag.group().index("class=")
    assert 'data-nonce-refresh="0"' in tag.group()
    emu.page_variant = "two_widgets"
    emu.bot_id = 0
    page = await get_page(session, emu)
    bots = re.findall(r'data-bot-id="(\d+)"', page)
    assert bots == ["5", "0"]
    assert page.count(f'data-nonce="{nonce}"') == 2
    emu.page_variant = "standard"
    emu.stream = True
    emu.widget = "widget"
    page = await get_page(session, emu)
    assert '<div class="wpaicg-chatbox wpaicg-chatbox-bottom-right"' in page
    assert 'data-type="widget"' in page
    assert 'data-openai_stream_nav="1"' in page
    with pytest.raises(ValueError, match="page_variant"):
        emu.page_variant = "fancy"
    with pytest.raises(ValueError, match="widget"):
        emu.widget = "popup"
    with pytest.raises(ValueError, match="plugin version"):
        emu.plugin_version = "latest"


async def test_page_padding_and_cache(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    plain = len(await get_page(session, emu))
    emu.page_padding = 20 * 1024 * 1024
    started = time.perf_counter()
    async with session.get(emu.url + "/") as response:
        body = await response.read()
    first = time.perf_counter() - started
    assert len(body) >= plain + 20 * 1024 * 1024
    assert body.index(b"wpaicgParams") > 20 * 1024 * 1024
    assert body.index(b"data-nonce") > 20 * 1024 * 1024
    started = time.perf_counter()
    async with session.get(emu.url + "/") as response:
        assert await response.read() == body
    assert first < 5
    assert time.perf_counter() - started < 5


async def test_page_cookies_and_404(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    emu.page_cookies = {"wpaicg_chat_client_id": "abc", "pll_language": "en"}
    async with session.get(emu.url + "/") as response:
        assert response.cookies["pll_language"].value == "en"
        assert response.cookies["wpaicg_chat_client_id"]["path"] == "/"
    async with session.get(emu.url + "/missing/") as response:
        assert response.status == 404
        assert "This page doesn't seem to exist." in await response.text()
    assert emu.page_loads == 1


# nonces -------------------------------------------------------------------------------


def test_make_nonce_is_wordpress_formula() -> None:
    import hashlib
    import hmac

    digest = hmac.new(b"k", b"7|wpaicg-chatbox|0|", hashlib.md5).hexdigest()
    assert make_nonce(b"k", 7) == digest[-12:-2]
    assert nonce_tick(DAY_HALF) == 1
    assert nonce_tick(DAY_HALF + 0.5) == 2


async def test_nonce_lifetime_rotation_and_decoys(session: aiohttp.ClientSession) -> None:
    now = [1_700_000_000.0]
    async with SiteEmulator(clock=lambda: now[0], secret=b"s" * 32) as emu:
        nonce = emu.current_nonce()
        assert nonce == make_nonce(b"s" * 32, nonce_tick(now[0]))
        assert (await post_json(session, emu))["status"] == "success"
        emu.advance(DAY_HALF)
        assert emu.current_nonce() != nonce
        ok = await post_json(session, emu, _wpnonce=nonce)
        assert ok["status"] == "success"
        emu.advance(DAY_HALF)
        emu.plugin_version = "1.8.90"
        stale = await post_json(session, emu, _wpnonce=nonce)
        assert stale == {"status": "error", "msg": "Nonce verification failed"}
        image = make_nonce(b"s" * 32, nonce_tick(emu.now()), IMAGE_NONCE_ACTION)
        assert image == emu.current_image_nonce()
        assert (await post_json(session, emu, _wpnonce=image))["status"] == "error"
        page = await get_page(session, emu)
        rest = re.search(r'"nonce":"([0-9a-f]{10})"', page)
        assert rest is not None
        assert (await post_json(session, emu, _wpnonce=rest.group(1)))["status"] == "error"
        assert (await post_json(session, emu, _wpnonce=""))["status"] == "error"
        assert (await post_json(session, emu, _wpnonce="nönce✓"))["status"] == "error"
        current = emu.current_nonce()
        emu.rotate_nonce()
        assert emu.current_nonce() != current
        assert (await post_json(session, emu, _wpnonce=current))["status"] == "error"
        assert (await post_json(session, emu))["status"] == "success"


@pytest.mark.parametrize("version", ["1.8.91", "2.0.4", "2.2.9"])
async def test_stale_nonce_is_403_html_from_1_8_91(
    emu: SiteEmulator, session: aiohttp.ClientSession, version: str
) -> None:
    emu.plugin_version = version
    status, headers, body = await post(session, emu, _wpnonce="0000000000")
    assert status == 403
    assert headers["Content-Type"] == "text/html; charset=UTF-8"
    text = body.decode()
    assert "The link you followed has expired." in text
    assert "Please try again." not in text
    referer = {"Referer": emu.url + "/", "Origin": emu.url}
    status, _, body = await post(session, emu, _wpnonce="0000000000", headers=referer)
    assert status == 403
    assert f'<a href="{emu.url}/">Please try again.</a>' in body.decode()
    foreign = {"Referer": "https://elsewhere.example/"}
    status, _, body = await post(session, emu, _wpnonce="0000000000", headers=foreign)
    assert "Please try again." not in body.decode()


async def test_plugin_2_3_has_no_chat_action(
    emu: SiteEmulator, session: aiohttp.ClientSession
) -> None:
    emu.plugin_version = "2.3"
    for action in ("wpaicg_chat_shortcode_message", "wpaicg_chatbox_message"):
        status, headers, body = await post(session, emu, action=action)
        assert (status, body) == (400, b"0")
        assert headers["Content-Type"] == "text/html; charset=UTF-8"


async def test_wordpress_routing(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    async with session.get(emu.ajax_url) as response:
        assert (response.status, await response.read()) == (400, b"0")
    async with session.post(emu.ajax_url, data={"message": "hi"}) as response:
        assert (response.status, await response.read()) == (400, b"0")
    status, _, body = await post(session, emu, action="heartbeat")
    assert (status, body) == (400, b"0")
    emu.widget = "widget"
    answer = await post_json(session, emu, action="wpaicg_chatbox_message")
    assert answer["status"] == "success"
    assert emu.posts == 3


async def test_query_string_fields_depend_on_plugin_version(
    emu: SiteEmulator, session: aiohttp.ClientSession
) -> None:
    query = urllib.parse.urlencode(chat_form(emu, "from the query"))
    for version, expected in (
        ("1.8.90", {"data": default_reply("from the query")}),
        ("1.8.91", {"status": "error", "msg": "It appears that nothing was inputted."}),
    ):
        emu.plugin_version = version
        async with session.post(f"{emu.ajax_url}?{query}", data={"x": "1"}) as response:
            answer = json.loads(await response.read())
        for key, value in expected.items():
            assert answer[key] == value
    assert emu.requests[-1].query["message"] == "from the query"
    assert emu.requests[-1].form == {"x": "1"}


async def test_multipart_form(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    data = aiohttp.MultipartWriter("form-data")
    for name, value in chat_form(emu, "multi part ✓").items():
        part = data.append(value)
        part.set_content_disposition("form-data", name=name)
    async with session.post(emu.ajax_url, data=data) as response:
        answer = json.loads(await response.read())
    assert answer["data"] == default_reply("multi part ✓")
    record = emu.requests[-1]
    assert record.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert record.form["message"] == "multi part ✓"
    assert record.raw_body.startswith(b"--")


async def test_expect_100_continue(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    long_message = "word " * 400  # curl sends "Expect: 100-continue" above 1 KiB
    started = time.perf_counter()
    async with session.post(
        emu.ajax_url, data=chat_form(emu, long_message), expect100=True, timeout=_seconds(5)
    ) as response:
        answer = json.loads(await response.read())
    assert time.perf_counter() - started < 0.5
    assert answer["data"] == default_reply(long_message.strip())
    assert emu.requests[-1].headers["Expect"] == "100-continue"


# the message and the answers ----------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "keep_newlines", "expected"),
    [
        ("  hello   world  ", False, "hello world"),
        ("line one\n\tline two", False, "line one line two"),
        ("line one\n\tline  two ", True, "line one\n\tline  two"),
        ("<b>bold</b> and <i>it</i>", False, "bold and it"),
        ("<script>alert(1)</script>after", False, "after"),
        ("<style>p{}</style>x", False, "x"),
        ("a < b", False, "a &lt; b"),
        ("a < b > c", False, "a < b > c"),
        ('<a title=">">link</a>', False, "link"),
        ("x<!-- note -->y", False, "xy"),
        ("100%25 sure %41%42", False, "100 sure"),
        ("%2%41", False, "%2"),
        ("   <p></p>  %20 ", False, ""),
        ("bad \udcff byte", False, ""),
    ],
)
def test_sanitize_text_field(raw: str, keep_newlines: bool, expected: str) -> None:
    assert sanitize_text_field(raw, keep_newlines=keep_newlines) == expected


async def test_sanitizing_on_the_wire(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    emu.plugin_version = "1.8.90"
    answer = await post_json(session, emu, " <b>two</b>\n\tlines ")
    assert answer["data"] == default_reply("two lines")
    emu.plugin_version = "1.8.91"
    answer = await post_json(session, emu, " <b>two</b>\nlines ")
    assert answer["data"] == default_reply("two\nlines")
    empty = {"status": "error", "msg": "It appears that nothing was inputted."}
    assert await post_json(session, emu, "  <br> %0A ") == empty
    async with session.post(
        emu.ajax_url,
        data=urllib.parse.urlencode(chat_form(emu, "x")).replace("message=x", "message=%FF"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ) as response:
        assert json.loads(await response.read()) == empty


async def test_success_body_is_php_encoded(
    emu: SiteEmulator, session: aiohttp.ClientSession
) -> None:
    emu.reply = "a/b café 😀"
    status, headers, body = await post(session, emu)
    assert status == 200
    assert headers["Content-Type"] == "application/json; charset=UTF-8"
    assert body == (
        b'{"status":"success","msg":"Something went wrong",'
        b'"greeting_message":"Hello human, I am a GPT powered AI chat bot. Ask me anything!",'
        b'"data":"a\\/b caf\\u00e9 \\ud83d\\ude00","log":false}'
    )
    assert json.loads(body)["data"] == "a/b café 😀"


async def test_reply_functions(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    assert (await post_json(session, emu, "echo"))["data"] == default_reply("echo")
    emu.reply = str.upper
    assert (await post_json(session, emu, "shout"))["data"] == "SHOUT"

    async def slow(message: str) -> str:
        await asyncio.sleep(0)
        return message[::-1]

    emu.reply = slow
    assert (await post_json(session, emu, "abc"))["data"] == "cba"


async def test_banned_ips_and_words(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    emu.banned_words = {"Forbidden"}
    answer = await post_json(session, emu, "this is FORBIDDEN stuff")
    assert answer == {
        "status": "error",
        "msg": "Your message contains prohibited words. Please modify your message and try again.",
    }
    emu.banned_ips = {"203.0.113.9"}
    banned = {"status": "error", "msg": "You are not allowed to access this feature."}
    forwarded = {"X-Forwarded-For": "203.0.113.9, 10.0.0.1"}
    assert await post_json(session, emu, headers=forwarded) == banned
    assert (await post_json(session, emu))["status"] == "success"
    emu.banned_ips = {"127.0.0.1"}
    assert await post_json(session, emu) == banned
    emu.stream = True
    _status, headers, body = await post(session, emu)
    assert headers["Content-Type"] == "text/event-stream"
    events, rest = parse_stream(body.decode())
    assert json.loads(events[0]) == {"msg": banned["msg"], "ipBanned": True}
    assert (len(events), rest) == (1, "")


async def test_token_limit(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    emu.token_limit = 2
    limit = {"msg": "You have reached your token limit.", "tokenLimitReached": True}
    for _ in range(2):
        answer = await post_json(session, emu, wpaicg_chat_client_id="AAAAAAAAAA")
        assert answer["status"] == "success"
    assert await post_json(session, emu, wpaicg_chat_client_id="AAAAAAAAAA") == limit
    assert (await post_json(session, emu, wpaicg_chat_client_id="BBBBBBBBBB"))["status"] == (
        "success"
    )
    assert (await post_json(session, emu))["status"] == "success"  # per IP
    assert (await post_json(session, emu))["status"] == "success"
    assert await post_json(session, emu) == limit
    emu.stream = True
    _, _, body = await post(session, emu)
    assert parse_stream(body.decode()) == ([php_json(limit)], "")
    emu.reset_token_usage()
    emu.stream = False
    assert (await post_json(session, emu))["status"] == "success"


# streaming ----------------------------------------------------------------------------


async def test_stream_format(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    emu.stream = True
    emu.reply = "Héllo wörld, a/b 😀 and a longer tail of words."
    status, headers, body = await post(session, emu)
    assert status == 200
    assert headers["Content-Type"] == "text/event-stream"
    events, trailing = parse_stream(body.decode())
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert len(chunks) > 10
    assert stream_text(events) == emu.reply
    assert '"content":"Héll"'.encode() in body  # upstream chunks are raw UTF-8
    assert json.loads(trailing) == {
        "status": "success",
        "msg": "Something went wrong",
        "greeting_message": "Hello human, I am a GPT powered AI chat bot. Ask me anything!",
        "data": emu.reply,
        "log": False,
    }
    assert "\\/" in trailing
    assert "\\ud83d\\ude00" in trailing


async def test_stream_chunks_and_delay(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    emu.stream = True
    emu.stream_chunks = 3
    emu.chunk_delay = 0.05
    emu.reply = "abcdefgh"
    arrivals = []
    started = time.perf_counter()
    async with session.post(emu.ajax_url, data=chat_form(emu)) as response:
        body = b""
        async for piece in response.content.iter_any():
            arrivals.append(time.perf_counter() - started)
            body += piece
    events, trailing = parse_stream(body.decode())
    contents = [json.loads(e)["choices"][0]["delta"].get("content") for e in events if e[0] == "{"]
    assert contents == ["", "abc", "def", "gh", None]
    assert arrivals[-1] >= 0.09
    assert len(arrivals) >= 2
    assert json.loads(trailing)["data"] == "abcdefgh"


@given(st.text(max_size=60), st.one_of(st.none(), st.integers(min_value=1, max_value=12)))
def test_stream_pieces_reassemble(text: str, chunks: int | None) -> None:
    emulator = SiteEmulator(stream_chunks=chunks)
    pieces = emulator._pieces(text)
    assert "".join(pieces) == text
    assert all(pieces)
    if chunks is not None:
        assert len(pieces) == min(chunks, len(text))


@given(st.text(max_size=40))
def test_php_json_round_trips(text: str) -> None:
    encoded = php_json({"data": text})
    assert encoded.isascii()
    assert "/" not in encoded.replace("\\/", "")
    assert json.loads(encoded) == {"data": text}


# faults -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "content_type", "check"),
    [
        (Fault.status(418, "teapot", headers={"X-Test": "1"}), 418, "text/html", "teapot"),
        (Fault.status(200, "{}", content_type="application/json"), 200, "application/json", "{}"),
        (Fault.rate_limited(), 429, "text/html", "429 Too Many Requests"),
        (Fault.server_error(), 500, "text/html", "critical error"),
        (Fault.server_error(502), 502, "text/html", "502 Bad Gateway"),
        (Fault.server_error(503), 503, "text/html", "503 Service"),
        (Fault.server_error(504), 504, "text/html", "504 Gateway"),
        (Fault.cloudflare(), 403, "text/html", "Just a moment..."),
        (Fault.cloudflare(503), 503, "text/html", "Just a moment..."),
        (Fault.html_instead_of_json(), 200, "text/html", "<html"),
        (Fault.empty_body(), 200, "text/html", ""),
        (Fault.plugin_gone(), 400, "text/html", "0"),
        (Fault.ajax_referer_failed(), 403, "text/html", "-1"),
        (Fault.no_data(), 200, "application/json",
         '{"status":"success","msg":"Something went wrong"}'),
        (Fault.upstream_error("Model overloaded"), 200, "application/json",
         '{"status":"error","msg":"Model overloaded","log":false}'),
        (Fault.token_limit(), 200, "application/json",
         '{"msg":"You have reached your token limit.","tokenLimitReached":true}'),
        (Fault.stale_nonce(), 403, "text/html", "The link you followed has expired."),
        (Fault.stale_nonce("json"), 200, "application/json", "Nonce verification failed"),
        (Fault.stale_nonce("security_check"), 200, "application/json", "Security check"),
        (Fault.stale_nonce("invalid_nonce"), 200, "application/json", '"Invalid nonce.'),
        (Fault.stale_nonce("are_you_sure"), 403, "text/html", "Are you sure you want"),
    ],
)  # fmt: skip
async def test_simple_faults(
    emu: SiteEmulator,
    session: aiohttp.ClientSession,
    fault: Fault,
    status: int,
    content_type: str,
    check: str,
) -> None:
    emu.fail_next(fault)
    got_status, headers, body = await post(session, emu)
    assert got_status == status
    assert headers["Content-Type"].startswith(content_type)
    if check in ("", "0", "-1") or check.startswith("{"):
        assert body.decode() == check
    else:
        assert check in body.decode()
    if fault.kind == "status" and fault.code == 418:
        assert headers["X-Test"] == "1"
    if fault.kind == "cloudflare":
        assert headers["cf-mitigated"] == "challenge"
        assert headers["Server"] == "cloudflare"
    assert emu.posts == 1
    assert len(emu.requests) == 1
    assert (await post_json(session, emu))["status"] == "success"  # consumed


async def test_body_faults(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    emu.fail_next(Fault.rate_limited("7"))
    _, headers, _ = await post(session, emu)
    assert headers["Retry-After"] == "7"
    emu.fail_next(Fault.rate_limited("Wed, 21 Oct 2015 07:28:00 GMT"))
    _, headers, _ = await post(session, emu)
    assert headers["Retry-After"] == "Wed, 21 Oct 2015 07:28:00 GMT"

    emu.fail_next(Fault.truncated_json())
    _status, headers, body = await post(session, emu)
    assert headers["Content-Type"] == "application/json; charset=UTF-8"
    full = php_json(
        {
            "status": "success",
            "msg": "Something went wrong",
            "greeting_message": "Hello human, I am a GPT powered AI chat bot. Ask me anything!",
            "data": default_reply("Hi"),
            "log": False,
        }
    ).encode()
    assert body == full[: len(full) // 2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)

    emu.fail_next(Fault.data_wrong_type())
    assert (await post_json(session, emu))["data"] == 42
    emu.fail_next(Fault.data_wrong_type(["a", "b"]))
    answer = await post_json(session, emu)
    assert (answer["status"], answer["data"]) == ("success", ["a", "b"])

    emu.fail_next(Fault.wrong_content_type())
    _, headers, body = await post(session, emu)
    assert headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert body == full

    emu.fail_next(Fault.non_utf8())
    _, headers, body = await post(session, emu)
    assert headers["Content-Type"] == "application/json; charset=UTF-8"
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert json.loads(body.decode("latin-1"))["status"] == "success"


async def test_transport_faults(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    emu.fail_next(Fault.stall(0.2))
    started = time.perf_counter()
    assert (await post_json(session, emu))["status"] == "success"
    assert time.perf_counter() - started >= 0.2

    emu.fail_next(Fault.stall(5))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(post(session, emu), 0.2)

    emu.fail_next(Fault.reset_before_headers())
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        await post(session, emu)

    emu.fail_next(Fault.reset_after_headers())
    async with session.post(emu.ajax_url, data=chat_form(emu)) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()

    emu.stream = True
    emu.fail_next(Fault.reset_after_headers())
    async with session.post(emu.ajax_url, data=chat_form(emu)) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert emu.posts == 5


async def test_page_faults_and_fifo(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    emu.fail_next(Fault.page("<html>cached</html>"))
    emu.fail_next(Fault.server_error(503, target="page"), times=2)
    emu.fail_next(Fault.upstream_error("first"))
    emu.fail_next(Fault.upstream_error("second"))
    assert len(emu.pending_faults()) == 5
    async with session.get(emu.url + "/") as response:
        assert (response.status, await response.text()) == (200, "<html>cached</html>")
    for _ in range(2):
        async with session.get(emu.url + "/") as response:
            assert response.status == 503
    assert (await get_page(session, emu)).startswith("<!DOCTYPE html>")
    assert (await post_json(session, emu))["msg"] == "first"
    assert (await post_json(session, emu))["msg"] == "second"
    assert emu.page_loads == 4

    emu.fail_next(Fault.cloudflare(target="page"))
    emu.fail_next(Fault.rate_limited("1", target="page"))
    emu.fail_next(Fault.stall(0.1, target="page"))
    async with session.get(emu.url + "/") as response:
        assert response.status == 403
        assert response.headers["cf-mitigated"] == "challenge"
    async with session.get(emu.url + "/") as response:
        assert (response.status, response.headers["Retry-After"]) == (429, "1")
    started = time.perf_counter()
    await get_page(session, emu)
    assert time.perf_counter() - started >= 0.1

    # aiohttp retries an idempotent request once when the connection drops: fail twice
    emu.fail_next(Fault.reset_before_headers(target="page"), times=2)
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        await get_page(session, emu)
    emu.clear_faults()
    emu.fail_next(Fault.reset_after_headers(target="page"))
    async with session.get(emu.url + "/") as response:
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    emu.fail_next(Fault.upstream_error(), times=3)
    emu.clear_faults()
    assert emu.pending_faults() == []


async def test_stream_faults(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    emu.stream = True
    emu.stream_chunks = 4
    emu.reply = "abcdefgh"

    emu.fail_next(Fault.stream_no_done())
    _, headers, body = await post(session, emu)
    assert headers["Content-Type"] == "text/event-stream"
    events, trailing = parse_stream(body.decode())
    assert (stream_text(events), trailing) == ("abcdefgh", "")
    assert "[DONE]" not in events
    assert all('"finish_reason":"stop"' not in event for event in events)

    emu.fail_next(Fault.stream_limited())
    events, trailing = parse_stream((await post(session, emu))[2].decode())
    assert (stream_text(events), events[-1], trailing) == ("abcd", "[LIMITED]", "")
    emu.fail_next(Fault.stream_limited(after_chunks=1))
    events, _ = parse_stream((await post(session, emu))[2].decode())
    assert (stream_text(events), events[-1]) == ("ab", "[LIMITED]")

    emu.fail_next(Fault.stream_error_event())
    events, trailing = parse_stream((await post(session, emu))[2].decode())
    assert events == ['{"msg":"You are not allowed to access this feature.","ipBanned":true}']
    emu.fail_next(Fault.stream_error_event("messageFlagged"))
    events, _ = parse_stream((await post(session, emu))[2].decode())
    assert json.loads(events[0])["messageFlagged"] is True
    emu.fail_next(Fault.token_limit())
    events, _ = parse_stream((await post(session, emu))[2].decode())
    assert json.loads(events[0]) == {
        "msg": "You have reached your token limit.",
        "tokenLimitReached": True,
    }

    emu.fail_next(Fault.stream_stall(after_chunks=2, seconds=0.2))
    started = time.perf_counter()
    async with session.post(emu.ajax_url, data=chat_form(emu)) as response:
        received = b""
        while b'"content":"cd"' not in received:
            received += await response.content.readany()
        early = time.perf_counter() - started
        received += await response.read()
    assert early < 0.15
    assert time.perf_counter() - started >= 0.2
    events, trailing = parse_stream(received.decode())
    assert stream_text(events) == "abcdefgh"
    assert json.loads(trailing)["data"] == "abcdefgh"

    emu.stream = False  # stream faults always stream
    emu.fail_next(Fault.stream_limited(after_chunks=0))
    _, headers, body = await post(session, emu)
    assert headers["Content-Type"] == "text/event-stream"
    assert parse_stream(body.decode())[0][-1] == "[LIMITED]"


def test_fault_values() -> None:
    assert Fault.rate_limited("5") == Fault.rate_limited("5")
    assert Fault.stall(1).target == "post"
    assert Fault.stall(1, target="page").target == "page"
    assert Fault.page("x").target == "page"
    assert repr(Fault.rate_limited("5")) == (
        "Fault(kind='rate_limited', target='post', code=429, headers=(('Retry-After', '5'),))"
    )
    with pytest.raises(ValueError, match="target"):
        Fault.stall(1, target="everything")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="5xx"):
        Fault.server_error(404)
    with pytest.raises(ValueError, match="seconds"):
        Fault.stall(-1)
    with pytest.raises(ValueError, match="style"):
        Fault.stale_nonce("rude")
    with pytest.raises(TypeError):
        SiteEmulator().fail_next("reset")  # type: ignore[arg-type]


async def test_required_cookies(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    emu.required_cookies = {"cf_clearance": "ok"}
    async with session.get(emu.url + "/") as response:
        assert response.status == 403
        assert response.headers["cf-mitigated"] == "challenge"
        assert "<title>Just a moment...</title>" in await response.text()
    status, headers, _ = await post(session, emu)
    assert (status, headers["Server"]) == (403, "cloudflare")
    async with aiohttp.ClientSession(cookies={"cf_clearance": "ok"}) as cleared:
        assert (await get_page(cleared, emu)).startswith("<!DOCTYPE html>")
        assert (await post_json(cleared, emu))["status"] == "success"


# records and counters -----------------------------------------------------------------


async def test_counters_and_records(emu: SiteEmulator, session: aiohttp.ClientSession) -> None:
    await get_page(session, emu)
    for index in range(4):
        await post_json(
            session,
            emu,
            f"message {index}",
            headers={"X-Requested-With": "XMLHttpRequest", "Referer": emu.url + "/"},
        )
    assert (emu.page_loads, emu.posts, emu.connections, len(emu.requests)) == (1, 4, 1, 5)
    async with aiohttp.ClientSession(cookies={"a": "1"}) as other:
        await get_page(other, emu)
    assert emu.connections == 2
    record = emu.requests[1]
    assert isinstance(record, RecordedRequest)
    assert (record.method, record.path, record.query) == (
        "POST",
        "/wp-admin/admin-ajax.php",
        {},
    )
    assert record.form["message"] == "message 0"
    assert record.form["action"] == ACTION
    assert record.headers["x-requested-with"] == "XMLHttpRequest"
    assert record.headers["X-REQUESTED-WITH"] == "XMLHttpRequest"
    assert record.peer[0] == "127.0.0.1"
    assert record.peer[1] > 0
    assert b"message+0" in record.raw_body
    assert emu.requests[-1].cookies == {"a": "1"}
    emu.reset_counters()
    assert (emu.page_loads, emu.posts, emu.connections, emu.requests) == (0, 0, 0, [])


async def test_lifecycle() -> None:
    emulator = SiteEmulator()
    with pytest.raises(RuntimeError, match="not started"):
        _ = emulator.url
    await emulator.start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", emulator.url)
        with pytest.raises(RuntimeError, match="already running"):
            await emulator.start()
        assert "running" not in repr(emulator)
        assert emulator.url in repr(emulator)
    finally:
        await emulator.stop()
    await emulator.stop()
    assert "stopped" in repr(emulator)


async def test_stop_with_a_request_in_flight(session: aiohttp.ClientSession) -> None:
    emulator = SiteEmulator()
    await emulator.start()
    emulator.fail_next(Fault.stall(30))
    pending = asyncio.ensure_future(post(session, emulator))
    await asyncio.sleep(0.2)
    assert emulator.posts == 1
    started = time.perf_counter()
    await emulator.stop()
    assert time.perf_counter() - started < 2
    with pytest.raises(aiohttp.ClientError):
        await pending


# thread, command line, pytest plugin --------------------------------------------------


def _urlopen(url: str, data: dict[str, str] | None = None) -> tuple[int, bytes]:
    body = urllib.parse.urlencode(data).encode() if data is not None else None
    try:
        with urllib.request.urlopen(url, body, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def test_emulator_thread() -> None:
    with EmulatorThread(stream=False, reply="pong") as emulator:
        status, page = _urlopen(emulator.url + "/")
        assert status == 200
        assert emulator.current_nonce().encode() in page
        emulator.fail_next(Fault.plugin_gone())
        assert _urlopen(emulator.ajax_url, chat_form(emulator)) == (400, b"0")
        status, body = _urlopen(emulator.ajax_url, chat_form(emulator))
        assert json.loads(body)["data"] == "pong"
        assert emulator.posts == 2
    assert not emulator.running
    runner = EmulatorThread(SiteEmulator(post_id=99))
    with runner as emulator:
        assert b'data-post-id="99"' in _urlopen(runner.url + "/")[1]
    with pytest.raises(TypeError):
        EmulatorThread(SiteEmulator(), stream=True)


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_command_line_runs_until_sigint() -> None:
    args = ["--stream", "--reply", "from the CLI", "--chunk-delay", "0"]
    with emulator_process(*args, "--plugin-version", "1.8.90") as (process, url):
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        status, page = _urlopen(url + "/")
        assert status == 200
        assert b'data-openai_stream_nav="1"' in page
        nonce = re.search(rb'data-nonce="([0-9a-f]{10})"', page)
        assert nonce is not None
        form = {"action": ACTION, "_wpnonce": nonce.group(1).decode(), "message": "hi"}
        status, body = _urlopen(url + "/wp-admin/admin-ajax.php", form)
        events, _trailing = parse_stream(body.decode())
        assert stream_text(events) == "from the CLI"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
        assert process.returncode == 0, stderr
        assert "Traceback" not in stderr


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals")
def test_command_line_sigterm() -> None:
    with emulator_process("--page-variant", "minified") as (process, url):
        assert b"data-nonce=" in _urlopen(url + "/")[1]
        process.terminate()
        _, stderr = process.communicate(timeout=10)
        assert process.returncode == 0, stderr


def test_pytest_fixture(chatgpt4o_emulator: SiteEmulator) -> None:
    status, page = _urlopen(chatgpt4o_emulator.url + "/")
    assert status == 200
    assert chatgpt4o_emulator.current_nonce().encode() in page
    assert chatgpt4o_emulator.page_loads == 1


@pytest.fixture
def marked_emulator(request: pytest.FixtureRequest) -> SiteEmulator:
    # Applied at run time: when the plugin comes from this module's pytest_plugins (not
    # from the installed entry point), the marker is unknown while the module is imported.
    request.node.add_marker(pytest.mark.chatgpt4o_emulator(stream=True, post_id=42))
    emulator: SiteEmulator = request.getfixturevalue("chatgpt4o_emulator")
    return emulator


def test_pytest_fixture_marker(marked_emulator: SiteEmulator) -> None:
    _, page = _urlopen(marked_emulator.url + "/")
    assert b'data-openai_stream_nav="1"' in page
    assert b'data-post-id="42"' in page


async def test_pytest_fixture_from_async_test(chatgpt4o_emulator: SiteEmulator) -> None:
    async with aiohttp.ClientSession() as client:
        answer = await post_json(client, chatgpt4o_emulator, "async")
    assert answer["data"] == default_reply("async")


def test_provider_fixture(request: pytest.FixtureRequest) -> None:
    if importlib.util.find_spec("curl_cffi") is None:
        pytest.skip("chatgpt4o.Chatgpt4o needs curl_cffi")
    provider = request.getfixturevalue("chatgpt4o_provider")
    emulator = request.getfixturevalue("chatgpt4o_emulator")
    from chatgpt4o import Chatgpt4o

    assert issubclass(provider, Chatgpt4o)
    assert provider is not Chatgpt4o
    assert provider.url == emulator.url
    assert Chatgpt4o.url == "https://chatgpt4o.one"
