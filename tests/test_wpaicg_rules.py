"""What a client of AI Power 1.8.79-2.2 must do, rule by rule (docs/protocol.md §1.4 lists
them), each checked end to end against the emulator in the plugin's own behaviour."""

from __future__ import annotations

import json

import pytest

from chatgpt4o import (
    Chatgpt4o,
    NonceError,
    ResponseError,
    ServiceError,
)
from chatgpt4o.testing import Fault, SiteEmulator

from .conftest import USER_HELLO, Site

TURNS = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Again"},
]


async def collect(site: Site, messages: list[dict[str, str]]) -> list[str]:
    return [piece async for piece in site.create_async_generator("", messages)]


async def collect_into(got: list[str], site: Site, messages: list[dict[str, str]]) -> None:
    """The pieces of a stream that may fail, kept as they come."""
    async for piece in site.create_async_generator("", messages):
        got.append(piece)


# -- the page --------------------------------------------------------------------------------


async def test_rule_01_first_widget_and_its_attributes(site: Site, emulator: SiteEmulator) -> None:
    emulator.page_variant = "two_widgets"
    await site.create_async("", USER_HELLO)
    assert emulator.requests[-1].form["post_id"] == "11"  # the first widget's
    emulator.plugin_version, emulator.assistant = "2.2", True
    site.reset_cache()
    await site.create_async("", USER_HELLO)
    assert site._site.credentials.assistant is True


async def test_rule_02_an_empty_post_id_is_sent_empty(site: Site, emulator: SiteEmulator) -> None:
    emulator.page_variant = "empty_post_id"
    assert await site.create_async("", USER_HELLO)
    assert emulator.requests[-1].form["post_id"] == ""


async def test_rule_02_the_widgets_lt_bug_is_read_as_the_number(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.plugin_version, emulator.widget = "2.2", "widget"  # prints data-post-id="<11"
    await site.create_async("", USER_HELLO)
    form = emulator.requests[-1].form
    assert (form["post_id"], form["action"]) == ("11", "wpaicg_chatbox_message")


@pytest.mark.parametrize("params_style", ["inline", "cdata", "base64"])
async def test_rule_03_params_come_only_from_wpaicgParams(
    site: Site, emulator: SiteEmulator, params_style: str
) -> None:
    emulator.page_variant = "params_only"  # no widget: the nonce must come from the params
    emulator.params_style = params_style
    emulator.foreign_params = True  # a theme's object with other keys, earlier on the page
    assert await site.create_async("", USER_HELLO)
    post = emulator.requests[-1]
    assert post.form["_wpnonce"] == emulator.current_nonce()
    assert post.path == "/wp-admin/admin-ajax.php"


async def test_rule_04_without_params_the_post_goes_to_the_page_origin(
    emulator: SiteEmulator,
) -> None:
    nonce = emulator.current_nonce()
    emulator.fail_next(
        Fault.page(f'<html><body><div class="wpaicg-chat-shortcode" data-nonce="{nonce}" '
                   'data-post-id="11"></div></body></html>')
    )
    site = Chatgpt4o.for_site(emulator.url + "/index.php")
    site.reset_cache()
    assert await site.create_async("", USER_HELLO)
    assert emulator.requests[-1].path == "/wp-admin/admin-ajax.php"


# -- the request -------------------------------------------------------------------------------


async def test_rule_05_the_history_field_is_always_sent(site: Site, emulator: SiteEmulator) -> None:
    emulator.php_warnings = "unbuffered"  # the plugin warns when the field is missing
    assert await site.create_async("", USER_HELLO)
    assert emulator.requests[-1].form["wpaicg_chat_history"] == "[]"


async def test_rule_06_the_model_sees_the_conversation_as_turns(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.plugin_version = "1.8.85"  # an old release that collapses a message's lines
    reply = await site.create_async("", TURNS)
    assert reply.endswith("(the model saw 2 earlier messages)")
    seen = emulator.model_calls[-1]
    assert [message["role"] for message in seen] == ["user", "user", "assistant", "user"]
    assert seen[1]["content"] == "Be brief. Hi"
    assert seen[2]["content"] == "Hello!"
    assert seen[3]["content"] == "Again"


async def test_rule_06_quotes_backslashes_and_line_breaks_survive_in_the_history(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.plugin_version = "2.2"
    turns = [
        {"role": "user", "content": 'Say "hi"\nplease \\ now'},
        {"role": "assistant", "content": 'I said "hi".\nDone.'},
        {"role": "user", "content": "Thanks"},
    ]
    await site.create_async("", turns)
    seen = emulator.model_calls[-1]
    assert len(seen) == 4  # nothing dropped by the server's backslash deletion
    assert "please" in seen[1]["content"]
    assert "hi" in seen[2]["content"]


async def test_rule_07_an_assistant_thread_is_continued_by_the_conversation(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.plugin_version, emulator.assistant = "2.2", True
    first = [{"role": "user", "content": "My name is Ann."}]
    reply = await site.create_async("", first)
    thread = emulator.requests[-1].thread_id
    assert thread
    assert "thread_id" not in emulator.requests[-1].form  # a new conversation sends none
    second = [*first, {"role": "assistant", "content": reply},
              {"role": "user", "content": "Who am I?"}]
    await site.create_async("", second)
    assert emulator.requests[-1].form["thread_id"] == thread
    assert len(emulator.threads[thread]) >= 3  # the thread on the server grew
    await site.create_async("", [{"role": "user", "content": "Unrelated"}])
    assert "thread_id" not in emulator.requests[-1].form


async def test_rule_08_browser_parity(site: Site, emulator: SiteEmulator) -> None:
    emulator.bot_id = 5
    emulator.stream = True
    await collect(site, [{"role": "user", "content": "Is 1 < 2 & \"so\"?"}])
    post = emulator.requests[-1]
    assert post.form["message"] == "Is 1 &lt; 2 &amp; &quot;so&quot;?"
    assert post.form["chatbot_identity"] == "custom_bot_5"
    assert 1 <= int(post.form["chat_id"]) <= 100_000
    assert "x-requested-with" not in {name.lower() for name in post.headers}


# -- the answers ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["buffered", "unbuffered"])
@pytest.mark.parametrize("stream", [False, True])
async def test_rule_09_php_warnings_before_the_answer(
    site: Site, emulator: SiteEmulator, mode: str, stream: bool
) -> None:
    emulator.php_warnings, emulator.other_notices, emulator.stream = mode, True, stream
    pieces = await collect(site, USER_HELLO)
    assert "".join(pieces).endswith("You said: Привет!")


@pytest.mark.parametrize("language", ["en", "de"])
async def test_rule_10_a_stale_nonce_is_recovered_in_any_language(
    site: Site, emulator: SiteEmulator, language: str
) -> None:
    emulator.language = language
    await site.create_async("", USER_HELLO)
    emulator.fail_next(Fault.stale_nonce())
    assert await site.create_async("", USER_HELLO)
    assert emulator.page_loads == 2


async def test_rule_10_a_german_sites_twice_rejected_nonce_is_a_nonce_error(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.language = "de"
    emulator.fail_next(Fault.stale_nonce(), times=2)
    with pytest.raises(NonceError, match="Der Link"):
        await site.create_async("", USER_HELLO)
    assert site._nonce is None  # never keep a nonce the site rejected


async def test_rule_10_old_releases_translated_json_nonce_failure(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.plugin_version, emulator.language = "1.8.90", "de"
    await site.create_async("", USER_HELLO)
    emulator.rotate_nonce()  # the cached nonce is dead; the page gives a new one
    emulator.rotate_nonce()
    assert await site.create_async("", USER_HELLO)
    assert emulator.page_loads == 2


async def test_rule_10_a_translated_refusal_is_not_retried_when_the_nonce_is_fresh(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.plugin_version, emulator.language = "1.8.90", "de"
    emulator.banned_words = {"verboten"}
    with pytest.raises(ServiceError, match="verbotene"):
        await site.create_async("", [{"role": "user", "content": "das ist verboten"}])
    # it might have been a nonce failure: the page was loaded again, gave the same nonce,
    # so the refusal is reported without sending the message twice
    assert (emulator.page_loads, emulator.posts) == (2, 1)


@pytest.mark.parametrize("version", ["1.8.84", "2.2"])
async def test_rule_11_error_frames_are_an_error_never_reply_text(
    site: Site, emulator: SiteEmulator, version: str
) -> None:
    emulator.plugin_version, emulator.stream = version, True
    emulator.fail_next(Fault.upstream_error("Incorrect API key provided."))
    got: list[str] = []
    with pytest.raises(ServiceError) as caught:
        await collect_into(got, site, USER_HELLO)
    assert got == []
    assert caught.value.server_message == "Incorrect API key provided."  # once, not twice
    assert caught.value.kind == "upstream"
    emulator.fail_next(Fault.upstream_error("Incorrect API key provided."))
    with pytest.raises(ServiceError, match="Incorrect API key"):
        await site.create_async("", USER_HELLO)


async def test_rule_11_a_frame_broken_by_a_quote(site: Site, emulator: SiteEmulator) -> None:
    emulator.stream = True
    emulator.fail_next(Fault.upstream_error('The model "gpt-9" does not exist'))
    with pytest.raises(ServiceError, match='"gpt-9"'):
        await site.create_async("", USER_HELLO)


async def test_rule_12_limited_carries_the_words_before_it(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.stream = True
    emulator.fail_next(Fault.stream_limited(after_chunks=2, msg="Request timed out"))
    with pytest.raises(ServiceError) as caught:
        await collect(site, USER_HELLO)
    assert caught.value.kind == "limited"
    assert "Request timed out" in caught.value.server_message
    assert "[LIMITED]" not in caught.value.server_message


@pytest.mark.parametrize("version", ["1.8.84", "1.8.85", "2.2"])
async def test_rule_13_done_ends_the_reply_and_a_cut_stream_is_an_error(
    site: Site, emulator: SiteEmulator, version: str
) -> None:
    emulator.plugin_version, emulator.stream = version, True
    whole = "".join(await collect(site, USER_HELLO))
    assert whole.endswith("You said: Привет!")  # whatever follows [DONE] is not added
    emulator.fail_next(Fault.stream_no_done(after_chunks=2))
    with pytest.raises(ResponseError, match="incomplete"):
        await collect(site, USER_HELLO)


async def test_rule_13_an_empty_stream_body_is_an_error(site: Site, emulator: SiteEmulator) -> None:
    emulator.plugin_version, emulator.stream = "2.2", True
    emulator.fail_next(Fault.upstream_unreachable())
    with pytest.raises(ResponseError, match="empty"):
        await collect(site, USER_HELLO)


@pytest.mark.parametrize(
    ("flag", "kind"),
    [
        ("tokenLimitReached", "token_limit"),
        ("ipBanned", "ip_banned"),
        ("messageFlagged", "banned_words"),
        ("modflag", "banned_words"),
        ("pineconeError", "upstream"),
    ],
)
async def test_rule_14_flag_events_are_typed_errors(
    site: Site, emulator: SiteEmulator, flag: str, kind: str
) -> None:
    emulator.stream = True
    emulator.fail_next(Fault.stream_error_event(flag))
    got: list[str] = []
    with pytest.raises(ServiceError) as caught:
        await collect_into(got, site, USER_HELLO)
    assert caught.value.kind == kind
    assert got == []  # nothing of the normal stream that may follow the flag


async def test_rule_14_an_upstream_error_object_is_a_service_error(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.stream = True
    emulator.fail_next(Fault.stream_error_object("Model overloaded"))
    with pytest.raises(ServiceError, match="Model overloaded"):
        await collect(site, USER_HELLO)


async def test_rule_15_assistant_streams(site: Site, emulator: SiteEmulator) -> None:
    emulator.plugin_version, emulator.assistant, emulator.stream = "2.2", True, True
    first = [{"role": "user", "content": "Hello"}]
    pieces = await collect(site, first)
    assert len(pieces) > 1
    thread = emulator.requests[-1].thread_id
    second = [*first, {"role": "assistant", "content": "".join(pieces)},
              {"role": "user", "content": "More"}]
    await collect(site, second)
    assert emulator.requests[-1].form["thread_id"] == thread
    emulator.fail_next(Fault.upstream_error("Run failed"))
    with pytest.raises(ServiceError, match="Run failed"):
        await collect(site, [{"role": "user", "content": "x"}])
    emulator.fail_next(Fault.stream_no_done(after_chunks=2))
    with pytest.raises(ResponseError, match="incomplete"):
        await collect(site, [{"role": "user", "content": "y"}])


async def test_rule_16_json_errors_are_never_replies(site: Site, emulator: SiteEmulator) -> None:
    emulator.fail_next(
        Fault.status(200, json.dumps({"success": False, "data": "Nope"}),
                     content_type="application/json")
    )
    with pytest.raises(ServiceError, match="Nope"):
        await site.create_async("", USER_HELLO)
    emulator.fail_next(Fault.ai_unavailable())
    with pytest.raises(ServiceError, match="Unable to initialize"):
        await site.create_async("", USER_HELLO)


async def test_rule_07_an_assistant_without_a_known_thread_gets_the_whole_conversation(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.plugin_version, emulator.assistant = "2.2", True
    await site.create_async("", TURNS)  # earlier turns this process never had
    post = emulator.requests[-1]
    assert "thread_id" not in post.form
    assert post.form["wpaicg_chat_history"] == "[]"
    assert "Be brief." in post.form["message"]
    assert "Hello!" in post.form["message"]
    assert post.form["message"].endswith("Assistant:")


async def test_rule_07_a_thread_the_site_lost_is_forgotten(
    site: Site, emulator: SiteEmulator
) -> None:
    emulator.plugin_version, emulator.assistant = "2.2", True
    first = [{"role": "user", "content": "Hi"}]
    reply = await site.create_async("", first)
    second = [*first, {"role": "assistant", "content": reply}, {"role": "user", "content": "More"}]
    emulator.threads.clear()  # the site forgot its threads
    with pytest.raises(ServiceError):
        await site.create_async("", second)
    assert await site.create_async("", second)  # a new thread, with the conversation folded
    assert "thread_id" not in emulator.requests[-1].form


async def test_rule_08_the_form_url_is_the_widgets_data_url(
    site: Site, emulator: SiteEmulator
) -> None:
    await site.create_async("", USER_HELLO)
    data_url = site._site.credentials.data_url
    assert data_url is not None
    assert data_url.startswith(emulator.url)  # home_url() of the page, as WordPress prints it
    assert emulator.requests[-1].form["url"] == data_url
