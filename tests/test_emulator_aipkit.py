"""Tests of the AIPKit emulator (AI Power 2.3 to 2.4.71) on the wire, with aiohttp's client.

Each behaviour of the two-step chat (cache the message, then stream the answer) has a test
here; the expected bytes follow the real plugin's answers on WordPress 6.1 (the stream's
preamble, event order, error texts and HTTP codes).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import html
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import aiohttp
import pytest

from chatgpt4o.testing._aipkit import (
    ACTION_CACHE,
    ACTION_STREAM,
    AipkitEmulator,
    AipkitFault,
    Bot,
    build_parser_arguments,
    default_reply,
    emulator_from_args,
    parse_fault,
)
from chatgpt4o.testing._aipkit_faults import DEFAULT_STREAM_ERROR
from chatgpt4o.testing._aipkit_php import (
    absint,
    json_unicode,
    sanitize_key,
    stripslashes,
    uniqid,
    wp_json_hex,
)
from chatgpt4o.testing._nonces import make_nonce, nonce_tick

JSON_TYPE = "application/json; charset=UTF-8"
HTML_TYPE = "text/html; charset=UTF-8"
SSE_TYPE = "text/event-stream; charset=utf-8"
PREAMBLE = b":" + b" " * 4096 + b"\n\n"
KEY = re.compile(r"aipkit_sse_[A-Za-z0-9]{32}")
NONCE_TEXT = "Security check failed. Please refresh the page and try again."
DONE = ("done", None, {"finished": True})
T0 = 1_796_076_000.25  # a fixed clock: 2026-11-30
TODAY = "November 30, 2026"
SYSTEM = {
    "role": "system",
    "content": f"You are a helpful AI Assistant. Please be friendly. Today's date is {TODAY}.",
}

Event = tuple[str | None, str | None, Any]


@pytest.fixture(autouse=True)
def _no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The emulator must never make aiohttp log an error, whatever the fault."""
    caplog.set_level(logging.WARNING, logger="aiohttp")
    yield
    errors = [r for r in caplog.records if r.name.startswith("aiohttp") and r.levelno >= 40]
    assert not errors, [r.getMessage() for r in errors]


@pytest.fixture
async def emu() -> AsyncIterator[AipkitEmulator]:
    async with AipkitEmulator(clock=lambda: T0) as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


# helpers ----------------------------------------------------------------------------------


def parse_events(body: bytes) -> list[Event]:
    """The events of an event-stream body: ``(event, id, data)``; comments skipped."""
    events: list[Event] = []
    for block in body.decode().split("\n\n"):
        name = ident = data = None
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "id":
                ident = value
            elif field == "data":
                data = value
        if data is not None:
            events.append((name, ident, json.loads(data)))
    return events


def text_of(events: list[Event]) -> str:
    return "".join(data["delta"] for name, _, data in events if name is None)


async def configs(http: aiohttp.ClientSession, emu: AipkitEmulator) -> list[dict[str, Any]]:
    async with http.get(emu.url + "/") as response:
        page = await response.text()
    return [json.loads(html.unescape(raw)) for raw in re.findall(r"data-config='([^']*)'", page)]


async def cache(
    http: aiohttp.ClientSession,
    emu: AipkitEmulator,
    message: str = "hello aipkit",
    *,
    nonce: str | None = None,
    bot_id: int | None = 4,
    multipart: bool = False,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> tuple[int, str, dict[str, Any]]:
    """Step 1: ``(status, content type, JSON body)``."""
    fields = {"action": ACTION_CACHE, "_ajax_nonce": nonce or emu.current_nonce()}
    fields["message"] = message
    if bot_id is not None:
        fields["bot_id"] = str(bot_id)
    fields.update(extra or {})
    if multipart:
        form = aiohttp.FormData()
        for name, value in fields.items():
            form.add_field(name, value)
        body: Any = form
    else:
        body = fields
    async with http.post(emu.ajax_url, data=body, headers=headers) as response:
        return response.status, response.headers["Content-Type"], await response.json()


async def stream(
    http: aiohttp.ClientSession,
    emu: AipkitEmulator,
    key: str,
    *,
    nonce: str | None = None,
    bot_id: int | None = 4,
    session: str | None = "6f1c1d7e-2f3a-4b5c-8d9e-0a1b2c3d4e5f",
    conversation: str | None = "0b0c0d0e-1f2a-4b3c-9d8e-7f6a5b4c3d2e",
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, str] | None = None,
) -> tuple[aiohttp.ClientResponse, bytes]:
    """Step 2: the response and its raw body."""
    params = {"action": ACTION_STREAM, "cache_key": key}
    if bot_id is not None:
        params["bot_id"] = str(bot_id)
    if session is not None:
        params["session_id"] = session
    if conversation is not None:
        params["conversation_uuid"] = conversation
    params["post_id"] = "5"
    params["_ts"] = "1755600000000"
    params["_ajax_nonce"] = nonce or emu.current_nonce()
    params.update(extra or {})
    async with http.get(emu.ajax_url, params=params, headers=headers) as response:
        return response, await response.read()


async def send(
    http: aiohttp.ClientSession, emu: AipkitEmulator, message: str = "hello aipkit", **kw: Any
) -> list[Event]:
    """Both steps; the stream's events."""
    step1 = {name: kw.pop(name) for name in ("multipart",) if name in kw}
    status, _, body = await cache(http, emu, message, bot_id=kw.get("bot_id", 4), **step1)
    assert status == 200, body
    _, raw = await stream(http, emu, body["data"]["cache_key"], **kw)
    return parse_events(raw)


async def post(
    http: aiohttp.ClientSession, emu: AipkitEmulator, fields: Mapping[str, str], **kw: Any
) -> tuple[int, str, str]:
    async with http.post(emu.ajax_url, data=dict(fields), **kw) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def json_message(
    http: aiohttp.ClientSession,
    emu: AipkitEmulator,
    message: str,
    *,
    conversation: str = "j1",
    **extra: str,
) -> tuple[int, str, str]:
    fields = {
        "action": "aipkit_frontend_chat_message",
        "_ajax_nonce": emu.current_nonce(),
        "message": message,
        "bot_id": "4",
        "session_id": "s-9",
        "conversation_uuid": conversation,
        **extra,
    }
    return await post(http, emu, fields)


def aipkit(version: str = "2.4.71", **kw: Any) -> AipkitEmulator:
    return AipkitEmulator(plugin_version=version, clock=lambda: T0, **kw)


# the page ---------------------------------------------------------------------------------


async def test_page_shows_the_default_popup_bot_with_its_config(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    async with http.get(emu.url + "/") as response:
        assert response.status == 200
        page = await response.text()
    match = re.search(
        r'<div class="aipkit_popup_wrapper [^"]*" id="aipkit_popup_wrapper_4" '
        r"data-config='([^']*)' data-bot-id=\"4\"",
        page,
    )
    assert match is not None
    raw = match.group(1)
    assert raw.startswith("{&quot;botId&quot;:4,&quot;ajaxUrl&quot;:&quot;http:\\/\\/")
    config = json.loads(html.unescape(raw))
    assert list(config)[:6] == ["botId", "ajaxUrl", "nonce", "postId", "theme", "popupEnabled"]
    assert config["ajaxUrl"] == emu.ajax_url
    assert config["nonce"] == emu.current_nonce()
    assert re.fullmatch(r"[0-9a-f]{10}", config["nonce"])
    assert (config["postId"], config["popupEnabled"], config["provider"]) == (5, True, "OpenAI")
    assert "streamEnabled" not in config  # removed in 2.4.1
    assert 'id="aipkit_chat_container_4"' in page
    # the popup's chat container carries a second single-quoted JSON attribute
    assert "data-custom-theme='{&quot;primary_color&quot;" in page


async def test_data_config_escapes_quotes_tags_and_ampersands_as_unicode(
    http: aiohttp.ClientSession,
) -> None:
    name = "O'Brien's <Bot> & \"Friends\" — ü/ß"
    async with aipkit(bots=[Bot(4, name=name)]) as emu:
        async with http.get(emu.url + "/") as response:
            page = await response.text()
        raw = re.search(r"data-config='([^']*)'", page)
        assert raw is not None
        expected = "O\\u0027Brien\\u0027s \\u003CBot\\u003E \\u0026 \\u0022Friends\\u0022 — ü\\/ß"
        assert f"&quot;headerName&quot;:&quot;{expected}&quot;" in raw.group(1)
        assert (await configs(http, emu))[0]["headerName"] == name
        # the name shown in the header is HTML-escaped
        assert "O&#039;Brien&#039;s &lt;Bot&gt; &amp; &quot;Friends&quot;" in page


async def test_inline_bots_sitewide_bots_and_drafts(http: aiohttp.ClientSession) -> None:
    bots = [
        Bot(7, popup=False, theme="light"),
        Bot(8, published=False),
        Bot(9, sitewide=True),
        Bot(4),
    ]
    async with aipkit(bots=bots) as emu:
        async with http.get(emu.url + "/") as response:
            page = await response.text()
        inline = re.search(
            r'<div class="aipkit_chat_container aipkit-theme-light[^"]*" '
            r'id="aipkit_chat_container_7" data-bot-id="7" data-config=\'',
            page,
        )
        assert inline is not None
        assert [config["botId"] for config in await configs(http, emu)] == [7, 4, 9]
        assert "aipkit_popup_wrapper_8" not in page
        assert "aipkit_chat_container_8" not in page
        assert page.index("aipkit_popup_wrapper_9") > page.index("</main>")
        assert "data-custom-theme" not in page.split("aipkit_popup_wrapper_4")[0]


@pytest.mark.parametrize(
    ("version", "refresh", "stream_enabled"),
    [("2.3", False, True), ("2.3.40", False, True), ("2.3.41", True, True),
     ("2.4.0", True, True), ("2.4.1", True, False)],
)  # fmt: skip
async def test_page_markers_by_release(
    http: aiohttp.ClientSession, version: str, refresh: bool, stream_enabled: bool
) -> None:
    async with aipkit(version, legacy_shortcode=True) as emu:
        async with http.get(emu.url + "/") as response:
            page = await response.text()
        script = (
            f"src='{emu.url}/wp-content/plugins/gpt3-ai-content-generator/dist/js/"
            f"public-main.bundle.js?ver={version}' id='aipkit-public-main-js'"
        )
        assert script in page
        marker = 'window.aipkit_getChatNonceAction = "aipkit_get_frontend_chat_nonce";'
        assert (marker in page) is refresh
        assert ("streamEnabled" in (await configs(http, emu))[0]) is stream_enabled
        assert "<p>[wpaicg_chatgpt]</p>" in page


async def test_other_paths_are_404(http: aiohttp.ClientSession, emu: AipkitEmulator) -> None:
    async with http.get(emu.url + "/nope/") as response:
        assert response.status == 404
    assert emu.page_loads == 0


# nonces -----------------------------------------------------------------------------------


async def test_nonce_is_wordpress_nonce_of_the_chat_action() -> None:
    secret = b"k" * 32
    emu = AipkitEmulator(clock=lambda: T0, secret=secret)
    expected = make_nonce(secret, nonce_tick(T0), "aipkit_frontend_chat_nonce")
    assert emu.current_nonce() == expected
    assert expected != make_nonce(secret, nonce_tick(T0))  # not the legacy wpaicg-chatbox one


async def test_nonce_lives_two_ticks(http: aiohttp.ClientSession, emu: AipkitEmulator) -> None:
    nonce = emu.current_nonce()
    emu.advance(43200)
    assert (await cache(http, emu, nonce=nonce))[0] == 200
    emu.advance(43200)
    status, content_type, body = await cache(http, emu, nonce=nonce)
    assert (status, content_type) == (403, JSON_TYPE)
    assert body == {
        "success": False,
        "data": {
            "message": "Your session has expired or the request is invalid. Please refresh the "
            "page and try again.",
            "code": "nonce_failure_cache_sse",
        },
    }


async def test_rotated_nonce_fails_the_stream_before_the_key_is_read(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    old = emu.current_nonce()
    key = (await cache(http, emu))[2]["data"]["cache_key"]
    emu.rotate_nonce()
    response, raw = await stream(http, emu, key, nonce=old)
    assert response.status == 200
    assert raw == (
        PREAMBLE + b"event: error\nid: err-1796076000\n"
        b'data: {"error":"Security check failed. Please refresh the page and try again."}\n\n'
        b'event: done\ndata: {"finished":true}\n\n'
    )
    # the key survives a refused nonce
    events = (await stream(http, emu, key))[1]
    assert parse_events(events)[-1] == DONE
    assert "hello aipkit" in text_of(parse_events(events))


async def test_step1_lowercases_the_nonce_but_the_stream_does_not(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    upper = emu.current_nonce().upper()
    status, _, body = await cache(http, emu, nonce=upper)
    assert status == 200
    events = parse_events((await stream(http, emu, body["data"]["cache_key"], nonce=upper))[1])
    assert events == [("error", "err-1796076000", {"error": NONCE_TEXT}), DONE]


async def test_stream_takes_the_nonce_from_wpnonce_too(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    key = (await cache(http, emu))[2]["data"]["cache_key"]
    params = {
        "action": ACTION_STREAM,
        "cache_key": key,
        "bot_id": "4",
        "session_id": "s",
        "conversation_uuid": "c",
        "_wpnonce": emu.current_nonce(),
    }
    async with http.get(emu.ajax_url, params=params) as response:
        events = parse_events(await response.read())
    assert events[-1] == DONE
    assert text_of(events)


async def test_nonce_refresh(http: aiohttp.ClientSession, emu: AipkitEmulator) -> None:
    old = emu.current_nonce()
    emu.rotate_nonce()
    status, content_type, text = await post(
        http, emu, {"action": "aipkit_get_frontend_chat_nonce", "bot_id": "4"}
    )
    assert (status, content_type) == (200, JSON_TYPE)
    assert json.loads(text) == {"success": True, "data": {"nonce": emu.current_nonce()}}
    assert emu.current_nonce() != old
    async with http.get(emu.ajax_url, params={"action": "aipkit_get_frontend_chat_nonce"}) as r:
        assert (r.status, await r.json()) == (200, json.loads(text))
    foreign = {"Origin": "https://evil.example"}
    status, _, text = await post(
        http, emu, {"action": "aipkit_get_frontend_chat_nonce", "bot_id": "4"}, headers=foreign
    )
    assert status == 403
    assert json.loads(text)["data"] == {
        "message": "This domain is not permitted to access the chatbot.",
        "code": "cors_denied",
    }


async def test_no_nonce_refresh_before_2_3_41(http: aiohttp.ClientSession) -> None:
    async with aipkit("2.3.40") as emu:
        status, content_type, text = await post(
            http, emu, {"action": "aipkit_get_frontend_chat_nonce"}
        )
    assert (status, content_type, text) == (400, HTML_TYPE, "0")


# step 1 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("multipart", [False, True])
async def test_step1_stores_the_message(
    http: aiohttp.ClientSession, emu: AipkitEmulator, multipart: bool
) -> None:
    status, content_type, body = await cache(http, emu, "line 1\nline 2 ", multipart=multipart)
    assert (status, content_type, body["success"]) == (200, JSON_TYPE, True)
    assert list(body["data"]) == ["cache_key"]
    assert KEY.fullmatch(body["data"]["cache_key"])
    assert emu.posts == 1
    events = parse_events((await stream(http, emu, body["data"]["cache_key"]))[1])
    assert emu.model_calls[-1][-1] == {"role": "user", "content": "line 1\nline 2"}
    assert text_of(events).endswith("You said: line 1\nline 2")


async def test_step1_reads_the_post_body_only(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    params = {"action": ACTION_CACHE, "_ajax_nonce": emu.current_nonce(), "message": "hi"}
    async with http.get(emu.ajax_url, params=params) as response:
        assert response.status == 403
        assert (await response.json())["data"]["code"] == "nonce_failure_cache_sse"
    assert emu.posts == 0


@pytest.mark.parametrize("message", ["", "0"])
async def test_step1_refuses_an_empty_message(
    http: aiohttp.ClientSession, emu: AipkitEmulator, message: str
) -> None:
    status, _, body = await cache(http, emu, message)
    assert status == 400
    assert body["data"] == {
        "message": "Data to cache (message or image) cannot be empty.",
        "code": "empty_data_to_cache",
    }


async def test_step1_checks_images(http: aiohttp.ClientSession, emu: AipkitEmulator) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
    good = json.dumps([{"mime_type": "image/png", "base64_data": "data:image/png;base64," + png}])
    status, _, body = await cache(http, emu, "", extra={"image_inputs": good})
    assert status == 200
    events = parse_events((await stream(http, emu, body["data"]["cache_key"]))[1])
    assert events[-1] == DONE
    cases = [
        ("nope", 400, "invalid_image_payload"),
        (json.dumps([{"mime_type": "image/gif", "base64_data": png}]), 400, "invalid_image_type"),
        (json.dumps([{"mime_type": "image/png", "base64_data": "!!"}]), 400,
         "invalid_image_payload"),
        (json.dumps([{"mime_type": "image/png", "base64_data": png}] * 5), 400,
         "too_many_images"),
    ]  # fmt: skip
    for raw, code, error in cases:
        status, _, body = await cache(http, emu, "x", extra={"image_inputs": raw})
        assert (status, body["data"]["code"]) == (code, error)


async def test_step1_sanitized_the_message_in_2_3_20_to_2_3_25(
    http: aiohttp.ClientSession,
) -> None:
    for version, seen in [("2.3.19", "a <b>bold</b>  move"), ("2.3.20", "a bold  move"),
                          ("2.3.26", "a <b>bold</b>  move")]:  # fmt: skip
        async with aipkit(version) as emu:
            await send(http, emu, "a <b>bold</b>  move")
            assert emu.model_calls[-1][-1]["content"] == seen, version


# step 2 -----------------------------------------------------------------------------------


async def test_stream_answers_with_the_plugins_events(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    key = (await cache(http, emu))[2]["data"]["cache_key"]
    response, raw = await stream(http, emu, key)
    assert response.status == 200
    assert response.headers["Content-Type"] == SSE_TYPE
    assert response.headers["Cache-Control"] == (
        "no-cache, no-store, must-revalidate, max-age=0, no-transform"
    )
    assert response.headers["Pragma"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert raw.startswith(PREAMBLE + b"event: message_start\n")
    events = parse_events(raw)
    names = [name for name, _, _ in events]
    assert names[:3] == ["message_start", "status", "status"]
    assert names[-2:] == ["openai_response_id", "done"]
    assert set(names[3:-2]) == {None}
    assert re.fullmatch(r"aipkit-msg-[0-9a-f]{14}\.\d{8}", events[0][2]["message_id"])
    assert [data["type"] for name, _, data in events if name == "status"] == [
        "response.created",
        "response.in_progress",
    ]
    response_id = events[-2][2]["id"]
    assert all(data["response_id"] == response_id for name, _, data in events[1:3])
    assert text_of(events) == "Hello! This is the local AIPKit emulator. You said: hello aipkit"
    assert len([name for name in names if name is None]) > 3
    assert events[-1] == DONE
    assert raw.endswith(b'event: done\ndata: {"finished":true}\n\n')
    assert emu.streams == 1


async def test_cache_key_is_single_use(http: aiohttp.ClientSession, emu: AipkitEmulator) -> None:
    key = (await cache(http, emu))[2]["data"]["cache_key"]
    assert parse_events((await stream(http, emu, key))[1])[-1] == DONE
    events = parse_events((await stream(http, emu, key))[1])
    assert events == [("error", "err-1796076000", {"error": "Message not found in cache."}), DONE]


async def test_cache_key_is_case_insensitive(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    key = (await cache(http, emu))[2]["data"]["cache_key"]
    assert parse_events((await stream(http, emu, key.lower()))[1])[-1] == DONE


async def test_cache_key_expires_after_60_seconds(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    fresh = (await cache(http, emu))[2]["data"]["cache_key"]
    stale = (await cache(http, emu))[2]["data"]["cache_key"]
    emu.advance(59.5)
    assert parse_events((await stream(http, emu, fresh))[1])[-1] == DONE
    emu.advance(0.5)
    expired = [("error", "err-1796076060", {"error": "Cached message has expired."}), DONE]
    assert parse_events((await stream(http, emu, stale))[1]) == expired
    assert parse_events((await stream(http, emu, stale))[1]) == expired  # the row stays
    emu.advance(3600)
    gone = parse_events((await stream(http, emu, stale))[1])
    assert gone[0][2] == {"error": "Message not found in cache."}


@pytest.mark.parametrize(
    ("changes", "error", "key_used"),
    [
        ({"cache_key": ""}, "Message cache key is missing.", False),
        ({"bot_id": None}, "Invalid chatbot specified.", True),
        ({"bot_id": 99}, "Invalid chatbot specified.", True),
        ({"bot_id": 8}, "Invalid chatbot specified.", True),
        ({"conversation": None}, "Conversation ID is missing.", True),
        ({"conversation": "!!"}, "Conversation ID is missing.", True),
        ({"session": None}, "Session ID is missing for guest.", True),
        ({"session": "0"}, "Session ID is missing for guest.", True),
    ],
)
async def test_stream_refusals_end_with_done(
    http: aiohttp.ClientSession, changes: dict[str, Any], error: str, key_used: bool
) -> None:
    async with aipkit(bots=[Bot(4), Bot(8, published=False)]) as emu:
        key = (await cache(http, emu))[2]["data"]["cache_key"]
        arguments = {name: value for name, value in changes.items() if name != "cache_key"}
        raw = (await stream(http, emu, changes.get("cache_key", key), **arguments))[1]
        assert raw.startswith(PREAMBLE)
        assert parse_events(raw) == [("error", "err-1796076000", {"error": error}), DONE]
        again = parse_events((await stream(http, emu, key))[1])
        assert (again[0][0] == "error") is key_used
        assert emu.model_calls == ([] if key_used else emu.model_calls[:1])


@pytest.mark.parametrize(
    ("version", "text"),
    [("2.3", "Security check failed (nonce)."), ("2.3.19", "Security check failed (nonce)."),
     ("2.3.20", NONCE_TEXT)],
)  # fmt: skip
async def test_stream_nonce_text_by_release(
    http: aiohttp.ClientSession, version: str, text: str
) -> None:
    async with aipkit(version) as emu:
        key = (await cache(http, emu))[2]["data"]["cache_key"]
        events = parse_events((await stream(http, emu, key, nonce="0123456789"))[1])
        assert events == [("error", "err-1796076000", {"error": text}), DONE]
        assert parse_events((await stream(http, emu, key))[1])[-1] == DONE


@pytest.mark.parametrize(
    ("version", "preamble", "status"),
    [("2.3", False, False), ("2.3.68", False, False), ("2.3.69", False, True),
     ("2.3.92", False, True), ("2.3.93", True, True)],
)  # fmt: skip
async def test_preamble_and_status_events_by_release(
    http: aiohttp.ClientSession, version: str, preamble: bool, status: bool
) -> None:
    async with aipkit(version) as emu:
        key = (await cache(http, emu))[2]["data"]["cache_key"]
        response, raw = await stream(http, emu, key)
        assert raw.startswith(PREAMBLE) is preamble
        assert response.headers["Cache-Control"].endswith("no-transform") is preamble
        names = [name for name, _, _ in parse_events(raw)]
        assert ("status" in names) is status
        assert names[0] == "message_start"
        assert names[-2:] == ["openai_response_id", "done"]
    async with aipkit(version, preamble=not preamble) as emu:
        key = (await cache(http, emu))[2]["data"]["cache_key"]
        assert (await stream(http, emu, key))[1].startswith(PREAMBLE) is not preamble


async def test_other_providers_start_with_an_empty_delta(http: aiohttp.ClientSession) -> None:
    async with aipkit(provider="OpenRouter") as emu:
        assert (await configs(http, emu))[0]["provider"] == "OpenRouter"
        events = await send(http, emu)
    assert events[0][0] == "message_start"
    assert events[1] == (None, None, {"delta": ""})
    assert {name for name, _, _ in events} == {"message_start", None, "done"}


# the cross-origin rule --------------------------------------------------------------------


async def test_foreign_origin_is_refused_on_the_free_plan(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    port = emu.url.rsplit(":", 1)[1]
    for origin in ("https://evil.example", f"https://127.0.0.1:{port}", "http://localhost",
                   "null"):  # fmt: skip
        status, _, body = await cache(http, emu, headers={"Origin": origin})
        assert status == 403, origin
        assert body["data"] == {
            "message": "Embed feature is not available with your current plan.",
            "code": "embed_not_available",
        }
    # same host and scheme, any port: same origin; no bot_id: not checked
    for origin, bot_id in ((emu.url, 4), ("http://127.0.0.1:1", 4), ("https://evil.example",
                                                                       None)):  # fmt: skip
        assert (await cache(http, emu, bot_id=bot_id, headers={"Origin": origin}))[0] == 200
    key = (await cache(http, emu))[2]["data"]["cache_key"]
    raw = (await stream(http, emu, key, headers={"Origin": "https://evil.example"}))[1]
    assert raw.startswith(PREAMBLE)
    error = {"error": "This domain is not permitted to access the chatbot."}
    assert parse_events(raw) == [("error", "err-1796076000", error), DONE]
    assert parse_events((await stream(http, emu, key))[1])[-1] == DONE  # key kept


async def test_pro_plan_allows_listed_origins(http: aiohttp.ClientSession) -> None:
    bots = [Bot(4, allowed_domains=("https://partner.example/",)), Bot(5)]
    async with aipkit(bots=bots, pro=True) as emu:
        async with http.post(
            emu.ajax_url,
            data={"action": ACTION_CACHE, "_ajax_nonce": emu.current_nonce(), "message": "x",
                  "bot_id": "4"},
            headers={"Origin": "https://partner.example"},
        ) as response:  # fmt: skip
            assert response.status == 200
            assert response.headers["Access-Control-Allow-Origin"] == "https://partner.example"
            assert response.headers["Access-Control-Allow-Credentials"] == "true"
            key = (await response.json())["data"]["cache_key"]
        status, _, body = await cache(http, emu, headers={"Origin": "https://other.example"})
        assert (status, body["data"]["code"]) == (403, "cors_denied")
        # an empty allow-list lets any origin in
        assert (await cache(http, emu, bot_id=5, headers={"Origin": "https://x.example"}))[0] == 200
        response, raw = await stream(http, emu, key, headers={"Origin": "https://partner.example"})
        assert response.headers["Access-Control-Allow-Origin"] == "https://partner.example"
        assert parse_events(raw)[-1] == DONE
        # Pro, cross-origin and no such bot: the settings getter dies
        async with http.post(
            emu.ajax_url,
            data={"action": ACTION_CACHE, "_ajax_nonce": emu.current_nonce(), "message": "x",
                  "bot_id": "99"},
            headers={"Origin": "https://x.example"},
        ) as response:  # fmt: skip
            assert response.status == 500
            assert "critical error" in await response.text()


async def test_no_cross_origin_rule_before_2_3_31(http: aiohttp.ClientSession) -> None:
    async with aipkit("2.3.30") as emu:
        foreign = {"Origin": "https://evil.example"}
        status, _, body = await cache(http, emu, headers=foreign)
        assert status == 200
        raw = (await stream(http, emu, body["data"]["cache_key"], headers=foreign))[1]
        assert parse_events(raw)[-1] == DONE


async def test_preflight_is_wordpress_own(http: aiohttp.ClientSession, emu: AipkitEmulator) -> None:
    url = emu.ajax_url + "?action=" + ACTION_CACHE
    async with http.options(url, headers={"Origin": emu.url}) as response:
        assert (response.status, await response.read()) == (403, b"")
    async with http.options(url, headers={"Origin": "http://127.0.0.1"}) as response:
        assert response.status == 200
        assert response.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1"


# actions that do not exist ----------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"action": "wpaicg_chat_shortcode_message", "_wpnonce": "x", "message": "legacy?"},
        {"action": "wpaicg_chatbox_message", "message": "legacy?"},
        {"action": "nope"},
        {},
        {"action": "aipkit_frontend_chat_message", "message": "x"},
    ],
)
async def test_unknown_actions_are_400_zero(
    http: aiohttp.ClientSession, emu: AipkitEmulator, fields: dict[str, str]
) -> None:
    assert await post(http, emu, fields) == (400, HTML_TYPE, "0")
    async with http.get(emu.ajax_url) as response:
        assert (response.status, await response.text()) == (400, "0")


# the JSON action (2.3 to 2.4.0) -----------------------------------------------------------


async def test_json_action_answers_up_to_2_4_0(http: aiohttp.ClientSession) -> None:
    async with aipkit("2.4.0") as emu:
        status, content_type, text = await json_message(http, emu, " json hello ")
        assert (status, content_type) == (200, JSON_TYPE)
        body = json.loads(text)
        assert list(body["data"]) == ["reply", "message_id", "openai_response_id"]
        assert re.fullmatch(r"aipkit-msg-[0-9a-f]{14}\d{8}", body["data"]["message_id"])
        # the JSON path gives the model the new message twice (history + message)
        assert emu.model_calls[-1] == [
            SYSTEM,
            {"role": "user", "content": "json hello"},
            {"role": "user", "content": "json hello"},
        ]
        assert body["data"]["reply"] == default_reply("json hello", emu.model_calls[-1])
        await json_message(http, emu, "second")
        assert emu.model_calls[-1][1:] == [
            {"role": "user", "content": "json hello"},
            {"role": "assistant", "content": body["data"]["reply"]},
            {"role": "user", "content": "second"},
            {"role": "user", "content": "second"},
        ]
        assert emu.posts == 2


async def test_json_action_errors(http: aiohttp.ClientSession) -> None:
    async with aipkit("2.4.0", bots=[Bot(4), Bot(8, published=False)]) as emu:
        bad_nonce = await json_message(http, emu, "x", _ajax_nonce="0123456789")
        assert bad_nonce[0] == 403
        assert json.loads(bad_nonce[2]) == {"success": False, "data": {"message": NONCE_TEXT}}
        status, content_type, text = await json_message(http, emu, "x", bot_id="99")
        assert (status, content_type) == (500, HTML_TYPE)
        assert text.startswith("<p>There has been a critical error on this website.</p>")
        draft = await json_message(http, emu, "x", bot_id="8")
        assert (draft[0], json.loads(draft[2])["data"]["message"]) == (
            400,
            "Invalid chatbot specified.",
        )
        for message in ("", "  ", "0"):
            empty = await json_message(http, emu, message)
            assert (empty[0], json.loads(empty[2])["data"]) == (
                400,
                {"message": "Message or image cannot be empty."},
            )
        no_conversation = await json_message(http, emu, "x", conversation="")
        assert json.loads(no_conversation[2])["data"]["message"] == "Conversation ID is required."
        foreign = await post(
            http,
            emu,
            {"action": "aipkit_frontend_chat_message", "message": "x", "bot_id": "4"},
            headers={"Origin": "https://evil.example"},
        )
        assert (foreign[0], json.loads(foreign[2])["data"]) == (
            403,
            {"message": "Embed feature is not available with your current plan."},
        )
        emu.fail_next(AipkitFault.model_error())
        failed = await json_message(http, emu, "boom")
        assert failed[0] == 401
        assert json.loads(failed[2])["data"]["message"].startswith(
            "OpenAI API Error (HTTP 401): Incorrect API key provided"
        )


async def test_json_action_checked_no_nonce_before_2_3_20(http: aiohttp.ClientSession) -> None:
    async with aipkit("2.3.19") as emu:
        assert (await json_message(http, emu, "x", _ajax_nonce=""))[0] == 200
    async with aipkit("2.3.20") as emu:
        assert (await json_message(http, emu, "x", _ajax_nonce=""))[0] == 403


async def test_json_action_is_gone_from_2_4_1(http: aiohttp.ClientSession) -> None:
    async with aipkit("2.4.1") as emu:
        assert await json_message(http, emu, "x") == (400, HTML_TYPE, "0")
        assert emu.model_calls == []
        assert emu.posts == 0


# the conversation -------------------------------------------------------------------------


async def test_history_continues_per_session_and_conversation(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    first = text_of(await send(http, emu, "hello aipkit"))
    assert emu.model_calls[0] == [SYSTEM, {"role": "user", "content": "hello aipkit"}]
    second = text_of(await send(http, emu, "and a second turn"))
    assert emu.model_calls[1] == [
        SYSTEM,
        {"role": "user", "content": "hello aipkit"},
        {"role": "assistant", "content": first},
        {"role": "user", "content": "and a second turn"},
    ]
    assert second.endswith("You said: and a second turn (the model saw 2 earlier messages)")
    # conversation_uuid goes through sanitize_key: upper case is the same conversation
    await send(http, emu, "third", conversation="0B0C0D0E-1F2A-4B3C-9D8E-7F6A5B4C3D2E")
    assert len(emu.model_calls[2]) == 6
    # a new conversation_uuid starts afresh; so does another session_id
    await send(http, emu, "fresh", conversation="c-new")
    assert emu.model_calls[3] == [SYSTEM, {"role": "user", "content": "fresh"}]
    await send(http, emu, "other guest", session="someone-else")
    assert emu.model_calls[4] == [SYSTEM, {"role": "user", "content": "other guest"}]
    stored = emu.conversations[(4, "6f1c1d7e-2f3a-4b5c-8d9e-0a1b2c3d4e5f",
                                "0b0c0d0e-1f2a-4b3c-9d8e-7f6a5b4c3d2e")]  # fmt: skip
    assert [entry["role"] for entry in stored] == ["user", "bot"] * 3
    assert stored[1]["content"] == first


async def test_history_keeps_the_last_max_messages(http: aiohttp.ClientSession) -> None:
    async with aipkit(bots=[Bot(4, max_messages=2)]) as emu:
        for message in ("one", "two", "three"):
            await send(http, emu, message)
        assert [m["content"] for m in emu.model_calls[-1][1:]][:2] == [
            "two",
            default_reply("two", emu.model_calls[1]),
        ]
        assert len(emu.model_calls[-1]) == 4
    async with aipkit(bots=[Bot(4, max_messages=0)]) as emu:  # 0: everything (-0 slice)
        for message in ("one", "two", "three"):
            await send(http, emu, message)
        assert len(emu.model_calls[-1]) == 6


async def test_instructions_and_date(http: aiohttp.ClientSession) -> None:
    bots = [Bot(4, instructions="Be terse. Date: [date]"), Bot(5, instructions="  ")]
    async with aipkit(bots=bots) as emu:
        await send(http, emu, "x")
        await send(http, emu, "y", bot_id=5)
        assert emu.model_calls[0][0] == {"role": "system", "content": f"Be terse. Date: {TODAY}"}
        assert emu.model_calls[1][0] == {
            "role": "system",
            "content": "You are a helpful AI Assistant.",
        }


async def test_a_failed_turn_keeps_its_message_but_no_reply(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    await send(http, emu, "first")
    emu.fail_next(AipkitFault.model_error())
    events = await send(http, emu, "fails")
    assert [name for name, _, _ in events] == ["message_start", "error"]
    assert events[1][2]["error"].startswith("API Error: Incorrect API key provided")
    await send(http, emu, "third")
    assert [m["content"] for m in emu.model_calls[-1][1:]] == [
        "first",
        default_reply("first", emu.model_calls[0]),
        "fails",
        "third",
    ]


async def test_history_action_reads_the_conversation_back(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    await send(http, emu, "hi", conversation="hx")
    fields = {
        "action": "aipkit_get_conversation_history",
        "_ajax_nonce": emu.current_nonce(),
        "bot_id": "4",
        "session_id": "6f1c1d7e-2f3a-4b5c-8d9e-0a1b2c3d4e5f",
        "conversation_uuid": "hx",
    }
    status, _, text = await post(http, emu, fields)
    history = json.loads(text)["data"]["history"]
    assert status == 200
    assert [entry["role"] for entry in history] == ["user", "bot"]
    assert history[0]["content"] == "hi"
    assert all(re.fullmatch(r"aipkit-msg-[0-9a-f]{22}", entry["message_id"]) for entry in history)
    status, _, text = await post(http, emu, {**fields, "_ajax_nonce": "x"})
    assert status == 403
    assert json.loads(text)["data"]["code"] == "nonce_failure"
    status, _, text = await post(http, emu, {**fields, "session_id": ""})
    assert status == 400


async def test_the_client_message_id_names_the_stored_message(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    _status, _, body = await cache(
        http, emu, "x", extra={"user_client_message_id": "aipkit-client-msg-4-1755600000000-AbCdE"}
    )
    await stream(http, emu, body["data"]["cache_key"], conversation="ids")
    stored = next(iter(emu.conversations.values()))
    assert stored[0]["message_id"] == "aipkit-client-msg-4-1755600000000-abcde"


# quota, blocklists, moderation, triggers --------------------------------------------------


@pytest.mark.parametrize(
    ("version", "text", "notice"),
    [("2.3.93", "You have reached your token limit for this period.", False),
     ("2.3.94", "You have reached your quota for this period.", False),
     ("2.4.5", "You have reached your quota for this period.", True)],
)  # fmt: skip
async def test_guest_quota(
    http: aiohttp.ClientSession, version: str, text: str, notice: bool
) -> None:
    async with aipkit(version, guest_quota=1) as emu:
        assert (await send(http, emu, "q1"))[-1] == DONE
        events = await send(http, emu, "q2", conversation="another")
        data: dict[str, Any] = {"error": text}
        if notice:
            data["quota_notice"] = {"type": "quota_notice", "message": text, "actions": []}
        assert events == [("error", "err-1796076000", data), DONE]
        assert (await send(http, emu, "q3", session="other-guest"))[-1] == DONE
        assert len(emu.model_calls) == 2
        emu.reset_quota()
        assert (await send(http, emu, "q4"))[-1] == DONE


async def test_quota_zero_refuses_guests_and_bot_texts(http: aiohttp.ClientSession) -> None:
    async with aipkit(guest_quota=0) as emu:
        assert (await send(http, emu))[0][2] == {"error": "Access disabled for guests."}
    async with aipkit(bots=[Bot(4, quota_message="Come back tomorrow.")]) as emu:
        emu.fail_next(AipkitFault.quota_reached())
        assert (await send(http, emu))[0][2]["error"] == "Come back tomorrow."


async def test_blocklists_and_moderation(http: aiohttp.ClientSession) -> None:
    async with aipkit(banned_words=["Foo", "bar baz"], moderated_words=["kill"]) as emu:
        words = "Sorry, your message could not be sent as it contains prohibited words."
        for message, refused in [("I like FOO!", True), ("food", False), ("bar baz yes", True),
                                 ("bar  baz", False), ("say foo-bar", True)]:  # fmt: skip
            events = await send(http, emu, message, conversation="w")
            assert (events[0][2] == {"error": words}) is refused, message
        moderated = await send(http, emu, "how to KILL time")
        assert moderated == [
            ("error", "err-1796076000",
             {"error": "Your message was flagged by the moderation system and could not be sent."}),
            DONE,
        ]  # fmt: skip
        stored = emu.conversations[(4, "6f1c1d7e-2f3a-4b5c-8d9e-0a1b2c3d4e5f", "w")]
        assert [entry["content"] for entry in stored if entry["role"] == "user"] == [
            "food",
            "bar  baz",
        ]
    async with aipkit(banned_ips=["127.0.0.1"], banned_ips_message="Go away.") as emu:
        assert (await send(http, emu))[0][2] == {"error": "Go away."}
        assert emu.model_calls == []


async def test_triggers_answer_without_the_model(http: aiohttp.ClientSession) -> None:
    form = {"form_id": "lead", "title": "Your email", "fields": [{"name": "email"}]}
    async with aipkit(trigger_replies={"opening hours": "We open at 9."},
                      form_triggers={"contact": form}) as emu:  # fmt: skip
        events = await send(http, emu, "What are your Opening Hours?")
        assert events[0][0] == "message_start"
        assert events[0][2]["message_id"].startswith("trigger-reply-")
        assert events[1:] == [(None, None, {"delta": "We open at 9."}), DONE]
        assert await send(http, emu, "contact me") == [
            ("display_form_event", None, {"form_definition": form}),
            DONE,
        ]
        assert emu.model_calls == []


# faults -----------------------------------------------------------------------------------


async def test_model_error_ends_without_done(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    emu.fail_next(AipkitFault.model_error())
    key = (await cache(http, emu))[2]["data"]["cache_key"]
    raw = (await stream(http, emu, key))[1]
    events = parse_events(raw)
    assert [name for name, _, _ in events] == ["message_start", "error"]
    assert events[1][1] == "err-1796076000"
    assert events[1][2]["error"].startswith("API Error: Incorrect API key provided: sk-")
    assert b"https:\\/\\/platform.openai.com" in raw
    assert raw.endswith(b"\n\n")
    assert b"done" not in raw
    assert len(emu.model_calls) == 1  # the model was called


async def test_model_error_mid_stream(http: aiohttp.ClientSession, emu: AipkitEmulator) -> None:
    emu.fail_next(AipkitFault.model_error(after_chunks=2))
    events = await send(http, emu, "one two three four")
    assert [name for name, _, _ in events] == [
        "message_start", "status", "status", None, None, "error",
    ]  # fmt: skip
    assert events[-1][2] == {"error": DEFAULT_STREAM_ERROR}
    assert DEFAULT_STREAM_ERROR.startswith(" (Error: The server had an error")
    stored = next(iter(emu.conversations.values()))
    assert [entry["role"] for entry in stored] == ["user"]


async def test_connection_error_keeps_the_partial_reply(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    emu.fail_next(AipkitFault.connection_error(after_chunks=2))
    events = await send(http, emu)
    assert events[-1][0] == "error"
    assert events[-1][2]["error"].startswith("Connection Error: Operation timed out")
    stored = next(iter(emu.conversations.values()))
    assert stored[-1] == {**stored[-1], "role": "bot", "content": "Hello! This "}


async def test_upstream_cut_ends_with_done_and_keeps_the_partial_reply(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    emu.fail_next(AipkitFault.upstream_cut(after_chunks=2))
    events = await send(http, emu, "cut me short")
    assert text_of(events) == "Hello! This "
    assert events[-1] == DONE
    assert "openai_response_id" not in [name for name, _, _ in events]
    await send(http, emu, "after cut")
    assert emu.model_calls[-1][2] == {"role": "assistant", "content": "Hello! This"}
    emu.fail_next(AipkitFault.upstream_cut(after_chunks=0))
    events = await send(http, emu, "nothing")
    assert [name for name, _, _ in events] == ["message_start", "error"]
    assert events[-1][2] == {"error": "Connection error: no data received from AI."}


async def test_stream_cut_drops_the_connection(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    emu.fail_next(AipkitFault.stream_cut(after_chunks=2))
    key = (await cache(http, emu))[2]["data"]["cache_key"]
    with pytest.raises(aiohttp.ClientPayloadError):
        await stream(http, emu, key)
    stored = next(iter(emu.conversations.values()))
    assert [entry["role"] for entry in stored] == ["user"]


async def test_clean_stream_cut_ends_without_done(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    emu.fail_next(AipkitFault.stream_cut(after_chunks=1, clean=True))
    events = await send(http, emu)
    assert [name for name, _, _ in events] == ["message_start", "status", "status", None]


async def test_stream_stall_and_warning(http: aiohttp.ClientSession) -> None:
    async with AipkitEmulator(stream_chunks=3) as emu:
        emu.fail_next(AipkitFault.stream_stall(after_chunks=1, seconds=0.3))
        started = time.monotonic()
        events = await send(http, emu)
        assert time.monotonic() - started >= 0.3
        assert events[-1] == DONE
        assert len([n for n, _, _ in events if n is None]) == 3
        emu.fail_next(AipkitFault.warning(" (Incomplete: max_output_tokens)"))
        events = await send(http, emu, conversation="w")
        warning = [event for event in events if event[0] == "warning"]
        assert warning == [
            ("warning", f"err-{int(emu.now())}", {"error": " (Incomplete: max_output_tokens)"})
        ]
        assert events[-1] == DONE
        stored = emu.conversations[(4, "6f1c1d7e-2f3a-4b5c-8d9e-0a1b2c3d4e5f", "w")]
        assert stored[-1]["content"].endswith(
            "You said: hello aipkit (Incomplete: max_output_tokens)"
        )


async def test_plugin_faults_at_their_step(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    emu.fail_next(AipkitFault.stale_nonce(target="stream"))
    status, _, body = await cache(http, emu)  # step 1 is not hit
    assert status == 200
    events = parse_events((await stream(http, emu, body["data"]["cache_key"]))[1])
    assert events == [("error", "err-1796076000", {"error": NONCE_TEXT}), DONE]
    emu.fail_next(AipkitFault.stale_nonce())
    assert (await cache(http, emu))[0] == 403
    for fault, text in [(AipkitFault.cache_expired(), "Cached message has expired."),
                        (AipkitFault.cache_missing(), "Message not found in cache.")]:  # fmt: skip
        emu.fail_next(fault)
        assert (await send(http, emu))[0][2] == {"error": text}
    emu.fail_next(AipkitFault.cache_store_failed())
    status, _, body = await cache(http, emu)
    assert (status, body["data"]["code"]) == (500, "sse_cache_db_insert_failed")
    assert emu.pending_faults() == []


async def test_http_faults(http: aiohttp.ClientSession, emu: AipkitEmulator) -> None:
    emu.fail_next(AipkitFault.server_error(503, target="stream"))
    key = (await cache(http, emu))[2]["data"]["cache_key"]
    response, raw = await stream(http, emu, key)
    assert response.status == 503
    assert b"503 Service Temporarily Unavailable" in raw
    emu.fail_next(AipkitFault.rate_limited("7", target="cache"))
    async with http.post(emu.ajax_url, data={"action": ACTION_CACHE}) as response:
        assert (response.status, response.headers["Retry-After"]) == (429, "7")
    emu.fail_next(AipkitFault.cloudflare())
    async with http.post(emu.ajax_url, data={"action": ACTION_CACHE}) as response:
        assert response.status == 403
        assert response.headers["cf-mitigated"] == "challenge"
    emu.fail_next(AipkitFault.plugin_gone())
    assert await post(http, emu, {"action": ACTION_CACHE}) == (400, HTML_TYPE, "0")
    emu.fail_next(AipkitFault.status(418, "teapot", target="nonce"))
    assert await post(http, emu, {"action": "aipkit_get_frontend_chat_nonce"}) == (
        418,
        HTML_TYPE,
        "teapot",
    )
    emu.fail_next(AipkitFault.reset())
    with pytest.raises(aiohttp.ClientError):
        await post(http, emu, {"action": ACTION_CACHE})
    emu.fail_next(AipkitFault.stall(0.2, target="cache"))
    started = time.monotonic()
    assert (await cache(http, emu))[0] == 200
    assert time.monotonic() - started >= 0.2
    emu.fail_next(AipkitFault.page("<html>maintenance</html>"))
    async with http.get(emu.url + "/") as response:
        assert await response.text() == "<html>maintenance</html>"
    assert (await configs(http, emu))[0]["botId"] == 4


async def test_fault_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="target"):
        AipkitFault.stale_nonce(target="page")
    with pytest.raises(ValueError, match="after_chunks"):
        AipkitFault.stream_cut(-1)
    with pytest.raises(ValueError, match="5xx"):
        AipkitFault.server_error(404)
    with pytest.raises(TypeError):
        AipkitEmulator().fail_next("nope")  # type: ignore[arg-type]
    assert "kind='stream_cut'" in repr(AipkitFault.stream_cut(2))


# counters, settings, command line ---------------------------------------------------------


async def test_counters(http: aiohttp.ClientSession, emu: AipkitEmulator) -> None:
    await configs(http, emu)
    await send(http, emu)
    assert (emu.page_loads, emu.posts, emu.streams) == (1, 1, 1)
    assert emu.connections >= 1
    assert [record.method for record in emu.requests] == ["GET", "POST", "GET"]
    assert emu.requests[2].model_calls == emu.model_calls
    assert emu.requests[1].form["message"] == "hello aipkit"
    emu.reset_counters()
    assert (emu.page_loads, emu.posts, emu.streams, emu.requests, emu.model_calls) == (
        0, 0, 0, [], [],
    )  # fmt: skip
    assert emu.conversations  # the site's state stays
    assert emu.running
    assert "plugin=2.4.71" in repr(emu)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="SiteEmulator"):
        AipkitEmulator(plugin_version="2.2")
    with pytest.raises(ValueError, match="unique"):
        AipkitEmulator(bots=[4, Bot(4)])
    with pytest.raises(ValueError, match="positive"):
        Bot(0)
    with pytest.raises(RuntimeError, match="not started"):
        _ = AipkitEmulator().url
    assert [bot.id for bot in AipkitEmulator(bots=[3, Bot(9)]).bots] == [3, 9]


async def test_reply_functions(http: aiohttp.ClientSession) -> None:
    seen: list[Any] = []

    async def reply(message: str, messages: list[dict[str, str]]) -> str:
        seen.append((message, messages))
        return "fine, thanks"

    async with aipkit(reply=reply) as emu:
        assert text_of(await send(http, emu, "  how are you?  ")) == "fine, thanks"
    assert seen == [("how are you?", [SYSTEM, {"role": "user", "content": "how are you?"}])]
    async with aipkit(reply="fixed") as emu:
        assert text_of(await send(http, emu)) == "fixed"


def test_command_line_options() -> None:
    parser = build_parser_arguments(argparse.ArgumentParser())
    args = parser.parse_args(
        ["--plugin-version", "2.4.0", "--bot-id", "4", "--bot-id", "9", "--inline",
         "--pro", "--allowed-domain", "https://a.example", "--guest-quota", "3",
         "--provider", "OpenRouter", "--preamble", "off", "--trigger", "hours=9 to 5",
         "--fail", "stream_stall=2,0.5", "--fail", "stale_nonce=stream", "--reply", "hi"]
    )  # fmt: skip
    emu = emulator_from_args(args)
    assert emu.plugin_version == "2.4.0"
    assert [(bot.id, bot.popup, bot.allowed_domains) for bot in emu.bots] == [
        (4, False, ("https://a.example",)),
        (9, False, ("https://a.example",)),
    ]
    assert (emu.pro, emu.guest_quota, emu.provider, emu.preamble, emu.reply) == (
        True, 3, "OpenRouter", False, "hi",
    )  # fmt: skip
    assert emu.trigger_replies == {"hours": "9 to 5"}
    assert emu.pending_faults() == [
        AipkitFault.stream_stall(2, 0.5),
        AipkitFault.stale_nonce("stream"),
    ]
    # without the shared options, next to a parser that has them already
    other = argparse.ArgumentParser()
    other.add_argument("--host", default="0.0.0.0")
    build_parser_arguments(other, shared=False)
    emu = emulator_from_args(other.parse_args(["--max-messages", "3"]))
    assert (emu.host, emu.bots[0].max_messages, emu.plugin_version) == ("0.0.0.0", 3, "2.4.71")
    with pytest.raises(argparse.ArgumentTypeError, match="unknown fault"):
        parse_fault("nope")
    assert parse_fault("model_error=boom, really") == AipkitFault.model_error("boom, really")
    assert parse_fault("server-error=503") == AipkitFault.server_error(503)


# the PHP helpers --------------------------------------------------------------------------


def test_php_helpers() -> None:
    assert sanitize_key("Ab-C_d.e!") == "ab-c_de"
    assert [absint(text) for text in ("4", "-4", " 4abc", "abc", "1e2", "4.9", "")] == [
        4, 4, 4, 0, 100, 4, 0,
    ]  # fmt: skip
    assert stripslashes("a\\\\b\\c\\0d\\") == "a\\bc\0d"
    assert json_unicode({"delta": "é/\n\u2028"}) == '{"delta":"é\\/\\n\\u2028"}'
    assert json_unicode({"x": "\ud800"}) == ""
    assert wp_json_hex({"a": "<'&\">"}) == '{"a":"\\u003C\\u0027\\u0026\\u0022\\u003E"}'
    assert re.fullmatch(r"[0-9a-f]{13}\d\.\d{8}", uniqid(T0, more_entropy=True))
    assert uniqid(T0) == "6b0df1e03d090"


def test_default_reply_counts_earlier_messages() -> None:
    assert default_reply("hi") == "Hello! This is the local AIPKit emulator. You said: hi"
    messages = [SYSTEM, {"role": "user", "content": "a"}, {"role": "user", "content": "hi"}]
    assert default_reply("hi", messages).endswith("(the model saw 1 earlier message)")


async def test_concurrent_conversations(http: aiohttp.ClientSession, emu: AipkitEmulator) -> None:
    results = await asyncio.gather(
        *(send(http, emu, f"m{i}", conversation=f"c{i}") for i in range(5))
    )
    assert all(events[-1] == DONE for events in results)
    assert len(emu.conversations) == 5


async def test_release_2_3_31_refused_every_stream_on_the_free_plan(
    http: aiohttp.ClientSession,
) -> None:
    async with aipkit("2.3.31") as emu:
        status, _, body = await cache(http, emu)  # no Origin: fine
        assert status == 200
        raw = (await stream(http, emu, body["data"]["cache_key"]))[1]
        error = {"error": "This domain is not permitted to access the chatbot."}
        assert parse_events(raw) == [("error", "err-1796076000", error), DONE]
        # any Origin at all, the site's own included, is "embedding"
        status, _, body = await cache(http, emu, headers={"Origin": emu.url})
        assert (status, body["data"]["code"]) == (403, "embed_not_available")
    async with aipkit(
        "2.3.31", pro=True, bots=[Bot(4, allowed_domains=("https://a.example",))]
    ) as emu:
        status, _, body = await cache(http, emu, headers={"Origin": emu.url})
        assert (status, body["data"]["code"]) == (403, "cors_denied")
        assert (await send(http, emu))[-1] == DONE  # no Origin: allowed on Pro
    async with aipkit("2.3.32") as emu:
        assert (await cache(http, emu, headers={"Origin": emu.url}))[0] == 200
        assert (await send(http, emu))[-1] == DONE


async def test_images_were_taken_loosely_before_2_3_71(http: aiohttp.ClientSession) -> None:
    png = base64.b64encode(b"\x89PNG").decode()
    async with aipkit("2.3.70") as emu:
        loose = json.dumps([{"mime_type": "image/gif", "base64_data": "!!"}])
        assert (await cache(http, emu, "", extra={"image_inputs": loose}))[0] == 200
        for raw in ("nope", json.dumps([{"mime_type": "text/plain", "base64_data": png}])):
            status, _, body = await cache(http, emu, "", extra={"image_inputs": raw})
            assert (status, body["data"]["code"]) == (400, "empty_data_to_cache")


async def test_stored_replies_name_the_model(
    http: aiohttp.ClientSession, emu: AipkitEmulator
) -> None:
    events = await send(http, emu)
    stored = next(iter(emu.conversations.values()))
    assert stored[1]["provider"] == "OpenAI"
    assert stored[1]["model"] == "gpt-4o-mini"
    assert stored[1]["openai_response_id"] == events[-2][2]["id"]
    assert stored[1]["message_id"] == events[0][2]["message_id"].replace(".", "")


async def test_a_client_that_leaves_mid_stream_gets_no_stored_reply(
    http: aiohttp.ClientSession,
) -> None:
    async with AipkitEmulator(chunk_delay=0.05, stream_chunks=20) as emu:
        key = (await cache(http, emu))[2]["data"]["cache_key"]
        params = {
            "action": ACTION_STREAM,
            "cache_key": key,
            "bot_id": "4",
            "session_id": "s",
            "conversation_uuid": "c",
            "_ajax_nonce": emu.current_nonce(),
        }
        response = await http.get(emu.ajax_url, params=params)
        async for line in response.content:
            if line.startswith(b'data: {"delta"'):
                break
        response.close()
        await asyncio.sleep(0.3)
        assert [entry["role"] for entry in emu.conversations[(4, "s", "c")]] == ["user"]
        assert emu.quota_usage == {}
