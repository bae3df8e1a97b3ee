"""Properties of the scraper and the answer parser for any input: a value or a
ProviderError, never anything else, and never worse than linear time."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatgpt4o import ProviderError
from chatgpt4o.protocols.wpaicg import (
    PageScraper,
    ReplyParser,
    check_status,
    parse_reply,
    scrape_page,
)

# Fragments of real pages and answers, so that generated inputs get near the grammar.
PAGE_BITS = [
    "<div ", 'class="wpaicg-chat-shortcode"', "class='wpaicg-chatbox'",
    "class=wpaicg-chat-shortcode",
    'data-nonce="5e2498d71a"', "data-nonce=", 'data-post-id="<11"', "data-post-id=11",
    'data-bot-id="x"', 'data-type="widget"', ">", "<", '"', "'", "=", " ", "\n",
    '"search_nonce":"5e2498d71a"', "postid-", "postid-12 ", "<link rel='shortlink' href='?p=3'>",
    '<article id="post-4"', "<input id=\"wpaicg-img-nonce\" value=\"aaaaaaaaaa\">",
]
ANSWER_BITS = [
    b"data: ", b"data:", b"[DONE]", b"[LIMITED]", b"\n", b"\r\n", b"\n\n", b"{", b"}", b"[", b"]",
    b'"choices":[{"delta":{"content":"x"}}]', b'"status":"error"', b'"status":"success"',
    b'"data":"hi"', b'"data":1', b'"msg":"Nonce verification failed"', b'"tokenLimitReached":true',
    b'"ipBanned":true', b'"error":{"message":"m"}', b",", b":", b"\xff", b"\xc3", b" ", b": ping",
]

pages = st.one_of(
    st.text(max_size=400),
    st.lists(st.sampled_from(PAGE_BITS), max_size=40).map("".join),
)
answers = st.one_of(
    st.binary(max_size=400),
    st.lists(st.sampled_from(ANSWER_BITS), max_size=40).map(b"".join),
)
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(pages)
def test_scraper_returns_page_info_or_a_provider_error(html: str) -> None:
    try:
        info = scrape_page(html)
    except ProviderError:
        return
    assert info.post_id == "" or info.post_id.isdigit()
    assert len(info.nonce) == 10


@FAST
@given(pages, st.integers(min_value=1, max_value=17))
def test_scraper_finds_the_same_widget_however_the_page_is_split(html: str, size: int) -> None:
    data = html.encode()
    whole, split = PageScraper(), PageScraper()
    whole.feed(data)
    for index in range(0, len(data), size):
        split.feed(data[index : index + size])
    assert whole.widget == split.widget


@FAST
@given(answers)
def test_parser_returns_text_or_a_provider_error(body: bytes) -> None:
    try:
        reply = parse_reply(body)
    except ProviderError:
        return
    assert isinstance(reply, str)


@FAST
@given(answers, st.integers(min_value=1, max_value=17))
def test_parser_gives_the_same_result_however_the_bytes_are_split(body: bytes, size: int) -> None:
    def run(chunks: list[bytes]) -> tuple[str, object]:
        parser = ReplyParser()
        pieces: list[str] = []
        try:
            for chunk in chunks:
                pieces += parser.feed(chunk)
            return "".join(pieces), parser.close()
        except ProviderError as err:
            return "error", type(err)

    whole = run([body])
    split = run([body[i : i + size] for i in range(0, len(body), size)])
    assert whole[1] == split[1]


@FAST
@given(st.integers(min_value=100, max_value=599), st.text(max_size=200))
def test_status_check_raises_only_provider_errors(status: int, body: str) -> None:
    try:
        check_status(status, {}, body)
    except ProviderError:
        assert not 200 <= status < 300


@given(st.text(min_size=1, max_size=200))
def test_any_reply_text_survives_the_php_encoding(text: str) -> None:
    body = json.dumps({"status": "success", "data": text}).replace("/", "\\/").encode()
    assert parse_reply(body) == text


ONE_MB = 1024 * 1024
CRAFTED_PAGES = {
    "open divs": "<div " * (ONE_MB // 5),
    "unclosed class": '<div class="' * (ONE_MB // 12),
    "class without the name": '<div class="wpaicg-chat ' * (ONE_MB // 24),
    "widget without end": '<div class="wpaicg-chat-shortcode" ' + "data-x=1 " * (ONE_MB // 9),
    "many attributes": '<div class="wpaicg-chat-shortcode" ' + 'a="' * (ONE_MB // 3),
    "nonce keys": '"search_nonce":"' * (ONE_MB // 16),
    "post markers": "postid-" * (ONE_MB // 7),
    "shortlinks": "<link rel='shortlink' " * (ONE_MB // 22),
    "articles": "<article id=\"post-" * (ONE_MB // 18),
    "angle brackets": "<" * ONE_MB,
}


@pytest.mark.parametrize("name", list(CRAFTED_PAGES))
def test_crafted_megabyte_pages_do_not_backtrack(name: str) -> None:
    html = CRAFTED_PAGES[name]
    started = time.monotonic()
    with pytest.raises(ProviderError):
        scrape_page(html)
    scraper = PageScraper()
    data = html.encode()
    for index in range(0, len(data), 16384):  # as a download would deliver it
        scraper.feed(data[index : index + 16384])
    # Linear work on 1 MB takes milliseconds; catastrophic backtracking takes minutes.
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "body",
    [
        b"data: " * (ONE_MB // 6),
        b"data: {" * (ONE_MB // 7),
        b"\n" * ONE_MB,
        b'data: {"choices":[{"delta":{"content":"x"}}]}\n' * (ONE_MB // 48),
    ],
    ids=["data prefixes", "open braces", "blank lines", "many events"],
)
def test_crafted_megabyte_answers_parse_in_linear_time(body: bytes) -> None:
    started = time.monotonic()
    parser = ReplyParser()
    try:
        for index in range(0, len(body), 1024):
            parser.feed(body[index : index + 1024])
        parser.close()
    except ProviderError:
        pass
    assert time.monotonic() - started < 5
