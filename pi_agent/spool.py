"""The local write-ahead spool: every batch of readings is committed to a SQLite file first, sent to the database from
there, and deleted only once the database has accepted it.

Why write-ahead rather than "spool only when the database is down": a reading is then safe the moment its batch is
committed, whatever happens next (database down, network gone, agent killed, power cut after the OS flushed). Resending
after a crash cannot double anything because the store is idempotent on the client UUID. Readings the database refuses
for good (e.g. the session ended while the agent was offline) move to a `rejected` table with the reason: kept, not
retried forever, never silently dropped.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path

from store.models import Reading

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL,
    captured_at TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    source TEXT NOT NULL,
    box TEXT,
    faces INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    captured_at TEXT NOT NULL,
    probabilities TEXT NOT NULL,
    source TEXT NOT NULL,
    box TEXT,
    faces INTEGER NOT NULL,
    reason TEXT NOT NULL,
    rejected_at TEXT NOT NULL
);
-- Lifetime counters (across restarts): what the agent captured and what the database confirmed.
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO counters VALUES ('spooled', 0), ('acknowledged', 0);
"""
class AgentAlreadyRunning(RuntimeError):
    """Another agent process holds this spool."""


@contextlib.contextmanager
def single_instance_lock(spool_path: Path) -> Iterator[None]:
    """Hold an exclusive lock next to the spool for the life of the agent (released by the OS if the process dies)."""
    lock_path = Path(spool_path).with_suffix(".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            raise AgentAlreadyRunning(
                f"another pi_agent (pid {owner}) is already running on {spool_path}; stop it first "
                "(is the agent set up in both cron and systemd?)"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_COLUMNS = "id, session_id, captured_at, probabilities, source, box, faces"


@dataclass(frozen=True)
class SpoolTotals:
    """Lifetime counts kept in the spool file. Invariant: spooled == acknowledged + rejected + pending."""

    spooled: int  # readings ever captured into this spool
    acknowledged: int  # confirmed by the database
    rejected: int  # refused for good, kept aside
    pending: int  # waiting to be sent


class Spool:
    """Thread-safe (one connection behind a lock): the capture loop adds, the uploader takes and acknowledges."""

    def __init__(self, path: Path | str) -> None:
        path = Path(path)
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        # WAL + NORMAL: a committed batch survives the process being killed; fsync happens at checkpoints, which keeps
        # SD-card writes low (one small transaction a second).
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def add(self, readings: Sequence[Reading]) -> None:
        if not readings:
            return
        rows = [_row(r) for r in readings]
        with self._lock, self._transaction():
            before = self._db.total_changes
            self._db.executemany(f"INSERT OR IGNORE INTO pending ({_COLUMNS}) VALUES (?,?,?,?,?,?,?)", rows)
            self._bump("spooled", self._db.total_changes - before)

    def oldest(self, limit: int = 500) -> list[Reading]:
        """The oldest pending readings, in the order they were captured and spooled."""
        with self._lock:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM pending ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [_reading(row) for row in rows]

    def acknowledge(self, ids: Iterable[uuid.UUID]) -> None:
        """The database has these: forget them."""
        keys = [(str(i),) for i in ids]
        with self._lock, self._transaction():
            before = self._db.total_changes
            self._db.executemany("DELETE FROM pending WHERE id = ?", keys)
            self._bump("acknowledged", self._db.total_changes - before)

    def reject(self, readings: Sequence[Reading], reason: str) -> None:
        """The database refused these for good: keep them aside with the reason, out of the send queue."""
        now = datetime.now(timezone.utc).isoformat()
        with self._lock, self._transaction():
            self._db.executemany(
                f"INSERT OR REPLACE INTO rejected ({_COLUMNS}, reason, rejected_at) VALUES (?,?,?,?,?,?,?,?,?)",
                [(*_row(r), reason, now) for r in readings],
            )
            self._db.executemany("DELETE FROM pending WHERE id = ?", [(str(r.id),) for r in readings])

    def pending_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM pending").fetchone()[0])

    def rejected_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM rejected").fetchone()[0])

    def totals(self) -> "SpoolTotals":
        with self._lock:
            counters = dict(self._db.execute("SELECT name, value FROM counters").fetchall())
            pending = int(self._db.execute("SELECT count(*) FROM pending").fetchone()[0])
            rejected = int(self._db.execute("SELECT count(*) FROM rejected").fetchone()[0])
        return SpoolTotals(counters["spooled"], counters["acknowledged"], rejected, pending)

    def _bump(self, name: str, by: int) -> None:
        self._db.execute("UPDATE counters SET value = value + ? WHERE name = ?", (by, name))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _transaction(self):
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _row(r: Reading) -> tuple:
    return (
        str(r.id),
        str(r.session_id),
        r.captured_at.isoformat(),
        json.dumps([float(p) for p in r.probabilities]),
        r.source,
        json.dumps(list(r.box)) if r.box is not None else None,
        int(r.faces),
    )


def _reading(row: tuple) -> Reading:
    reading_id, session_id, captured_at, probabilities, source, box, faces = row
    return Reading(
        id=uuid.UUID(reading_id),
        session_id=uuid.UUID(session_id),
        captured_at=datetime.fromisoformat(captured_at),
        probabilities=tuple(json.loads(probabilities)),
        source=source,
        box=tuple(json.loads(box)) if box else None,
        faces=faces,
    )
