"""The sync worker against a real PostgreSQL: device authentication, heartbeat, following the live session, draining the
spool exactly once, keeping refused readings, and riding out a database outage."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from pi_agent.spool import Spool
from pi_agent.sync import DeviceAuthError, DeviceLink, SyncWorker
from store.models import Reading
from store.postgres import PostgresStore


def make_worker(clinic, spool: Spool, key: str | None = None, manual_session: uuid.UUID | None = None) -> SyncWorker:
    link = DeviceLink(lambda: PostgresStore.connect(clinic.database_url), clinic.device_id, key or clinic.device_key)
    return SyncWorker(link, spool, manual_session=manual_session, heartbeat_seconds=0, session_poll_seconds=0,
                      batch_seconds=0.1, retry_max_seconds=1)


def readings(session_id: uuid.UUID, n: int, start: datetime | None = None) -> list[Reading]:
    start = start or datetime.now(timezone.utc)
    return [
        Reading(session_id=session_id, captured_at=start + timedelta(milliseconds=250 * i),
                probabilities=(0.1, 0.05, 0.05, 0.5, 0.1, 0.1, 0.1), source="pi", box=(1, 2, 30, 40))
        for i in range(n)
    ]


def count(clinic, session_id) -> int:
    return clinic.clinician.session_aggregate(session_id).readings


def test_follows_the_live_session_and_heartbeats(clinic, tmp_path):
    worker = make_worker(clinic, Spool(tmp_path / "spool.sqlite3"))
    worker.cycle()
    assert worker.current_session is None  # nothing live: idle
    session = clinic.start_session()
    worker.cycle()
    assert worker.current_session.session_id == session.id
    device = next(d for d in clinic.clinician.list_devices() if d.id == clinic.device_id)
    assert device.last_heartbeat is not None
    clinic.clinician.end_session(session.id)
    worker.cycle()
    assert worker.current_session is None


def test_drains_the_spool_exactly_once(clinic, tmp_path):
    session = clinic.start_session()
    spool = Spool(tmp_path / "spool.sqlite3")
    batch = readings(session.id, 1200)  # more than one upload batch
    spool.add(batch)
    worker = make_worker(clinic, spool)
    worker.cycle()
    assert spool.pending_count() == 0
    assert count(clinic, session.id) == 1200
    # The same readings spooled again (as after a crash between "sent" and "acknowledged") change nothing.
    spool.add(batch[:100])
    worker.cycle()
    assert count(clinic, session.id) == 1200
    totals = spool.totals()
    assert totals.acknowledged == totals.spooled == 1300 and totals.pending == 0


def test_readings_captured_after_the_session_ended_are_kept_aside_not_lost(clinic, tmp_path):
    session = clinic.start_session()
    spool = Spool(tmp_path / "spool.sqlite3")
    ended = clinic.clinician.end_session(session.id)
    # beyond the store's clock-skew tolerance (store.validation.LATE_READING_TOLERANCE, 5 s): the store refuses them
    spool.add(readings(session.id, 5, ended.ended_at + timedelta(seconds=30)))
    worker = make_worker(clinic, spool)
    worker.cycle()
    assert spool.pending_count() == 0
    assert spool.rejected_count() == 5


def test_readings_captured_before_the_end_and_sent_after_it_are_stored(clinic, tmp_path):
    session = clinic.start_session()
    spool = Spool(tmp_path / "spool.sqlite3")
    ended = clinic.clinician.end_session(session.id)
    spool.add(readings(session.id, 8, ended.ended_at - timedelta(seconds=2)))  # the last 2 s, still in the spool
    worker = make_worker(clinic, spool)
    worker.cycle()
    assert spool.pending_count() == 0 and spool.rejected_count() == 0
    assert count(clinic, session.id) == 8


def test_wrong_device_key_is_a_clear_fatal_error(clinic, tmp_path):
    worker = make_worker(clinic, Spool(tmp_path / "spool.sqlite3"), key="wrong-key")
    with pytest.raises(DeviceAuthError, match=str(clinic.device_id)):
        worker.cycle()


@pytest.mark.slow
def test_outage_keeps_readings_spooled_then_sends_them(clinic, postgres_server, tmp_path):
    session = clinic.start_session()
    spool = Spool(tmp_path / "spool.sqlite3")
    worker = make_worker(clinic, spool, manual_session=session.id)
    worker.start()
    try:
        spool.add(readings(session.id, 10))
        worker.wake()
        _wait_until(lambda: spool.pending_count() == 0, 20)
        postgres_server.stop()
        try:
            spool.add(readings(session.id, 30, datetime.now(timezone.utc) + timedelta(seconds=5)))
            worker.wake()
            time.sleep(3)
            assert spool.pending_count() == 30  # nothing sent, nothing lost
        finally:
            postgres_server.start()
        _wait_until(lambda: spool.pending_count() == 0, 60)
    finally:
        worker.stop(flush_timeout=15)
    assert count(clinic, session.id) == 40


def _wait_until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.2)
