"""What the `chatgpt4o` command sends: the PROMPT, piped stdin and -f files joined; and
the interactive chat's input: a paste of several lines (bracketed paste), \"\"\" blocks,
/system. All against the emulator, which records what the model was given."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatgpt4o._chat import _read_message
from chatgpt4o.testing import SiteEmulator
from chatgpt4o.testing._emulator import default_reply

from .test_cli import (
    CLI,
    POSIX,
    RUN_TIMEOUT,
    Terminal,
    _env,
    emu,
    emulator_thread,
    one_error_line,
    run_cli,
    terminal,
)

__all__ = ["emu", "emulator_thread", "terminal"]  # the fixtures, shared with test_cli


def last_message(emulator: SiteEmulator) -> str:
    """The user's message of the emulator's last chat call, as the model got it."""
    return emulator.model_calls[-1][-1]["content"]


def run_bytes(*args: str, stdin: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], input=stdin, capture_output=True, env=_env(), timeout=RUN_TIMEOUT,
        check=False,
    )  # type: ignore[call-overload, no-any-return]


# -- one question ------------------------------------------------------------------------


def test_prompt_then_piped_stdin(emu: SiteEmulator) -> None:
    # AI Power 2.2 keeps the message's line breaks (1.8.91 turns them into spaces)
    emu.plugin_version = "2.2"
    try:
        result = run_cli("--url", emu.url, "Review this", stdin="line 1\nline 2\n")
    finally:
        emu.plugin_version = SiteEmulator().plugin_version
    assert result.returncode == 0, result.stderr
    assert last_message(emu) == "Review this\n\nline 1\nline 2"


def test_prompt_stdin_and_files_in_order(emu: SiteEmulator, tmp_path: Path) -> None:
    first = tmp_path / "a.txt"
    first.write_text("file A\n", encoding="utf-8")
    second = tmp_path / "b.txt"
    second.write_text("file B", encoding="utf-8")
    result = run_cli(
        "--url", emu.url, "-f", str(first), "Summarise", "--file", str(second), stdin="piped"
    )
    assert result.returncode == 0, result.stderr
    # (the default plugin version flattens line breaks to spaces, as the real one did)
    assert result.stdout == default_reply("Summarise piped file A file B") + "\n"


def test_a_file_alone_and_an_empty_pipe_alone(emu: SiteEmulator, tmp_path: Path) -> None:
    path = tmp_path / "q.txt"
    path.write_text("from the file", encoding="utf-8")
    assert run_cli("--url", emu.url, "-f", str(path)).stdout == (
        default_reply("from the file") + "\n"
    )
    empty = run_cli("--url", emu.url, stdin="")
    assert empty.returncode == 2
    assert "empty" in one_error_line(empty.stderr)


def test_dash_reads_only_stdin(emu: SiteEmulator) -> None:
    result = run_cli("--url", emu.url, "-", stdin="just stdin")
    assert result.stdout == default_reply("just stdin") + "\n"


def test_stdin_that_is_not_utf8_is_a_usage_error() -> None:
    result = run_bytes("--local", "hi", stdin=b"caf\xe9\n")
    assert result.returncode == 2
    line = one_error_line(result.stderr.decode())
    assert "stdin is not UTF-8 text (byte 0xe9 at offset 3)" in line
    assert result.stdout == b""


def test_a_file_that_is_missing_or_not_utf8(tmp_path: Path) -> None:
    missing = run_cli("--local", "-f", str(tmp_path / "nope.txt"), "hi")
    assert missing.returncode == 2
    assert "-f: cannot read" in one_error_line(missing.stderr)
    latin = tmp_path / "latin.txt"
    latin.write_bytes(b"\xff\xfe")
    result = run_cli("--local", "-f", str(latin))
    assert result.returncode == 2
    assert "is not UTF-8 text" in one_error_line(result.stderr)


@pytest.mark.skipif(not POSIX, reason="bytes in argv")
def test_a_prompt_argument_that_is_not_utf8() -> None:
    result = subprocess.run(
        [*CLI, "--local", b"caf\xe9"], capture_output=True, env=_env(), timeout=RUN_TIMEOUT,
        check=False,
    )  # type: ignore[call-overload]
    assert result.returncode == 2
    assert "not valid UTF-8" in one_error_line(result.stderr.decode())


# -- the interactive chat's input ----------------------------------------------------------


def read_with(*lines: str) -> tuple[str, list[str]]:
    given = iter(lines)
    prompts: list[str] = []

    def read(prompt: str) -> str:
        prompts.append(prompt)
        try:
            return next(given)
        except StopIteration:
            raise EOFError from None

    return _read_message(read), prompts


def test_read_message_lines_pastes_and_blocks() -> None:
    assert read_with("hello") == ("hello", ["> "])
    assert read_with("pasted\nlines\n") == ("pasted\nlines\n", ["> "])
    assert read_with('"""', "one", "", "two", '"""') == ("one\n\ntwo\n", ["> ", *["... "] * 4])
    assert read_with('"""first', 'last"""') == ("first\nlast", ["> ", "... "])
    assert read_with('"""all in one"""') == ("all in one", ["> "])
    with pytest.raises(EOFError):
        read_with('"""', "never closed")


def start_chat(terminal: list[Terminal], *args: str, term: str = "dumb") -> Terminal:
    session = Terminal(*args, term=term)
    terminal.append(session)
    session.expect("/help lists commands")
    session.expect("> ")
    return session


@pytest.mark.skipif(not POSIX, reason="needs a pseudo-terminal")
def test_chat_a_bracketed_paste_is_one_message(
    emu: SiteEmulator, terminal: list[Terminal]
) -> None:
    if "libedit" in (__import__("readline").__doc__ or ""):
        pytest.skip("bracketed paste needs GNU readline")
    emu.plugin_version = "2.2"  # keeps line breaks
    try:
        session = start_chat(terminal, "--url", emu.url, term="xterm")
        assert "\x1b[?2004h" in session.output  # the terminal is asked for paste markers
        session.send("\x1b[200~first line\rsecond line\x1b[201~\r")
        session.expect("You said: ")
        session.expect("> ")
        assert last_message(emu) == "first line\nsecond line"
        session.send("\x04")
        assert session.wait() == 0
    finally:
        emu.plugin_version = SiteEmulator().plugin_version
    assert emu.posts == 1


@pytest.mark.skipif(not POSIX, reason="needs a pseudo-terminal")
def test_chat_triple_quote_block_and_system(
    emu: SiteEmulator, terminal: list[Terminal]
) -> None:
    session = start_chat(terminal, "--url", emu.url)
    session.send('"""\r')
    session.expect("... ")
    session.send("one\r")
    session.expect("... ")
    session.send('two"""\r')
    assert default_reply("one two") in session.expect("> ")  # (1.8.91 flattens them)
    assert emu.posts == 1
    session.send("/system Answer in French\r")
    session.expect("(the system message is set)")
    session.send("/system\r")
    session.expect("system message: Answer in French")
    session.expect("> ")
    session.send("again\r")
    session.expect("> ")
    # system text goes in front of the conversation's first user turn
    assert any("Answer in French" in m["content"] for m in emu.model_calls[-1])
    session.send("/system -\r")
    session.expect("(no system message)")
    session.send("/exit\r")
    assert session.wait() == 0


@pytest.mark.skipif(not POSIX, reason="needs a pseudo-terminal")
def test_chat_continues_a_logged_conversation(
    emu: SiteEmulator, terminal: list[Terminal]
) -> None:
    assert run_cli("--url", emu.url, "logged before").returncode == 0
    session = Terminal("--url", emu.url, "-c")
    terminal.append(session)
    session.expect("(continuing, 1 earlier exchanges)")
    session.expect("> ")
    session.send("next\r")
    assert "(the model saw 2 earlier messages)" in session.expect("> ")
    session.send("\x04")
    assert session.wait() == 0


def test_python_dash_m_testing_help_still_works() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chatgpt4o.testing", "--help"], capture_output=True,
        text=True, env={**os.environ}, timeout=RUN_TIMEOUT, check=False,
    )
    assert result.returncode == 0
    assert "usage" in result.stdout
