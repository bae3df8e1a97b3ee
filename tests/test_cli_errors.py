"""How the `chatgpt4o` command fails: one readable line on stderr with what to do, the
JSON error object on stdout with --json, exit 0 when the reader of stdout goes away,
exit 2 for a missing package, and no traceback anywhere."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

import pytest

from chatgpt4o._cli import main
from chatgpt4o._command import exit_code_for
from chatgpt4o.testing import Fault, SiteEmulator
from tests.proxy import running_proxy

from .test_cli import (
    CLI,
    RUN_TIMEOUT,
    _env,
    closed_port_url,
    emu,
    emulator_thread,
    one_error_line,
    run_cli,
)

__all__ = ["emu", "emulator_thread"]  # the fixtures, shared with test_cli

TRY_LOCAL = "try --local (the bundled emulator, offline) or --url with a page of a site"


# -- what to do next ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault.cloudflare(403, target="page"), id="cloudflare"),
        pytest.param(None, id="cannot-connect"),
    ],
)
def test_blocked_or_unreachable_sites_say_to_try_local_or_another_url(
    emu: SiteEmulator, fault: Fault | None, capsys: pytest.CaptureFixture[str]
) -> None:
    url = emu.url
    if fault is None:
        url = closed_port_url()
    else:
        emu.fail_next(fault)
    assert main(["--url", url, "--retries", "0", "hi"]) in (3, 4)
    line = one_error_line(capsys.readouterr().err)
    assert TRY_LOCAL.capitalize() in line or TRY_LOCAL in line
    if fault is not None:
        assert "a page titled 'Just a moment...'" in line  # not 200 characters of markup
        assert "--cookie-file or CHATGPT4O_COOKIE" in line


def test_a_page_without_the_chat_says_so_too(
    emu: SiteEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.page_variant = "no_nonce"
    try:
        assert main(["--url", emu.url, "hi"]) == 5
    finally:
        emu.page_variant = "standard"
    line = one_error_line(capsys.readouterr().err)
    assert "No supported chatbot" in line or "nonce" in line
    assert TRY_LOCAL.capitalize() in line
    assert main(["--url", emu.url + "/no-such-page/", "--retries", "0", "hi"]) == 5
    line = one_error_line(capsys.readouterr().err)
    assert "a page titled 'Page not found" in line  # the site's 404 page, by its title


def test_the_default_site_says_it_stopped_answering(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # chatgpt4o.one itself, made unreachable without leaving the machine
    from chatgpt4o import _chat

    monkeypatch.setattr(_chat, "DEFAULT_SITE_URL", closed_port_url())
    monkeypatch.setattr(_chat.Chatgpt4o, "url", closed_port_url())
    _chat.Chatgpt4o.reset_cache()
    assert main(["--retries", "0", "hi"]) == 3
    line = one_error_line(capsys.readouterr().err)
    assert "The default site, chatgpt4o.one, stopped answering in late 2024: " + TRY_LOCAL in line


def test_no_hint_for_a_proxy_failure_or_with_local(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", closed_port_url(), "--proxy", closed_port_url(), "--retries", "0",
                 "hi"]) == 3
    assert "--local" not in capsys.readouterr().err
    assert main(["--local", "--emulator=--fail upstream_error", "hi"]) == 5
    assert "--local" not in capsys.readouterr().err


# -- --json on failure --------------------------------------------------------------------


def test_json_errors_go_to_stdout_with_the_exit_code(emu: SiteEmulator) -> None:
    emu.fail_next(Fault.rate_limited())
    result = run_cli("--url", emu.url, "--retries", "0", "--json", "hi")
    assert result.returncode == 4
    error = json.loads(result.stdout)["error"]
    assert error["type"] == "RateLimitError"
    assert error["exit_code"] == 4
    assert one_error_line(result.stderr) == f"chatgpt4o: error: {error['message']}"


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (["--json", "--bogus"], "UsageError"),  # the parser's own error
        (["--json", "--model", "gpt-5", "hi"], "UsageError"),
        (["--json", "--local", "-c", "hi"], "UsageError"),  # nothing to continue
        (["--json", "--proxy", "socks5://bob:s3cret@", "hi"], "UsageError"),
    ],
)
def test_json_usage_errors(
    argv: list[str], kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    body = json.loads(captured.out)
    assert body == {"error": {"type": kind, "message": body["error"]["message"], "exit_code": 2}}
    assert "s3cret" not in captured.out + captured.err


def test_json_after_double_dash_is_a_prompt(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model", "nope", "--", "--json"]) == 2
    assert capsys.readouterr().out == ""


# -- the reader goes away ---------------------------------------------------------------


def test_a_closed_stdout_ends_quietly_with_exit_0(emu: SiteEmulator) -> None:
    # A reply far bigger than a pipe's buffer, so that writing it must fail.
    proc = subprocess.Popen(
        [*CLI, "--url", emu.url, "--no-stream"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
    )
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdin.write(b"x" * 300_000)
    proc.stdin.close()
    assert proc.stdout.read(10)
    proc.stdout.close()  # what `| head -c 10` does
    err = proc.stderr.read()
    proc.stderr.close()
    assert proc.wait(timeout=RUN_TIMEOUT) == 0
    assert err == b""


# -- missing packages -------------------------------------------------------------------

BLOCK = textwrap.dedent(
    """
    import importlib.abc, runpy, sys

    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {blocked!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, Block())
    sys.argv = [{module!r}, *sys.argv[1:]]
    runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
    """
)


def run_blocked(blocked: set[str], module: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCK.format(blocked=blocked, module=module), *args],
        capture_output=True, text=True, env=_env(), timeout=RUN_TIMEOUT, check=False,
    )


def test_no_http_backend_exits_2_with_the_install_line(emu: SiteEmulator) -> None:
    result = run_blocked({"curl_cffi", "httpx"}, "chatgpt4o", "--url", emu.url, "hi")
    assert result.returncode == 2, result.stderr
    line = one_error_line(result.stderr)
    assert "pip install curl_cffi" in line
    assert "unexpected" not in line


def test_local_without_aiohttp_in_a_fresh_process() -> None:
    result = run_blocked({"aiohttp"}, "chatgpt4o", "--local", "hi")
    assert result.returncode == 2
    assert "pip install aiohttp" in one_error_line(result.stderr)


def test_the_emulator_module_without_aiohttp_says_how_to_install_it() -> None:
    result = run_blocked({"aiohttp"}, "chatgpt4o.testing")
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("python -m chatgpt4o.testing: error: ")
    assert "pip install aiohttp" in line


def test_a_missing_extra_is_a_usage_error() -> None:
    assert exit_code_for(ImportError("backend='httpx' needs pip install httpx")) == 2
    assert exit_code_for(ImportError("cannot import name 'x'")) == 1  # a bug


# -- messages that read well --------------------------------------------------------------


@pytest.mark.parametrize(
    ("proxy", "said"),
    [
        ("::::", "expected a proxy URL, scheme://[user:password@]host:port"),
        ("http://", "the proxy URL 'http://' has no host"),
        ("bob:s3cret@127.0.0.1:9", "expected a proxy URL"),
        ("ftp://127.0.0.1:9", "got 'ftp'"),
        ("socks5://bob:s3cret@127.0.0.1:99999", "bad port"),
        ("socks5://bob:s3/cret@127.0.0.1:9", "percent-encoded"),
    ],
)
def test_garbage_proxies(proxy: str, said: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--proxy", proxy, "hi"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("chatgpt4o: error: --proxy: ")
    assert said in line
    assert "s3cret" not in line
    assert "s3/cret" not in line


def test_a_garbage_proxy_from_the_environment_is_named_so() -> None:
    result = run_cli("--url", "http://127.0.0.1:9", "hi", env=_env(CHATGPT4O_PROXY="::::"))
    assert result.returncode == 2
    assert "CHATGPT4O_PROXY: expected a proxy URL" in one_error_line(result.stderr)


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["-x"], "unrecognized option '-x'; a PROMPT that starts with '-' goes after '--', "
                 "as in: chatgpt4o -- -x"),
        (["-hello"], "unrecognized option '-hello'"),
        (["-v", "-no"], "as in: chatgpt4o -- -no"),
    ],
)
def test_a_prompt_that_looks_like_an_option(
    argv: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert said in one_error_line(capsys.readouterr().err)


def test_negative_numbers_are_prompts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--local", "-1"]) == 0
    assert main(["--local", "--", "-x"]) == 0
    assert "You said: -1" in capsys.readouterr().out


async def test_a_socks_proxy_refusing_the_password_is_named_without_it() -> None:
    async with running_proxy("socks5", password="right-pw") as proxy:
        wrong = proxy.url.replace("right-pw", "wr0ng-s3cret")
        process = await asyncio.create_subprocess_exec(
            *CLI, "--proxy", wrong, "--url", "http://127.0.0.1:9/", "--retries", "0", "hi",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(),
        )
        _out, err = await process.communicate()
    assert process.returncode == 3
    line = one_error_line(err.decode())
    assert f"The proxy socks5://127.0.0.1:{proxy.port} failed: " in line
    assert "check its user name and password" in line
    assert "Failed to perform" not in line
    assert ".." not in line
    assert "wr0ng" not in line
