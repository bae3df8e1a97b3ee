"""The conversation log: every exchange of the `chatgpt4o` command in a SQLite file
(`_history`), `chatgpt4o logs`, and `-c` / `--cid` replaying a logged conversation.
Each test logs into its own file under tmp (conftest's autouse fixture)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from chatgpt4o._cli import main
from chatgpt4o._history import (
    SCHEMA_VERSION,
    Exchange,
    HistoryError,
    Log,
    logs_path,
    new_id,
    user_data_dir,
)
from chatgpt4o.testing import Fault, SiteEmulator
from chatgpt4o.testing._emulator import default_reply

from .test_cli import closed_port_url, emu, emulator_thread, one_error_line, run_cli

__all__ = ["emu", "emulator_thread"]  # the fixtures, shared with test_cli


def rows(path: Path) -> list[dict[str, object]]:
    with closing(sqlite3.connect(path)) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute("SELECT * FROM exchanges ORDER BY id")]


def logged(capsys: pytest.CaptureFixture[str], *argv: str) -> list[dict[str, object]]:
    assert main(["logs", "--json", *argv]) == 0
    result: list[dict[str, object]] = json.loads(capsys.readouterr().out)
    return result


# -- where the log is ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "environ", "expected"),
    [
        ("linux", {"HOME": "/home/u"}, "/home/u/.local/share/chatgpt4o"),
        ("linux", {"HOME": "/home/u", "XDG_DATA_HOME": "/data"}, "/data/chatgpt4o"),
        ("linux", {"HOME": "/home/u", "XDG_DATA_HOME": "  "}, "/home/u/.local/share/chatgpt4o"),
        ("darwin", {"HOME": "/Users/u"}, "/Users/u/Library/Application Support/chatgpt4o"),
        ("win32", {"HOME": "/h", "LOCALAPPDATA": "/appdata"}, "/appdata/chatgpt4o"),
        ("win32", {"HOME": "/h"}, "/h/AppData/Local/chatgpt4o"),
    ],
)
def test_the_data_directory_is_the_platforms(
    platform: str, environ: dict[str, str], expected: str
) -> None:
    assert user_data_dir(environ, platform) == Path(expected)


def test_the_environment_overrides_the_logs_path(tmp_path: Path) -> None:
    assert logs_path({"CHATGPT4O_LOGS_PATH": str(tmp_path / "x.db")}) == tmp_path / "x.db"
    assert logs_path({"HOME": "/home/u", "XDG_DATA_HOME": "/d"}) == Path("/d/chatgpt4o/logs.db")


def test_logs_path_prints_the_tests_own_file(
    logs_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["logs", "--path"]) == 0
    assert capsys.readouterr().out == f"{logs_db}\n"
    assert not logs_db.exists()  # showing the path creates nothing


# -- ids and the store -------------------------------------------------------------------


def test_ids_are_sortable_and_unique() -> None:
    ids = [new_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids)
    assert all(len(i) == 26 and i.isalnum() and i == i.lower() for i in ids)


def exchange(conversation: str, prompt: str, reply: str | None = "ok") -> Exchange:
    return Exchange(
        id=new_id(), conversation_id=conversation, datetime_utc=Exchange.now(),
        duration_ms=5, model="m", site="http://s", system=None, prompt=prompt, reply=reply,
        error_type=None if reply is not None else "X", error_message=None if reply else "bad",
    )


def test_the_store_has_a_schema_version_and_reads_nothing_before_it_exists(
    tmp_path: Path,
) -> None:
    log = Log(tmp_path / "sub" / "logs.db")
    assert log.recent() == []
    assert log.last_conversation_id() is None
    assert not log.path.exists()
    log.record(exchange("c1", "hi"))
    with closing(sqlite3.connect(log.path)) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [e.prompt for e in log.recent()] == ["hi"]


def test_a_newer_schema_or_a_broken_file_is_a_clear_error(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    with closing(sqlite3.connect(newer)) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(HistoryError, match="newer than this chatgpt4o"):
        Log(newer).recent()
    broken = tmp_path / "broken.db"
    broken.write_bytes(b"not a database" * 100)
    with pytest.raises(HistoryError, match=r"broken\.db"):
        Log(broken).record(exchange("c", "p"))


def test_two_processes_writing_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "logs.db"
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from chatgpt4o._history import Exchange, Log, new_id\n"
        "log = Log(Path(sys.argv[1]))\n"
        "for n in range(100):\n"
        "    log.record(Exchange(new_id(), sys.argv[2], Exchange.now(), 1, 'm', 's', None,\n"
        "                        f'{sys.argv[2]}-{n}', 'r'))\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", code, str(path), name])
        for name in ("a", "b", "c")
    ]
    assert [proc.wait(timeout=60) for proc in procs] == [0, 0, 0]
    prompts = {str(row["prompt"]) for row in rows(path)}
    assert prompts == {f"{name}-{n}" for name in "abc" for n in range(100)}


def test_a_log_that_is_busy_for_a_moment_is_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SQLite answers some contention at once, without its busy handler (a journal mode
    # being changed, a WAL file being set up while another process closes the log).
    log = Log(tmp_path / "logs.db")
    migrate = Log._migrate
    busy = [sqlite3.OperationalError("database is locked")] * 2

    def sometimes_busy(self: Log, db: sqlite3.Connection) -> None:
        if busy:
            raise busy.pop()
        migrate(self, db)

    monkeypatch.setattr(Log, "_migrate", sometimes_busy)
    log.record(exchange("c1", "hi"))
    assert busy == []
    assert [e.prompt for e in log.recent()] == ["hi"]


def test_other_database_errors_are_not_tried_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def broken(self: Log, db: sqlite3.Connection) -> None:
        calls.append(1)
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(Log, "_migrate", broken)
    with pytest.raises(HistoryError, match=r"cannot write the conversation log.*disk I/O error"):
        Log(tmp_path / "logs.db").record(exchange("c1", "hi"))
    assert calls == [1]


# -- what a run logs ---------------------------------------------------------------------


def test_a_run_logs_its_exchange(logs_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--local", "--system", "Be brief", "Привет!"]) == 0
    capsys.readouterr()
    [row] = rows(logs_db)
    assert row["prompt"] == "Привет!"
    assert row["system"] == "Be brief"
    assert row["reply"] == default_reply("Be brief Привет!")
    assert row["model"] == "gpt-4o-mini-2024-07-18"
    assert str(row["site"]).startswith("http://127.0.0.1:")
    assert isinstance(row["duration_ms"], int)
    assert 0 <= row["duration_ms"] < 10_000
    assert str(row["datetime_utc"]).endswith("+00:00")
    assert row["error_type"] is None
    assert row["error_message"] is None
    assert len(str(row["conversation_id"])) == 26


def test_no_log_and_the_environment_turn_it_off(
    logs_db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--local", "--no-log", "hi"]) == 0
    monkeypatch.setenv("CHATGPT4O_NO_LOG", "1")
    assert main(["--local", "--json", "hi"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["conversation_id"] is None
    assert not logs_db.exists()
    monkeypatch.setenv("CHATGPT4O_NO_LOG", "0")  # "0" means: do log
    assert main(["--local", "hi"]) == 0
    assert len(rows(logs_db)) == 1


def test_a_failed_exchange_is_logged_with_its_error_and_no_reply(
    emu: SiteEmulator, logs_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    emu.fail_next(Fault.rate_limited())
    assert main(["--url", emu.url, "--retries", "0", "hi"]) == 4
    capsys.readouterr()
    [row] = rows(logs_db)
    assert row["reply"] is None
    assert row["error_type"] == "RateLimitError"
    assert "429" in str(row["error_message"])
    [shown] = logged(capsys)
    assert shown["error"] == {"type": "RateLimitError", "message": row["error_message"]}


def test_secrets_never_reach_the_log_file(emu: SiteEmulator, logs_db: Path) -> None:
    # A cookie, a proxy password and the site's nonce, in a run that works and in one
    # that fails (an error that quotes the page, nonce and all).
    cookie = "c00kie-s3cret-value"
    ok = run_cli("--url", emu.url, "--cookie", f"sid={cookie}", "hello")
    assert ok.returncode == 0, ok.stderr
    emu.fail_next(Fault.html_instead_of_json())
    bad = run_cli("--url", emu.url, "--cookie", f"sid={cookie}", "--retries", "0", "again")
    assert bad.returncode == 5
    proxy = closed_port_url().replace("http://", "http://alice:pr0xy-s3cret@")
    failed = run_cli("--url", emu.url, "--proxy", proxy, "--retries", "0", "third")
    assert failed.returncode == 3
    nonce = emu.current_nonce()
    stored = b"".join(
        path.read_bytes() for path in logs_db.parent.iterdir() if path.name.startswith("logs.db")
    )
    assert len(rows(logs_db)) == 3
    for secret in (cookie, "pr0xy-s3cret", nonce):
        assert secret.encode() not in stored


# -- -c and --cid ---------------------------------------------------------------------


def test_continue_replays_the_last_conversation(
    emu: SiteEmulator, logs_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--url", emu.url, "--system", "Be brief", "one"]) == 0
    assert main(["--url", emu.url, "-c", "two"]) == 0
    assert main(["--url", emu.url, "--continue", "--json", "three"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out.splitlines()[-1])["reply"].endswith(
        "three (the model saw 4 earlier messages)"
    )
    # the conversation's system message went with every call
    assert all("Be brief" in call[1]["content"] for call in emu.model_calls[-3:])
    conversations = {row["conversation_id"] for row in rows(logs_db)}
    assert len(conversations) == 1
    assert [row["system"] for row in rows(logs_db)] == ["Be brief"] * 3


def test_cid_picks_a_conversation_and_failed_exchanges_are_not_replayed(
    emu: SiteEmulator, logs_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--url", emu.url, "first"]) == 0
    [first] = rows(logs_db)
    assert main(["--url", emu.url, "other conversation"]) == 0
    emu.fail_next(Fault.server_error(500))
    cid = str(first["conversation_id"])
    assert main(["--url", emu.url, "--retries", "0", "--cid", cid, "fails"]) == 5
    assert main(["--url", emu.url, "--cid", cid, "second"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == default_reply("second").replace(
        "second", "second (the model saw 2 earlier messages)"
    )
    one = logged(capsys, "--cid", cid, "-n", "0")
    assert [entry["prompt"] for entry in one] == ["first", "fails", "second"]


def test_continue_with_an_empty_log_or_an_unknown_cid_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--local", "-c", "hi"]) == 2
    assert "no conversation to continue" in one_error_line(capsys.readouterr().err)
    assert main(["--local", "hi"]) == 0
    assert main(["--local", "--cid", "01nosuchconversation00000", "hi"]) == 2
    assert "no conversation '01nosuchconversation00000'" in capsys.readouterr().err


# -- chatgpt4o logs -------------------------------------------------------------------


def test_an_empty_log_is_not_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["logs"]) == 0
    assert capsys.readouterr().out == ""
    assert logged(capsys) == []


def test_logs_shows_the_newest_last_n_of_them(
    logs_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = Log(logs_db)
    for n in range(5):
        log.record(exchange("c", f"prompt {n}"))
    log.record(exchange("c", "the failed one", reply=None))
    assert [e["prompt"] for e in logged(capsys)] == ["prompt 3", "prompt 4", "the failed one"]
    assert len(logged(capsys, "-n", "0")) == 6
    assert [e["prompt"] for e in logged(capsys, "-n", "1")] == ["the failed one"]
    assert main(["logs", "-n", "2"]) == 0
    text = capsys.readouterr().out
    assert text.index("prompt 4") < text.index("the failed one")
    assert "## Prompt" in text
    assert "## Reply" in text
    assert "## Error" in text
    assert "X: bad" in text


def test_logs_options_are_checked_and_json_errors_go_to_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["logs", "-n", "-1", "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"]["exit_code"] == 2
    one_error_line(captured.err)


def test_logs_through_the_script(emu: SiteEmulator) -> None:
    assert run_cli("--url", emu.url, "hi").returncode == 0
    result = run_cli("logs", "--json")
    assert result.returncode == 0, result.stderr
    [entry] = json.loads(result.stdout)
    assert entry["prompt"] == "hi"
    assert entry["site"] == emu.url
