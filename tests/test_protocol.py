"""The wire protocol without a network: scraping, the form, and reading answers."""

from __future__ import annotations

import json

import pytest

from chatgpt4o import (
    CloudflareError,
    HTTPStatusError,
    PluginUnavailableError,
    RateLimitError,
    ResponseError,
    ScrapeError,
    ServiceError,
)
from chatgpt4o._exceptions import StaleCredentials
from chatgpt4o.protocols.wpaicg import (
    CHATBOX_ACTION,
    SHORTCODE_ACTION,
    PageInfo,
    PageScraper,
    ReplyParser,
    build_form,
    check_status,
    new_client_id,
    parse_reply,
    scrape_page,
)

WIDGET = """<div class="wpaicg-chat-shortcode"
     data-user-bg-color="#ccf5e1"
     data-ai-name="AI"
     data-nonce="5e2498d71a"
     data-post-id="11"
     data-url="https://chatgpt4o.one"
     data-bot-id="0"
     data-typewriter-effect = "0"
     data-openai_stream_nav="0"
     data-memory-limit = "10"
     data-type="shortcode"
>"""
PARAMS = (
    '<script>var wpaicgParams = {"ajax_url":"https:\\/\\/host\\/wp-admin\\/admin-ajax.php",'
    '"search_nonce":"5e2498d71a","logged_in":0};</script>'
)
IMAGE_NONCE = '<input type="hidden" id="wpaicg-img-nonce" value="ffffffffff">'
STYLE = "<style>.wpaicg-chat-shortcode { data-nonce: 0; } .wpaicg-chatbox{}</style>"


def page(body: str, head: str = STYLE + IMAGE_NONCE) -> str:
    return f"<!DOCTYPE html><html><head>{head}</head><body>{body}</body></html>"


# -- scraping --------------------------------------------------------------------------


def test_scrapes_the_documented_markup() -> None:
    info = scrape_page(page(WIDGET + PARAMS))
    assert info == PageInfo(
        post_id="11",
        nonce="5e2498d71a",
        bot_id="0",
        action=SHORTCODE_ACTION,
        ajax_url="https://host/wp-admin/admin-ajax.php",
        data_url="https://chatgpt4o.one",
    )
    assert "5e2498d71a" not in repr(info)


@pytest.mark.parametrize(
    "widget",
    [
        '<div class="wpaicg-chat-shortcode" data-nonce=5e2498d71a data-post-id=11 data-bot-id=0>',
        "<div class='wpaicg-chat-shortcode' data-nonce='5e2498d71a' data-post-id='11'>",
        '<div id="x" data-post-id="11" class="foo wpaicg-chat-shortcode bar" data-x="1" '
        'data-nonce="5E2498D71A">',
        '<div class="wpaicg-chat-shortcode" data-nonce="5e2498d71a" data-post-id="<11">',
        '<DIV CLASS="wpaicg-chat-shortcode" DATA-NONCE="5e2498d71a" DATA-POST-ID="11">',
    ],
    ids=["bare", "single-quoted", "reordered", "post-id-markup-bug", "upper-case"],
)
def test_scrape_variants(widget: str) -> None:
    info = scrape_page(page(widget))
    assert (info.post_id, info.nonce) == ("11", "5e2498d71a")


def test_site_widget_variant_uses_the_chatbox_action() -> None:
    html = page(
        '<div class="wpaicg-chatbox wpaicg-chatbox-bottom" data-nonce="5e2498d71a" '
        'data-post-id="11" data-bot-id="7" data-type="widget" data-openai_stream_nav="1">'
    )
    info = scrape_page(html)
    assert info.action == CHATBOX_ACTION
    assert info.bot_id == "7"
    assert info.streams is True


def test_params_only_page_sends_an_empty_post_id_and_never_guesses_one() -> None:
    html = page('<article id="post-11" class="page">hello</article>', head=PARAMS + IMAGE_NONCE)
    info = scrape_page(html)
    assert (info.post_id, info.nonce) == ("", "5e2498d71a")  # post-11 names another post
    html = f'<body class="page postid-42 logged-out">{PARAMS}</body>'
    assert scrape_page(html).post_id == ""
    empty = page('<div class="wpaicg-chat-shortcode" data-nonce="5e2498d71a" data-post-id="">')
    assert scrape_page(empty).post_id == ""


def test_the_first_of_two_widgets_wins() -> None:
    second = WIDGET.replace('data-post-id="11"', 'data-post-id="99"').replace(
        "5e2498d71a", "0123456789"
    )
    info = scrape_page(page(WIDGET + second))
    assert (info.post_id, info.nonce) == ("11", "5e2498d71a")


def test_never_takes_the_image_nonce() -> None:
    html = page('<div class="wpaicg-chat-shortcode" data-post-id="11">', head=IMAGE_NONCE)
    with pytest.raises(ScrapeError, match="No nonce found"):
        scrape_page(html)


def test_a_page_without_the_chat() -> None:
    with pytest.raises(ScrapeError, match="No AI Power chat on the page") as caught:
        scrape_page(page("<p>Just a blog</p>"))
    assert isinstance(caught.value, ResponseError)
    assert isinstance(caught.value, RuntimeError)


def test_malformed_nonce_is_not_taken() -> None:
    html = page('<div class="wpaicg-chat-shortcode" data-post-id="11" data-nonce="not-a-nonce">')
    with pytest.raises(ScrapeError, match=r"nonce is not 10 hex digits \(it has 11 characters"):
        scrape_page(html)
    with pytest.raises(ScrapeError, match="No nonce found"):
        scrape_page(page('<div class="wpaicg-chat-shortcode" data-post-id="11">'))


def test_scraper_reads_until_it_has_the_widget_and_the_params() -> None:
    html = page(WIDGET + "<p>" * 1000 + PARAMS).encode()
    cut = html.index(b"data-type")
    scraper = PageScraper()
    for index in range(0, cut, 7):  # arriving in small pieces
        assert not scraper.feed(html[index : min(index + 7, cut)])
    rest = html[cut:]
    for index in range(0, len(rest) - 20, 13):
        assert not scraper.feed(rest[index : index + 13])
    assert scraper.widget is not None
    assert scraper.feed(rest[index + 13 :])  # the params' script has ended: enough
    info = scraper.result()
    assert info is not None
    assert info.nonce == "5e2498d71a"
    assert info.ajax_url == "https://host/wp-admin/admin-ajax.php"
    assert not PageScraper().feed(page("").encode())  # CSS rules for the class do not count


def test_scraper_stops_at_its_cap() -> None:
    scraper = PageScraper(max_bytes=1000)
    assert not scraper.feed(b"<p>" * 100)
    assert scraper.feed(b"<p>" * 300)
    assert len(scraper.text) == 1000


def test_divider_is_not_a_div() -> None:
    html = '<divider class="wpaicg-chat-shortcode" data-nonce="5e2498d71a" data-post-id="11">'
    with pytest.raises(ScrapeError):
        scrape_page(html)


# -- the form --------------------------------------------------------------------------


def test_form_has_every_field_of_the_protocol() -> None:
    info = PageInfo(post_id="11", nonce="5e2498d71a", bot_id="3", site_url="https://chatgpt4o.one")
    form = build_form(info, message="Hi", client_id="abcdefghij")
    assert list(form.items()) == [
        ("_wpnonce", "5e2498d71a"),
        ("post_id", "11"),
        ("url", "https://chatgpt4o.one"),
        ("action", SHORTCODE_ACTION),
        ("message", "Hi"),
        ("bot_id", "3"),
        ("chatbot_identity", "custom_bot_3"),
        ("wpaicg_chat_history", "[]"),
        ("wpaicg_chat_client_id", "abcdefghij"),
    ]


def test_client_ids_are_ten_random_alphanumerics() -> None:
    ids = {new_client_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(len(i) == 10 and i.isalnum() and i.isascii() for i in ids)


# -- plain answers (§3a) ---------------------------------------------------------------


def php_json(value: object) -> bytes:
    return json.dumps(value).replace("/", "\\/").encode()


def test_success_answer_with_php_escaping() -> None:
    body = php_json(
        {
            "status": "success",
            "msg": "Something went wrong",
            "greeting_message": "",
            "data": "a/b Привет 😀",
            "log": False,
        }
    )
    assert parse_reply(body) == "a/b Привет 😀"


@pytest.mark.parametrize(
    "message", ["Nonce verification failed", "Security check", "Invalid nonce. Reload the page."]
)
def test_stale_nonce_wordings(message: str) -> None:
    with pytest.raises(StaleCredentials):
        parse_reply(php_json({"status": "error", "msg": message}))


@pytest.mark.parametrize(
    "message",
    [
        "It appears that nothing was inputted.",
        "You are not allowed to access this feature.",
        "Your message contains prohibited words. Please modify your message and try again.",
        "Incorrect API key provided",
    ],
)
def test_plugin_errors_carry_the_server_message(message: str) -> None:
    with pytest.raises(ServiceError) as caught:
        parse_reply(php_json({"status": "error", "msg": message, "log": False}))
    assert caught.value.server_message == message
    assert message in str(caught.value)


def test_token_limit_is_a_service_error_of_its_own_kind() -> None:
    body = php_json({"msg": "You have reached your token limit.", "tokenLimitReached": True})
    with pytest.raises(ServiceError, match="token limit") as caught:
        parse_reply(body)
    assert caught.value.kind == "token_limit"
    assert not isinstance(caught.value, RateLimitError)
    assert not hasattr(caught.value, "status_code")  # no status code is invented


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b'{"status":"success","msg":"Something went wrong"}', "'data' field missing"),
        (b'{"status":"success","data":42}', "'data' is not a string"),
        (b'{"status":"success","data":"Hel', "not JSON"),
        (b"<html><body>Hello</body></html>", "not JSON"),
        (b"", "empty"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"data":"\xff\xfe"}', "not valid UTF-8"),
    ],
)
def test_unexpected_answers(body: bytes, match: str) -> None:
    with pytest.raises(ResponseError, match=match):
        parse_reply(body)


def test_error_shows_what_came_back_trimmed_and_without_secrets() -> None:
    body = php_json({"status": "success", "_wpnonce": "5e2498d71a", "x": "y" * 5000})
    with pytest.raises(ResponseError) as caught:
        parse_reply(body)
    text = str(caught.value)
    assert "5e2498d71a" not in text
    assert len(text) < 400


# -- streamed answers (§3b) ------------------------------------------------------------


def event(content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


STREAM = (
    event("Hel")
    + event("lo")
    + event(None, "stop")
    + b"data: [DONE]\n\n"
    + b'{"status":"success","msg":"Something went wrong","data":"Hello","log":false}'
)


def test_stream_pieces_arrive_as_fed_even_split_anywhere() -> None:
    for size in (1, 3, 7, len(STREAM)):
        parser = ReplyParser()
        pieces: list[str] = []
        for start in range(0, len(STREAM), size):
            pieces += parser.feed(STREAM[start : start + size])
        assert pieces == ["Hel", "lo"]
        assert parser.close() == "Hello"
        assert parser.streamed


def test_stream_with_crlf_and_comments() -> None:
    body = b": keep-alive\r\n\r\n" + STREAM.replace(b"\n", b"\r\n")
    assert parse_reply(body) == "Hello"


def test_stream_without_trailer_is_fine_after_done() -> None:
    assert parse_reply(event("Hi") + b"data: [DONE]\n\n") == "Hi"


def test_stream_without_done_is_incomplete() -> None:
    with pytest.raises(ResponseError, match="before \\[DONE\\]"):
        parse_reply(event("Hel") + event("lo"))


def test_stream_limited() -> None:
    with pytest.raises(ServiceError, match="LIMITED"):
        parse_reply(event("Hel") + b"data: [LIMITED]\n\n")


@pytest.mark.parametrize(
    ("flag", "error"),
    [
        ("tokenLimitReached", ServiceError),
        ("ipBanned", ServiceError),
        ("messageFlagged", ServiceError),
        ("pineconeError", ServiceError),
    ],
)
def test_stream_error_events(flag: str, error: type[Exception]) -> None:
    body = b"data: " + json.dumps({"msg": "No way", flag: True}).encode() + b"\n\n"
    with pytest.raises(error, match="No way"):
        parse_reply(body)


def test_what_follows_done_is_ignored_once_pieces_came() -> None:
    trailer = php_json({"status": "error", "msg": "Upstream", "log": False})
    assert parse_reply(event("x") + b"data: [DONE]\n\n" + trailer) == "x"
    with pytest.raises(ServiceError, match="Upstream"):  # no piece: the trailer is the answer
        parse_reply(b"data: [DONE]\n\n" + trailer)


def test_stream_trailer_data_used_when_no_pieces() -> None:
    body = b'data: [DONE]\n\n{"status":"success","data":"Whole"}'
    assert parse_reply(body) == "Whole"


def test_broken_stream_event() -> None:
    with pytest.raises(ResponseError, match="stream event is not JSON"):
        parse_reply(b"data: {nope\n\n")


def test_answer_size_is_capped() -> None:
    parser = ReplyParser(max_bytes=100)
    with pytest.raises(ResponseError, match="larger than 100 bytes"):
        parser.feed(b"x" * 101)


# -- statuses (§3a', §4) -----------------------------------------------------------------


def test_2xx_passes() -> None:
    check_status(200, {}, "")


def test_expired_link_page_is_a_stale_nonce_only_for_ajax() -> None:
    body = "<html><body><p>The link you followed has expired.</p></body></html>"
    with pytest.raises(StaleCredentials):
        check_status(403, {}, body)
    with pytest.raises(HTTPStatusError):
        check_status(403, {}, body, ajax=False)
    with pytest.raises(StaleCredentials):
        check_status(403, {}, "<p>Are you sure you want to do this?</p>")


CF_SCRIPT = '<script src="/cdn-cgi/challenge-platform/scripts/jsd/main.js"></script>'


def test_cloudflare_script_on_an_ordinary_page_is_not_a_challenge() -> None:
    # Cloudflare injects this script into every HTML page it serves.
    with pytest.raises(StaleCredentials):
        check_status(403, {}, f"<p>The link you followed has expired.</p>{CF_SCRIPT}")
    with pytest.raises(HTTPStatusError) as caught:
        check_status(503, {"retry-after": "7"}, f"<h1>Maintenance</h1>{CF_SCRIPT}")
    assert type(caught.value) is HTTPStatusError
    assert caught.value.retry_after == 7


def test_a_translated_wp_die_page_is_a_stale_nonce() -> None:
    body = '<body id="error-page"><div class="wp-die-message">Der Link ist abgelaufen.</div>'
    with pytest.raises(StaleCredentials):
        check_status(403, {}, body)


def test_redirects_name_their_target() -> None:
    with pytest.raises(HTTPStatusError, match=r"redirected .* to https://example\.org/"):
        check_status(301, {"location": "https://example.org/"}, "")


def test_deeply_nested_json_is_a_response_error() -> None:
    for body in (b"[" * 100_000, b"data: " + b"[" * 100_000 + b"\n\n"):
        with pytest.raises(ResponseError):
            parse_reply(body)


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (403, {"cf-mitigated": "challenge"}, ""),
        (503, {}, "<title>Just a moment...</title>"),
        (403, {}, '<form id="challenge-form" action="/?__cf_chl_f_tk=abc">'),
    ],
)
def test_cloudflare_challenges(status: int, headers: dict[str, str], body: str) -> None:
    with pytest.raises(CloudflareError) as caught:
        check_status(status, headers, body)
    assert caught.value.status_code == status


def test_plugin_gone() -> None:
    with pytest.raises(PluginUnavailableError, match="no longer speaks this protocol"):
        check_status(400, {}, "0")


def test_429_with_retry_after() -> None:
    with pytest.raises(RateLimitError) as caught:
        check_status(429, {"retry-after": "3"}, "Too Many Requests")
    assert caught.value.retry_after == 3
    assert caught.value.status_code == 429


@pytest.mark.parametrize("status", [401, 404, 500, 502, 503, 504])
def test_other_statuses(status: int) -> None:
    with pytest.raises(HTTPStatusError) as caught:
        check_status(status, {}, "<h1>Oops</h1>")
    assert caught.value.status_code == status
    assert "<h1>Oops</h1>" in str(caught.value)
    assert type(caught.value) is HTTPStatusError


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"status": "error", "msg": "You are not allowed to access this feature."}, "ip_banned"),
        ({"status": "error", "msg": "Your message contains prohibited words."}, "banned_words"),
        ({"status": "error", "msg": "It appears that nothing was inputted."}, "empty_message"),
        (
            {"status": "error", "msg": "Rate limit reached", "greeting_message": "", "log": 1},
            "upstream",
        ),
        ({"msg": "Blocked", "ipBanned": True}, "ip_banned"),
        ({"msg": "Flagged", "messageFlagged": True}, "banned_words"),
    ],
)
def test_service_errors_say_what_kind_of_refusal(body: dict[str, object], kind: str) -> None:
    with pytest.raises(ServiceError) as caught:
        parse_reply(php_json(body))
    assert caught.value.kind == kind


@pytest.mark.parametrize(
    ("text", "hidden", "kept"),
    [
        ("_wpnonce=5e2498d71a&post_id=11", "5e2498d71a", "post_id=11"),
        ('{"search_nonce":"5e2498d71a"}', "5e2498d71a", "search_nonce"),
        ("socks5://alice:hunter2@127.0.0.1:1080", "hunter2", "alice"),
        ("Cookie: wp_session=abc123; cf_clearance=xyz", "abc123", "Cookie:"),
        ("argument --cookie: expected NAME=VALUE", "***", "expected NAME=VALUE"),
    ],
)
def test_redact(text: str, hidden: str, kept: str) -> None:
    from chatgpt4o._exceptions import redact

    redacted = redact(text)
    assert kept in redacted
    if hidden == "***":
        assert redacted == text
    else:
        assert hidden not in redacted
