"""Every code block of README.md runs as written, or says in the README why it is not run.

A block is run by its language:

- ``python``: a file of tests (it defines ``test_...``) runs under pytest in an empty
  directory whose pyproject.toml is the README's ``toml`` block for pytest; any other
  block runs as a script (top-level ``await`` allowed, as in ``python -m asyncio``), in
  the context the README gives the short examples: ``asyncio``, ``Chatgpt4o`` and
  ``messages``. chatgpt4o.one no longer answers, so the default site (``Chatgpt4o.url``)
  is an emulator, which a block that needs the live site says with a
  ``# needs a live site`` comment. A line ``print(...)  # text`` must print the text.
- ``sh``, ``shell``, ``bash``, ``console``: command by command (``$ `` lines for a
  console), each with ``CHATGPT4O_URL`` set to the emulator and ``LLM_USER_PATH`` in a
  temporary directory. A command runs when it is this project's own program
  (``chatgpt4o``, ``python -m chatgpt4o...``, ``llm``) with no redirection and no address
  off this machine, fed by nothing or by one ``printf``/``echo`` of literal text through a
  pipe; a server (``--serve-emulator``, ``serve``,
  ``python -m chatgpt4o.testing``) must print its URL, then gets Ctrl-C.
- ``toml``: parsed.
- ``text``: a figure, not code.

A block is not run when the line above its fence says why: ``<!-- not run: REASON -->``.
Any other block that cannot be run this way fails, so that examples added later are
either checked or exempted in plain sight. Nothing here leaves the machine: the children
get an unreachable proxy for anything but loopback.
"""

from __future__ import annotations

import io
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import tokenize
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from chatgpt4o.testing import EmulatorThread, SiteEmulator

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest brings tomli on 3.10
    import tomli as tomllib

README = Path(__file__).resolve().parent.parent / "README.md"
BIN = Path(sys.executable).parent
TIMEOUT = 60.0

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+)(?P<language>[^\s`]*)[ \t]*$")
_NOT_RUN = re.compile(r"^\s*<!--\s*not run:\s*(?P<reason>.*?)\s*-->\s*$")
_PRINTS = re.compile(r"print\(.*\)\s+#\s*(?P<text>.+?)\s*$")
_LIVE = re.compile(r"^\s*#\s*needs a live site\b", re.MULTILINE)
_URL = re.compile(r"\bhttps?://(?:[^/@\s\"']*@)?(?P<host>\[[^\]]*\]|[^/:\s\"'`)]+)")
# Hosts that are this machine, or that the examples only ever mock (RFC 2606 ".example").
_LOCAL_HOSTS = re.compile(r"(127\.\d+\.\d+\.\d+|localhost|\[::1\]|(.+\.)?example)", re.I)
_SHELLS = frozenset({"sh", "shell", "bash", "console"})
_OPERATORS = frozenset("|&;<>()")
_SERVERS = ("--serve-emulator",)


@dataclass(frozen=True)
class Block:
    """One fenced block of the README."""

    line: int  # of the opening fence, 1-based
    language: str
    code: str
    not_run: str | None  # the reason given above the fence

    @property
    def id(self) -> str:
        return f"README.md:{self.line}:{self.language or 'plain'}"


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of `text`, indented ones (in lists) included."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        body: list[str] = []
        end = index + 1
        while end < len(lines) and lines[end].strip() != fence:
            body.append(lines[end][len(indent) :] if lines[end].startswith(indent) else lines[end])
            end += 1
        above = next((line for line in reversed(lines[:index]) if line.strip()), "")
        marker = _NOT_RUN.match(above)
        blocks.append(
            Block(
                line=index + 1,
                language=opening["language"].lower(),
                code="\n".join(body) + "\n",
                not_run=marker["reason"] if marker else None,
            )
        )
        index = end + 1
    return blocks


BLOCKS = readme_blocks(README.read_text(encoding="utf-8"))


# -- what a block may reach ---------------------------------------------------------------


def _off_machine(text: str) -> list[str]:
    return [m["host"] for m in _URL.finditer(text) if not _LOCAL_HOSTS.fullmatch(m["host"])]


def _python_strings(code: str) -> str:
    """The string literals of `code` (what it could reach; comments say what they like)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(code).readline))
    except (tokenize.TokenError, SyntaxError):
        return code
    return "\n".join(token.string for token in tokens if token.type == tokenize.STRING)


def _closed_port() -> int:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port: int = unused.getsockname()[1]
    return port


def _environment(site: str, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHATGPT4O_", "PYTEST_"))}
    nowhere = f"http://127.0.0.1:{_closed_port()}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = nowhere
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(
        CHATGPT4O_URL=site,
        README_SITE=site,
        LLM_USER_PATH=str(home / "llm"),
        HOME=str(home),
        PYTHONIOENCODING="utf-8",
    )
    return env


# -- python -------------------------------------------------------------------------------

# Runs one block the way the README tells a reader to (see the module's docstring).
_SCRIPT_RUNNER = """
import ast, asyncio, inspect, os, sys, types
from chatgpt4o import Chatgpt4o

Chatgpt4o.url = os.environ["README_SITE"]  # chatgpt4o.one no longer answers
path = sys.argv[1]
with open(path, encoding="utf-8") as file:
    source = file.read()
context = {
    "__name__": "__main__", "__file__": path, "asyncio": asyncio, "Chatgpt4o": Chatgpt4o,
    "messages": [{"role": "user", "content": "Привет!"}],
}
code = compile(source, path, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
if code.co_flags & inspect.CO_COROUTINE:
    asyncio.run(types.FunctionType(code, context)())
else:
    exec(code, context)
"""


def _pytest_config() -> str:
    configs = [
        b.code for b in BLOCKS if b.language == "toml" and "[tool.pytest.ini_options]" in b.code
    ]
    assert configs, "the README gives no pytest configuration (a toml block) for its tests"
    return configs[0]


def _is_test_file(block: Block) -> bool:
    return block.language == "python" and bool(
        re.search(r"^(async )?def test_", block.code, re.MULTILINE)
    )


def _run_tests(blocks: list[Block], site: str, home: Path) -> dict[int, str | None]:
    """The blocks of tests, each a file, under one pytest (it takes seconds to start)."""
    (home / "pyproject.toml").write_text(_pytest_config(), encoding="utf-8")
    for block in blocks:
        (home / f"test_block_{block.line}.py").write_text(block.code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-W", "error", "-p", "no:cacheprovider"],
        cwd=home, env=_environment(site, home), capture_output=True, text=True,
        timeout=TIMEOUT, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    report = done.stdout + done.stderr
    outcomes: dict[int, str | None] = {}
    for block in blocks:
        name = f"test_block_{block.line}.py"
        passed = re.search(rf"^PASSED {re.escape(name)}::", report, re.MULTILINE)
        failed = re.search(rf"^(FAILED|ERROR) {re.escape(name)}", report, re.MULTILINE)
        outcomes[block.line] = None if passed and not failed else f"under pytest:\n{report}"
    return outcomes


def _run_python(block: Block, site: str, home: Path) -> str | None:
    hosts = _off_machine(_python_strings(block.code))
    if hosts:
        return f"names a site off this machine {hosts}: mark it not run"
    (home / "example.py").write_text(block.code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT_RUNNER, "example.py"],
        cwd=home, env=_environment(site, home), capture_output=True, text=True,
        timeout=TIMEOUT, check=False, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if done.returncode != 0:
        return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    for printed in _PRINTS.finditer(block.code):
        if printed["text"] not in done.stdout:
            return f"{printed['text']!r} not printed; got {done.stdout!r}"
    return None


# -- commands -----------------------------------------------------------------------------


def _commands(block: Block) -> list[str]:
    lines = block.code.replace("\\\n", " ").splitlines()
    if block.language == "console":
        return [line[2:] for line in lines if line.startswith("$ ")]
    return [line for line in lines if line.strip() and not line.lstrip().startswith("#")]


def _words(command: str) -> list[str]:
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    return list(lexer)


def _argv(words: list[str]) -> tuple[list[str], bool] | str:
    """The command to run and whether it is a server, or why it cannot be run here."""
    if any(word and set(word) <= _OPERATORS for word in words):
        return "a pipe, list or redirection"
    hosts = _off_machine(" ".join(words))
    if hosts:
        return f"a site off this machine {hosts}"
    program = words[0].removeprefix(".venv/bin/")
    if program in ("python", "python3"):
        if words[1:2] != ["-m"] or not words[2:3] or not words[2].startswith("chatgpt4o"):
            return "python with something other than -m chatgpt4o"
        return [sys.executable, *words[1:]], words[2] == "chatgpt4o.testing"
    if program in ("chatgpt4o", "llm"):
        script = BIN / program
        argv = [str(script)] if script.exists() else [sys.executable, "-m", program]
        server = any(word in _SERVERS for word in words) or words[1:2] == ["serve"]
        return [*argv, *words[1:]], server
    return f"{program!r} is not one of this project's programs"


def _piped_text(words: list[str]) -> str | None:
    """What `printf ... |` or `echo ... |` at the start of a command writes, when that is
    the command's one operator and its words are literal; else None."""
    if words[:1] not in (["printf"], ["echo"]) or words.count("|") != 1:
        return None
    left = words[: words.index("|")]
    if any(set(word) & _OPERATORS or "$" in word or "`" in word for word in left):
        return None
    done = subprocess.run(left, capture_output=True, text=True, check=True, timeout=TIMEOUT)
    return done.stdout


def _run_server(argv: list[str], env: dict[str, str], home: Path) -> str | None:
    process = subprocess.Popen(
        argv, cwd=home, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], TIMEOUT)
        line = process.stdout.readline() if ready else ""
        if "http://" not in line:
            return f"printed no URL: {line!r}"
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=TIMEOUT)
        return None
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def _run_commands(block: Block, site: str, home: Path) -> str | None:
    env = _environment(site, home)
    commands = _commands(block)
    if not commands:
        return "no command in the block"
    for command in commands:
        words = _words(command)
        if words and words[0] == "export" and len(words) == 2 and "=" in words[1]:
            if _off_machine(words[1]):
                return f"{command!r}: a site off this machine: mark the block not run"
            name, _, value = words[1].partition("=")
            env[name] = value
            continue
        piped = _piped_text(words)
        if piped is not None:
            words = words[words.index("|") + 1 :]
        found = _argv(words)
        if isinstance(found, str):
            return f"{command!r} cannot be run here ({found}): mark the block not run"
        argv, server = found
        if server:
            failed = _run_server(argv, env, home)
            if failed:
                return f"{command!r}: {failed}"
            continue
        done = subprocess.run(
            argv, cwd=home, env=env, capture_output=True, text=True, timeout=TIMEOUT,
            check=False, **({"stdin": subprocess.DEVNULL} if piped is None else {"input": piped}),
        )  # fmt: skip
        if done.returncode != 0:
            return f"{command!r}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return None


# -- the blocks ---------------------------------------------------------------------------


def _run(block: Block, site: str) -> str | None:
    """None when the block ran as written, else what went wrong."""
    with tempfile.TemporaryDirectory(prefix="readme-") as directory:
        home = Path(directory)
        if block.language == "python":
            if _is_test_file(block):
                return _run_tests([block], site, home)[block.line]
            return _run_python(block, site, home)
        if block.language in _SHELLS:
            return _run_commands(block, site, home)
        if block.language == "toml":
            tomllib.loads(block.code)
            return None
        if block.language == "text":
            return None
        return f"no way to run a {block.language or 'plain'!r} block: mark it not run"


@pytest.fixture(scope="module")
def outcomes() -> Iterator[dict[int, str | None]]:
    """Every runnable block, run at once (they are independent), against one emulator."""
    runnable = [block for block in BLOCKS if block.not_run is None]
    tests = [block for block in runnable if _is_test_file(block)]
    others = [block for block in runnable if not _is_test_file(block)]
    emulator = EmulatorThread(SiteEmulator(stream=True, stream_chunks=3))
    with emulator, ThreadPoolExecutor(max_workers=4) as pool:

        def run_tests() -> dict[int, str | None]:
            with tempfile.TemporaryDirectory(prefix="readme-") as directory:
                return _run_tests(tests, emulator.url, Path(directory))

        of_tests = pool.submit(run_tests)
        of_others = pool.map(lambda block: _run(block, emulator.url), others)
        results = {block.line: result for block, result in zip(others, of_others, strict=True)}
        results.update(of_tests.result())
        yield results


@pytest.mark.parametrize("block", BLOCKS, ids=[block.id for block in BLOCKS])
def test_the_block_runs_as_written(block: Block, outcomes: dict[int, str | None]) -> None:
    if block.not_run is not None:
        assert block.not_run, f"{block.id}: say why it is not run"
        pytest.skip(f"not run: {block.not_run}")
    failure = outcomes[block.line]
    assert failure is None, f"{block.id}: {failure}"


def test_a_block_that_needs_a_live_site_says_so_and_has_a_runnable_neighbour() -> None:
    live = [block for block in BLOCKS if block.language == "python" and _LIVE.search(block.code)]
    assert live, "the first example calls chatgpt4o.one: it says it needs a live site"
    for block in live:
        position = BLOCKS.index(block)
        neighbours = BLOCKS[max(0, position - 1) : position + 2]
        assert any(
            other is not block and other.language == "python" and other.not_run is None
            and not _LIVE.search(other.code) for other in neighbours
        ), f"{block.id} has no runnable example next to it"  # fmt: skip


def test_the_parser_finds_indented_blocks_and_markers() -> None:
    text = (
        "- item\n\n  ```python\n  print(1)\n  ```\n\n<!-- not run: needs a live site -->\n"
        "```sh\nchatgpt4o hi\n```\n```\nplain\n```\n"
    )
    first, second, third = readme_blocks(text)
    assert (first.language, first.code, first.not_run) == ("python", "print(1)\n", None)
    assert (second.line, second.not_run) == (8, "needs a live site")
    assert third.language == ""
    assert "no way to run" in str(_run(third, "http://127.0.0.1:9"))


def test_commands_that_cannot_run_here_are_refused() -> None:
    assert _argv(_words("pip install chatgpt4o")) == "'pip' is not one of this project's programs"
    assert "pipe" in str(_argv(_words("git diff | chatgpt4o --system 'Review'")))
    assert _piped_text(_words("git diff | chatgpt4o")) is None
    assert _piped_text(_words("printf 'a\\nb' | chatgpt4o")) == "a\nb"
    assert _piped_text(_words("echo $HOME | chatgpt4o")) is None
    assert "redirection" in str(_argv(_words("chatgpt4o > out")))
    assert "off this machine" in str(_argv(_words("chatgpt4o --url https://example.org hi")))
    assert _argv(_words("chatgpt4o --url http://127.0.0.1:8/ hi")) == (
        [*_argv(_words("chatgpt4o"))[0], "--url", "http://127.0.0.1:8/", "hi"],  # type: ignore[index]
        False,
    )
    assert _argv(_words("python -m chatgpt4o.testing --stream"))[1] is True  # type: ignore[index]
    assert _off_machine("https://wp.example/ http://127.0.0.1:1 https://chatgpt4o.one") == [
        "chatgpt4o.one"
    ]
