"""The write-ahead spool: durable across process restarts, ordered, idempotent, and it never drops a refused reading."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

from pi_agent.spool import Spool
from store.models import Reading

SESSION = uuid.uuid4()
T0 = datetime(2026, 1, 5, 10, 0, 0, 123000, tzinfo=timezone.utc)


def reading(n: int, session: uuid.UUID = SESSION) -> Reading:
    probabilities = [0.05, 0.05, 0.05, 0.5, 0.1, 0.1, 0.15]
    return Reading(session_id=session, captured_at=T0 + timedelta(milliseconds=250 * n),
                   probabilities=tuple(probabilities), source="pi", box=(10, 20, 100, 110), faces=2)


def test_readings_round_trip_exactly(tmp_path):
    spool = Spool(tmp_path / "spool.sqlite3")
    original = [reading(n) for n in range(3)]
    spool.add(original)
    assert spool.oldest() == original  # ids, millisecond timestamps, probabilities, box, faces all kept
    assert spool.pending_count() == 3


def test_oldest_first_and_acknowledged_ones_are_gone(tmp_path):
    spool = Spool(tmp_path / "spool.sqlite3")
    batch = [reading(n) for n in range(10)]
    spool.add(batch[:5])
    spool.add(batch[5:])
    first = spool.oldest(limit=4)
    assert first == batch[:4]
    spool.acknowledge(r.id for r in first)
    assert spool.oldest() == batch[4:]


def test_adding_the_same_reading_twice_keeps_one(tmp_path):
    spool = Spool(tmp_path / "spool.sqlite3")
    r = reading(0)
    spool.add([r])
    spool.add([r])
    assert spool.pending_count() == 1


def test_refused_readings_are_kept_aside_not_retried(tmp_path):
    spool = Spool(tmp_path / "spool.sqlite3")
    batch = [reading(n) for n in range(3)]
    spool.add(batch)
    spool.reject(batch[:2], "SessionNotLive: session ended")
    assert spool.pending_count() == 1
    assert spool.rejected_count() == 2
    assert spool.oldest() == batch[2:]


def test_committed_readings_survive_the_process_being_killed(tmp_path):
    path = tmp_path / "spool.sqlite3"
    ids = [uuid.uuid4() for _ in range(20)]
    # A separate interpreter spools, then dies by SIGKILL without closing anything.
    code = f"""
import os, signal, uuid
from datetime import datetime, timezone
from pi_agent.spool import Spool
from store.models import Reading
spool = Spool({str(path)!r})
ids = {[str(i) for i in ids]!r}
spool.add([Reading(id=uuid.UUID(i), session_id=uuid.UUID({str(SESSION)!r}), captured_at=datetime.now(timezone.utc),
                   probabilities=(0.1,0.1,0.1,0.4,0.1,0.1,0.1), source="pi") for i in ids])
os.kill(os.getpid(), signal.SIGKILL)
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path.parent), env=_env())
    assert result.returncode == -9
    reopened = Spool(path)
    assert [r.id for r in reopened.oldest()] == ids


def _env() -> dict[str, str]:
    import os
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    return {**os.environ, "PYTHONPATH": str(root)}


def test_lifetime_totals_balance_across_reopen(tmp_path):
    path = tmp_path / "spool.sqlite3"
    spool = Spool(path)
    batch = [reading(n) for n in range(6)]
    spool.add(batch)
    spool.add(batch[:2])  # a repeat adds nothing
    spool.acknowledge(r.id for r in batch[:3])
    spool.reject(batch[3:4], "refused")
    spool.close()
    totals = Spool(path).totals()
    assert (totals.spooled, totals.acknowledged, totals.rejected, totals.pending) == (6, 3, 1, 2)
    assert totals.spooled == totals.acknowledged + totals.rejected + totals.pending
