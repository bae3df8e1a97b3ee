"""The conversation log of the `chatgpt4o` command: one SQLite file (standard library
`sqlite3`), one row per exchange.

Where: `CHATGPT4O_LOGS_PATH` if set, else `logs.db` in the user's data directory,
found the way platformdirs' `user_data_dir("chatgpt4o", appauthor=False)` finds it:
`$XDG_DATA_HOME/chatgpt4o` (or `~/.local/share/chatgpt4o`) on Linux and other Unixes,
`~/Library/Application Support/chatgpt4o` on macOS, `%LOCALAPPDATA%\\chatgpt4o` on
Windows.

What: an exchange's prompt, system message, reply (NULL when it failed, with the
error's type and message instead), model, site, time (UTC), duration and the id of its
conversation. Never cookies, nonces or proxies: the command passes nothing of them,
and the error message and site it passes are scrubbed first.

Ids are like `llm`'s: 26 lowercase characters of Crockford base32 (a ULID), the first
ten the time in milliseconds, so that they sort by time, the rest random; within one
process they also increase strictly.

The schema's version is `PRAGMA user_version` (`SCHEMA_VERSION`); a later version adds
its migration to `_MIGRATIONS`. Two commands writing at once wait for each other (WAL
journal, busy timeout) rather than fail or lose a row.
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from ._terminal import ENV_LOGS_PATH

__all__ = [
    "SCHEMA_VERSION",
    "Exchange",
    "HistoryError",
    "Log",
    "logs_path",
    "new_id",
    "user_data_dir",
]

APP_NAME = "chatgpt4o"
SCHEMA_VERSION = 1
#: Seconds a writer waits for another one to finish.
BUSY_TIMEOUT = 10.0

_T = TypeVar("_T")


class HistoryError(Exception):
    """The log cannot be read or written; the message names the file."""


# -- where -----------------------------------------------------------------------------


def user_data_dir(
    environ: Mapping[str, str] | None = None, platform: str | None = None
) -> Path:
    """This application's directory for user data, as platformdirs finds it (with
    `appauthor=False`): see the module docstring."""
    env = os.environ if environ is None else environ
    system = sys.platform if platform is None else platform
    home = Path(env.get("HOME") or Path.home())
    if system == "win32":
        base = env.get("LOCALAPPDATA", "").strip()
        root = Path(base) if base else home / "AppData" / "Local"
    elif system == "darwin":
        root = home / "Library" / "Application Support"
    else:
        base = env.get("XDG_DATA_HOME", "").strip()
        root = Path(base) if base else home / ".local" / "share"
    return root / APP_NAME


def logs_path(environ: Mapping[str, str] | None = None) -> Path:
    """The log's file: `CHATGPT4O_LOGS_PATH`, or `logs.db` in `user_data_dir()`."""
    env = os.environ if environ is None else environ
    override = env.get(ENV_LOGS_PATH, "").strip()
    if override:
        return Path(override).expanduser()
    return user_data_dir(env) / "logs.db"


# -- ids -------------------------------------------------------------------------------

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_id_lock = threading.Lock()
_last_id = 0


def new_id() -> str:
    """A new ULID, lowercase: time-sortable and unique, increasing within the process."""
    global _last_id
    with _id_lock:
        value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
        if value <= _last_id:  # the same millisecond (or a clock step back)
            value = _last_id + 1
        _last_id = value
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


# -- what -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Exchange:
    """One question and its reply (or the error instead of one)."""

    id: str
    conversation_id: str
    datetime_utc: str  # ISO 8601, UTC, milliseconds
    duration_ms: int
    model: str
    site: str
    system: str | None
    prompt: str
    reply: str | None
    error_type: str | None = None
    error_message: str | None = None

    @staticmethod
    def now() -> str:
        return datetime.now(timezone.utc).isoformat(timespec="milliseconds")

    def to_json(self) -> dict[str, Any]:
        """The exchange as `chatgpt4o logs --json` prints it."""
        fields = asdict(self)
        error_type = fields.pop("error_type")
        error_message = fields.pop("error_message")
        fields["error"] = (
            {"type": error_type, "message": error_message} if error_type else None
        )
        return fields


_COLUMNS = (
    "id, conversation_id, datetime_utc, duration_ms, model, site, system, prompt, reply, "
    "error_type, error_message"
)

_MIGRATIONS: dict[int, str] = {
    # version -> the statements that bring the previous version to it
    1: """
        CREATE TABLE IF NOT EXISTS exchanges (
            id TEXT PRIMARY KEY,
            conversation_id TEXT NOT NULL,
            datetime_utc TEXT NOT NULL,
            duration_ms INTEGER NOT NULL,
            model TEXT NOT NULL,
            site TEXT NOT NULL,
            system TEXT,
            prompt TEXT NOT NULL,
            reply TEXT,
            error_type TEXT,
            error_message TEXT
        );
        CREATE INDEX IF NOT EXISTS exchanges_by_conversation
            ON exchanges (conversation_id, id);
    """,
}


class Log:
    """The log at `path`. Each method opens the file, does its work and closes it:
    a chat that waits for input holds no lock. Reading a log that does not exist yet
    finds nothing (and creates nothing)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"<Log {str(self.path)!r}>"

    def _fail(self, action: str, err: BaseException) -> HistoryError:
        return HistoryError(f"cannot {action} the conversation log {str(self.path)!r}: {err}")

    def _use(self, work: Callable[[sqlite3.Connection], _T], *, write: bool) -> _T | None:
        """`work` on a connection to the log, its schema up to date; None when reading a
        log that does not exist (nothing is created). A busy or locked database is tried
        again until BUSY_TIMEOUT: SQLite answers some of those at once, without waiting
        in its busy handler (a change of journal mode, a WAL file being set up or
        removed as other processes open and close the log)."""
        if not write and not self.path.exists():
            return None
        give_up = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                if write:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                with closing(
                    sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
                ) as db:
                    db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
                    self._migrate(db)
                    return work(db)
            except sqlite3.OperationalError as err:
                busy = "locked" in str(err) or "busy" in str(err)
                if not busy or time.monotonic() >= give_up:
                    raise self._fail("write" if write else "read", err) from None
            except (sqlite3.Error, OSError) as err:
                raise self._fail("write" if write else "read", err) from None
            time.sleep(random.uniform(0.005, 0.05))  # apart from the others waiting

    def _migrate(self, db: sqlite3.Connection) -> None:
        version: int = db.execute("PRAGMA user_version").fetchone()[0]
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise HistoryError(
                f"the conversation log {str(self.path)!r} has schema version {version}, "
                f"newer than this chatgpt4o's ({SCHEMA_VERSION}): upgrade chatgpt4o"
            )
        # WAL lets readers and one writer work at once; it stays set in the file.
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("BEGIN IMMEDIATE")  # one process migrates; the others wait
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            for step in range(version + 1, SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[step].split(";"):
                    if statement.strip():
                        db.execute(statement)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    # -- writing --------------------------------------------------------------------

    def record(self, exchange: Exchange) -> None:
        """Add `exchange` to the log."""
        row = tuple(asdict(exchange).values())
        insert = f"INSERT INTO exchanges ({_COLUMNS}) VALUES ({', '.join('?' * 11)})"
        self._use(lambda db: db.execute(insert, row), write=True)

    # -- reading --------------------------------------------------------------------

    def _select(self, where: str, params: tuple[Any, ...], suffix: str = "") -> list[Exchange]:
        select = f"SELECT {_COLUMNS} FROM exchanges {where} {suffix}"
        rows = self._use(lambda db: db.execute(select, params).fetchall(), write=False)
        return [Exchange(*row) for row in rows or ()]

    def last_conversation_id(self) -> str | None:
        """The conversation of the newest exchange; None for an empty log."""
        newest = self._select("", (), "ORDER BY id DESC LIMIT 1")
        return newest[0].conversation_id if newest else None

    def conversation(self, conversation_id: str) -> list[Exchange]:
        """The exchanges of one conversation, oldest first."""
        return self._select("WHERE conversation_id = ?", (conversation_id,), "ORDER BY id")

    def recent(self, count: int = 0, conversation_id: str | None = None) -> list[Exchange]:
        """The newest `count` exchanges (0: all), oldest first; of one conversation
        with `conversation_id`."""
        where, params = ("WHERE conversation_id = ?", (conversation_id,)) if (
            conversation_id is not None
        ) else ("", ())
        limit = f"LIMIT {int(count)}" if count > 0 else ""
        newest_first = self._select(where, params, f"ORDER BY id DESC {limit}")
        return newest_first[::-1]
