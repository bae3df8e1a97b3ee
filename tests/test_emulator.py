"""Tests of chatgpt4o.testing, the chatgpt4o.one emulator, on the wire (aiohttp client).

Each behaviour of the AI Power releases 1.8.79 to 2.2 that docs/protocol.md describes has a
test here whose name says what it checks; the real plugin's answers these reproduce were
checked against captures of the real plugin on WordPress 6.1.
"""

from __future__ import annotations

import asyncio
import base64
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
from chatgpt4o.testing._conversation import greeting
from chatgpt4o.testing._emulator import default_reply
from chatgpt4o.testing._nonces import IMAGE_NONCE_ACTION, nonce_tick
from chatgpt4o.testing._pages import FOREIGN_AJAX_PATH, POST_EXCERPT, POST_TITLE
from chatgpt4o.testing._php import php_json, sanitize_text_field

from .emulator_process import emulator_process

# The plugin is a pytest11 entry point once chatgpt4o is installed; register it here only
# when it is not loaded already (registering a module twice is an error).
if "chatgpt4o.testing.pytest_plugin" not in sys.modules:
    pytest_plugins = ["chatgpt4o.testing.pytest_plugin"]

ACTION = "wpaicg_chat_shortcode_message"
DAY_HALF = 43200
EVENT_STREAM = "text/event-stream;charset=UTF-8"
JSON_TYPE = "application/json; charset=UTF-8"
HTML_TYPE = "text/html; charset=UTF-8"
CHAT_FILE = "/var/www/html/wp-content/plugins/gpt3-ai-content-generator/classes/wpaicg_chat.php"
#: The plugin's prompt when the request names the page's post (English site).
PROMPT = greeting("en", f'"{POST_TITLE}\n{POST_EXCERPT}"')
#: The plugin's prompt without page context.
BARE_PROMPT = greeting("en", None)


# helpers ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_server_errors(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The emulator must never make aiohttp log an error, whatever the fault."""
    caplog.set_level(logging.WARNING, logger="aiohttp")
    yield
    errors = [r for r in caplog.records if r.name.startswith("aiohttp") and r.levelno >= 40]
    assert not errors, [r.getMessage() for r in errors]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def chat_form(emulator: SiteEmulator, message: str = "Hi", **extra: str) -> dict[str, str]:
    form = {
        "action": ACTION,
        "_wpnonce": emulator.current_nonce(),
        "post_id": "11",
        "url": emulator.url,
        "bot_id": "0",
        "message": message,
        "chatbot_identity": "shortcode",
    }
    form.update(extra)
    return form


async def post(
    http: aiohttp.ClientSession, emulator: SiteEmulator, message: str = "Hi", **extra: Any
) -> tuple[int, CIMultiDictProxy[str], bytes]:
    headers = extra.pop("headers", None)
    async with http.post(
        emulator.ajax_url, data=chat_form(emulator, message, **extra), headers=headers
    ) as response:
        return response.status, response.headers, await response.read()


async def post_json(
    http: aiohttp.ClientSession, emulator: SiteEmulator, message: str = "Hi", **extra: Any
) -> Any:
    status, headers, body = await post(http, emulator, message, **extra)
    assert status == 200
    assert headers["Content-Type"] == "application/json; charset=UTF-8"
    return json.loads(body)


async def get_page(http: aiohttp.ClientSession, emulator: SiteEmulator) -> str:
    async with http.get(emulator.url + "/") as response:
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


def parse_sse(text: str) -> tuple[list[tuple[str, str]], str]:
    """Split an answer into ``(event, data)`` pairs (event ``""`` when there is no
    ``event:`` line) and the text after the last SSE block."""
    events: list[tuple[str, str]] = []
    rest = text
    while rest.startswith(("data:", "event:")):
        block, _, rest = rest.partition("\n\n")
        name, data = "", ""
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            elif field == "data":
                data = value
        events.append((name, data))
    return events, rest


def history(*texts: str) -> str:
    """``wpaicg_chat_history`` as the browser writes it (``JSON.stringify``)."""
    entries = [{"id": index + 1, "text": text} for index, text in enumerate(texts)]
    return json.dumps(entries, ensure_ascii=False, separators=(",", ":"))


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
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    page = await get_page(http, emulator)
    nonce = emulator.current_nonce()
    assert re.fullmatch(r"[0-9a-f]{10}", nonce)
    images = f"{emulator.url}/wp-content/plugins/gpt3-ai-content-generator/admin/images"
    widget = f"""<div class="wpaicg-chat-shortcode"
     data-user-bg-color="#ccf5e1"
     data-color="#495057"
     data-fontsize="14"
     data-use-avatar="0"
     data-user-avatar="{images}/default_profile.png"
     data-you="You"
     data-ai-avatar="{images}/chatbot.png"
     data-ai-name="AI"
     data-ai-bg-color="#d1e8ff"
     data-nonce="{nonce}"
     data-post-id="11"
     data-url="{emulator.url}"
     data-bot-id="0"
     data-width="100%"
     data-height="50%"
     data-footer="false"
     data-has-bar="false"
     data-speech=""
     data-typewriter-effect = "0"
     data-typewriter-speed="1"
     data-openai_stream_nav="0"
     data-autoload_chat_conversations="0"
     data-copy_btn=""
     data-feedback_btn = ""
     data-memory-limit = "10"
     data-type="shortcode"
>"""
    assert widget in page
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    params = re.search(r"var wpaicgParams = (\{.*?\});", page)
    assert params is not None
    assert json.loads(params.group(1))["search_nonce"] == nonce
    assert json.loads(params.group(1))["logged_in"] == "0"  # localize() makes strings
    escaped_url = emulator.url.replace("/", "\\/")
    assert f'"ajax_url":"{escaped_url}\\/wp-admin\\/admin-ajax.php"' in params.group(1)
    assert page.index("data-nonce") < page.index("wpaicgParams")  # printed in the footer
    image = re.search(r'id="wpaicg-img-nonce"[^>]*value="([0-9a-f]{10})"', page)
    assert image is not None
    assert image.group(1) == emulator.current_image_nonce() != nonce
    assert page.index("wpaicg-img-nonce") < page.index("data-nonce")
    rest = re.search(r'"nonce":"([0-9a-f]{10})"', page)
    assert rest is not None
    assert rest.group(1) != nonce
    assert emulator.page_loads == 1


@pytest.mark.parametrize(
    ("variant", "post_id"),
    [
        ("standard", "11"),
        ("minified", "11"),
        ("single_quoted", "11"),
        ("params_only", None),
        ("post_id_bug", "<11"),
        ("empty_post_id", ""),
        ("no_post_id", None),
        ("no_nonce", "11"),
        ("two_widgets", "11"),
        ("reordered", "11"),
    ],
)
async def test_page_variants(
    emulator: SiteEmulator, http: aiohttp.ClientSession, variant: str, post_id: str | None
) -> None:
    emulator.page_variant = variant
    emulator.post_id = 11
    page = await get_page(http, emulator)
    nonce = emulator.current_nonce()
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
    if variant in ("no_post_id", "empty_post_id"):
        assert not re.search(r"(?<![\w:.#-])11(?!\w)", page.replace(emulator.url, ""))
    assert f'value="{emulator.current_image_nonce()}"' in page


async def test_variant_specifics(emulator: SiteEmulator, http: aiohttp.ClientSession) -> None:
    nonce = emulator.current_nonce()
    emulator.page_variant = "minified"
    page = await get_page(http, emulator)
    assert "\n" not in page
    assert f"data-nonce={nonce} data-post-id=11 data-url={emulator.url} " in page
    emulator.page_variant = "single_quoted"
    page = await get_page(http, emulator)
    assert f"     data-nonce='{nonce}'\n" in page
    emulator.page_variant = "reordered"
    page = await get_page(http, emulator)
    tag = re.search(r"<div data-type=\"shortcode\"[^>]*>", page)
    assert tag is not None
    assert tag.group().index("data-bot-id") < tag.group().index("class=")
    assert 'data-nonce-refresh="0"' in tag.group()
    emulator.page_variant = "two_widgets"
    emulator.bot_id = 0
    page = await get_page(http, emulator)
    bots = re.findall(r'data-bot-id="(\d+)"', page)
    assert bots == ["5", "0"]
    assert page.count(f'data-nonce="{nonce}"') == 2
    emulator.page_variant = "empty_post_id"
    page = await get_page(http, emulator)
    assert '     data-post-id=""\n' in page
    assert "search-results" in page
    emulator.page_variant = "standard"
    emulator.stream = True
    emulator.widget = "widget"
    page = await get_page(http, emulator)
    assert 'class="wpaicg_chat_widget wpaicg_widget_left">\n<div class="wpaicg-chatbox ' in page
    assert '<div class="wpaicg-chatbox wpaicg-chat-widget-no-footer"' in page
    assert 'data-type="widget"' in page
    assert 'data-openai_stream_nav="1"' in page
    assert page.index("</footer>") < page.index("wpaicg-chatbox")  # printed by wp_footer
    with pytest.raises(ValueError, match="page_variant"):
        emulator.page_variant = "fancy"
    with pytest.raises(ValueError, match="widget"):
        emulator.widget = "popup"
    with pytest.raises(ValueError, match="plugin version"):
        emulator.plugin_version = "latest"
    with pytest.raises(ValueError, match="params_style"):
        emulator.params_style = "json"
    with pytest.raises(ValueError, match="language"):
        emulator.language = "xx"
    with pytest.raises(ValueError, match="php_warnings"):
        emulator.php_warnings = "loud"
    with pytest.raises(ValueError, match="php_version"):
        emulator.php_version = "5.6"


async def test_page_padding_and_cache(emulator: SiteEmulator, http: aiohttp.ClientSession) -> None:
    plain = len(await get_page(http, emulator))
    emulator.page_padding = 20 * 1024 * 1024
    started = time.perf_counter()
    async with http.get(emulator.url + "/") as response:
        body = await response.read()
    first = time.perf_counter() - started
    assert len(body) >= plain + 20 * 1024 * 1024
    assert body.index(b"wpaicgParams") > 20 * 1024 * 1024
    assert body.index(b"data-nonce") > 20 * 1024 * 1024
    started = time.perf_counter()
    async with http.get(emulator.url + "/") as response:
        assert await response.read() == body
    assert first < 5
    assert time.perf_counter() - started < 5


async def test_page_cookies_and_404(emulator: SiteEmulator, http: aiohttp.ClientSession) -> None:
    emulator.page_cookies = {"wpaicg_chat_client_id": "abc", "pll_language": "en"}
    async with http.get(emulator.url + "/") as response:
        assert response.cookies["pll_language"].value == "en"
        assert response.cookies["wpaicg_chat_client_id"]["path"] == "/"
    async with http.get(emulator.url + "/missing/") as response:
        assert response.status == 404
        assert "This page doesn't seem to exist." in await response.text()
    assert emulator.page_loads == 1


@pytest.mark.parametrize(
    ("version", "present", "absent"),
    [
        ("1.8.79", ["data-ai-name"], ["data-memory-limit", "data-assistant-enabled"]),
        ("1.8.84", ["data-ai-name", "data-memory-limit"], ["data-assistant-enabled"]),
        ("1.8.95", ["data-ai-name", "data-assistant-enabled"], ["data-sidebar-enabled"]),
        ("1.8.96", ["data-assistant-enabled"], ["data-ai-name", "data-sidebar-enabled"]),
        ("1.9.4", ["data-assistant-enabled", "data-sidebar-enabled"], ["data-ai-name"]),
        ("2.2", ["data-assistant-enabled", "data-sidebar-enabled", "katex_enabled"], []),
    ],
)
async def test_page_attributes_follow_the_plugin_version(
    emulator: SiteEmulator,
    http: aiohttp.ClientSession,
    version: str,
    present: list[str],
    absent: list[str],
) -> None:
    emulator.plugin_version = version
    page = await get_page(http, emulator)
    for name in present:
        assert name in page
    for name in absent:
        assert name not in page
    if "data-assistant-enabled" in present:
        assert 'data-assistant-enabled="false"' in page


@pytest.mark.parametrize(
    ("version", "widget", "shown"),
    [
        ("1.9.14", "widget", "11"),
        ("1.9.16", "widget", "<11"),
        ("2.2", "widget", "<11"),
        ("2.2", "shortcode", "11"),
    ],
)
async def test_widget_prints_lt_post_id_from_1_9_16_and_the_shortcode_never(
    emulator: SiteEmulator, http: aiohttp.ClientSession, version: str, widget: str, shown: str
) -> None:
    emulator.plugin_version = version
    emulator.widget = widget
    page = await get_page(http, emulator)
    assert f'     data-post-id="{shown}"\n' in page
    emulator.page_variant = "empty_post_id"
    page = await get_page(http, emulator)
    assert f'     data-post-id="{"<" if shown.startswith("<") else ""}"\n' in page


async def test_assistant_page_says_data_assistant_enabled_true_from_1_8_95(
    http: aiohttp.ClientSession,
) -> None:
    async with SiteEmulator(assistant=True, plugin_version="1.8.95") as emulator:
        assert 'data-assistant-enabled="true"' in await get_page(http, emulator)
        emulator.plugin_version = "1.8.94"  # no Assistant mode yet
        assert "data-assistant-enabled" not in await get_page(http, emulator)


async def test_memory_limit_is_only_a_page_attribute(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.memory_limit = 2
    emulator.plugin_version = "2.2"
    assert '     data-memory-limit = "2"\n' in await get_page(http, emulator)
    turns = history("Human: one", "AI: two", "Human: three", "AI: four")
    await post_json(http, emulator, "five", wpaicg_chat_history=turns)
    assert len(emulator.model_calls[-1]) == 6  # the server never shortens the history


async def test_foreign_params_object_comes_first_with_another_url_and_nonce(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.foreign_params = True
    page = await get_page(http, emulator)
    foreign = re.search(r"var site_vars = (\{.*?\});", page)
    assert foreign is not None
    values = json.loads(foreign.group(1))
    assert values["ajax_url"] == emulator.url + FOREIGN_AJAX_PATH
    assert re.fullmatch(r"[0-9a-f]{10}", values["search_nonce"])
    assert values["search_nonce"] != emulator.current_nonce()
    assert page.index('"search_nonce"') < page.index("data-nonce") < page.index("wpaicgParams")
    assert page.index("site_vars") < page.index("</head>")
    status, _, _ = await post(http, emulator, _wpnonce=values["search_nonce"])
    assert status == 403  # never a chat nonce
    async with http.post(values["ajax_url"], data=chat_form(emulator)) as response:
        assert response.status == 404  # not the chat's endpoint


@pytest.mark.parametrize("style", ["inline", "cdata", "base64"])
async def test_params_style_prints_wpaicg_params_inline_cdata_or_base64(
    emulator: SiteEmulator, http: aiohttp.ClientSession, style: str
) -> None:
    emulator.params_style = style
    page = await get_page(http, emulator)
    nonce = emulator.current_nonce()
    if style == "base64":
        match = re.search(
            r'<script defer id="wpaicg-init-js-extra" '
            r'src="data:text/javascript;base64,([A-Za-z0-9+/=]+)"></script>',
            page,
        )
        assert match is not None
        assert "wpaicgParams" not in page
        statement = base64.b64decode(match.group(1)).decode()
    else:
        match = re.search(r"var wpaicgParams = \{.*?\};", page)
        assert match is not None
        statement = match.group()
    assert statement.startswith("var wpaicgParams = {")
    assert f'"search_nonce":"{nonce}"' in statement
    if style == "cdata":
        cdata = "<script type='text/javascript' id='wpaicg-init-js-extra'>\n/* <![CDATA[ */\n"
        assert cdata in page
    if style == "inline":
        assert '<script id="wpaicg-init-js-extra">\nvar wpaicgParams' in page


async def test_footer_padding_puts_wpaicg_params_at_the_end_of_a_multi_megabyte_page(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.page_variant = "params_only"
    emulator.footer_padding = 3 * 1024 * 1024
    async with http.get(emulator.url + "/") as response:
        body = await response.read()
    assert len(body) > 3 * 1024 * 1024
    assert body.index(b"wpaicgParams") > 3 * 1024 * 1024
    assert len(body) - body.index(b"wpaicgParams") < 4096
    assert body.index(b'id="wpaicg-chat-root"') < 64 * 1024


async def test_german_site_translates_the_page_texts(http: aiohttp.ClientSession) -> None:
    async with SiteEmulator(language="de") as emulator:
        page = await get_page(http, emulator)
    assert '<html lang="de-DE">' in page
    assert 'placeholder="Nachricht eingeben"' in page
    assert '"no_result":"Kein Ergebnis gefunden"' in page


# nonces -------------------------------------------------------------------------------


def test_make_nonce_is_wordpress_formula() -> None:
    import hashlib
    import hmac

    digest = hmac.new(b"k", b"7|wpaicg-chatbox|0|", hashlib.md5).hexdigest()
    assert make_nonce(b"k", 7) == digest[-12:-2]
    assert nonce_tick(DAY_HALF) == 1
    assert nonce_tick(DAY_HALF + 0.5) == 2


async def test_nonce_lifetime_rotation_and_decoys(http: aiohttp.ClientSession) -> None:
    now = [1_700_000_000.0]
    async with SiteEmulator(clock=lambda: now[0], secret=b"s" * 32) as emulator:
        nonce = emulator.current_nonce()
        assert nonce == make_nonce(b"s" * 32, nonce_tick(now[0]))
        assert (await post_json(http, emulator))["status"] == "success"
        emulator.advance(DAY_HALF)
        assert emulator.current_nonce() != nonce
        ok = await post_json(http, emulator, _wpnonce=nonce)
        assert ok["status"] == "success"
        emulator.advance(DAY_HALF)
        emulator.plugin_version = "1.8.90"
        stale = await post_json(http, emulator, _wpnonce=nonce)
        assert stale == {"status": "error", "msg": "Nonce verification failed"}
        image = make_nonce(b"s" * 32, nonce_tick(emulator.now()), IMAGE_NONCE_ACTION)
        assert image == emulator.current_image_nonce()
        assert (await post_json(http, emulator, _wpnonce=image))["status"] == "error"
        page = await get_page(http, emulator)
        rest = re.search(r'"nonce":"([0-9a-f]{10})"', page)
        assert rest is not None
        assert (await post_json(http, emulator, _wpnonce=rest.group(1)))["status"] == "error"
        assert (await post_json(http, emulator, _wpnonce=""))["status"] == "error"
        assert (await post_json(http, emulator, _wpnonce="nönce✓"))["status"] == "error"
        current = emulator.current_nonce()
        emulator.rotate_nonce()
        assert emulator.current_nonce() != current
        assert (await post_json(http, emulator, _wpnonce=current))["status"] == "error"
        assert (await post_json(http, emulator))["status"] == "success"


@pytest.mark.parametrize("version", ["1.8.91", "2.0.4", "2.2.9"])
async def test_stale_nonce_is_bare_403_text_from_1_8_91(
    emulator: SiteEmulator, http: aiohttp.ClientSession, version: str
) -> None:
    emulator.plugin_version = version
    status, headers, body = await post(http, emulator, _wpnonce="0000000000")
    assert status == 403
    assert headers["Content-Type"] == HTML_TYPE
    assert body == b"The link you followed has expired."
    referer = {"Referer": emulator.url + "/chat-page/", "Origin": emulator.url}
    status, _, body = await post(http, emulator, _wpnonce="0000000000", headers=referer)
    assert status == 403
    assert body.decode() == (
        "The link you followed has expired.</p>"
        f'<p><a href="{emulator.url}/chat-page/">Please try again.</a>'
    )
    assert b"<html" not in body
    assert b"error-page" not in body
    assert b"wp-die-message" not in body
    foreign = {"Referer": "https://elsewhere.example/"}
    status, _, body = await post(http, emulator, _wpnonce="0000000000", headers=foreign)
    assert body == b"The link you followed has expired."


async def test_stale_nonce_link_follows_wp_get_referer(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    async def link(referer: str | None, **form: str) -> str | None:
        headers = {"Referer": referer} if referer is not None else None
        _, _, body = await post(http, emulator, _wpnonce="0000000000", headers=headers, **form)
        match = re.search(r'<a href="([^"]*)">Please try again.</a>', body.decode())
        return match.group(1) if match else None

    assert await link(emulator.url + "/?updated=1&p=5") == emulator.url + "/?p=5"
    assert await link(emulator.url + "/a&b") == emulator.url + "/a&#038;b"
    other_port = re.sub(r":\d+$", ":1", emulator.url)  # same host, other port: still this site
    assert await link(other_port + "/page/") == other_port + "/page/"
    assert await link(emulator.ajax_url) is None  # the request's own URL
    assert await link("ftp://127.0.0.1/file") is None
    assert await link(None, _wp_http_referer="/from-a-field/") == "/from-a-field/"


async def test_missing_nonce_gets_the_same_answer_as_a_stale_one(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    form = chat_form(emulator)
    del form["_wpnonce"]
    async with http.post(emulator.ajax_url, data=form) as response:
        assert (response.status, await response.read()) == (
            403,
            b"The link you followed has expired.",
        )
    emulator.plugin_version = "1.8.90"
    async with http.post(emulator.ajax_url, data=form) as response:
        assert json.loads(await response.read()) == {
            "status": "error",
            "msg": "Nonce verification failed",
        }


async def test_german_site_translates_nonce_failures(http: aiohttp.ClientSession) -> None:
    async with SiteEmulator(language="de") as emulator:
        headers = {"Referer": emulator.url + "/"}
        status, _, body = await post(http, emulator, _wpnonce="0000000000", headers=headers)
        assert status == 403
        assert body.decode() == (
            "Der Link, dem du gefolgt bist, ist abgelaufen.</p>"
            f'<p><a href="{emulator.url}/">Bitte versuche es erneut.</a>'
        )
        emulator.plugin_version = "1.8.90"
        answer = await post_json(http, emulator, _wpnonce="0000000000")
        assert answer == {"status": "error", "msg": "Nonce-Überprüfung fehlgeschlagen"}
        emulator.fail_next(Fault.stale_nonce("are_you_sure"))
        status, _, body = await post(http, emulator)
        assert (status, body.decode()) == (403, "Bist du sicher, dass du das tun möchtest?")


async def test_plugin_2_3_has_no_chat_action(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.plugin_version = "2.3"
    for action in ("wpaicg_chat_shortcode_message", "wpaicg_chatbox_message"):
        status, headers, body = await post(http, emulator, action=action)
        assert (status, body) == (400, b"0")
        assert headers["Content-Type"] == "text/html; charset=UTF-8"


async def test_wordpress_routing(emulator: SiteEmulator, http: aiohttp.ClientSession) -> None:
    async with http.get(emulator.ajax_url) as response:
        assert (response.status, await response.read()) == (400, b"0")
    async with http.post(emulator.ajax_url, data={"message": "hi"}) as response:
        assert (response.status, await response.read()) == (400, b"0")
    status, _, body = await post(http, emulator, action="heartbeat")
    assert (status, body) == (400, b"0")
    emulator.widget = "widget"
    answer = await post_json(http, emulator, action="wpaicg_chatbox_message")
    assert answer["status"] == "success"
    assert emulator.posts == 3


async def test_query_string_fields_depend_on_plugin_version(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    query = urllib.parse.urlencode(chat_form(emulator, "from the query"))
    for version, expected in (
        ("1.8.90", {"data": default_reply("from the query")}),
        ("1.8.91", {"status": "error", "msg": "It appears that nothing was inputted."}),
    ):
        emulator.plugin_version = version
        async with http.post(f"{emulator.ajax_url}?{query}", data={"x": "1"}) as response:
            answer = json.loads(await response.read())
        for key, value in expected.items():
            assert answer[key] == value
    assert emulator.requests[-1].query["message"] == "from the query"
    assert emulator.requests[-1].form == {"x": "1"}


async def test_event_source_get_of_1_8_79_streams_from_the_query_string(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.plugin_version = "1.8.79"
    emulator.stream = True
    emulator.reply = "streamed"
    form = chat_form(emulator, "by GET", wpaicg_chat_client_id="AbCdEfGh12", chat_id="42")
    async with http.get(emulator.ajax_url, params=form) as response:
        assert response.headers["Content-Type"] == EVENT_STREAM
        events, trailing = parse_stream((await response.read()).decode())
    assert stream_text(events) == "streamed"
    assert json.loads(trailing)["data"] == "streamed"
    assert emulator.model_calls[-1][-1] == {"role": "user", "content": "by GET"}
    emulator.plugin_version = "1.8.91"  # $_POST only: the GET has no message
    async with http.get(emulator.ajax_url, params=form) as response:
        assert json.loads(await response.read())["msg"] == "It appears that nothing was inputted."


async def test_multipart_form(emulator: SiteEmulator, http: aiohttp.ClientSession) -> None:
    data = aiohttp.MultipartWriter("form-data")
    for name, value in chat_form(emulator, "multi part ✓").items():
        part = data.append(value)
        part.set_content_disposition("form-data", name=name)
    async with http.post(emulator.ajax_url, data=data) as response:
        answer = json.loads(await response.read())
    assert answer["data"] == default_reply("multi part ✓")
    record = emulator.requests[-1]
    assert record.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert record.form["message"] == "multi part ✓"
    assert record.raw_body.startswith(b"--")


async def test_expect_100_continue(emulator: SiteEmulator, http: aiohttp.ClientSession) -> None:
    long_message = "word " * 400  # curl sends "Expect: 100-continue" above 1 KiB
    started = time.perf_counter()
    async with http.post(
        emulator.ajax_url,
        data=chat_form(emulator, long_message),
        expect100=True,
        timeout=_seconds(5),
    ) as response:
        answer = json.loads(await response.read())
    assert time.perf_counter() - started < 0.5
    assert answer["data"] == default_reply(long_message.strip())
    assert emulator.requests[-1].headers["Expect"] == "100-continue"


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


@pytest.mark.parametrize(
    ("version", "sent", "model_gets"),
    [
        ("1.8.90", " <b>it's</b>\n\t%41 ok ", "it\\'s ok"),  # magic quotes stay
        ("1.8.91", " <b>it's</b>\n\t%41 ok ", "it's ok"),
        ("1.8.90", 'a\\b "q"', 'a\\\\b \\"q\\"'),
        ("1.8.95", 'a\\b "q"', 'a\\b "q"'),
        ("1.8.96", " <b>it's</b>\n\t%41 ok ", "<b>it's</b>\n\t%41 ok"),  # trimmed as "Human: "
        ("2.2", "a\\b &lt;br&gt;", "a\\b &lt;br&gt;"),
    ],
)
async def test_message_is_cleaned_per_plugin_version(
    emulator: SiteEmulator, http: aiohttp.ClientSession, version: str, sent: str, model_gets: str
) -> None:
    emulator.plugin_version = version
    answer = await post_json(http, emulator, sent, wpaicg_chat_history="[]")
    assert emulator.model_calls[-1][-1] == {"role": "user", "content": model_gets}
    assert answer["data"].startswith(default_reply(model_gets.strip() or model_gets)[:40])


@pytest.mark.parametrize(
    ("version", "message", "empty"),
    [
        ("1.8.91", "", True),
        ("1.8.91", "0", True),
        ("1.8.91", "  <br> %0A ", True),
        ("1.8.91", " ", True),  # sanitized to ""
        ("2.2", " ", False),  # not PHP-empty, and 1.8.96+ no longer sanitizes
        ("2.2", "0", True),
        ("2.2", "<br>", False),
    ],
)
async def test_empty_message_is_php_empty_after_cleaning(
    emulator: SiteEmulator, http: aiohttp.ClientSession, version: str, message: str, empty: bool
) -> None:
    emulator.plugin_version = version
    answer = await post_json(http, emulator, message, wpaicg_chat_history="[]")
    if empty:
        assert answer == {"status": "error", "msg": "It appears that nothing was inputted."}
        assert emulator.model_calls == []
    else:
        assert answer["status"] == "success"


async def test_invalid_utf8_message_empties_or_breaks_the_model_call(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    body = urllib.parse.urlencode(chat_form(emulator, "x")).replace("message=x", "message=%FF")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    async with http.post(emulator.ajax_url, data=body, headers=headers) as response:
        assert json.loads(await response.read())["msg"] == "It appears that nothing was inputted."
    emulator.plugin_version = "2.2"  # no sanitizing: PHP's json_encode of the request fails
    async with http.post(emulator.ajax_url, data=body, headers=headers) as response:
        answer = json.loads(await response.read())
    assert answer["status"] == "error"
    assert answer["msg"].startswith("We could not parse the JSON body of your request.")
    assert emulator.model_calls == []


async def test_success_body_is_php_encoded(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.reply = "a/b café 😀"
    status, headers, body = await post(http, emulator)
    assert status == 200
    assert headers["Content-Type"] == JSON_TYPE
    assert body == (
        b'{"status":"success","msg":"Something went wrong",'
        b'"greeting_message":' + php_json(PROMPT).encode() + b","
        b'"data":"a\\/b caf\\u00e9 \\ud83d\\ude00","log":false}'
    )
    assert json.loads(body)["data"] == "a/b café 😀"
    assert b"OpenAI\\u2019s" in body  # the page's excerpt, PHP-escaped


async def test_reply_functions(emulator: SiteEmulator, http: aiohttp.ClientSession) -> None:
    assert (await post_json(http, emulator, "echo"))["data"] == default_reply("echo")
    emulator.reply = str.upper
    assert (await post_json(http, emulator, "shout"))["data"] == "SHOUT"

    async def slow(message: str) -> str:
        await asyncio.sleep(0)
        return message[::-1]

    emulator.reply = slow
    assert (await post_json(http, emulator, "abc"))["data"] == "cba"

    seen: list[list[dict[str, str]]] = []

    def with_messages(message: str, messages: list[dict[str, str]]) -> str:
        seen.append(messages)
        return f"{message} after {len(messages)} messages"

    emulator.reply = with_messages
    turns = history("Human: one", "AI: two")
    answer = await post_json(http, emulator, "three", wpaicg_chat_history=turns)
    assert answer["data"] == "three after 4 messages"
    assert seen == [emulator.model_calls[-1]]
    seen[0].clear()  # the function gets a copy
    assert len(emulator.model_calls[-1]) == 4


async def test_banned_ips_and_words(emulator: SiteEmulator, http: aiohttp.ClientSession) -> None:
    emulator.banned_words = {" Forbidden "}
    answer = await post_json(http, emulator, "this is FORBIDDEN stuff")
    assert answer == {
        "status": "error",
        "msg": "Your message contains prohibited words. Please modify your message and try again.",
    }
    # a word of the message, split on spaces, must equal a banned word
    assert (await post_json(http, emulator, "forbiddenness, forbidden!"))["status"] == "success"
    emulator.banned_ips = {"203.0.113.9"}
    banned = {"status": "error", "msg": "You are not allowed to access this feature."}
    forwarded = {"X-Forwarded-For": " , 203.0.113.9, 10.0.0.1"}
    assert await post_json(http, emulator, headers=forwarded) == banned
    assert await post_json(http, emulator, headers={"Client-IP": "203.0.113.9"}) == banned
    client_first = {"Client-IP": "198.51.100.1", "X-Forwarded-For": "203.0.113.9"}
    assert (await post_json(http, emulator, headers=client_first))["status"] == "success"
    assert (await post_json(http, emulator))["status"] == "success"
    emulator.banned_ips = {"127.0.0.1"}
    assert await post_json(http, emulator) == banned


async def test_banned_ip_and_words_stream_flag_events_then_the_whole_answer(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.stream = True
    emulator.reply = "fine"
    emulator.banned_ips = {"127.0.0.1"}
    emulator.banned_words = {"bad"}
    _, headers, body = await post(http, emulator, "bad and bad again")
    assert headers["Content-Type"] == EVENT_STREAM
    events, rest = parse_stream(body.decode())
    assert json.loads(events[0]) == {
        "msg": "You are not allowed to access this feature.",
        "ipBanned": True,
    }
    flagged = {
        "msg": "Your message contains prohibited words. Please modify your message and try again.",
        "messageFlagged": True,
    }
    assert [json.loads(event) for event in events[1:3]] == [flagged, flagged]  # one per word
    assert stream_text(events[3:]) == "fine"
    assert (events[-1], rest) == ("[DONE]", "")
    assert len(emulator.model_calls) == 1


async def test_token_limit(emulator: SiteEmulator, http: aiohttp.ClientSession) -> None:
    emulator.token_limit = 2
    limit = {"msg": "You have reached your token limit.", "tokenLimitReached": True}
    for _ in range(2):
        answer = await post_json(http, emulator, wpaicg_chat_client_id="AAAAAAAAAA")
        assert answer["status"] == "success"
    assert await post_json(http, emulator, wpaicg_chat_client_id="AAAAAAAAAA") == limit
    assert (await post_json(http, emulator, wpaicg_chat_client_id="BBBBBBBBBB"))["status"] == (
        "success"
    )
    assert (await post_json(http, emulator))["status"] == "success"  # per IP
    assert (await post_json(http, emulator))["status"] == "success"
    assert await post_json(http, emulator) == limit
    emulator.stream = True
    _, _, body = await post(http, emulator)
    assert parse_stream(body.decode()) == ([php_json(limit)], "")
    emulator.reset_token_usage()
    emulator.stream = False
    assert (await post_json(http, emulator))["status"] == "success"


# the history and the model ---------------------------------------------------------------


async def test_history_builds_the_models_messages(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.plugin_version = "2.2"
    turns = json.dumps(
        [
            {"id": 1, "text": "Human: What is PHP?"},
            {"text": "AI: PHP is a scripting language. AI: Really."},
            {"id": "", "text": "  Human:   spaced  "},
            "AI: a bare string entry",
            {"id": 5, "text": "Human:no space"},
            {"id": 6, "text": "AI: "},
            {"id": 7, "text": "AI: 0"},
            {"id": 8, "text": 42},
        ]
    )
    answer = await post_json(http, emulator, "  And now?  ", wpaicg_chat_history=turns)
    assert emulator.model_calls[-1] == [
        {"role": "user", "content": PROMPT},
        {"role": "user", "content": "What is PHP?"},
        {"role": "assistant", "content": "PHP is a scripting language. Really."},
        {"role": "user", "content": "spaced"},
        {"role": "assistant", "content": "a bare string entry"},
        {"role": "assistant", "content": "Human:no space"},
        {"role": "assistant", "content": "AI:"},  # trimmed first, so no "AI: " to remove
        {"role": "assistant", "content": "42"},
        {"role": "user", "content": "And now?"},
    ]
    assert answer["data"] == default_reply("  And now?  ", emulator.model_calls[-1])
    assert answer["data"].endswith("(the model saw 7 earlier messages)")


async def test_history_as_a_json_object_is_still_an_array_for_php(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    turns = json.dumps({"a": "Human: first", "b": {"text": "AI: second"}})
    await post_json(http, emulator, "third", wpaicg_chat_history=turns)
    assert [m["content"] for m in emulator.model_calls[-1][1:]] == ["first", "second", "third"]


async def test_history_with_a_quote_is_dropped_silently(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    turns = history('Human: Say "hello" in Russian.', "AI: Привет.")
    answer = await post_json(http, emulator, "And goodbye?", wpaicg_chat_history=turns)
    assert answer["data"] == default_reply("And goodbye?")
    assert emulator.model_calls[-1] == [
        {"role": "user", "content": PROMPT},
        {"role": "user", "content": "And goodbye?"},
    ]
    browser = history("Human: Say &quot;hello&quot; in Russian.", "AI: Привет.")
    await post_json(http, emulator, "And goodbye?", wpaicg_chat_history=browser)
    assert emulator.model_calls[-1][1:3] == [
        {"role": "user", "content": "Say &quot;hello&quot; in Russian."},
        {"role": "assistant", "content": "Привет."},
    ]


async def test_history_escapes_lose_their_backslash(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.plugin_version = "2.2"
    turns = json.dumps([{"text": "Human: a\nb\tc é \\ d"}], ensure_ascii=True)
    await post_json(http, emulator, "x", wpaicg_chat_history=turns)
    assert emulator.model_calls[-1][1] == {"role": "user", "content": "anbtc u00e9  d"}


@pytest.mark.parametrize(
    "turns", ["5", '"Human: x"', "null", "not json", "[NaN]", "[1,", '{"a":1}extra', "0"]
)
async def test_history_that_is_not_an_array_is_dropped(
    emulator: SiteEmulator, http: aiohttp.ClientSession, turns: str
) -> None:
    answer = await post_json(http, emulator, "hi", wpaicg_chat_history=turns)
    assert answer["status"] == "success"
    assert len(emulator.model_calls[-1]) == 2


@pytest.mark.parametrize(
    ("version", "content", "line_break"),
    [
        ("1.8.90", "line one two x", "line one two"),  # sanitize_text_field: one line
        ("1.8.91", "line one  two x", None),  # sanitize_textarea_field keeps it: bad JSON
        ("2.2", "line one  two x", None),
    ],
)
async def test_history_is_sanitized_per_plugin_version(
    emulator: SiteEmulator,
    http: aiohttp.ClientSession,
    version: str,
    content: str,
    line_break: str | None,
) -> None:
    emulator.plugin_version = version
    raw = '[{"id":1,"text":"Human: line <b>one</b>  two x"}]'
    await post_json(http, emulator, "next", wpaicg_chat_history=raw)
    assert emulator.model_calls[-1][1] == {"role": "user", "content": content}
    raw = '[{"id":1,"text":"Human: 100%25  sure"}]'  # octets go, and runs of spaces with them
    await post_json(http, emulator, "next", wpaicg_chat_history=raw)
    assert emulator.model_calls[-1][1] == {"role": "user", "content": "100 sure"}
    raw = '[{"id":1,"text":"Human: line one\ntwo"}]'  # a raw line break inside a string
    await post_json(http, emulator, "next", wpaicg_chat_history=raw)
    if line_break is None:
        assert len(emulator.model_calls[-1]) == 2  # json_decode fails: the history is dropped
    else:
        assert emulator.model_calls[-1][1] == {"role": "user", "content": line_break}


async def test_history_comes_from_the_query_string_up_to_1_8_90(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    query = urllib.parse.urlencode({"wpaicg_chat_history": history("Human: q", "AI: a")})
    for version, seen in (("1.8.90", 4), ("1.8.91", 2)):
        emulator.plugin_version = version
        url = f"{emulator.ajax_url}?{query}"
        async with http.post(url, data=chat_form(emulator, "now")) as response:
            assert json.loads(await response.read())["status"] == "success"
        assert len(emulator.model_calls[-1]) == seen


async def test_browser_history_with_the_current_turn_reaches_the_model_twice(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.plugin_version = "1.9.3"  # up to 1.9.3 the browser appends the turn it sends
    turns = history("Human: first", "AI: reply", "Human: second")
    answer = await post_json(http, emulator, "second", wpaicg_chat_history=turns)
    assert [m["content"] for m in emulator.model_calls[-1][-2:]] == ["second", "second"]
    assert answer["data"].endswith("(the model saw 3 earlier messages)")


async def test_remember_conversation_off_ignores_the_history(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.remember_conversation = False
    emulator.plugin_version = "2.2"
    emulator.php_warnings = "buffered"
    status, _, body = await post(http, emulator, " raw ", wpaicg_chat_history=history("Human: x"))
    assert status == 200
    assert not body.startswith(b"<br />")  # no history warning either
    assert emulator.model_calls[-1] == [
        {"role": "user", "content": PROMPT},
        {"role": "user", "content": " raw "},  # not trimmed on this path
    ]


async def test_history_entry_that_is_an_array_is_fatal_on_php_8(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.plugin_version = "2.2"
    turns = json.dumps([{"text": "Human: ok"}, ["Human: nested"]])
    status, headers, body = await post(http, emulator, "x", wpaicg_chat_history=turns)
    assert (status, headers["Content-Type"]) == (500, HTML_TYPE)
    assert body.decode() == (
        "<p>There has been a critical error on this website.</p><p><a href="
        '"https://wordpress.org/documentation/article/faq-troubleshooting/">'
        "Learn more about troubleshooting WordPress.</a></p>"
    )
    assert emulator.model_calls == []
    emulator.php_warnings = "buffered"
    _, _, body = await post(http, emulator, "x", wpaicg_chat_history=turns)
    assert body.startswith(b"<br />\n<b>Fatal error</b>:  Uncaught TypeError: trim()")
    assert f"in <b>{CHAT_FILE}</b> on line <b>1144</b>".encode() in body
    emulator.php_version = "7.4"  # PHP 7 warns, skips the entry and goes on
    answer = json.loads((await post(http, emulator, "x", wpaicg_chat_history=turns))[2].split(
        b"<br />\n"
    )[-1])
    assert answer["status"] == "success"
    assert len(emulator.model_calls[-1]) == 3


@pytest.mark.parametrize(
    ("post_id", "context"),
    [("11", True), ("11.0", True), ("<11", False), ("", False), ("12", False), ("11a", False)],
)
async def test_page_context_only_when_post_id_names_the_pages_post(
    emulator: SiteEmulator, http: aiohttp.ClientSession, post_id: str, context: bool
) -> None:
    answer = await post_json(http, emulator, post_id=post_id)
    prompt = PROMPT if context else BARE_PROMPT
    assert answer["greeting_message"] == prompt
    assert emulator.model_calls[-1][0] == {"role": "user", "content": prompt}
    assert BARE_PROMPT == (
        "Converse as if you were an AI assistant. Answer the question as truthfully as "
        "possible using the provided text. Tone: Friendly"
    )


async def test_model_calls_are_recorded_on_the_emulator_and_the_request(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    await post_json(http, emulator, "one")
    await post_json(http, emulator, "")  # an empty message never reaches the model
    await post(http, emulator, "two", _wpnonce="0000000000")  # neither does a stale nonce
    await post_json(http, emulator, "three", wpaicg_chat_history=history("Human: one", "AI: 1"))
    assert [call[-1]["content"] for call in emulator.model_calls] == ["one", "three"]
    assert [len(record.model_calls) for record in emulator.requests] == [1, 0, 0, 1]
    assert emulator.requests[-1].model_calls[0] is emulator.model_calls[-1]
    assert all(
        isinstance(m, dict) and set(m) == {"role", "content"} for m in emulator.model_calls[1]
    )
    emulator.reset_counters()
    assert emulator.model_calls == []


def test_default_reply_says_how_many_earlier_messages_the_model_saw() -> None:
    prompt = {"role": "user", "content": "prompt"}
    assert default_reply("hi") == "Hello! This is the local chatgpt4o.one emulator. You said: hi"
    assert default_reply("hi", [prompt, {"role": "user", "content": "hi"}]) == default_reply("hi")
    three = [prompt, {"role": "user", "content": "a"}, {"role": "user", "content": "hi"}]
    assert default_reply("hi", three) == default_reply("hi") + " (the model saw 1 earlier message)"


# PHP warnings ------------------------------------------------------------------------------


def history_warning(line: int = 942) -> str:
    return (
        "<br />\n<b>Warning</b>:  Undefined variable $wpaicg_chat_history in "
        f"<b>{CHAT_FILE}</b> on line <b>{line}</b><br />\n"
    )


async def test_missing_history_warning_with_buffering_keeps_the_content_type(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.php_warnings = True  # "buffered"
    assert emulator.php_warnings == "buffered"
    status, headers, body = await post(http, emulator)  # no wpaicg_chat_history field
    assert (status, headers["Content-Type"]) == (200, JSON_TYPE)
    text = body.decode()
    assert text.startswith(history_warning(942))
    assert json.loads(text[len(history_warning()) :])["status"] == "success"
    _, _, body = await post(http, emulator, wpaicg_chat_history="")  # empty counts as missing
    assert body.decode().startswith(history_warning())
    _, _, body = await post(http, emulator, wpaicg_chat_history="[]")
    assert body.startswith(b"{")
    emulator.stream = True
    _, headers, body = await post(http, emulator)
    assert headers["Content-Type"] == EVENT_STREAM
    text = body.decode()
    assert text.startswith(history_warning() + "data: {")
    assert text.endswith("data: [DONE]\n\n")


async def test_missing_history_warning_without_buffering_sends_text_html_first(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.php_warnings = "unbuffered"
    emulator.plugin_version = "2.2"
    _, headers, body = await post(http, emulator)
    assert headers["Content-Type"] == HTML_TYPE
    assert body.decode().startswith(history_warning(946) + '{"status":"success"')
    emulator.stream = True
    _, headers, body = await post(http, emulator)
    assert headers["Content-Type"] == HTML_TYPE
    assert "X-Accel-Buffering" not in headers
    text = body.decode()
    warnings, _, stream = text.partition("data: ")
    header_warnings = re.findall(
        r"<b>Warning</b>:  Cannot modify header information - headers already sent by "
        rf"\(output started at {re.escape(CHAT_FILE)}:946\) in <b>{re.escape(CHAT_FILE)}</b> "
        r"on line <b>(\d+)</b>",
        warnings,
    )
    assert header_warnings == ["1358", "1359", "1360"]
    assert warnings.startswith(history_warning(946))
    assert ("data: " + stream).endswith("data: [DONE]\n\n")


@pytest.mark.parametrize(
    ("version", "warned"), [("1.8.79", False), ("1.8.90", False), ("1.8.91", True), ("2.2", True)]
)
async def test_missing_history_warning_only_from_1_8_91(
    emulator: SiteEmulator, http: aiohttp.ClientSession, version: str, warned: bool
) -> None:
    emulator.php_warnings = "buffered"
    emulator.plugin_version = version
    _, _, body = await post(http, emulator)
    assert body.startswith(b"<br />") == warned


@pytest.mark.parametrize(
    ("version", "lines"),
    [("1.8.85", []), ("1.8.86", ["1186"]), ("1.8.91", ["942", "1289"]), ("2.2", ["946", "1500"])],
)
async def test_empty_message_warning_from_1_8_86(
    emulator: SiteEmulator, http: aiohttp.ClientSession, version: str, lines: list[str]
) -> None:
    emulator.php_warnings = "buffered"
    emulator.stream = True  # the empty-message answer is JSON even on a streaming site
    emulator.plugin_version = version
    status, headers, body = await post(http, emulator, "")
    assert (status, headers["Content-Type"]) == (200, JSON_TYPE)
    text = body.decode()
    assert re.findall(r"on line <b>(\d+)</b>", text) == lines
    if lines:
        assert "Undefined variable $stream_nav_setting" in text
    assert text.endswith('{"status":"error","msg":"It appears that nothing was inputted."}')


async def test_other_plugins_notice_precedes_every_answer(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.other_notices = True
    assert (await post_json(http, emulator, wpaicg_chat_history="[]"))["status"] == "success"  # off
    emulator.php_warnings = "buffered"
    notice = "<br />\n<b>Deprecated</b>:  Creation of dynamic property"
    page = await get_page(http, emulator)
    assert page.startswith(notice)
    status, headers, body = await post(http, emulator, _wpnonce="0000000000")
    assert (status, headers["Content-Type"]) == (403, HTML_TYPE)
    assert body.decode().startswith(notice)
    assert body.decode().endswith("<br />\nThe link you followed has expired.")
    status, _, body = await post(http, emulator, action="nope")
    assert (status, body.decode().startswith(notice), body.endswith(b"0")) == (400, True, True)
    emulator.php_warnings = "unbuffered"  # the first notice sends the headers: 200
    status, headers, body = await post(http, emulator, _wpnonce="0000000000")
    assert (status, headers["Content-Type"]) == (200, HTML_TYPE)
    assert body.decode().endswith("The link you followed has expired.")
    status, _, _ = await post(http, emulator, action="nope")
    assert status == 200


async def test_php_7_prints_notices_instead_of_warnings(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.php_warnings = "buffered"
    emulator.php_version = "7.4"
    emulator.other_notices = True
    _, _, body = await post(http, emulator)
    text = body.decode()
    assert "<b>Notice</b>:  Undefined index: page in" in text
    assert "<b>Notice</b>:  Undefined variable: wpaicg_chat_history in" in text


async def test_flag_event_then_stream_prints_header_warnings_on_debug_sites(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.php_warnings = "buffered"
    emulator.stream = True
    emulator.banned_ips = {"127.0.0.1"}
    text = (await post(http, emulator, wpaicg_chat_history="[]"))[2].decode()
    flag, _, rest = text.partition("\n\n")
    assert json.loads(flag[len("data: ") :])["ipBanned"] is True
    assert rest.count("Cannot modify header information") == 3  # the stream's header() calls
    assert "data: [DONE]" in rest


# Assistant mode ----------------------------------------------------------------------------


@pytest.fixture
async def assistant() -> AsyncIterator[SiteEmulator]:
    async with SiteEmulator(assistant=True, plugin_version="2.2") as emulator:
        yield emulator


async def test_assistant_plain_answer_carries_thread_id_between_data_and_log(
    assistant: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    status, headers, body = await post(http, assistant, "Hi", wpaicg_chat_history="[]")
    assert (status, headers["Content-Type"]) == (200, JSON_TYPE)
    answer = json.loads(body)
    assert list(answer) == ["status", "msg", "greeting_message", "data", "thread_id", "log"]
    assert re.fullmatch(r"thread_[A-Za-z0-9]{24}", answer["thread_id"])
    assert answer["data"] == default_reply("Hi")
    assert assistant.requests[-1].thread_id == answer["thread_id"]
    assert assistant.threads[answer["thread_id"]] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": answer["data"]},
    ]
    assert assistant.model_calls[-1][0]["role"] == "system"


async def test_assistant_thread_continues_with_the_posted_thread_id(
    assistant: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    first = await post_json(http, assistant, "one")
    thread = first["thread_id"]
    turns = history("Human: ignored", "AI: ignored")  # the thread holds the memory
    second = await post_json(http, assistant, "two", thread_id=thread, wpaicg_chat_history=turns)
    assert second["thread_id"] == thread
    assert second["data"] == default_reply("two") + " (the model saw 2 earlier messages)"
    assert [m["content"] for m in assistant.model_calls[-1][1:]] == ["one", first["data"], "two"]
    assert [r.thread_id for r in assistant.requests] == [thread, thread]
    assert len(assistant.threads) == 1
    assert len(assistant.threads[thread]) == 4
    third = await post_json(http, assistant, "new chat")  # no thread_id: a new thread
    assert third["thread_id"] != thread
    assert len(assistant.threads) == 2


async def test_assistant_stream_uses_the_assistant_dialect(
    assistant: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    assistant.stream = True
    assistant.reply = "Hello there"
    status, headers, body = await post(http, assistant, "Hi", wpaicg_chat_history="[]")
    assert (status, headers["Content-Type"]) == (200, EVENT_STREAM)
    events, rest = parse_sse(body.decode())
    assert rest == ""
    assert events[0][0] == "thread_id"
    thread = events[0][1]
    assert thread == assistant.requests[-1].thread_id
    assert re.fullmatch(r"thread_[A-Za-z0-9]{24}", thread)  # bare, not JSON
    names = [name for name, _ in events]
    assert names[-1] == "done"
    assert events[-1][1] == "[DONE]"
    assert set(names[1:-1]) > {"thread.message.delta"}  # other thread.* events come along
    assert all(name.startswith("thread.") for name in names[1:-1])
    text = ""
    for name, data in events:
        if name == "thread.message.delta":
            for item in json.loads(data)["delta"]["content"]:
                if item["type"] == "text":
                    text += item["text"]["value"]
    assert text == "Hello there"
    assert "data: [DONE]" in body.decode()
    assert '"finish_reason"' not in body.decode()
    # a later turn of the same thread: no thread_id event
    body = (await post(http, assistant, "More", thread_id=thread))[2].decode()
    events, _ = parse_sse(body)
    assert "thread_id" not in [name for name, _ in events]
    assert events[-1] == ("done", "[DONE]")
    assert len(assistant.threads[thread]) == 4


@pytest.mark.parametrize("stream", [False, True])
async def test_assistant_unknown_thread_is_an_assistant_error(
    assistant: SiteEmulator, http: aiohttp.ClientSession, stream: bool
) -> None:
    assistant.stream = stream
    _, headers, body = await post(http, assistant, "Hi", thread_id="thread_gone")
    msg = "No thread found with id 'thread_gone'."
    if stream:
        assert headers["Content-Type"] == EVENT_STREAM
        assert body.decode() == (
            "event: assistant_error\n"
            f'data: {{"status":"error","msg":"{msg}"}}\n\n'
            "event: done\ndata: \n\n"
        )
    else:
        assert json.loads(body) == {"status": "error", "msg": msg, "greeting_message": PROMPT}
    assert assistant.model_calls == []
    assert assistant.requests[-1].thread_id is None


async def test_assistant_upstream_error_is_an_assistant_error_event(
    assistant: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    assistant.stream = True
    assistant.fail_next(Fault.upstream_error("Incorrect API key provided."))
    events, _ = parse_sse((await post(http, assistant))[2].decode())
    assert events == [
        ("assistant_error", '{"status":"error","msg":"Incorrect API key provided."}'),
        ("done", ""),
    ]
    assistant.stream = False
    assistant.fail_next(Fault.upstream_unreachable("cURL error 7: refused"))
    answer = await post_json(http, assistant)
    assert (answer["status"], answer["msg"]) == ("error", "cURL error 7: refused")


async def test_assistant_run_error_ends_the_stream_without_done(
    assistant: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    assistant.stream = True
    assistant.stream_chunks = 4
    assistant.reply = "abcdefgh"
    assistant.fail_next(Fault.stream_no_done(after_chunks=2))
    events, rest = parse_sse((await post(http, assistant))[2].decode())
    names = [name for name, _ in events]
    assert names[0] == "thread_id"
    assert "done" not in names
    assert names.count("thread.message.delta") == 2
    assert rest == ""


async def test_assistant_stream_with_buffering_discards_earlier_warnings(
    assistant: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    assistant.stream = True
    assistant.php_warnings = "buffered"
    body = (await post(http, assistant))[2].decode()
    assert body.startswith("event: thread_id\n")  # ob_end_clean() threw the warning away
    assistant.php_warnings = "unbuffered"
    _, headers, body = await post(http, assistant)
    assert headers["Content-Type"] == HTML_TYPE
    text = body.decode()
    assert text.startswith(history_warning(946))
    assert text.count("wpaicg_assistants.php</b> on line") == 4  # four header() calls


async def test_assistant_needs_1_8_95(http: aiohttp.ClientSession) -> None:
    async with SiteEmulator(assistant=True, plugin_version="1.8.94") as emulator:
        answer = await post_json(http, emulator)
        assert "thread_id" not in answer
        assert emulator.threads == {}


# the site's language -----------------------------------------------------------------------


async def test_german_site_translates_the_plugins_messages(http: aiohttp.ClientSession) -> None:
    async with SiteEmulator(language="de", token_limit=1) as emulator:
        # the token limit first, while this client has had one answer
        answer = await post_json(http, emulator, post_id="")
        assert answer["msg"] == "Etwas ist schiefgelaufen"
        assert answer["greeting_message"] == (
            "Unterhalte dich so, als wärst du ein AI-Assistent. Beantworte die Frage so "
            "ehrlich wie möglich mit dem angegebenen Text. Ton: Freundlich"
        )
        assert await post_json(http, emulator) == {
            "msg": "Du hast dein Token-Limit erreicht.",
            "tokenLimitReached": True,
        }
        emulator.token_limit = None
        answer = await post_json(http, emulator, "")
        assert answer["msg"] == "Anscheinend wurde nichts eingegeben."
        emulator.banned_words = {"böse"}
        assert (await post_json(http, emulator, "so böse"))["msg"].startswith(
            "Deine Nachricht enthält verbotene Wörter."
        )
        emulator.banned_ips = {"127.0.0.1"}
        answer = await post_json(http, emulator)
        assert answer["msg"] == "Du darfst diese Funktion nicht verwenden."
        emulator.banned_ips = set()
        emulator.fail_next(Fault.ai_unavailable())
        assert (await post_json(http, emulator))["msg"].startswith("Die KI-Instanz")
        emulator.fail_next(Fault.stream_error_event("ipBanned"))
        events, _ = parse_stream((await post(http, emulator))[2].decode())
        assert json.loads(events[0])["msg"] == "Du darfst diese Funktion nicht verwenden."
        answer = await post_json(http, emulator)
        assert answer["greeting_message"].endswith(
            'Ton: Freundlich.\n Aktueller Kontext: "' + POST_TITLE + "\n" + POST_EXCERPT + '"'
        )


# streaming ----------------------------------------------------------------------------


async def test_stream_format(emulator: SiteEmulator, http: aiohttp.ClientSession) -> None:
    emulator.stream = True
    emulator.reply = "Héllo wörld, a/b 😀 and a longer tail of words."
    status, headers, body = await post(http, emulator)
    assert status == 200
    assert headers["Content-Type"] == EVENT_STREAM
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Accel-Buffering"] == "no"
    assert headers["X-Robots-Tag"] == "noindex"
    events, trailing = parse_stream(body.decode())
    assert (events[-1], trailing) == ("[DONE]", "")  # 1.8.85+: nothing follows
    assert body.endswith(b"data: [DONE]\n\n")
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
    assert stream_text(events) == emulator.reply
    assert '"content":"Héll"'.encode() in body  # upstream chunks are raw UTF-8


@pytest.mark.parametrize(
    ("version", "json_follows"),
    [("1.8.79", True), ("1.8.84", True), ("1.8.85", False), ("1.8.96", False), ("2.2", False)],
)
async def test_json_follows_done_only_up_to_1_8_84(
    emulator: SiteEmulator, http: aiohttp.ClientSession, version: str, json_follows: bool
) -> None:
    emulator.stream = True
    emulator.plugin_version = version
    emulator.reply = "a/b 😀"
    _, headers, body = await post(http, emulator)
    assert headers["Content-Type"] == EVENT_STREAM
    events, trailing = parse_stream(body.decode())
    assert events[-1] == "[DONE]"
    if not json_follows:
        assert trailing == ""
        return
    assert json.loads(trailing) == {
        "status": "success",
        "msg": "Something went wrong",
        "greeting_message": PROMPT,
        "data": emulator.reply,
        "log": False,
    }
    assert "\\/" in trailing
    assert "\\ud83d\\ude00" in trailing


async def test_stream_chunks_and_delay(emulator: SiteEmulator, http: aiohttp.ClientSession) -> None:
    emulator.stream = True
    emulator.stream_chunks = 3
    emulator.chunk_delay = 0.05
    emulator.reply = "abcdefgh"
    arrivals = []
    started = time.perf_counter()
    async with http.post(emulator.ajax_url, data=chat_form(emulator)) as response:
        body = b""
        async for piece in response.content.iter_any():
            arrivals.append(time.perf_counter() - started)
            body += piece
    events, trailing = parse_stream(body.decode())
    contents = [json.loads(e)["choices"][0]["delta"].get("content") for e in events if e[0] == "{"]
    assert contents == ["", "abc", "def", "gh", None]
    assert arrivals[-1] >= 0.09
    assert len(arrivals) >= 2
    assert (events[-1], trailing) == ("[DONE]", "")


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
        (Fault.upstream_error("Model <overloaded>"), 200, "application/json",
         '{"status":"error","msg":"Model &lt;overloaded&gt;","greeting_message":'
         + php_json(PROMPT) + ',"log":false}'),
        (Fault.ai_unavailable(), 200, "application/json",
         '{"status":"error","msg":"Unable to initialize the AI instance. '
         'Please make sure the API key is valid."}'),
        (Fault.token_limit(), 200, "application/json",
         '{"msg":"You have reached your token limit.","tokenLimitReached":true}'),
        (Fault.stale_nonce(), 403, "text/html", "The link you followed has expired."),
        (Fault.stale_nonce("expired"), 403, "text/html", "The link you followed has expired."),
        (Fault.stale_nonce("json"), 200, "application/json", "Nonce verification failed"),
        (Fault.stale_nonce("security_check"), 200, "application/json", "Security check"),
        (Fault.stale_nonce("invalid_nonce"), 200, "application/json", '"Invalid nonce.'),
        (Fault.stale_nonce("are_you_sure"), 403, "text/html", "Are you sure you want"),
    ],
)  # fmt: skip
async def test_simple_faults(
    emulator: SiteEmulator,
    http: aiohttp.ClientSession,
    fault: Fault,
    status: int,
    content_type: str,
    check: str,
) -> None:
    emulator.fail_next(fault)
    got_status, headers, body = await post(http, emulator)
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
    assert emulator.posts == 1
    assert len(emulator.requests) == 1
    assert (await post_json(http, emulator))["status"] == "success"  # consumed


async def test_body_faults(emulator: SiteEmulator, http: aiohttp.ClientSession) -> None:
    emulator.fail_next(Fault.rate_limited("7"))
    _, headers, _ = await post(http, emulator)
    assert headers["Retry-After"] == "7"
    emulator.fail_next(Fault.rate_limited("Wed, 21 Oct 2015 07:28:00 GMT"))
    _, headers, _ = await post(http, emulator)
    assert headers["Retry-After"] == "Wed, 21 Oct 2015 07:28:00 GMT"

    emulator.fail_next(Fault.truncated_json())
    _status, headers, body = await post(http, emulator)
    assert headers["Content-Type"] == "application/json; charset=UTF-8"
    full = php_json(
        {
            "status": "success",
            "msg": "Something went wrong",
            "greeting_message": PROMPT,
            "data": default_reply("Hi"),
            "log": False,
        }
    ).encode()
    assert body == full[: len(full) // 2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(body)

    emulator.fail_next(Fault.data_wrong_type())
    assert (await post_json(http, emulator))["data"] == 42
    emulator.fail_next(Fault.data_wrong_type(["a", "b"]))
    answer = await post_json(http, emulator)
    assert (answer["status"], answer["data"]) == ("success", ["a", "b"])

    emulator.fail_next(Fault.wrong_content_type())
    _, headers, body = await post(http, emulator)
    assert headers["Content-Type"] == "text/plain; charset=UTF-8"
    assert body == full

    emulator.fail_next(Fault.non_utf8())
    _, headers, body = await post(http, emulator)
    assert headers["Content-Type"] == "application/json; charset=UTF-8"
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert json.loads(body.decode("latin-1"))["status"] == "success"


async def test_transport_faults(emulator: SiteEmulator, http: aiohttp.ClientSession) -> None:
    emulator.fail_next(Fault.stall(0.2))
    started = time.perf_counter()
    assert (await post_json(http, emulator))["status"] == "success"
    assert time.perf_counter() - started >= 0.2

    emulator.fail_next(Fault.stall(5))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(post(http, emulator), 0.2)

    emulator.fail_next(Fault.reset_before_headers())
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        await post(http, emulator)

    emulator.fail_next(Fault.reset_after_headers())
    async with http.post(emulator.ajax_url, data=chat_form(emulator)) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json; charset=UTF-8"
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()

    emulator.stream = True
    emulator.fail_next(Fault.reset_after_headers())
    async with http.post(emulator.ajax_url, data=chat_form(emulator)) as response:
        assert response.headers["Content-Type"] == EVENT_STREAM
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    assert emulator.posts == 5


async def test_page_faults_and_fifo(emulator: SiteEmulator, http: aiohttp.ClientSession) -> None:
    emulator.fail_next(Fault.page("<html>cached</html>"))
    emulator.fail_next(Fault.server_error(503, target="page"), times=2)
    emulator.fail_next(Fault.upstream_error("first"))
    emulator.fail_next(Fault.upstream_error("second"))
    assert len(emulator.pending_faults()) == 5
    async with http.get(emulator.url + "/") as response:
        assert (response.status, await response.text()) == (200, "<html>cached</html>")
    for _ in range(2):
        async with http.get(emulator.url + "/") as response:
            assert response.status == 503
    assert (await get_page(http, emulator)).startswith("<!DOCTYPE html>")
    assert (await post_json(http, emulator))["msg"] == "first"
    assert (await post_json(http, emulator))["msg"] == "second"
    assert emulator.page_loads == 4

    emulator.fail_next(Fault.cloudflare(target="page"))
    emulator.fail_next(Fault.rate_limited("1", target="page"))
    emulator.fail_next(Fault.stall(0.1, target="page"))
    async with http.get(emulator.url + "/") as response:
        assert response.status == 403
        assert response.headers["cf-mitigated"] == "challenge"
    async with http.get(emulator.url + "/") as response:
        assert (response.status, response.headers["Retry-After"]) == (429, "1")
    started = time.perf_counter()
    await get_page(http, emulator)
    assert time.perf_counter() - started >= 0.1

    # aiohttp retries an idempotent request once when the connection drops: fail twice
    emulator.fail_next(Fault.reset_before_headers(target="page"), times=2)
    with pytest.raises((aiohttp.ClientOSError, aiohttp.ServerDisconnectedError)):
        await get_page(http, emulator)
    emulator.clear_faults()
    emulator.fail_next(Fault.reset_after_headers(target="page"))
    async with http.get(emulator.url + "/") as response:
        with pytest.raises(aiohttp.ClientPayloadError):
            await response.read()
    emulator.fail_next(Fault.upstream_error(), times=3)
    emulator.clear_faults()
    assert emulator.pending_faults() == []


async def test_stream_faults(emulator: SiteEmulator, http: aiohttp.ClientSession) -> None:
    emulator.stream = True
    emulator.stream_chunks = 4
    emulator.reply = "abcdefgh"

    emulator.fail_next(Fault.stream_no_done())
    _, headers, body = await post(http, emulator)
    assert headers["Content-Type"] == EVENT_STREAM
    events, trailing = parse_stream(body.decode())
    assert (stream_text(events), trailing) == ("abcdefgh", "")
    assert "[DONE]" not in events
    assert all('"finish_reason":"stop"' not in event for event in events)
    emulator.fail_next(Fault.stream_no_done(after_chunks=1))
    events, _ = parse_stream((await post(http, emulator))[2].decode())
    assert stream_text(events) == "ab"

    emulator.fail_next(Fault.stream_stall(after_chunks=2, seconds=0.2))
    started = time.perf_counter()
    async with http.post(emulator.ajax_url, data=chat_form(emulator)) as response:
        received = b""
        while b'"content":"cd"' not in received:
            received += await response.content.readany()
        early = time.perf_counter() - started
        received += await response.read()
    assert early < 0.15
    assert time.perf_counter() - started >= 0.2
    events, trailing = parse_stream(received.decode())
    assert (stream_text(events), events[-1], trailing) == ("abcdefgh", "[DONE]", "")

    emulator.stream = False  # stream faults always stream
    emulator.fail_next(Fault.stream_no_done(after_chunks=0))
    _, headers, body = await post(http, emulator)
    assert headers["Content-Type"] == EVENT_STREAM
    assert stream_text(parse_stream(body.decode())[0]) == ""


async def test_stream_cut_up_to_1_8_84_is_followed_by_the_partial_json(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.stream = True
    emulator.stream_chunks = 4
    emulator.reply = "abcdefgh"
    emulator.plugin_version = "1.8.84"
    emulator.fail_next(Fault.stream_no_done(after_chunks=2))
    events, trailing = parse_stream((await post(http, emulator))[2].decode())
    assert stream_text(events) == "abcd"
    assert "[DONE]" not in events
    assert json.loads(trailing)["data"] == "abcd"
    assert json.loads(trailing)["status"] == "success"


async def test_exception_while_streaming_sends_word_frames_then_limited(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.stream = True
    emulator.stream_chunks = 4
    emulator.reply = "abcdefgh"
    emulator.fail_next(Fault.stream_limited())
    events, trailing = parse_sse((await post(http, emulator))[2].decode())
    pieces = [json.loads(data) for name, data in events if name == "" and data.startswith("{")]
    assert "".join(p["choices"][0]["delta"].get("content", "") for p in pieces) == "abcd"
    words = [json.loads(data)["choices"][0]["delta"]["content"] for name, data in events[3:-1]]
    assert "".join(words).startswith("cURL error 28: Operation timed out")
    assert words[1].startswith(" ")
    assert all(name == "message" for name, _ in events[3:])
    assert (events[-1], trailing) == (("message", "[LIMITED]"), "")
    assert not any(data == "[DONE]" or '"finish_reason"' in data for _, data in events[3:])

    emulator.fail_next(Fault.stream_limited(after_chunks=0, msg="Boom [LIMITED] x"))
    events, _ = parse_sse((await post(http, emulator))[2].decode())
    assert events[1:] == [
        ("message", '{"choices":[{"delta":{"content":"Boom"}}]}'),
        ("message", "[LIMITED]"),  # the plugin's own check of each word
        ("message", '{"choices":[{"delta":{"content":" x"}}]}'),
        ("message", "[LIMITED]"),
    ]


async def test_token_limit_flag_event_ends_the_answer(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.stream = True
    emulator.fail_next(Fault.token_limit())
    events, rest = parse_stream((await post(http, emulator))[2].decode())
    assert (events, rest) == (
        ['{"msg":"You have reached your token limit.","tokenLimitReached":true}'],
        "",
    )
    emulator.fail_next(Fault.stream_error_event("tokenLimitReached", "Kein Guthaben"))
    events, _ = parse_stream((await post(http, emulator))[2].decode())
    assert events == ['{"msg":"Kein Guthaben","tokenLimitReached":true}']
    assert emulator.model_calls == []


@pytest.mark.parametrize(
    ("flag", "goes_on"),
    [
        ("ipBanned", True),
        ("messageFlagged", True),
        ("tokenLimitReached", False),
        ("modflag", False),
        ("pineconeError", False),
    ],
)
async def test_flag_events_exit_or_go_on_like_the_plugin(
    emulator: SiteEmulator, http: aiohttp.ClientSession, flag: str, goes_on: bool
) -> None:
    emulator.reply = "the answer"
    emulator.fail_next(Fault.stream_error_event(flag))
    _, headers, body = await post(http, emulator)  # flag faults stream even on a plain site
    assert headers["Content-Type"] == EVENT_STREAM
    events, rest = parse_stream(body.decode())
    first = json.loads(events[0])
    assert first[flag] is True
    assert first["msg"]
    if goes_on:
        assert stream_text(events[1:]) == "the answer"
        assert (events[-1], rest) == ("[DONE]", "")
    else:
        assert (len(events), rest) == (1, "")


async def test_error_object_event_ends_the_stream(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.stream = True
    emulator.stream_chunks = 2
    emulator.reply = "abcd"
    emulator.fail_next(Fault.stream_error_object("Rate limit exceeded", after_chunks=1, code=429))
    events, rest = parse_stream((await post(http, emulator))[2].decode())
    assert stream_text(events[:-1]) == "ab"
    assert json.loads(events[-1]) == {"error": {"message": "Rate limit exceeded", "code": 429}}
    assert rest == ""


async def test_upstream_error_word_frames_are_printed_twice(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.stream = True
    emulator.fail_next(Fault.upstream_error("Incorrect API key provided."))
    _, headers, body = await post(http, emulator)
    assert headers["Content-Type"] == EVENT_STREAM
    once = (
        'event: message\ndata: {"choices":[{"delta":{"content":"Incorrect"}}]}\n\n'
        'event: message\ndata: {"choices":[{"delta":{"content":" API"}}]}\n\n'
        'event: message\ndata: {"choices":[{"delta":{"content":" key"}}]}\n\n'
        'event: message\ndata: {"choices":[{"delta":{"content":" provided."}}]}\n\n'
        'data: {"choices":[{"finish_reason":"stop"}]}\n\n'
    )
    assert body.decode() == once + once
    assert len(emulator.model_calls) == 2  # the site's HTTP layer called the model again
    assert emulator.requests[-1].model_calls == emulator.model_calls
    emulator.fail_next(Fault.upstream_error("Incorrect API key provided.", once=True))
    assert (await post(http, emulator))[2].decode() == once


async def test_upstream_error_up_to_1_8_84_is_followed_by_a_success_json(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.stream = True
    emulator.plugin_version = "1.8.84"
    emulator.fail_next(Fault.upstream_error("Bad key."))
    body = (await post(http, emulator))[2].decode()
    frames, _, trailing = body.rpartition('data: {"choices":[{"finish_reason":"stop"}]}\n\n')
    assert frames.count("event: message") == 4
    assert json.loads(trailing) == {
        "status": "success",
        "msg": "Something went wrong",
        "greeting_message": PROMPT,
        "data": "",
        "log": False,
    }


async def test_upstream_error_word_with_a_quote_makes_an_invalid_json_frame(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.stream = True
    emulator.fail_next(Fault.upstream_error('The model "gpt-9" does not exist', once=True))
    events, _ = parse_sse((await post(http, emulator))[2].decode())
    assert events[2] == ("message", '{"choices":[{"delta":{"content":" "gpt-9""}}]}')
    with pytest.raises(json.JSONDecodeError):
        json.loads(events[2][1])


async def test_upstream_error_body_in_pieces_is_passed_through_then_one_frame(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.stream = True
    emulator.fail_next(Fault.upstream_error("Bad key.", whole=True))
    body = (await post(http, emulator))[2].decode()
    raw, event, frames = body.partition("event: message")
    assert json.loads(raw)["error"]["message"] == "Bad key."
    assert event + frames == (
        'event: message\ndata: {"choices":[{"delta":{"content":"Bad key."}}]}\n\n'
        'data: {"choices":[{"finish_reason":"stop"}]}\n\n'
    )
    assert len(emulator.model_calls) == 1


async def test_upstream_error_as_plain_json_is_html_escaped_with_the_prompt(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.fail_next(Fault.upstream_error("  You can't use <this> model.  "))
    answer = await post_json(http, emulator)
    assert answer == {
        "status": "error",
        "msg": "You can&#039;t use &lt;this&gt; model.",
        "greeting_message": PROMPT,
        "log": False,
    }
    assert len(emulator.model_calls) == 1


@pytest.mark.parametrize(("version", "body"), [("1.8.85", ""), ("2.2", ""), ("1.8.84", "json")])
async def test_unreachable_model_leaves_an_empty_stream_from_1_8_85(
    emulator: SiteEmulator, http: aiohttp.ClientSession, version: str, body: str
) -> None:
    emulator.stream = True
    emulator.plugin_version = version
    emulator.fail_next(Fault.upstream_unreachable())
    status, headers, raw = await post(http, emulator)
    assert status == 200
    if body == "":
        assert raw == b""
        assert headers["Content-Type"] == EVENT_STREAM
    else:  # only the plugin's JSON, and nothing printed before it to send the headers
        assert json.loads(raw)["data"] == ""
        assert headers["Content-Type"] == JSON_TYPE
    assert emulator.model_calls == []
    emulator.stream = False
    emulator.fail_next(Fault.upstream_unreachable("cURL error 6: Could not resolve host"))
    answer = await post_json(http, emulator)
    assert (answer["status"], answer["msg"]) == ("error", "cURL error 6: Could not resolve host")


async def test_handler_faults_still_check_the_nonce_first(
    emulator: SiteEmulator, http: aiohttp.ClientSession
) -> None:
    emulator.fail_next(Fault.upstream_error())
    status, _, body = await post(http, emulator, _wpnonce="0000000000")
    assert (status, body) == (403, b"The link you followed has expired.")
    assert emulator.pending_faults() == []  # used up by that request
    assert (await post_json(http, emulator))["status"] == "success"


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
    with pytest.raises(ValueError, match="kind"):
        Fault.stream_error_event("angry")
    with pytest.raises(ValueError, match="after_chunks"):
        Fault.stream_no_done(after_chunks=-1)
    with pytest.raises(ValueError, match="after_chunks"):
        Fault.stream_error_object(after_chunks=-1)
    assert repr(Fault.upstream_error("x", once=True)) == (
        "Fault(kind='upstream_error', target='post', text='x', once=True)"
    )
    with pytest.raises(TypeError):
        SiteEmulator().fail_next("reset")  # type: ignore[arg-type]


async def test_required_cookies(emulator: SiteEmulator, http: aiohttp.ClientSession) -> None:
    emulator.required_cookies = {"cf_clearance": "ok"}
    async with http.get(emulator.url + "/") as response:
        assert response.status == 403
        assert response.headers["cf-mitigated"] == "challenge"
        assert "<title>Just a moment...</title>" in await response.text()
    status, headers, _ = await post(http, emulator)
    assert (status, headers["Server"]) == (403, "cloudflare")
    async with aiohttp.ClientSession(cookies={"cf_clearance": "ok"}) as cleared:
        assert (await get_page(cleared, emulator)).startswith("<!DOCTYPE html>")
        assert (await post_json(cleared, emulator))["status"] == "success"


# records and counters -----------------------------------------------------------------


async def test_counters_and_records(emulator: SiteEmulator, http: aiohttp.ClientSession) -> None:
    await get_page(http, emulator)
    for index in range(4):
        await post_json(
            http,
            emulator,
            f"message {index}",
            headers={"X-Requested-With": "XMLHttpRequest", "Referer": emulator.url + "/"},
        )
    counts = (emulator.page_loads, emulator.posts, emulator.connections, len(emulator.requests))
    assert counts == (1, 4, 1, 5)
    async with aiohttp.ClientSession(cookies={"a": "1"}) as other:
        await get_page(other, emulator)
    assert emulator.connections == 2
    record = emulator.requests[1]
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
    assert emulator.requests[-1].cookies == {"a": "1"}
    emulator.reset_counters()
    reset = (emulator.page_loads, emulator.posts, emulator.connections, emulator.requests)
    assert reset == (0, 0, 0, [])


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


async def test_stop_with_a_request_in_flight(http: aiohttp.ClientSession) -> None:
    emulator = SiteEmulator()
    await emulator.start()
    emulator.fail_next(Fault.stall(30))
    pending = asyncio.ensure_future(post(http, emulator))
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


def test_command_line_options_reach_the_emulator() -> None:
    args = [
        "--plugin-version", "2.2", "--language", "de", "--assistant",
        "--php-warnings", "buffered", "--page-variant", "empty_post_id",
        "--params-style", "base64", "--foreign-params", "--widget", "widget",
        "--memory-limit", "3", "--banned-word", "nein", "--footer-padding", "2048",
        "--fail", "upstream_error=Kaputt", "--fail", "stream-error-event=modflag",
    ]  # fmt: skip
    with emulator_process(*args) as (process, url):
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        _, raw = _urlopen(url + "/")
        page = raw.decode()
        assert '<html lang="de-DE">' in page
        assert 'data-assistant-enabled="true"' in page
        assert '     data-post-id="<"\n' in page  # the widget's bug on a page with no post
        assert 'src="data:text/javascript;base64,' in page
        assert "var site_vars" in page
        assert 'data-memory-limit = "3"' in page
        assert "related-posts" in page
        nonce = attribute(page, "data-nonce")
        assert nonce is not None
        form = {"action": ACTION, "_wpnonce": nonce, "message": "hallo"}
        ajax = url + "/wp-admin/admin-ajax.php"
        _, body = _urlopen(ajax, form)  # the first queued fault
        text = body.decode()
        assert text.startswith("<br />\n<b>Warning</b>:  Undefined variable $wpaicg_chat_history")
        assert json.loads(text[text.index("{") :])["msg"] == "Kaputt"
        _, body = _urlopen(ajax, form)  # the second one: a moderation flag event
        assert json.loads(parse_stream(body.decode())[0][0])["modflag"] is True
        _, body = _urlopen(ajax, {**form, "message": "nein", "wpaicg_chat_history": "[]"})
        assert json.loads(body)["msg"].startswith("Deine Nachricht enthält verbotene Wörter.")
        _, body = _urlopen(ajax, {**form, "wpaicg_chat_history": "[]"})
        assert json.loads(body)["thread_id"].startswith("thread_")
        process.terminate()
        _, stderr = process.communicate(timeout=10)
        assert process.returncode == 0, stderr


def test_command_line_fault_option_parsing() -> None:
    from chatgpt4o.testing._serve import build_parser, parse_fault

    assert parse_fault("stall=0.5") == Fault.stall(0.5)
    assert parse_fault("server-error=503") == Fault.server_error(503)
    assert parse_fault("upstream_error=42") == Fault.upstream_error("42")
    assert parse_fault("stream_no_done") == Fault.stream_no_done()
    args = build_parser().parse_args(["--php-warnings", "unbuffered", "--fail", "token_limit"])
    assert (args.php_warnings, args.fail) == ("unbuffered", [Fault.token_limit()])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--fail", "nope"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--fail", "server_error=404"])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--php-warnings", "loud"])


def test_pytest_fixture(chatgpt4o_emulator: SiteEmulator) -> None:
    status, page = _urlopen(chatgpt4o_emulator.url + "/")
    assert status == 200
    assert chatgpt4o_emulator.current_nonce().encode() in page
    assert chatgpt4o_emulator.page_loads == 1


@pytest.fixture
def marked_emulator(request: pytest.FixtureRequest) -> SiteEmulator:
    # Applied at run time: when the plugin comes from this module's pytest_plugins (not
    # from the installed entry point), the marker is unknown while the module is imported.
    marker = pytest.mark.chatgpt4o_emulator(
        stream=True,
        post_id=42,
        plugin_version="2.2",
        language="de",
        assistant=True,
        php_warnings="buffered",
        params_style="cdata",
    )
    request.node.add_marker(marker)
    emulator: SiteEmulator = request.getfixturevalue("chatgpt4o_emulator")
    return emulator


def test_pytest_fixture_marker_passes_the_new_keywords(marked_emulator: SiteEmulator) -> None:
    _, page = _urlopen(marked_emulator.url + "/")
    assert b'data-openai_stream_nav="1"' in page
    assert b'data-post-id="42"' in page
    assert b'data-assistant-enabled="true"' in page
    assert b'<html lang="de-DE">' in page
    assert b"/* <![CDATA[ */" in page
    assert (marked_emulator.plugin_version, marked_emulator.php_warnings) == ("2.2", "buffered")


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
