"""The AIPKit and AI Engine protocol modules on bytes alone: pages, requests and answers
(docs/protocol.md §8 and §9). End to end against the emulators: tests/test_aiengine.py
and tests/test_aipkit.py."""

from __future__ import annotations

import html
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from chatgpt4o import PluginUnavailableError, RateLimitError, ResponseError, ServiceError
from chatgpt4o._exceptions import StaleCredentials
from chatgpt4o.protocols.aiengine import (
    AIEngineInfo,
    AIEngineProtocol,
    AIEngineScraper,
    check_aiengine_status,
    prepare_aiengine,
)
from chatgpt4o.protocols.aipkit import (
    AipkitInfo,
    AipkitProtocol,
    AipkitReplyReader,
    AipkitScraper,
    check_aipkit_status,
    prepare_aipkit,
)
from chatgpt4o.protocols.base import Answer, Conversation

NONCE = "3f2a9c1b7e"


def aipkit_tag(bot: int, *, popup: bool = False, nonce: str = NONCE) -> str:
    config = {"botId": bot, "ajaxUrl": "https://example.com/wp-admin/admin-ajax.php",
              "nonce": nonce, "postId": 45, "theme": "light", "popupEnabled": popup,
              "greeting": "Hi <there> & 'you'"}
    encoded = json.dumps(config).replace("/", "\\/").replace("<", "\\u003C").replace(
        "'", "\\u0027").replace("&", "\\u0026")
    attribute = html.escape(encoded, quote=True).replace("&#x27;", "&#039;")
    kind = "aipkit_popup_wrapper" if popup else "aipkit_chat_container"
    return (f'<div class="{kind}" id="{kind}_{bot}" data-bot-id="{bot}" '
            f"data-config='{attribute}'>")


def aipkit_page(*tags: str) -> bytes:
    script = ("<script src='https://example.com/wp-content/plugins/gpt3-ai-content-generator/"
              "dist/js/public-main.bundle.js?ver=2.4.71' id='aipkit-public-main-js'></script>")
    return f"<html><body>{''.join(tags)}{script}</body></html>".encode()


def scrape(page: bytes, bot: str | None = None) -> AipkitInfo | None:
    scraper = AipkitScraper(bot=bot)
    scraper.feed(page)
    return scraper.result(page_url="https://example.com/chat/", site_url="https://example.com")


# -- AIPKit ------------------------------------------------------------------------------


def test_aipkit_page_inline_popup_and_bot_choice() -> None:
    page = aipkit_page(aipkit_tag(123), aipkit_tag(456, popup=True, nonce="0123456789"))
    info = scrape(page)
    assert info is not None
    assert (info.bot_id, info.nonce, info.post_id, info.version) == ("123", NONCE, 45, "2.4.71")
    assert info.ajax_url == "https://example.com/wp-admin/admin-ajax.php"
    other = scrape(page, bot="456")
    assert other is not None
    assert other.nonce == "0123456789"
    assert scrape(page, bot="999") is None
    assert scrape(b"<html><p>nothing</p></html>") is None


def aipkit_credentials(**changes: object) -> AipkitInfo:
    info = AipkitInfo(bot_id="123", nonce=NONCE,
                      ajax_url="https://example.com/wp-admin/admin-ajax.php", post_id=45,
                      version="2.4.71", page_url="https://example.com/chat/")
    from dataclasses import replace

    return replace(info, **changes)  # type: ignore[arg-type]


def test_aipkit_two_steps_and_what_they_carry() -> None:
    protocol = AipkitProtocol()
    conversation = Conversation(prepare_aipkit([("system", "Be brief."), ("user", "Hi")]))
    turn = protocol.turn(aipkit_credentials(), conversation, visitor="guest-1", stream=True)
    cache = next(turn)
    assert cache.method == "POST"
    assert "origin" not in {name.lower() for name in cache.headers}  # never a foreign Origin
    fields = parse_qs((cache.content or b"").decode())
    assert fields["action"] == ["aipkit_cache_sse_message"]
    assert fields["_ajax_nonce"] == [NONCE]
    assert "Be brief." in fields["message"][0]  # a new conversation: all of it, folded
    answer = Answer(200, {}, b'{"success":true,"data":{"cache_key":"aipkit_sse_abc"}}')
    with pytest.raises(StopIteration) as done:
        turn.send(answer)
    stream = done.value.value
    query = parse_qs(urlsplit(stream.url).query)
    assert stream.method == "GET"
    assert query["action"] == ["aipkit_frontend_chat_stream"]
    assert query["cache_key"] == ["aipkit_sse_abc"]
    assert query["session_id"] == ["guest-1"]
    assert query["conversation_uuid"] == [conversation.state]
    assert query["post_id"] == ["45"]


def test_aipkit_a_continued_conversation_sends_only_the_new_message() -> None:
    protocol = AipkitProtocol()
    turns = [("user", "Hi"), ("assistant", "Hello"), ("user", "More")]
    conversation = Conversation(prepare_aipkit(turns), recalled="conv1")
    cache = next(protocol.turn(aipkit_credentials(), conversation, visitor="g", stream=True))
    assert parse_qs((cache.content or b"").decode())["message"] == ["More"]
    assert conversation.state == "conv1"


def test_aipkit_json_action_for_a_bot_that_does_not_stream() -> None:
    protocol = AipkitProtocol()
    conversation = Conversation(prepare_aipkit([("user", "Hi")]))
    turn = protocol.turn(aipkit_credentials(streams=False), conversation, visitor="g",
                         stream=False)
    with pytest.raises(StopIteration) as done:
        next(turn)
    fields = parse_qs((done.value.value.content or b"").decode())
    assert fields["action"] == ["aipkit_frontend_chat_message"]
    reader = AipkitReplyReader()
    reader.feed(b'{"success":true,"data":{"reply":"Hello","message_id":"m1"}}')
    assert reader.close() == "Hello"


def sse(*events: tuple[str | None, object]) -> bytes:
    out = b": " + b" " * 4096 + b"\n\n"
    for name, data in events:
        if name is not None:
            out += f"event: {name}\n".encode()
        out += b"data: " + json.dumps(data).encode() + b"\n\n"
    return out


def test_aipkit_stream_reads_deltas_to_done() -> None:
    body = sse(("message_start", {"message_id": "m"}), (None, {"delta": ""}),
               (None, {"delta": "Hel"}), ("status", {"type": "x"}), (None, {"delta": "lo"}),
               ("done", {"finished": True}))
    reader = AipkitReplyReader()
    pieces = [piece for i in range(0, len(body), 7) for piece in reader.feed(body[i:i + 7])]
    assert pieces == ["Hel", "lo"]
    assert reader.close() == "Hello"


@pytest.mark.parametrize(
    ("text", "extra", "error", "kind"),
    [
        ("Security check failed. Please refresh the page and try again.", {}, StaleCredentials,
         None),
        ("You have reached your quota for this period.", {"quota_notice": {}}, ServiceError,
         "token_limit"),
        ("API Error: model overloaded", {}, ServiceError, "upstream"),
        ("Sorry, your message could not be sent as it contains prohibited words.", {},
         ServiceError, "banned_words"),
    ],
)
def test_aipkit_error_events(text: str, extra: dict[str, object], error: type[Exception],
                             kind: str | None) -> None:
    reader = AipkitReplyReader()
    with pytest.raises(error) as caught:
        reader.feed(sse((None, {"delta": "x"}), ("error", {"error": text, **extra})))
    if kind is not None:
        assert caught.value.kind == kind  # type: ignore[attr-defined]


def test_aipkit_stream_without_done_is_incomplete() -> None:
    reader = AipkitReplyReader()
    reader.feed(sse((None, {"delta": "Hel"})))
    with pytest.raises(ResponseError, match="incomplete"):
        reader.close()


def test_aipkit_statuses() -> None:
    with pytest.raises(PluginUnavailableError):
        check_aipkit_status(400, {}, "0")
    nonce_failure = json.dumps({"success": False, "data": {
        "message": "Your session has expired", "code": "nonce_failure_cache_sse"}})
    with pytest.raises(StaleCredentials):
        check_aipkit_status(403, {}, nonce_failure)
    embed = json.dumps({"success": False, "data": {"message": "Embed feature is not "
                        "available with your current plan.", "code": "embed_not_available"}})
    with pytest.raises(ServiceError, match="Embed"):
        check_aipkit_status(403, {}, embed)


def test_aipkit_nonce_refresh() -> None:
    protocol = AipkitProtocol()
    stale = aipkit_credentials()
    request = protocol.refresh(stale)
    assert request is not None
    assert parse_qs((request.content or b"").decode())["action"] == [
        "aipkit_get_frontend_chat_nonce"]
    fresh = protocol.read_completion(
        stale, Answer(200, {}, b'{"success":true,"data":{"nonce":"0123456789"}}'))
    assert fresh is not None
    assert fresh.nonce == "0123456789"
    assert protocol.read_completion(stale, Answer(400, {}, b"0")) is None  # older: the page
    assert protocol.refresh(aipkit_credentials(version="2.3.20")) is None


# -- AI Engine ---------------------------------------------------------------------------


def aiengine_page(rest_url: str = "https://example.com/wp-json", nonce: object = None,
                  bot: str = "default") -> bytes:
    system = {"botId": bot, "customId": None, "userData": None, "sessionId": None,
              "restNonce": nonce, "contextId": 42, "restUrl": rest_url, "stream": True}
    params = {"aiName": "AI: ", "textInputMaxLength": 20, "startSentence": "Hi! How can I help?"}

    def attribute(value: object) -> str:
        return html.escape(json.dumps(value).replace("/", "\\/"), quote=True).replace(
            "&#x27;", "&#039;")

    return (f"<div class='mwai-chatbot-container' data-params='{attribute(params)}' "
            f"data-system='{attribute(system)}' data-theme='{{}}'></div>").encode()


def aiengine_credentials(page: bytes, bot: str | None = None) -> AIEngineInfo | None:
    scraper = AIEngineScraper(bot=bot)
    scraper.feed(page)
    return scraper.result(page_url="https://example.com/chat/", site_url="https://example.com")


def test_aiengine_page_and_session() -> None:
    info = aiengine_credentials(aiengine_page())
    assert info is not None
    assert (info.bot_id, info.context_id, info.max_length, info.nonce) == ("default", 42, 20, None)
    assert info.route("/mwai-ui/v1/chats/submit") == (
        "https://example.com/wp-json/mwai-ui/v1/chats/submit")
    protocol = AIEngineProtocol()
    start = protocol.complete(info)
    assert start is not None
    assert start.url == "https://example.com/wp-json/mwai/v1/start_session"
    assert "x-wp-nonce" not in start.headers
    done = protocol.read_completion(info, Answer(200, {}, json.dumps(
        {"success": True, "sessionId": "s1", "restNonce": "a1b2c3d4e5"}).encode()))
    assert done is not None
    assert (done.nonce, done.session) == ("a1b2c3d4e5", "s1")
    assert protocol.complete(done) is None


def test_aiengine_plain_permalinks() -> None:
    page = aiengine_page(rest_url="https://example.com/index.php?rest_route=")
    info = aiengine_credentials(page)
    assert info is not None
    assert info.route("/mwai-ui/v1/chats/submit") == (
        "https://example.com/index.php?rest_route=/mwai-ui/v1/chats/submit")


def test_aiengine_request_history_and_length_limit() -> None:
    info = aiengine_credentials(aiengine_page(nonce="a1b2c3d4e5"))
    assert info is not None
    protocol = AIEngineProtocol()
    turns = [("system", "Brief."), ("user", "Hi"), ("assistant", "Hello"), ("user", "Again")]
    conversation = Conversation(prepare_aiengine(turns))
    with pytest.raises(StopIteration) as done:
        next(protocol.turn(info, conversation, visitor="v", stream=True))
    request = done.value.value
    assert request.headers["x-wp-nonce"] == "a1b2c3d4e5"
    body = json.loads(request.content or b"")
    assert body["newMessage"] == "Again"
    assert [(m["role"], m["content"]) for m in body["messages"]] == [
        ("assistant", "Hi! How can I help?"), ("user", "Brief.\n\nHi"), ("assistant", "Hello")]
    assert body["stream"] is True
    assert body["chatId"] == conversation.state
    long = Conversation(prepare_aiengine([("user", "é" * 21)]))
    with pytest.raises(ValueError, match="at most 20"):
        next(protocol.turn(info, long, visitor="v", stream=False))
    fits = Conversation(prepare_aiengine([("user", "é" * 20)]))  # characters, not bytes
    with pytest.raises(StopIteration):
        next(protocol.turn(info, fits, visitor="v", stream=False))


def events(*items: dict[str, object]) -> bytes:
    return b"".join(b"data: " + json.dumps(item).encode() + b"\n\n" for item in items)


def test_aiengine_stream_the_end_reply_wins_and_new_token_is_kept() -> None:
    info = aiengine_credentials(aiengine_page(nonce="a1b2c3d4e5"))
    assert info is not None
    conversation: Conversation[object] = Conversation(prepare_aiengine([("user", "Hi")]))
    reader = AIEngineProtocol().reply_reader(info, conversation)  # type: ignore[arg-type]
    final = {"success": True, "reply": "Hello world", "new_token": "ffffffffff"}
    body = events({"type": "live", "data": "Hello"},
                  {"type": "live", "subtype": "status", "data": "thinking"},
                  {"type": "live", "data": " wor"},
                  {"type": "end", "data": json.dumps(final)})
    assert reader.feed(body) == ["Hello", " wor"]
    assert reader.close() == "Hello world"
    assert isinstance(conversation.credentials, AIEngineInfo)
    assert conversation.credentials.nonce == "ffffffffff"


def test_aiengine_errors() -> None:
    info = aiengine_credentials(aiengine_page(nonce="a1b2c3d4e5"))
    assert info is not None
    reader = AIEngineProtocol().reply_reader(info, Conversation(None))  # type: ignore[arg-type]
    with pytest.raises(ServiceError) as caught:
        reader.feed(events({"type": "error", "data": "Limit!", "overLimit": True}))
    assert caught.value.kind == "token_limit"
    cut = AIEngineProtocol().reply_reader(info, Conversation(None))  # type: ignore[arg-type]
    cut.feed(events({"type": "live", "data": "Hel"}))
    with pytest.raises(ResponseError, match="incomplete"):
        cut.close()
    with pytest.raises(StaleCredentials):
        check_aiengine_status(403, {}, '{"code":"rest_cookie_invalid_nonce","message":"x"}')
    with pytest.raises(StaleCredentials):
        check_aiengine_status(401, {}, '{"code":"rest_forbidden","message":"x"}')
    with pytest.raises(PluginUnavailableError, match="Chatbots module"):
        check_aiengine_status(404, {}, '{"code":"rest_no_route","message":"x"}')
    with pytest.raises(RateLimitError) as limited:
        check_aiengine_status(429, {}, '{"success":false,"message":"Come back later",'
                                       '"overLimit":true}')
    assert limited.value.retryable is False
    with pytest.raises(ServiceError, match="Oops"):
        check_aiengine_status(500, {}, '{"success":false,"message":"Oops!","overLimit":false}')


def test_aipkit_an_event_split_across_chunks_keeps_its_name() -> None:
    reader = AipkitReplyReader()
    assert reader.feed(b"event: error\nid: err-1\n") == []
    with pytest.raises(StaleCredentials):
        reader.feed(b'data: {"error":"Security check failed. Please refresh the page."}\n\n')


def test_aipkit_ajax_url_on_another_host_is_not_used() -> None:
    page = aipkit_page(aipkit_tag(1)).replace(b"https:\\/\\/example.com", b"https:\\/\\/evil.test")
    info = scrape(page)
    assert info is not None
    assert info.ajax_url == "https://example.com/wp-admin/admin-ajax.php"


def test_aiengine_rest_url_on_another_host_is_not_used() -> None:
    info = aiengine_credentials(aiengine_page(rest_url="https://evil.test/wp-json"))
    assert info is not None
    assert info.rest_url == "https://example.com/wp-json"


def test_aiengine_renewal_on_a_site_without_sessions_reads_the_page() -> None:
    info = aiengine_credentials(aiengine_page(nonce="a1b2c3d4e5"))
    assert info is not None
    no_route = Answer(404, {}, b'{"code":"rest_no_route","message":"x","data":{"status":404}}')
    assert AIEngineProtocol().read_completion(info, no_route) is None
    fresh = aiengine_credentials(aiengine_page())
    assert fresh is not None
    completed = AIEngineProtocol().read_completion(fresh, no_route)
    assert completed is not None
    assert completed.nonce == ""  # before 2.4.4: no nonce header at all


def test_the_ai_power_composite_judges_aipkit_answers_by_aipkit_rules() -> None:
    from chatgpt4o.protocols.aipower import AIPowerProtocol

    body = json.dumps({"success": False, "data": {"message": "You have reached your quota "
                       "for this period.", "code": "quota"}})
    with pytest.raises(ServiceError) as caught:
        AIPowerProtocol().check_answer(429, {}, body, credentials=aipkit_credentials())
    assert caught.value.kind == "token_limit"
    with pytest.raises(StaleCredentials) as gone:  # the JSON action removed (2.4.1)
        AIPowerProtocol().check_answer(400, {}, "0", credentials=aipkit_credentials())
    assert gone.value.reload_page


def test_the_ai_power_composite_hands_each_kind_of_credentials_to_its_dialect() -> None:
    from chatgpt4o.protocols.aipower import AIPowerProtocol
    from chatgpt4o.protocols.wpaicg import PageInfo

    composite = AIPowerProtocol()
    legacy = PageInfo(post_id="11", nonce=NONCE, site_url="https://example.com")
    as_legacy, as_aipkit = composite.dialect(legacy), composite.dialect(aipkit_credentials())
    assert as_legacy is composite.dialect(legacy) is not as_aipkit
    assert as_legacy.dialect(aipkit_credentials()) is as_aipkit  # the credentials decide
    assert as_legacy.usable(legacy)
    assert not as_legacy.usable(PageInfo(post_id="", nonce=""))
    for protocol in (composite, as_legacy):  # the same request, and the same rules
        turns = protocol.prepare([("user", "Hi")])
        turn = protocol.turn(legacy, Conversation(turns), visitor="ab-cd-ef-gh-ij", stream=False)
        with pytest.raises(StopIteration) as done:
            next(turn)
        request = done.value.value
        assert b"wpaicg_chat_client_id=abcdefghij" in request.content
        with pytest.raises(StaleCredentials) as gone:  # no legacy action: 2.3+ now
            protocol.check_answer(400, {}, "0", credentials=legacy)
        assert gone.value.reload_page
        conversation = Conversation(turns)
        body = b'{"status":"success","data":"Hi","thread_id":"thread_9"}'
        assert protocol.read_reply(legacy, conversation, body) == "Hi"
        assert conversation.state == ("wpaicg", "thread_9")
