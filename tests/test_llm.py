"""The `llm` plugin, with the real `llm` package, against the emulator on a thread.

`llm -m chatgpt4o` and `llm chat -m chatgpt4o` run as llm's own command line (in this
process through click, and once as the installed `llm` program, which finds the plugin by
its entry point); replies stream piece by piece as the site sends them; the conversation
and the system prompt reach the model as turns.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path
from types import SimpleNamespace

import pytest

from chatgpt4o import Chatgpt4o
from chatgpt4o.testing import SiteEmulator

llm = pytest.importorskip("llm")
from click.testing import CliRunner  # noqa: E402  (llm brings click)
from llm.cli import cli  # noqa: E402

from chatgpt4o import _llm  # noqa: E402


def said(text: str, earlier: int = 0) -> str:
    """The emulator's default reply to `text` after `earlier` messages."""
    reply = f"Hello! This is the local chatgpt4o.one emulator. You said: {text}"
    return reply + (f" (the model saw {earlier} earlier messages)" if earlier else "")


@pytest.fixture
def llm_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """llm's state in a temporary directory; no site from the runner's environment."""
    monkeypatch.setenv("LLM_USER_PATH", str(tmp_path / "llm"))
    for name in ("CHATGPT4O_URL", "CHATGPT4O_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(_llm, "_sites", {})
    return {"LLM_USER_PATH": str(tmp_path / "llm")}


def test_the_entry_point_names_the_plugin_module() -> None:
    (plugin,) = [ep for ep in entry_points(group="llm") if ep.name == "chatgpt4o"]
    assert plugin.value == "chatgpt4o._llm"
    assert "chatgpt4o" in [model.model_id for model in llm.get_models()]
    assert isinstance(llm.get_async_model("chatgpt4o"), _llm.AsyncChatgpt4oModel)


def test_llm_prompt_with_the_site_from_the_environment(
    chatgpt4o_emulator: SiteEmulator, llm_env: dict[str, str]
) -> None:
    env = {**llm_env, "CHATGPT4O_URL": chatgpt4o_emulator.url}
    result = CliRunner().invoke(cli, ["-m", "chatgpt4o", "hi"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output == said("hi") + "\n"


@pytest.mark.chatgpt4o_emulator(stream=True)
def test_llm_prompt_with_the_site_as_an_option_and_a_system_prompt(
    chatgpt4o_emulator: SiteEmulator, llm_env: dict[str, str]
) -> None:
    args = ["-m", "chatgpt4o", "-o", "url", chatgpt4o_emulator.url, "-s", "Be brief", "hi"]
    result = CliRunner().invoke(cli, args, env=llm_env)
    assert result.exit_code == 0, result.output
    assert chatgpt4o_emulator.model_calls[-1][-1]["content"].endswith("hi")
    assert "Be brief" in str(chatgpt4o_emulator.model_calls[-1])
    assert chatgpt4o_emulator.posts == 1


def test_llm_chat_keeps_the_conversation(
    chatgpt4o_emulator: SiteEmulator, llm_env: dict[str, str]
) -> None:
    env = {**llm_env, "CHATGPT4O_URL": chatgpt4o_emulator.url}
    result = CliRunner().invoke(cli, ["chat", "-m", "chatgpt4o"], input="one\ntwo\nquit\n", env=env)
    assert result.exit_code == 0, result.output
    assert said("one") in result.output
    assert said("two", earlier=2) in result.output
    assert [call[-1]["content"] for call in chatgpt4o_emulator.model_calls] == ["one", "two"]
    assert chatgpt4o_emulator.page_loads == 1  # one discovery per process


def _llm_program() -> list[str]:
    script = shutil.which("llm", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "llm"]


def test_the_installed_llm_program_finds_the_plugin(
    chatgpt4o_emulator: SiteEmulator, llm_env: dict[str, str]
) -> None:
    env = {**os.environ, **llm_env, "CHATGPT4O_URL": chatgpt4o_emulator.url}
    asked = subprocess.run(
        [*_llm_program(), "-m", "chatgpt4o", "hi"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout == said("hi") + "\n"
    chat = subprocess.run(
        [*_llm_program(), "chat", "-m", "chatgpt4o"], input="one\ntwo\n",
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert said("two", earlier=2) in chat.stdout, chat.stderr
    logged = subprocess.run(
        [*_llm_program(), "logs", "-n", "1", "--json"],
        capture_output=True, text=True, env=env, timeout=60, check=True,
    )
    assert '"model": "chatgpt4o"' in logged.stdout


@pytest.mark.chatgpt4o_emulator(stream=True, stream_chunks=4, chunk_delay=0.25)
def test_pieces_arrive_as_the_site_streams_them(
    chatgpt4o_emulator: SiteEmulator, llm_env: dict[str, str]
) -> None:
    model = llm.get_model("chatgpt4o")
    started = time.monotonic()
    arrivals: list[tuple[float, str]] = []
    for piece in model.prompt("hi", url=chatgpt4o_emulator.url):
        arrivals.append((time.monotonic() - started, piece))
    assert "".join(piece for _, piece in arrivals) == said("hi")
    assert len(arrivals) >= 4
    # the first piece is printed while the site is still sending the rest
    assert arrivals[-1][0] - arrivals[0][0] >= 0.5


@pytest.mark.chatgpt4o_emulator(stream=True, stream_chunks=3)
def test_no_stream_gives_the_whole_reply_once(
    chatgpt4o_emulator: SiteEmulator, llm_env: dict[str, str]
) -> None:
    model = llm.get_model("chatgpt4o")
    pieces = list(model.prompt("hi", stream=False, url=chatgpt4o_emulator.url))
    assert pieces == [said("hi")]


@pytest.mark.chatgpt4o_emulator(stream=True, stream_chunks=3)
def test_the_async_model_streams_and_converses(
    chatgpt4o_emulator: SiteEmulator, llm_env: dict[str, str]
) -> None:
    async def talk() -> tuple[list[str], str]:
        model = llm.get_async_model("chatgpt4o")
        conversation = model.conversation()
        first = conversation.prompt("one", url=chatgpt4o_emulator.url, system="Be brief")
        pieces = [piece async for piece in first]
        second = await conversation.prompt("two", url=chatgpt4o_emulator.url).text()
        return pieces, second

    pieces, second = asyncio.run(talk())
    assert len(pieces) >= 3
    assert "".join(pieces) == said("Be brief one")
    assert second == said("two", earlier=2)
    assert {"role": "user", "content": "Be brief one"} in chatgpt4o_emulator.model_calls[-1]


def test_errors_are_the_librarys_own(llm_env: dict[str, str]) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{unused.getsockname()[1]}/"
    result = CliRunner().invoke(
        cli, ["-m", "chatgpt4o", "-o", "url", closed, "-o", "timeout", "5", "hi"],
        env=llm_env,
    )
    assert result.exit_code != 0
    assert "127.0.0.1" in result.output


def test_without_a_url_the_default_site_is_chatgpt4o_one(llm_env: dict[str, str]) -> None:
    assert asyncio.run(_llm._site(_llm._Options())) is Chatgpt4o


def _response(prompt: str, reply: str, system: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(
        prompt=SimpleNamespace(prompt=prompt, system=system), text_or_raise=lambda: reply
    )


def test_history_from_the_conversations_responses() -> None:
    # what llm before 0.32 gives: no chain on the prompt, the earlier responses
    prompt = SimpleNamespace(prompt="three", system=None)
    earlier = [_response("one", "1", system="Be brief"), _response("two", "2")]
    assert _llm.conversation_messages(prompt, earlier) == [
        {"role": "system", "content": "Be brief"},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "1"},
        {"role": "user", "content": "two"},
        {"role": "assistant", "content": "2"},
        {"role": "user", "content": "three"},
    ]
    assert _llm.conversation_messages(prompt, []) == [{"role": "user", "content": "three"}]

