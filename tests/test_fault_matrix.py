"""Every way the site can misbehave, one row each: the right answer or the right typed
error, within the deadline, and the cache left sane."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pytest

from chatgpt4o import (
    CloudflareError,
    HTTPStatusError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseError,
    ScrapeError,
    ServiceError,
)
from chatgpt4o.testing import Fault, SiteEmulator

from .conftest import USER_HELLO, Site, expected_reply

pytestmark = pytest.mark.usefixtures("sleeps")  # retry sleeps are skipped

TIMEOUT = 3.0
MB = 1024 * 1024


@dataclass
class Row:
    name: str
    faults: list[Fault]
    expect: type[ProviderError] | None  # None: the normal reply
    stream: bool = False
    times: int = 1
    settings: dict[str, object] = field(default_factory=dict)


ROWS = [
    Row("slow answer within the deadline", [Fault.stall(0.5)], None),
    Row("stall past the deadline", [Fault.stall(30)], ProviderTimeoutError),
    Row("stalled page past the deadline", [Fault.stall(30, target="page")], ProviderTimeoutError),
    Row("reset before headers", [Fault.reset_before_headers()], None),
    Row("reset after headers", [Fault.reset_after_headers()], None),
    Row("reset before headers, always", [Fault.reset_before_headers()], ProviderError, times=5),
    Row("429 once", [Fault.rate_limited()], None),
    Row("429 with Retry-After once", [Fault.rate_limited(retry_after="1")], None),
    Row("429 always", [Fault.rate_limited()], RateLimitError, times=5),
    Row("429 with Retry-After always", [Fault.rate_limited("1")], RateLimitError, times=5),
    Row("500 once", [Fault.server_error(500)], None),
    Row("502 once", [Fault.server_error(502)], None),
    Row("503 once", [Fault.server_error(503)], None),
    Row("504 once", [Fault.server_error(504)], None),
    Row("500 always", [Fault.server_error(500)], HTTPStatusError, times=5),
    Row("503 always", [Fault.server_error(503)], HTTPStatusError, times=5),
    Row("Cloudflare 403", [Fault.cloudflare(403)], CloudflareError),
    Row("Cloudflare 503", [Fault.cloudflare(503)], CloudflareError),
    Row("Cloudflare on the page", [Fault.cloudflare(403, target="page")], CloudflareError),
    Row("HTML instead of JSON", [Fault.html_instead_of_json()], ResponseError),
    Row("truncated JSON", [Fault.truncated_json()], ResponseError),
    Row("data of the wrong type", [Fault.data_wrong_type()], ResponseError),
    Row("data is a list", [Fault.data_wrong_type(["a"])], ResponseError),
    Row("no data", [Fault.no_data()], ResponseError),
    Row("empty body", [Fault.empty_body()], ResponseError),
    Row("wrong Content-Type, good JSON", [Fault.wrong_content_type()], None),
    Row("non-UTF-8 bytes", [Fault.non_utf8()], ResponseError),
    Row("stream without [DONE]", [Fault.stream_no_done()], ResponseError, stream=True),
    Row("stream ending in [LIMITED]", [Fault.stream_limited()], ServiceError, stream=True),
    Row("stream error event", [Fault.stream_error_event("ipBanned")], ServiceError, stream=True),
    Row("stream flagged", [Fault.stream_error_event("messageFlagged")], ServiceError, stream=True),
    Row(
        "stream token limit",
        [Fault.stream_error_event("tokenLimitReached")],
        ServiceError,
        stream=True,
    ),
    Row("stream stalls midway", [Fault.stream_stall(2, 30)], ProviderTimeoutError, stream=True),
    Row("stale nonce once", [Fault.stale_nonce()], None),
    Row("page with two widgets", [], None, settings={"page_variant": "two_widgets"}),
    Row("page that is not the chat", [Fault.page("<html>hello</html>")], ScrapeError),
    Row("empty page", [Fault.page("")], ScrapeError),
    Row("page 502", [Fault.server_error(502, target="page")], None),
]


async def call(site: Site, stream: bool) -> str:
    if stream:
        pieces = [p async for p in site.create_async_generator("", USER_HELLO, timeout=TIMEOUT)]
        return "".join(pieces)
    return await site.create_async("", USER_HELLO, timeout=TIMEOUT)


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
async def test_fault_matrix(site: Site, emulator: SiteEmulator, row: Row) -> None:
    for name, value in row.settings.items():
        setattr(emulator, name, value)
    emulator.stream = row.stream
    for fault in row.faults:
        emulator.fail_next(fault, times=row.times)
    expected = expected_reply(emulator)

    started = time.monotonic()
    if row.expect is None:
        assert await call(site, row.stream) == expected
    else:
        with pytest.raises(row.expect) as caught:
            await call(site, row.stream)
        assert isinstance(caught.value, ProviderError)
        assert emulator.current_nonce() not in str(caught.value)
    assert time.monotonic() - started < TIMEOUT + 0.5

    # the cache is either empty or holds the site's live nonce, and the site works again
    assert site._nonce in (None, emulator.current_nonce())
    emulator.clear_faults()
    assert await call(site, row.stream) == expected


async def test_twenty_megabyte_page_is_read_only_up_to_the_widget(
    site: Site, emulator: SiteEmulator
) -> None:
    nonce = emulator.current_nonce()
    filler = "<!-- " + "x" * (MB - 10) + " -->\n"
    widget = (
        f'<div class="wpaicg-chat-shortcode" data-nonce="{nonce}" data-post-id="11" '
        f'data-bot-id="0" data-url="{emulator.url}">'
    )
    html = "<!DOCTYPE html><html><body>" + filler * 2 + widget + filler * 18 + "</body></html>"
    emulator.fail_next(Fault.page(html))
    assert await site.create_async("", USER_HELLO, timeout=10)
    assert site._nonce == nonce


async def test_widget_beyond_the_read_cap_is_not_found(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.page_padding = 20 * MB
    with pytest.raises(ScrapeError):
        await site.create_async("", USER_HELLO, timeout=10)
