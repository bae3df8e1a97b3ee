"""`chatgpt4o serve` as a process: its first line, its signals, its exit codes; and the
app under `uvicorn --factory --workers 2`.

The child sets its own SIGINT and SIGTERM dispositions to Python's defaults before the
command runs, so that what the test runner inherited (a shell that ignores SIGINT for
background jobs, say) does not change what is tested.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from chatgpt4o._terminal import Scrubber
from chatgpt4o.server._command import GC_YOUNG_THRESHOLD, _collector_for_serving, _Formatter
from chatgpt4o.testing import EmulatorThread

REPO = Path(__file__).resolve().parents[1]
HELLO = [{"role": "user", "content": "Привет!"}]

# The child: default signal dispositions, then the command line as the console script
# runs it (the first word "serve" selects the server).
_CHILD = (
    "import signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "signal.signal(signal.SIGTERM, signal.SIG_DFL)\n"
    "from chatgpt4o._cli import main\n"
    "raise SystemExit(main(sys.argv[1:]))\n"
)


def _environment() -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("CHATGPT4O_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@contextlib.contextmanager
def command(*args: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`chatgpt4o <args>` as a child process, and the first line it printed."""
    process = subprocess.Popen(
        [sys.executable, "-W", "error", "-c", _CHILD, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_environment(),
        text=True,
    )
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 30)
        assert ready, "the server printed no URL"
        yield process, process.stdout.readline().strip()
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def stop(process: subprocess.Popen[str], signum: int, within: float = 10) -> tuple[int, str]:
    """Send `signum`; the exit code and stderr once the process ended."""
    process.send_signal(signum)
    _, err = process.communicate(timeout=within)
    return process.returncode, err


def test_serve_prints_the_base_url_first_and_stops_on_sigterm() -> None:
    with command("serve", "--local", "--port", "0") as (process, url):
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", url)
        with openai.OpenAI(base_url=url, api_key="sk-unused", max_retries=0) as client:
            completion = client.chat.completions.create(model="gpt-4o-mini", messages=HELLO)  # type: ignore[arg-type]
            assert "Привет!" in (completion.choices[0].message.content or "")
            assert [model.id for model in client.models.list()][1] == "gpt-4o-mini"
        code, err = stop(process, signal.SIGTERM)
    assert code == 0
    assert "Traceback" not in err
    assert re.search(r"POST /v1/chat/completions 200 [\d.]+ ms model=gpt-4o-mini-2024-07-18", err)
    assert "GET /v1/models 200" in err


def test_serve_stops_on_sigint_with_130() -> None:
    with command("serve", "--local", "--port", "0", "--api-key", "sk-cmd-key") as (process, url):
        assert httpx.get(url + "/models").status_code == 401
        code, err = stop(process, signal.SIGINT)
    assert code == 130
    assert "Traceback" not in err
    assert "KeyboardInterrupt" not in err
    assert "sk-cmd-key" not in err


def _stream(url: str, lines: list[str], first: threading.Event) -> None:
    body = {"model": "", "messages": HELLO, "stream": True}
    with contextlib.suppress(httpx.HTTPError), httpx.stream(
        "POST", url + "/chat/completions", json=body, timeout=30
    ) as response:
        for line in response.iter_lines():
            if line:
                lines.append(line)
                if '"content":"' in line and '"content":""' not in line:
                    first.set()


@pytest.mark.parametrize(
    ("emulator", "grace", "finished"),
    [
        ("--chunk-delay 0.1 --stream-chunks 8", "5", True),  # finishes within the grace
        ("--chunk-delay 0.2 --stream-chunks 200", "0.5", False),  # cut after it
    ],
)
def test_on_sigterm_streams_in_flight_finish_or_are_cancelled(
    emulator: str, grace: str, finished: bool
) -> None:
    with command(
        "serve", "--local", "--port", "0", "--emulator", emulator, "--shutdown-timeout", grace
    ) as (process, url):
        lines: list[str] = []
        first = threading.Event()
        client = threading.Thread(target=_stream, args=(url, lines, first))
        client.start()
        assert first.wait(10)
        started = time.monotonic()
        code, err = stop(process, signal.SIGTERM)
        took = time.monotonic() - started
        client.join(10)
    assert code == 0
    assert "Traceback" not in err
    assert (lines[-1] == "data: [DONE]") is finished
    if not finished:  # the client is told why its stream ends
        assert '"code":"server_shutting_down"' in lines[-1]
    assert took < float(grace) + 3


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--port", "70000"], "--port"),
        (["--local", "--url", "http://127.0.0.1:9/"], "--local and --url"),
        (["--emulator", "--stream"], "--emulator"),
        (["--max-body-size", "0"], "--max-body-size"),
        (["--proxy", "gopher://x"], "--proxy"),
        (["--wat"], "unrecognized"),
    ],
)
def test_serve_usage_errors_exit_2(args: list[str], words: str) -> None:
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", _CHILD, "serve", *args],
        capture_output=True, text=True, env=_environment(), timeout=30, check=False,
    )
    assert result.returncode == 2
    assert words in result.stderr
    assert result.stdout == ""


def test_a_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = subprocess.run(
            [sys.executable, "-W", "error", "-c", _CHILD, "serve", "--port", port],
            capture_output=True, text=True, env=_environment(), timeout=30, check=False,
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_serve_help_lists_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "chatgpt4o", "serve", "--help"],
        capture_output=True, text=True, env=_environment(), timeout=30, check=True,
    )
    for option in ("--host", "--port", "--url", "--local", "--api-key", "--proxy",
                   "--timeout", "--retries", "--cookie", "--max-body-size",
                   "CHATGPT4O_API_KEY"):
        assert option in result.stdout


def test_the_factory_runs_under_uvicorn_with_workers() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with EmulatorThread() as emulator:
        env = _environment()
        env["CHATGPT4O_URL"] = emulator.url
        env["CHATGPT4O_API_KEY"] = "sk-workers"
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "chatgpt4o.server:create_app",
             "--workers", "2", "--host", "127.0.0.1", "--port", str(port),
             "--no-access-log", "--log-level", "warning"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
        )
        try:
            origin = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(origin + "/health", timeout=1).status_code == 200:
                        break
                assert process.poll() is None, process.communicate()[1]
                assert time.monotonic() < deadline, "uvicorn did not start"
                time.sleep(0.1)
            with openai.OpenAI(
                base_url=origin + "/v1", api_key="sk-workers", max_retries=0
            ) as client:
                for _ in range(4):
                    completion = client.chat.completions.create(model="", messages=HELLO)  # type: ignore[arg-type]
                    assert completion.choices[0].message.content
            code, err = stop(process, signal.SIGTERM, within=20)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert code == 0, err
    assert "Traceback" not in err


def _readme_block(language: str, marker: str) -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(rf"```{language}\n(.*?)```", text, re.DOTALL)
    (block,) = [block for block in blocks if marker in block]
    return block


def test_the_readme_examples_run_against_serve_local() -> None:
    shell = _readme_block("sh", "curl -s http://127.0.0.1:1337/v1/models")
    python = _readme_block("python", 'OpenAI(base_url="http://127.0.0.1:1337/v1"')
    with command("serve", "--local", "--port", "0") as (process, url):
        origin = url.removesuffix("/v1")
        curl = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", shell.replace("http://127.0.0.1:1337", origin)],
            capture_output=True, text=True, timeout=30, check=False,
        )
        example = subprocess.run(
            [sys.executable, "-c", python.replace("http://127.0.0.1:1337", origin)],
            capture_output=True, text=True, timeout=30, env=_environment(), check=False,
        )
        code, err = stop(process, signal.SIGTERM)
    assert "Traceback" not in err
    assert curl.returncode == 0, curl.stderr
    assert '"object":"list"' in curl.stdout
    assert '"object":"chat.completion"' in curl.stdout
    assert curl.stdout.rstrip().endswith("data: [DONE]")
    assert example.returncode == 0, example.stderr
    plain, usage, streamed = example.stdout.splitlines()
    assert "Привет!" in plain
    assert plain == streamed
    assert "prompt_tokens=" in usage
    assert code == 0


def test_log_lines_have_loggings_time_and_no_secrets() -> None:
    scrub = Scrubber()
    scrub.add("sk-secret")
    formatter = _Formatter(scrub)
    plain = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    record = logging.LogRecord("chatgpt4o.server", logging.INFO, __file__, 1, "%s", ("x",), None)
    for step in range(400):  # within a second and across seconds
        record.created = 1796000000 + step * 0.0731
        record.msecs = int((record.created - int(record.created)) * 1000) + 0.0
        assert formatter.format(record) == plain.format(record)
    record.args = ("key sk-secret",)
    assert formatter.format(record).endswith("chatgpt4o.server: key ***")


def test_the_collector_is_tuned_while_serving_and_restored_after() -> None:
    before = gc.get_threshold()
    with _collector_for_serving() as settle:
        assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, *before[1:])
        settle()
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
