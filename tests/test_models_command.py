"""`chatgpt4o models [--url URL]`, and the first-word commands: `check` and `models` are
commands only as the first word; after `--` they are the prompt."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chatgpt4o import Chatgpt4o
from chatgpt4o._cli import main
from chatgpt4o._constants import DEFAULT_MODEL, DEFAULT_SITE_URL, MODEL_ALIASES
from chatgpt4o.testing import EmulatorThread
from chatgpt4o.testing._emulator import default_reply


def models(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["models", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_default_providers_models_without_io(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CHATGPT4O_URL", raising=False)
    monkeypatch.setenv("CHATGPT4O_PROXY", "http://127.0.0.1:9")  # would fail, if used
    code, out, err = models([], capsys)
    assert code == 0
    assert err == ""
    lines = out.splitlines()
    assert lines[0] == f"Chatgpt4o at {DEFAULT_SITE_URL}"
    assert lines[1].split()[0] == DEFAULT_MODEL
    assert "default" in lines[1]
    for alias in MODEL_ALIASES:
        assert alias in lines[1]


def test_json(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CHATGPT4O_URL", raising=False)
    code, out, _ = models(["--json"], capsys)
    assert code == 0
    found = json.loads(out)
    assert found["provider"] == "Chatgpt4o"
    assert found["default"] == Chatgpt4o.default_model
    assert [model["id"] for model in found["models"]] == Chatgpt4o.get_models()
    assert found["aliases"] == Chatgpt4o.model_aliases
    assert found["models"][0]["aliases"] == sorted(MODEL_ALIASES)
    assert found["chosen_by_site"] is False


@pytest.mark.parametrize(("plugin", "provider"), [("aipkit", "Chatgpt4o"),
                                                  ("aiengine", "AIEngine")])
def test_the_sites_provider(
    plugin: str, provider: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with EmulatorThread(plugin=plugin) as emulator:
        code, out, _ = models(["--url", emulator.url + "/", "--json"], capsys)
        requests = [(r.method, r.path) for r in emulator.requests]
    assert code == 0
    found = json.loads(out)
    assert found["provider"].startswith(provider)
    assert found["site"] == emulator.url + "/"
    assert found["chosen_by_site"] is (plugin == "aiengine")
    assert requests == [("GET", "/")]  # one page load, nothing sent


def test_an_ai_engine_site_says_the_site_chooses(capsys: pytest.CaptureFixture[str]) -> None:
    with EmulatorThread(plugin="aiengine") as emulator:
        code, out, _ = models(["--url", emulator.url + "/"], capsys)
    assert code == 0
    assert out.splitlines()[-1] == (
        "(the site's settings choose the model; the name is only checked)"
    )


def test_the_chats_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert models(["--url", "http://127.0.0.1:9/", "--retries", "0"], capsys)[0] == 3
    with EmulatorThread(page_variant="no_nonce") as emulator:
        code, out, err = models(["--url", emulator.url], capsys)
    assert code == 5
    assert out == ""
    assert err.startswith("chatgpt4o: error:")
    assert models(["--bogus"], capsys)[0] == 2


# -- the first word ------------------------------------------------------------------------


def reply_of(out: str) -> Any:
    return json.loads(out)["reply"]


@pytest.mark.parametrize("word", ["check", "models"])
def test_after_a_double_dash_the_word_is_the_prompt(
    word: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--local", "--json", "--", word]) == 0
    assert reply_of(capsys.readouterr().out) == default_reply(word)


@pytest.mark.parametrize("word", ["check", "models"])
def test_a_double_dash_first_asks_the_word(
    word: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with EmulatorThread() as emulator:
        monkeypatch.setenv("CHATGPT4O_URL", emulator.url)
        assert main(["--", word]) == 0
        sent = emulator.model_calls[-1][-1]["content"]
    assert sent == word
    assert capsys.readouterr().out.strip() == default_reply(word)


def test_as_the_first_word_they_are_commands(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with EmulatorThread() as emulator:
        monkeypatch.setenv("CHATGPT4O_URL", emulator.url)
        assert main(["check", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["nonce_check"] == "accepted"
        assert main(["models", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["provider"].startswith("Chatgpt4o")
        assert emulator.model_calls == []
