"""The AI Power <= 2.2 protocol module on bytes alone: pages, forms and answers in every
shape the plugin's releases produce (docs/protocol.md §2-§4). The same behaviours run
end to end against the emulator in tests/test_wpaicg_rules.py."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs

import pytest

from chatgpt4o import HTTPStatusError, NonceError, ResponseError, ServiceError
from chatgpt4o._exceptions import StaleCredentials
from chatgpt4o.protocols.base import Conversation
from chatgpt4o.protocols.wpaicg import (
    PageInfo,
    Prepared,
    ReplyParser,
    WpaicgProtocol,
    check_status,
    encode_form,
    parse_reply,
    prepare_turns,
    scrape_page,
)

NONCE = "5e2498d71a"
PARAMS_JSON = (
    '{"ajax_url":"https:\\/\\/host\\/blog\\/wp-admin\\/admin-ajax.php","search_nonce":"%s"}'
)
WIDGET = f'<div class="wpaicg-chat-shortcode" data-nonce="{NONCE}" data-post-id="11">'


def chunk(text: str) -> bytes:
    return b"data: " + json.dumps({"choices": [{"delta": {"content": text}}]}).encode() + b"\n\n"


def word_frames(text: str) -> bytes:
    """The plugin's error frames: one event: message frame per word, then a stop frame."""
    words = text.split(" ")
    frames = b"".join(
        b"event: message\ndata: "
        + json.dumps({"choices": [{"delta": {"content": (" " if i else "") + w}}]}).encode()
        + b"\n\n"
        for i, w in enumerate(words)
    )
    return frames + b'data: {"choices":[{"finish_reason":"stop"}]}\n\n'


# -- the page ---------------------------------------------------------------------------


def test_params_are_read_only_from_the_wpaicgParams_object() -> None:
    foreign = (
        '<script>var site_vars = {"ajax_url":"https:\\/\\/evil.example\\/x.php",'
        '"search_nonce":"0123456789"};</script>'
    )
    own = f"<script>var wpaicgParams = {PARAMS_JSON % NONCE};</script>"
    info = scrape_page(f"<head>{foreign}</head><body><p>no widget</p>{own}</body>")
    assert info.nonce == NONCE
    assert info.ajax_url == "https://host/blog/wp-admin/admin-ajax.php"
    with pytest.raises(Exception, match="No AI Power chat"):
        scrape_page(f"<head>{foreign}</head><body></body>")


def test_params_in_a_base64_data_script_are_read() -> None:
    script = f"var wpaicgParams = {PARAMS_JSON % NONCE};".encode()
    encoded = base64.b64encode(script).decode()
    html = f'<script defer id="wpaicg-init-js-extra" src="data:text/javascript;base64,{encoded}">'
    info = scrape_page(f"<body>{html}</script></body>")
    assert (info.nonce, info.post_id) == (NONCE, "")


def test_the_widgets_own_nonce_wins_over_the_params() -> None:
    own = f"<script>var wpaicgParams = {PARAMS_JSON % '0123456789'};</script>"
    assert scrape_page(WIDGET + own).nonce == NONCE


def test_assistant_flag_is_read() -> None:
    html = WIDGET.replace(">", ' data-assistant-enabled="true">')
    assert scrape_page(html).assistant is True
    assert scrape_page(WIDGET).assistant is False


@pytest.mark.parametrize(
    ("ajax_url", "page_url", "target"),
    [
        (None, "https://host/blog/chat/?x=1", "https://host/wp-admin/admin-ajax.php"),
        ("https://host/wp/wp-admin/admin-ajax.php", "https://host/chat/",
         "https://host/wp/wp-admin/admin-ajax.php"),
        ("https://other.example/wp-admin/admin-ajax.php", "https://host/chat/",
         "https://host/wp-admin/admin-ajax.php"),  # never another host
    ],
)
def test_where_the_chat_request_goes(ajax_url: str | None, page_url: str, target: str) -> None:
    info = PageInfo(post_id="", nonce=NONCE, ajax_url=ajax_url, page_url=page_url)
    assert info.target == target


# -- the request ------------------------------------------------------------------------


def form_of(prepared: Prepared, **kwargs: str) -> dict[str, str]:
    info = PageInfo(post_id="11", nonce=NONCE, site_url="https://host")
    body = encode_form(info, prepared, client_id="abcdefghij", **kwargs)
    return {name: values[0] for name, values in parse_qs(body.decode(), True).items()}


def test_a_single_message_sends_an_empty_history() -> None:
    form = form_of(prepare_turns([("user", "Hi")]))
    assert (form["message"], form["wpaicg_chat_history"]) == ("Hi", "[]")


@pytest.mark.parametrize("text", ["Hi", 'a <b> & "c" \'d\'', "Ответ\n\tok", " 0 ", "00"])
def test_one_user_message_is_prepared_as_any_conversation_is(text: str) -> None:
    # A blank system message changes nothing, and takes the general path.
    assert prepare_turns([("user", text)]) == prepare_turns([("system", " "), ("user", text)])


def test_earlier_turns_go_into_the_history_the_last_user_turn_into_message() -> None:
    turns = [
        ("system", "Be brief."),
        ("user", 'He said "yes"\\no\n\tok'),
        ("assistant", 'Ответ "2"\nline'),
        ("user", "Next <b>"),
    ]
    form = form_of(prepare_turns(turns))
    assert form["message"] == "Next &lt;b&gt;"
    history = form["wpaicg_chat_history"]
    assert "Ответ" in history  # non-ASCII kept as it is
    assert "\\" not in history  # nothing for the server's backslash deletion to break
    assert json.loads(history) == [
        {"id": 1, "text": "Human: Be brief. He said &quot;yes&quot;no  ok"},
        {"id": 2, "text": "AI: Ответ &quot;2&quot; line"},
    ]


def test_system_text_goes_before_the_message_without_history() -> None:
    prepared = prepare_turns([("system", "Be brief."), ("user", "Hi")])
    assert prepared.message == "Be brief.\n\nHi"
    assert prepared.history == "[]"


def test_a_conversation_not_ending_with_a_user_turn_is_flattened() -> None:
    prepared = prepare_turns([("user", "Hi"), ("assistant", "Hello")])
    assert prepared.flattened
    assert prepared.message.endswith("Assistant:")
    assert prepared.history == "[]"


@pytest.mark.parametrize("text", ["", "   ", "0"])
def test_an_empty_message_is_refused_before_any_io(text: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        prepare_turns([("user", text)])


def test_thread_and_chat_ids_are_sent_when_given() -> None:
    form = form_of(prepare_turns([("user", "Hi")]), thread_id="thread_1", chat_id="42")
    assert (form["thread_id"], form["chat_id"]) == ("thread_1", "42")
    assert "thread_id" not in form_of(prepare_turns([("user", "Hi")]))


# -- answers: PHP warnings --------------------------------------------------------------

WARNING = (
    b"<br />\n<b>Warning</b>:  Undefined variable $wpaicg_chat_history in "
    b"<b>/var/www/wp-content/plugins/gpt3-ai-content-generator/classes/wpaicg_chat.php</b> "
    b"on line <b>942</b><br />\n"
)


def test_php_warnings_before_a_json_answer_are_skipped() -> None:
    body = WARNING + b'{"status":"success","msg":"","data":"Hello","log":false}'
    assert parse_reply(body) == "Hello"
    notice = b"PHP Notice:  Something in a theme on line 3\nDeprecated: old call\n"
    assert parse_reply(notice + b'{"status":"success","data":"Hi"}') == "Hi"


def test_php_warnings_before_and_inside_a_stream_are_skipped() -> None:
    headers_sent = (
        b"<br />\n<b>Warning</b>:  Cannot modify header information - headers already sent "
        b"in <b>x.php</b> on line <b>1</b><br />\n"
    )
    body = WARNING + headers_sent + chunk("Hel") + headers_sent + chunk("lo") + b"data: [DONE]\n\n"
    parser = ReplyParser()
    pieces = [piece for byte in range(len(body)) for piece in parser.feed(body[byte : byte + 1])]
    assert pieces == ["Hel", "lo"]
    assert parser.close() == "Hello"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"data":"Hi"}\x0c\xc2\xa0', "Hi"),  # white space that JSON itself does not take
        (b'{"data":"Hi"} \r\n\t', "Hi"),
        (b'{"data":"Hi"} {}', ResponseError("not JSON")),  # more after the object
        (b'{"data":"\xc3\xa9t\xc3\xa9"}', "\u00e9t\u00e9"),
        (b'\xef\xbb\xbf{"data":"Hi"}', "Hi"),  # a UTF-8 BOM
        (b'{"data":"Hi\xff"}', ResponseError("not valid UTF-8")),
        ('{"data":"Hi"}'.encode("utf-16-le"), ResponseError("not JSON")),  # JSON reads it
        (b'{"data":7}', ResponseError("'data' is not a string")),
        (b'{"status":"success"}  ', ResponseError("'data' field missing")),
    ],
)
def test_a_plain_answer_is_utf8_json_whatever_json_loads_would_take(
    body: bytes, expected: str | ResponseError
) -> None:
    if isinstance(expected, str):
        assert parse_reply(body) == expected
        return
    with pytest.raises(ResponseError, match=str(expected)) as caught:
        parse_reply(body)
    if b"\xff" not in body and not body.startswith(b"{\x00"):
        assert caught.value.body == body.decode().strip()


def test_html_that_is_not_php_noise_is_still_not_json() -> None:
    with pytest.raises(ResponseError, match="not JSON"):
        parse_reply(b"<!DOCTYPE html><html><body>Maintenance</body></html>")


# -- answers: stale nonces ----------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        'The link you followed has expired.</p><p><a href="https://host/">Please try again.</a>',
        "Der Link, dem du gefolgt bist, ist abgelaufen.",
        "Le lien que vous avez suivi a expiré.",
        "-1",
        "",
    ],
)
def test_any_403_that_is_not_cloudflare_is_a_stale_nonce(body: str) -> None:
    with pytest.raises(StaleCredentials) as caught:
        check_status(403, {}, body)
    assert caught.value.if_again is None  # bare text twice: a NonceError
    assert "<a href" not in caught.value.server_message


def test_a_403_html_page_twice_is_reported_as_the_http_error() -> None:
    with pytest.raises(StaleCredentials) as caught:
        check_status(403, {}, "<html><body><h1>Forbidden</h1></body></html>")
    assert isinstance(caught.value.if_again, HTTPStatusError)
    assert not isinstance(caught.value.if_again, NonceError)
    assert caught.value.if_again.status_code == 403


def test_the_expired_link_text_after_notices_as_http_200_is_a_stale_nonce() -> None:
    body = WARNING + b'The link you followed has expired.</p><p><a href="/">Please try again.</a>'
    with pytest.raises(StaleCredentials):
        parse_reply(body)


def test_an_unknown_two_key_error_may_be_a_translated_nonce_failure() -> None:
    body = json.dumps({"status": "error", "msg": "Nonce-Überprüfung fehlgeschlagen"}).encode()
    with pytest.raises(StaleCredentials) as caught:
        parse_reply(body)
    assert caught.value.only_if_renewed
    assert isinstance(caught.value.if_again, ServiceError)


def test_a_known_refusal_is_never_taken_for_a_nonce_failure() -> None:
    body = json.dumps({"status": "error", "msg": "Your message contains prohibited words."})
    with pytest.raises(ServiceError) as caught:
        parse_reply(body.encode())
    assert caught.value.kind == "banned_words"


# -- answers: the plugin's error frames ---------------------------------------------------


def test_error_frames_are_never_reply_text_and_are_reported_once() -> None:
    frames = word_frames("Incorrect API key provided.")
    parser = ReplyParser()
    assert parser.feed(frames + frames) == []  # printed twice, as real sites do
    with pytest.raises(ServiceError) as caught:
        parser.close()
    assert caught.value.server_message == "Incorrect API key provided."
    assert caught.value.kind == "upstream"


def test_error_frames_then_the_old_success_json_are_still_an_error() -> None:
    trailer = b'{"status":"success","msg":"","data":"","log":false}'
    with pytest.raises(ServiceError, match="Model down"):
        parse_reply(word_frames("Model down") + trailer)


def test_an_error_frame_broken_by_a_quote_is_read_raw() -> None:
    frame = b'event: message\ndata: {"choices":[{"delta":{"content":" "gpt-9""}}]}\n\n'
    body = word_frames("The model") + frame
    with pytest.raises(ServiceError, match='The model "gpt-9"'):
        parse_reply(body)


def test_limited_carries_the_words_before_it() -> None:
    body = word_frames("Quota exceeded").replace(
        b'data: {"choices":[{"finish_reason":"stop"}]}\n\n',
        b"event: message\ndata: [LIMITED]\n\n",
    )
    with pytest.raises(ServiceError) as caught:
        parse_reply(body)
    assert caught.value.kind == "limited"
    assert caught.value.server_message == "Quota exceeded"


def test_a_stream_without_done_is_incomplete_and_an_empty_one_an_error() -> None:
    with pytest.raises(ResponseError, match="incomplete"):
        parse_reply(chunk("Hel") + chunk("lo"))
    with pytest.raises(ResponseError, match="empty"):
        parse_reply(b"")


@pytest.mark.parametrize(
    ("flag", "kind"),
    [("ipBanned", "ip_banned"), ("messageFlagged", "banned_words"), ("modflag", "banned_words"),
     ("pineconeError", "upstream"), ("tokenLimitReached", "token_limit")],
)
def test_a_flag_event_stops_the_stream_at_once(flag: str, kind: str) -> None:
    flag_event = b"data: " + json.dumps({"msg": "Nope", flag: True}).encode() + b"\n\n"
    parser = ReplyParser()
    with pytest.raises(ServiceError) as caught:
        parser.feed(flag_event + chunk("a normal stream follows") + b"data: [DONE]\n\n")
    assert caught.value.kind == kind


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        ({"status": "success", "data": "x", "tokenLimitReached": True}, "token_limit"),
        ({"status": "success", "msg": "", "data": "x", "modflag": True}, "banned_words"),
        ({"status": "error", "msg": "Failed to initialize the AI instance.", "data": "x"},
         "upstream"),
    ],
)
def test_an_answer_with_data_and_an_error_is_the_error(
    answer: dict[str, object], kind: str
) -> None:
    with pytest.raises(ServiceError) as caught:
        parse_reply(json.dumps(answer).encode())
    assert caught.value.kind == kind


def test_success_false_is_never_a_reply() -> None:
    with pytest.raises(ServiceError, match="Not allowed"):
        parse_reply(b'{"success":false,"data":"Not allowed"}')


# -- answers: Assistant mode ----------------------------------------------------------------


def delta(text: str) -> bytes:
    value = {"object": "thread.message.delta",
             "delta": {"content": [{"index": 0, "type": "text", "text": {"value": text}}]}}
    return b"event: thread.message.delta\ndata: " + json.dumps(value).encode() + b"\n\n"


def test_an_assistant_stream_is_read_and_its_thread_kept() -> None:
    body = (
        b"event: thread_id\ndata: thread_abc123\n\n"
        + b'event: thread.run.step.delta\ndata: {"x":1}\n\n'
        + delta("Hel")
        + delta("lo")
        + b"event: done\ndata: [DONE]\n\n"
    )
    conversation: Conversation[Prepared] = Conversation(prepare_turns([("user", "Hi")]))
    reader = WpaicgProtocol().reply_reader(PageInfo(post_id="", nonce=NONCE), conversation)
    assert reader.feed(body) == ["Hel", "lo"]
    assert reader.close() == "Hello"
    assert conversation.state == "thread_abc123"


def test_an_assistant_error_is_a_service_error() -> None:
    body = (
        b'event: assistant_error\ndata: {"status":"error","msg":"No such thread"}\n\n'
        b"event: done\ndata: \n\n"
    )
    with pytest.raises(ServiceError, match="No such thread"):
        parse_reply(body)


def test_an_assistant_stream_without_done_is_incomplete() -> None:
    with pytest.raises(ResponseError, match="before done"):
        parse_reply(b"event: thread_id\ndata: thread_1\n\n" + delta("Hel"))


def test_a_plain_assistant_answer_names_its_thread() -> None:
    body = b'{"status":"success","msg":"","data":"Hi","thread_id":"thread_9","log":false}'
    conversation: Conversation[Prepared] = Conversation(prepare_turns([("user", "Hi")]))
    protocol = WpaicgProtocol()
    assert protocol.read_reply(PageInfo(post_id="", nonce=NONCE), conversation, body) == "Hi"
    assert conversation.state == "thread_9"


@pytest.mark.parametrize(
    "text",
    ["Hello! Please answer.", "a b&c=d/e?f#g%h+i~j_k.l-m", "".join(map(chr, range(128))),
     "Привет, мир!", "x\"y'z<>\\\n\t", ""],
)
def test_the_fast_form_quoting_is_quote_plus(text: str) -> None:
    from urllib.parse import quote_plus

    from chatgpt4o.protocols.wpaicg import _quote_form

    assert _quote_form(text) == quote_plus(text)


def test_a_bot_id_picks_its_widget() -> None:
    from chatgpt4o.protocols.wpaicg import PageScraper

    second = WIDGET.replace('data-post-id="11"', 'data-post-id="12" data-bot-id="7"').replace(
        NONCE, "0123456789"
    )
    html = (WIDGET + second).encode()
    for bot, nonce in ((None, NONCE), ("7", "0123456789")):
        scraper = PageScraper(bot=bot)
        scraper.feed(html)
        info = scraper.result()
        assert info is not None
        assert info.nonce == nonce
    scraper = PageScraper(bot="9")
    scraper.feed(html)
    assert scraper.result() is None  # no such bot: as if the chat were not there
