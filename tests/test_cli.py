"""The `chatgpt4o` command, driven as users drive it: the installed console script in a
subprocess (the interactive chat through a pseudo-terminal), against the emulator on
127.0.0.1. A few fast checks call `main` in-process."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import chatgpt4o
from chatgpt4o import (
    CloudflareError,
    HTTPStatusError,
    ModelNotSupportedError,
    NonceError,
    PluginUnavailableError,
    ProviderConnectionError,
    ProviderTimeoutError,
    RateLimitError,
    ResponseError,
    ScrapeError,
    ServiceError,
    __version__,
)
from chatgpt4o._cli import UsageError, exit_code_for, main
from chatgpt4o.testing import EmulatorThread, Fault, SiteEmulator
from chatgpt4o.testing._emulator import default_reply

POSIX = os.name == "posix"
RUN_TIMEOUT = 20.0


def _command() -> list[str]:
    script = shutil.which("chatgpt4o", path=str(Path(sys.executable).parent))
    return [script] if script else [sys.executable, "-m", "chatgpt4o"]


CLI = _command()


def _env(**extra: str) -> dict[str, str]:
    # The conversation log stays where conftest points it (under the test's tmp dir).
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CHATGPT4O_") or key == "CHATGPT4O_LOGS_PATH"
    }
    env["PYTHONIOENCODING"] = "utf-8"
    env.update(extra)
    return env


def run_cli(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=env if env is not None else _env(),
        timeout=RUN_TIMEOUT,
        check=False,
    )


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("chatgpt4o: error: "), stderr
    return lines[0]


@pytest.fixture(scope="module")
def emulator_thread() -> Iterator[SiteEmulator]:
    """One emulator on a thread for the module, since the command runs its own loop."""
    with EmulatorThread() as emulator:
        yield emulator


@pytest.fixture
def emu(emulator_thread: SiteEmulator) -> SiteEmulator:
    """The module's emulator, with no faults queued and its counters at zero."""
    emulator_thread.clear_faults()
    emulator_thread.reset_counters()
    return emulator_thread


def wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


# -- one question ------------------------------------------------------------------------


def test_local_answers_through_the_real_protocol_fast() -> None:
    started = time.monotonic()
    result = run_cli("--local", "Привет!")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout == default_reply("Привет!") + "\n"
    assert result.stderr == ""  # no spinner when stderr is not a terminal
    assert elapsed < 5.0  # well under 2 s on a quiet machine; CI machines are not quiet


def test_local_json_without_stream_with_system_message() -> None:
    result = run_cli("--local", "--no-stream", "--json", "--system", "Be brief", "Привет!")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert set(answer) == {"reply", "model", "site", "elapsed", "conversation_id"}
    # the system text goes before the message (1.8.91 turns its line breaks into spaces)
    assert answer["reply"] == default_reply("Be brief Привет!")
    assert answer["model"] == "gpt-4o-mini-2024-07-18"
    assert answer["site"].startswith("http://127.0.0.1:")
    assert 0 <= answer["elapsed"] < 10
    assert "Привет" in result.stdout  # ensure_ascii=False


def test_prompt_from_stdin_when_it_is_not_a_terminal() -> None:
    result = run_cli("--local", stdin="What is 2+2?\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == default_reply("What is 2+2?") + "\n"


def test_python_dash_m_and_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chatgpt4o", "--version"],
        capture_output=True, text=True, env=_env(), timeout=RUN_TIMEOUT, check=False,
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"chatgpt4o {__version__}"


def test_help_documents_examples_environment_and_exit_codes() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    text = result.stdout
    for needle in (
        "usage: chatgpt4o", "examples:", 'chatgpt4o --local "Привет!"', "--serve-emulator",
        "CHATGPT4O_PROXY", "CHATGPT4O_URL", "CHATGPT4O_TIMEOUT", "exit codes:",
        "/reset", "--no-stream", "--cookie NAME=VALUE",
    ):
        assert needle in text
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "130 "):
        assert f"\n  {code}" in text
    blocked = text[text.index("\n  4 ") : text.index("\n  5 ")]
    assert "HTTP 429" in blocked
    assert "token" in blocked
    assert "limit" in blocked


def test_url_and_cookie_reach_the_site(emu: SiteEmulator) -> None:
    result = run_cli("--url", emu.url, "--cookie", "sid=abc", "--cookie", "lang=ru", "hi")
    assert result.returncode == 0, result.stderr
    assert result.stdout == default_reply("hi") + "\n"
    assert emu.page_loads == 1
    assert emu.posts == 1
    assert emu.requests[-1].cookies == {"sid": "abc", "lang": "ru"}


def test_verbose_logs_on_stderr() -> None:
    result = run_cli("--local", "--verbose", "hi")
    assert result.returncode == 0
    assert result.stdout == default_reply("hi") + "\n"
    assert "DEBUG chatgpt4o" in result.stderr
    assert "scraping http://127.0.0.1:" in result.stderr


# -- the environment ---------------------------------------------------------------------


def test_environment_gives_defaults_and_flags_win(emu: SiteEmulator) -> None:
    assert run_cli("hi", env=_env(CHATGPT4O_URL=emu.url)).returncode == 0
    flag_wins = run_cli(
        "--url", emu.url, "--timeout", "5", "hi",
        env=_env(CHATGPT4O_URL=closed_port_url(), CHATGPT4O_TIMEOUT="nonsense"),
    )
    assert flag_wins.returncode == 0, flag_wins.stderr
    assert emu.posts == 2

    bad_timeout = run_cli("--url", emu.url, "hi", env=_env(CHATGPT4O_TIMEOUT="nonsense"))
    assert bad_timeout.returncode == 2
    assert "CHATGPT4O_TIMEOUT" in one_error_line(bad_timeout.stderr)


def test_proxy_from_the_environment_is_used_but_not_with_local(emu: SiteEmulator) -> None:
    env = _env(CHATGPT4O_PROXY=closed_port_url())
    through_proxy = run_cli("--url", emu.url, "--retries", "0", "hi", env=env)
    assert through_proxy.returncode == 3
    assert "proxy" in one_error_line(through_proxy.stderr)
    assert emu.posts == 0
    assert run_cli("--local", "hi", env=env).returncode == 0


# -- errors and exit codes ---------------------------------------------------------------


def test_usage_error_through_the_script() -> None:
    result = run_cli("--model", "gpt-5", "hi")
    assert result.returncode == 2
    assert "gpt-5" in one_error_line(result.stderr)
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("faults", "code", "stream"),
    [
        pytest.param([Fault.rate_limited()], 4, False, id="429"),
        pytest.param([Fault.token_limit()], 4, False, id="token-limit"),
        pytest.param([Fault.cloudflare(403, target="page")], 4, False, id="cloudflare"),
        pytest.param([Fault.server_error(500)], 5, False, id="500"),
        pytest.param([Fault.html_instead_of_json()], 5, False, id="html-not-json"),
        pytest.param([Fault.plugin_gone()], 5, False, id="plugin-gone"),
        pytest.param([Fault.stream_error_event("ipBanned")], 4, True, id="ip-banned"),
        pytest.param([Fault.stall(30)], 3, False, id="timeout"),
    ],
)
def test_exit_codes_for_site_failures(
    emu: SiteEmulator, faults: list[Fault], code: int, stream: bool
) -> None:
    emu.stream = stream
    try:
        for fault in faults:
            emu.fail_next(fault)
        result = run_cli("--url", emu.url, "--retries", "0", "--timeout", "1", "hi")
    finally:
        emu.stream = False
    assert result.returncode == code, result.stderr
    one_error_line(result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_network_error_keeps_secrets_even_when_verbose() -> None:
    closed = closed_port_url()
    proxy = closed.replace("http://", "http://alice:pr0xy-s3cret@")
    result = run_cli(
        "--url", closed, "--proxy", proxy, "--cookie", "sid=c00kie-s3cret",
        "--retries", "0", "--verbose", "hi",
    )
    assert result.returncode == 3
    assert "Traceback" in result.stderr
    assert result.stderr.splitlines()[-1].startswith("chatgpt4o: error: ")
    output = result.stdout + result.stderr
    assert "pr0xy-s3cret" not in output
    assert "c00kie-s3cret" not in output


def test_connection_refused_is_a_network_error() -> None:
    result = run_cli("--url", closed_port_url(), "--retries", "0", "hi")
    assert result.returncode == 3
    assert "127.0.0.1" in one_error_line(result.stderr)


@pytest.mark.skipif(not POSIX, reason="sends SIGINT")
def test_ctrl_c_during_a_call_exits_130(emu: SiteEmulator) -> None:
    emu.fail_next(Fault.stall(30))
    proc = subprocess.Popen(
        [*CLI, "--url", emu.url, "hi"], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )
    try:
        wait_for(lambda: emu.posts >= 1)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130
    assert "Traceback" not in err
    assert out == ""


# -- the emulator alone ------------------------------------------------------------------


@pytest.mark.skipif(not POSIX, reason="sends SIGINT")
def test_serve_emulator_prints_its_url_and_serves() -> None:
    proc = subprocess.Popen(
        [*CLI, "--local", "--serve-emulator"], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], RUN_TIMEOUT)
        assert ready, "the emulator printed no URL"
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/", timeout=5) as response:
            assert response.status == 200
            assert b"wpaicg-chat" in response.read()
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0


# -- the interactive chat, through a pseudo-terminal -------------------------------------


class Terminal:
    """The command on a pseudo-terminal: what it printed so far, and keys to send."""

    def __init__(self, *args: str, term: str = "dumb") -> None:
        import pty

        self._master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [*CLI, *args], stdin=slave, stdout=slave, stderr=slave,
            env=_env(TERM=term), start_new_session=True,
        )
        os.close(slave)
        self.output = ""
        self._seen = 0

    def expect(self, text: str, timeout: float = 10.0) -> str:
        """Wait until `text` is printed after the last expected text; return what came
        in between."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.output.find(text, self._seen)
            if found >= 0:
                between = self.output[self._seen : found]
                self._seen = found + len(text)
                return between
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{text!r} not printed; got {self.output[self._seen:]!r}"
            ready, _, _ = select.select([self._master], [], [], remaining)
            if ready:
                try:
                    data = os.read(self._master, 65536)
                except OSError:  # EIO: the other end is closed
                    data = b""
                if not data:
                    raise AssertionError(f"{text!r} not printed before exit: {self.output!r}")
                self.output += data.decode("utf-8", "replace").replace("\r\n", "\n")

    def send(self, keys: str) -> None:
        os.write(self._master, keys.encode())

    def interrupt(self, *, at_prompt: bool = False) -> None:
        if at_prompt:
            # A signal that lands between readline printing the prompt and waiting for
            # a key waits for the next key; no human is that quick, a test is.
            time.sleep(0.3)
        self.proc.send_signal(signal.SIGINT)  # what the terminal does on Ctrl-C

    def wait(self) -> int:
        return self.proc.wait(timeout=RUN_TIMEOUT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self._master)


@pytest.fixture
def terminal() -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    yield opened
    for term in opened:
        term.close()


@pytest.mark.skipif(not POSIX, reason="needs a pseudo-terminal")
def test_chat_keeps_history_resets_and_quits_on_ctrl_d(terminal: list[Terminal]) -> None:
    term = Terminal("--local")
    terminal.append(term)
    term.expect("/reset starts over")
    term.expect("> ")
    term.send("Привет\n")
    assert default_reply("Привет") in term.expect("> ")
    term.send("And again?\n")
    reply = term.expect("> ")
    # the earlier turns reach the model as turns, through the plugin's history field
    assert "You said: And again? (the model saw 2 earlier messages)" in reply
    term.send("/reset\n")
    term.expect("(the conversation is cleared)")
    term.expect("> ")
    term.send("Fresh start\n")
    assert default_reply("Fresh start") + "\n" in term.expect("> ")
    term.send("/help\n")
    term.expect("/exit")
    term.expect("> ")
    term.send("\x04")  # Ctrl-D
    assert term.wait() == 0


@pytest.mark.skipif(not POSIX, reason="needs a pseudo-terminal")
def test_chat_ctrl_c_stops_a_reply_then_twice_quits(
    emu: SiteEmulator, terminal: list[Terminal]
) -> None:
    emu.fail_next(Fault.stall(30))
    term = Terminal("--url", emu.url)
    terminal.append(term)
    term.expect("> ")
    term.send("hi\n")
    term.expect("waiting for 127.0.0.1")  # the spinner, on a terminal
    wait_for(lambda: emu.posts >= 1)
    term.interrupt()
    term.expect("(interrupted)")
    term.expect("> ")
    term.send("after\n")  # the interrupted message is not part of the conversation
    assert default_reply("after") + "\n" in term.expect("> ")
    term.interrupt(at_prompt=True)
    term.expect("Ctrl-C again")
    term.interrupt(at_prompt=True)
    assert term.wait() == 130
    assert "Traceback" not in term.output


@pytest.mark.skipif(not POSIX, reason="needs a pseudo-terminal")
def test_chat_shows_errors_and_carries_on(emu: SiteEmulator, terminal: list[Terminal]) -> None:
    emu.fail_next(Fault.rate_limited())
    term = Terminal("--url", emu.url, "--retries", "0")
    terminal.append(term)
    term.expect("> ")
    term.send("hi\n")
    assert "chatgpt4o: error: " in term.expect("> ")
    term.send("/exit\n")
    assert term.wait() == 0


# -- in-process: argument checks and the exit-code table ---------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["--bogus", "hi"],
        ["--model", "nope", "hi"],
        ["--timeout", "-1", "hi"],
        ["--timeout", "soon", "hi"],
        ["--retries", "-2", "hi"],
        ["--cookie", "no-equals-s3cret", "hi"],
        ["--cookie", "=s3cret", "hi"],
        ["--url", "ftp://example.org", "hi"],
        ["--local", "--url", "http://127.0.0.1:9", "hi"],
        ["--proxy", "ftp://bob:s3cret@127.0.0.1:9", "hi"],
        ["--local", "   "],
        ["--local", "--serve-emulator", "hi"],
    ],
)
def test_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "s3cret" not in one_error_line(captured.err)


def test_help_and_version_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert main(["--help"]) == 0
    assert "exit codes:" in capsys.readouterr().out


def test_local_without_aiohttp_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real_find_spec = importlib.util.find_spec

    def find_spec(name: str, *args: Any) -> Any:
        return None if name == "aiohttp" else real_find_spec(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert main(["--local", "hi"]) == 2
    assert "pip install aiohttp" in one_error_line(capsys.readouterr().err)


def test_local_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--local", "--json", "Привет!"]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert answer["reply"] == default_reply("Привет!")


def test_url_is_discovered_once_per_run(
    emu: SiteEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each run finds the site's plugin with one page load (discover), and that load's
    # credentials serve the run's questions: no second load of the page.
    assert main(["--url", emu.url, "hi"]) == 0
    assert main(["--url", emu.url, "again"]) == 0
    assert capsys.readouterr().out == default_reply("hi") + "\n" + default_reply("again") + "\n"
    assert emu.page_loads == 2
    assert emu.posts == 2


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (UsageError("x"), 2),
        (ModelNotSupportedError("m", "P", ["a"]), 2),
        (ValueError("x"), 2),
        (TypeError("x"), 2),
        (ProviderConnectionError("x"), 3),
        (ProviderTimeoutError("x"), 3),
        (CloudflareError("x", status_code=403), 4),
        (RateLimitError("x"), 4),  # an HTTPStatusError, but not a 5
        (RateLimitError("x", retry_after=30), 4),
        (ServiceError("x", kind="token_limit"), 4),
        (ServiceError("x", kind="ip_banned"), 4),
        (HTTPStatusError("x", status_code=500), 5),
        (PluginUnavailableError("x", status_code=400), 5),
        (ServiceError("x"), 5),
        (ServiceError("x", kind="banned_words"), 5),
        (ServiceError("x", kind="limited"), 5),
        (NonceError("x"), 5),
        (ResponseError("x"), 5),
        (ScrapeError("x"), 5),
        (KeyboardInterrupt(), 130),
        (RuntimeError("x"), 1),
    ],
)
def test_exit_code_table(error: BaseException, code: int) -> None:
    assert exit_code_for(error) == code


def test_help_does_not_load_the_event_loop_or_the_http_stack() -> None:
    code = (
        "import sys\n"
        "from chatgpt4o._cli import main\n"
        "import contextlib, io\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "print(sorted({'asyncio', 'curl_cffi', 'chatgpt4o._provider'} & set(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert result.stdout.strip() == "[]", result.stderr


# -- the modules of the command ----------------------------------------------------------

COMMAND_MODULES = ("_cli", "_chat", "_terminal", "_runner")


def imported_modules(name: str) -> dict[str, bool]:
    """The `chatgpt4o` modules that `chatgpt4o.<name>` imports, each mapped to whether
    it does so at the top level (not only inside a function)."""
    path = Path(chatgpt4o.__file__).parent / f"{name}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top_level = {id(node) for node in tree.body}
    found: dict[str, bool] = {}

    def note(module: str, node: ast.stmt) -> None:
        found[module] = found.get(module, False) or id(node) in top_level

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("chatgpt4o."):
                    note(alias.name.split(".")[1], node)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:  # from ._x import y
                note(node.module.split(".")[0], node)
            elif node.level == 1:  # from . import _x
                for alias in node.names:
                    note(alias.name, node)
            elif node.module and node.module.startswith("chatgpt4o."):
                note(node.module.split(".")[1], node)
    return found


def test_the_command_modules_import_no_cycle() -> None:
    graph = {
        name: {module for module in imported_modules(name) if module in COMMAND_MODULES}
        for name in COMMAND_MODULES
    }
    # Helpers import neither half of the command; the work never imports the parsing.
    assert graph["_terminal"] == set()
    assert graph["_runner"] == set()
    assert "_cli" not in graph["_chat"]
    # The parsing imports the work only when there is work (--help stays fast).
    assert imported_modules("_cli").get("_chat") is False

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join((*path, name))}"
        for module in graph[name]:
            visit(module, (*path, name))

    for name in COMMAND_MODULES:
        visit(name, ())


def test_local_emulator_options_reach_the_emulator() -> None:
    result = run_cli(
        "--local", "--no-stream", "--json",
        "--emulator=--plugin-version 2.2 --assistant --language de", "Hallo",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["reply"] == default_reply("Hallo")


def test_local_emulator_faults_come_out_as_the_library_errors() -> None:
    result = run_cli(
        "--local", "--stream", "--emulator=--plugin-version 1.8.84 --fail upstream_error", "Hi"
    )
    assert result.returncode == 5
    assert "upstream model failed" in result.stderr
    assert result.stdout == ""  # the plugin's error words are never printed as a reply


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (("--local", "--emulator=--bogus", "hi"), "emulator options"),
        (("--emulator=--language de", "hi"), "add --local"),
        (("--local", "--emulator=--language 'de", "hi"), "--emulator"),
    ],
)
def test_bad_emulator_options_are_usage_errors(arguments: tuple[str, ...], said: str) -> None:
    result = run_cli(*arguments)
    assert result.returncode == 2
    assert said in result.stderr
    assert "Traceback" not in result.stderr


def test_bot_picks_one_of_several_chatbots() -> None:
    result = run_cli(
        "--local", "--no-stream", "--bot", "9",
        "--emulator=--plugin aipkit --bot-id 4 --bot-id 9", "Hallo",
    )
    assert result.returncode == 0, result.stderr
    result = run_cli(
        "--local", "--no-stream", "--bot", "77",
        "--emulator=--plugin aipkit --bot-id 4 --bot-id 9", "Hallo",
    )
    assert result.returncode == 5  # no such chatbot on the page: a scrape error
    assert "No supported chatbot" in result.stderr
