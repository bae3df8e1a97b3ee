"""`chatgpt4o check`: each plugin's emulator, the steps and their times, the one harmless
request (it never reaches the model: the emulators' records say so), the exit codes of
the chat, text and JSON, and no secret in any output."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from chatgpt4o import _check
from chatgpt4o._check import check_site
from chatgpt4o._cli import main as cli_main
from chatgpt4o.testing import EmulatorThread, Fault, MockTransport, Request, Response
from chatgpt4o.testing._aiengine_faults import EngineFault
from chatgpt4o.testing._aipkit_faults import AipkitFault
from chatgpt4o.testing._records import RecordedRequest

from .proxy import running_proxy

SECRET_COOKIE = "cookie-secret-7f3a91"


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli_main(["check", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def check_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any]:
    code, out, _ = run([*argv, "--json"], capsys)
    assert out.count("\n") == 1, out  # one JSON object, on one line
    return code, json.loads(out)


def posts(emulator: Any) -> list[RecordedRequest]:
    return [r for r in emulator.requests if r.method == "POST"]


@pytest.fixture(params=["wpaicg", "aipkit", "aiengine"])
def any_plugin(request: pytest.FixtureRequest) -> Iterator[Any]:
    with EmulatorThread(plugin=request.param) as emulator:
        yield emulator


# -- a site that works -------------------------------------------------------------------


def test_each_plugin_is_found_and_its_nonce_accepted(
    any_plugin: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    code, report = check_json([any_plugin.url + "/"], capsys)
    assert code == 0
    assert report["ok"] is True
    assert report["nonce_check"] == "accepted"
    assert report["error"] is None
    names = [step["step"] for step in report["steps"]]
    expected = {
        "SiteEmulator": ("AI Power <= 2.2", "Chatgpt4o"),
        "AipkitEmulator": ("AIPKit", "Chatgpt4o"),
        "AIEngineEmulator": ("AI Engine", "AIEngine"),
    }[type(any_plugin).__name__]
    assert expected[0] in report["plugin"]
    assert report["provider"] == expected[1]
    assert names[:2] == ["page", "plugin"]
    assert names[-1] == "nonce"
    assert all(step["ok"] and step["seconds"] >= 0 for step in report["steps"])
    assert report["page"]["streams"] in (True, False)
    assert report["page"]["endpoint"].startswith(any_plugin.url)


def test_the_harmless_request_never_reaches_the_model(
    any_plugin: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run([any_plugin.url + "/"], capsys)[0] == 0
    assert any_plugin.model_calls == []
    probe = posts(any_plugin)[-1]
    name = type(any_plugin).__name__
    if name == "AIEngineEmulator":
        assert probe.path.endswith("/chats/submit")
        assert json.loads(probe.raw_body)["newMessage"] == ""
    else:
        assert probe.form["message"] == ""
        if name == "AipkitEmulator":
            assert probe.form["action"] == "aipkit_cache_sse_message"
    # the page once, the probe once (and AI Engine's session): no chat turn
    page_loads = [r for r in any_plugin.requests if r.method == "GET"]
    assert len(page_loads) == 1
    assert len(posts(any_plugin)) == (2 if name == "AIEngineEmulator" else 1)


def test_the_text_report(capsys: pytest.CaptureFixture[str]) -> None:
    with EmulatorThread(plugin="aipkit") as emulator:
        code, out, err = run([emulator.url + "/"], capsys)
    assert code == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == f"chatgpt4o check {emulator.url}/"
    assert lines[1].split()[0] == "page"
    assert lines[1].split()[2] == "s"
    assert lines[2].split()[0] == "plugin"
    assert lines[3].split()[0] == "nonce"
    assert "accepted" in lines[3]
    assert "the page tells:" in lines
    assert any(line.split()[:2] == ["version", "2.4.71"] for line in lines)
    assert lines[-1].startswith("ok: Chatgpt4o speaks this chat")


def test_what_the_page_tells_of_a_legacy_site(capsys: pytest.CaptureFixture[str]) -> None:
    with EmulatorThread(plugin_version="2.2", stream=True, assistant=True) as emulator:
        code, report = check_json([emulator.url + "/"], capsys)
    assert code == 0
    page = report["page"]
    assert page["version"] == "1.9.4 to 2.2"
    assert page["streams"] is True
    assert page["assistant"] is True
    assert page["widget"] == "shortcode"
    assert page["post_id"] == 11


def test_an_older_ai_engine_prints_its_nonce_and_needs_no_session(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with EmulatorThread(plugin="aiengine", plugin_version="2.3") as emulator:
        code, report = check_json([emulator.url + "/"], capsys)
        assert not any(r.path.endswith("start_session") for r in emulator.requests)
    assert code == 0
    assert report["page"]["version"] == "2.0 to 2.4.3"
    assert [step["step"] for step in report["steps"]] == ["page", "plugin", "nonce"]


def test_the_url_comes_as_a_word_or_as_url_but_not_both(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with EmulatorThread() as emulator:
        assert run(["--url", emulator.url], capsys)[0] == 0
        monkeypatch.setenv("CHATGPT4O_URL", emulator.url)
        assert run([], capsys)[0] == 0
        code, _, err = run([emulator.url, "--url", emulator.url], capsys)
    assert code == 2
    assert "not both" in err


# -- the chat's exit codes, and what was found before the error -----------------------------


@pytest.mark.parametrize(
    ("plugin", "fault"),
    [
        ("wpaicg", Fault.stale_nonce()),
        ("aipkit", AipkitFault.stale_nonce()),
        ("aiengine", EngineFault.stale_nonce()),
    ],
)
def test_a_rejected_nonce_exits_5(
    plugin: str, fault: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with EmulatorThread(plugin=plugin) as emulator:
        emulator.fail_next(fault)
        code, report = check_json([emulator.url + "/"], capsys)
        assert emulator.model_calls == []
    assert code == 5
    assert report["ok"] is False
    assert report["nonce_check"] == "rejected"
    assert report["error"]["type"] == "NonceError"
    assert report["error"]["exit_code"] == 5
    assert report["steps"][-1]["step"] == "nonce"
    assert report["steps"][-1]["ok"] is False
    assert report["plugin"] is not None  # what was found before is still told


def test_a_translated_old_site_cannot_tell_and_a_newer_one_can(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Up to 1.8.90 a rejected nonce and the empty message's refusal are both a
    # translated two-key JSON error; from 1.8.91 a rejected nonce is a 403.
    with EmulatorThread(plugin_version="1.8.84", language="de") as emulator:
        code, report = check_json([emulator.url], capsys)
    assert code == 5
    assert report["nonce_check"] == "unclear"
    assert report["error"]["type"] == "ServiceError"
    with EmulatorThread(plugin_version="1.9.4", language="de") as emulator:
        code, report = check_json([emulator.url], capsys)
    assert code == 0
    assert report["nonce_check"] == "accepted"


def test_a_page_without_a_supported_chat_exits_5(capsys: pytest.CaptureFixture[str]) -> None:
    with EmulatorThread(page_variant="no_nonce") as emulator:
        code, report = check_json([emulator.url], capsys)
    assert code == 5
    assert report["error"]["type"] == "ScrapeError"
    assert [(s["step"], s["ok"]) for s in report["steps"]] == [("page", True), ("plugin", False)]


async def test_a_page_of_no_plugin_at_all() -> None:
    def site(request: Request) -> Response:
        return Response(200, headers={"content-type": "text/html"}, content="<p>hello</p>")

    report = await check_site("https://wp.example/", transport=MockTransport(site))
    assert report.error is not None
    assert "No supported chatbot" in str(report.error)
    assert report.nonce is None
    assert report.steps[-1].name == "plugin"
    assert not report.steps[-1].ok


def test_a_network_failure_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["http://127.0.0.1:9/", "--retries", "0"], capsys)
    assert code == 3
    assert "page" in out
    assert "failed" in out
    assert err.startswith("chatgpt4o: error:")


def test_a_plugin_without_the_chat_action_exits_5(capsys: pytest.CaptureFixture[str]) -> None:
    with EmulatorThread() as emulator:
        emulator.fail_next(Fault.plugin_gone())
        code, report = check_json([emulator.url], capsys)
    assert code == 5
    assert report["error"]["type"] == "PluginUnavailableError"


def test_a_5xx_probe_is_retried(capsys: pytest.CaptureFixture[str], sleeps: list[float]) -> None:
    with EmulatorThread() as emulator:
        emulator.fail_next(Fault.server_error(503))
        code, _report = check_json([emulator.url], capsys)
        assert len(posts(emulator)) == 2
    assert code == 0
    assert len(sleeps) == 1


# -- secrets -----------------------------------------------------------------------------


STALE_FAULTS: dict[str, Any] = {
    "SiteEmulator": Fault.stale_nonce(),
    "AipkitEmulator": AipkitFault.stale_nonce(),
    "AIEngineEmulator": EngineFault.stale_nonce(),
}


def test_no_nonce_or_cookie_in_any_output(
    any_plugin: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    nonce = any_plugin.current_nonce()
    shown = []
    for rejected in (False, True):
        for extra in ([], ["--json"], ["--verbose"]):
            if rejected:  # the error's message quotes what the site said
                any_plugin.fail_next(STALE_FAULTS[type(any_plugin).__name__])
            argv = [any_plugin.url + "/", "--cookie", f"session={SECRET_COOKIE}", *extra]
            code, out, err = run(argv, capsys)
            assert code == (5 if rejected else 0)
            shown.append(out + err)
    for text in shown:
        assert nonce not in text
        assert SECRET_COOKIE not in text


async def test_no_proxy_password_in_any_output(capsys: pytest.CaptureFixture[str]) -> None:
    async with running_proxy("http", password="proxy-pw-5d2c") as proxy:
        with EmulatorThread() as emulator:
            for extra in ([], ["--json"], ["--verbose"]):
                code = await asyncio.to_thread(
                    cli_main, ["check", emulator.url, "--proxy", proxy.url, *extra]
                )
                assert code == 0
            assert proxy.connections >= 1
        # the proxy refuses a wrong password: an error that names the proxy
        wrong = proxy.url.replace("proxy-pw-5d2c", "wrong-pw-9e1b")
        code = await asyncio.to_thread(
            cli_main, ["check", "http://127.0.0.1:9/", "--proxy", wrong, "--retries", "0"]
        )
    out, err = capsys.readouterr()
    assert code == 3
    for secret in ("proxy-pw-5d2c", "wrong-pw-9e1b"):
        assert secret not in out + err


def test_scrubbed_json_keeps_its_keys() -> None:
    report = _check.CheckReport("https://wp.example/", nonce="accepted")
    shown = _check._clean(_check.report_json(report), _check.Scrubber())
    assert shown["nonce_check"] == "accepted"


# -- the protocols' verdicts, on the plugins' own bytes -------------------------------------


def verdict(protocol: Any, credentials: Any, status: int, body: str) -> Any:
    from chatgpt4o.protocols.base import Answer

    headers = {"content-type": "application/json; charset=UTF-8"}
    return protocol.read_probe(credentials, Answer(status, headers, body.encode()))


def test_legacy_verdicts() -> None:
    from chatgpt4o.protocols.wpaicg import PageInfo, WpaicgProtocol

    protocol, page = WpaicgProtocol(), PageInfo(post_id="4", nonce="5e2498d71a")
    empty = '{"status":"error","msg":"It appears that nothing was inputted."}'
    assert verdict(protocol, page, 200, empty).accepted is True
    expired = "The link you followed has expired.</p><p><a href='/'>Please try again.</a>"
    assert verdict(protocol, page, 403, expired).accepted is False
    old = '{"status":"error","msg":"Nonce verification failed"}'
    assert verdict(protocol, page, 200, old).accepted is False
    translated = '{"status":"error","msg":"Anscheinend wurde nichts eingegeben."}'
    assert verdict(protocol, page, 200, translated).accepted is None
    newer = PageInfo(post_id="4", nonce="5e2498d71a", since="1.8.95")
    assert verdict(protocol, newer, 200, translated).accepted is True
    banned = '{"status":"error","msg":"You are not allowed to access this feature."}'
    with pytest.raises(_check.ServiceError) as caught:
        verdict(protocol, page, 200, banned)
    assert caught.value.kind == "ip_banned"


def test_aipkit_and_ai_engine_verdicts() -> None:
    from chatgpt4o import PluginUnavailableError
    from chatgpt4o.protocols.aiengine import AIEngineInfo, AIEngineProtocol
    from chatgpt4o.protocols.aipkit import AipkitInfo, AipkitProtocol

    aipkit = AipkitInfo(bot_id="4", nonce="5e2498d71a", ajax_url="https://wp.example/a")
    empty = ('{"success":false,"data":{"message":"Data to cache (message or image) cannot '
             'be empty.","code":"empty_data_to_cache"}}')
    assert verdict(AipkitProtocol(), aipkit, 400, empty).accepted is True
    stale = ('{"success":false,"data":{"message":"Your session has expired.",'
             '"code":"nonce_failure_cache_sse"}}')
    assert verdict(AipkitProtocol(), aipkit, 403, stale).accepted is False

    engine = AIEngineInfo(rest_url="https://wp.example/wp-json", nonce="5e2498d71a")
    refused = '{"success":false,"message":"Sorry, your query has been rejected.","overLimit":false}'
    assert verdict(AIEngineProtocol(), engine, 403, refused).accepted is True
    for status, code in ((403, "rest_cookie_invalid_nonce"), (401, "rest_forbidden")):
        body = json.dumps({"code": code, "message": "Cookie check failed", "data": {}})
        assert verdict(AIEngineProtocol(), engine, status, body).accepted is False
    with pytest.raises(PluginUnavailableError):
        verdict(AIEngineProtocol(), engine, 404, '{"code":"rest_no_route","message":"x"}')
