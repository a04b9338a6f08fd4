"""The sync worker against a real PostgreSQL: device authentication, heartbeat, following the live session, draining the
spool exactly once, keeping refused readings, and riding out a database outage."""

from __future__ import annotations

import logging
import random
import sqlite3
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from pi_agent.spool import Spool
from pi_agent.sync import DeviceAuthError, DeviceLink, SyncWorker
from store.api import Actor
from store.errors import StoreUnavailable
from store.models import Reading
from store.postgres import PostgresStore
from store.validation import LATE_READING_TOLERANCE


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
    # after the end (stop means stop: store.validation.LATE_READING_TOLERANCE is zero): the store refuses them
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


class CountingLink(DeviceLink):
    """The real link, counting the insert round trips and able to run something (an outage) after the n-th insert."""

    def __init__(self, clinic, after_insert=None) -> None:
        super().__init__(lambda: PostgresStore.connect(clinic.database_url), clinic.device_id, clinic.device_key)
        self.inserts: list[int] = []  # batch size of every insert attempt
        self._after_insert = after_insert

    def call(self, action):
        sizes: list[int] = []

        def counting(store):
            class Recorder:  # only insert_readings is recorded; everything else goes to the real store untouched
                def __getattr__(self, name):
                    return getattr(store, name)

                def insert_readings(self, readings):
                    sizes.append(len(readings))
                    return store.insert_readings(readings)

            return action(Recorder())

        try:
            return super().call(counting)
        finally:
            self.inserts.extend(sizes)
            if sizes and self._after_insert:
                self._after_insert(len(self.inserts))


def worker_on(link: DeviceLink, spool: Spool) -> SyncWorker:
    return SyncWorker(link, spool, manual_session=None, heartbeat_seconds=0, session_poll_seconds=0,
                      batch_seconds=0.1, retry_max_seconds=1)


def straddling(session_id: uuid.UUID, ended_at: datetime) -> tuple[list[Reading], list[Reading]]:
    """What an agent polling every few seconds has spooled when the clinician ends the session: readings every 250 ms
    from 60 s before the end to 20 s after it. In time: captured by ended_at (+ LATE_READING_TOLERANCE, zero: the
    boundary itself included); late: after it."""
    start = ended_at - timedelta(seconds=60)
    spooled = readings(session_id, 321, start)  # the last one at ended_at + 20 s
    limit = ended_at + LATE_READING_TOLERANCE
    return [r for r in spooled if r.captured_at <= limit], [r for r in spooled if r.captured_at > limit]


def stored_ids(clinic, session_id) -> set[uuid.UUID]:
    return {r.id for r in clinic.clinician.readings_since(session_id).readings}


def rejected_rows(spool: Spool) -> dict[uuid.UUID, str]:
    with sqlite3.connect(spool.path) as db:
        return {uuid.UUID(i): reason for i, reason in db.execute("SELECT id, reason FROM rejected")}


def test_a_batch_straddling_the_end_stores_what_was_captured_in_time_and_sets_aside_only_the_late_readings(clinic, tmp_path,
                                                                                                       caplog):
    session = clinic.start_session()
    ended = clinic.clinician.end_session(session.id)
    in_time, late = straddling(session.id, ended.ended_at)
    assert in_time[-1].captured_at == ended.ended_at + LATE_READING_TOLERANCE  # the boundary is part of the test
    spooled = in_time + late
    random.Random(7).shuffle(spooled)  # spool order need not be capture order (e.g. two faces, clock adjustments)
    spool = Spool(tmp_path / "spool.sqlite3")
    spool.add(spooled)
    link = CountingLink(clinic)
    worker = worker_on(link, spool)

    with caplog.at_level(logging.INFO, logger="pi_agent.sync"):
        worker.cycle()

    assert stored_ids(clinic, session.id) == {r.id for r in in_time}
    # readings captured after Stop are expected at every session's end: a line of the log, not an error
    assert not [r for r in caplog.records if r.name == "pi_agent.sync" and r.levelno >= logging.ERROR]
    assert f"{len(late)} readings for session {session.id} were captured after it ended and are not stored" in caplog.text
    rejected = rejected_rows(spool)
    assert set(rejected) == {r.id for r in late}
    assert all(reason.startswith("SessionNotLive:") for reason in rejected.values())
    totals = spool.totals()
    assert (totals.spooled, totals.acknowledged, totals.rejected, totals.pending) == (321, len(in_time), len(late), 0)
    assert worker.sent == len(in_time)
    # A few round trips (bisection), not one per reading: the refused batch, then about log2(321) halves.
    assert len(link.inserts) <= 2 + 9
    # and never again: the spool does not retry what the database will always refuse
    inserts = len(link.inserts)
    worker.cycle()
    assert len(link.inserts) == inserts and spool.pending_count() == 0


def test_splitting_a_refused_batch_is_idempotent_when_part_of_it_was_already_stored(clinic, tmp_path):
    session = clinic.start_session()
    ended = clinic.clinician.end_session(session.id)
    in_time, late = straddling(session.id, ended.ended_at)
    # An earlier run stored these but died before acknowledging them: they are still in the spool.
    earlier = PostgresStore.connect(clinic.database_url)
    try:
        earlier.authenticate_device(clinic.device_id, clinic.device_key)
        earlier.as_actor(Actor.for_device(clinic.device_id)).insert_readings(in_time[:100])
    finally:
        earlier.close()
    spool = Spool(tmp_path / "spool.sqlite3")
    spool.add(in_time + late)
    worker = make_worker(clinic, spool)

    worker.cycle()
    worker.cycle()  # nothing left to do: nothing sent or counted twice

    assert stored_ids(clinic, session.id) == {r.id for r in in_time}
    assert count(clinic, session.id) == len(in_time)
    totals = spool.totals()
    assert (totals.spooled, totals.acknowledged, totals.rejected, totals.pending) == (
        len(in_time) + len(late), len(in_time), len(late), 0)


@pytest.mark.slow
def test_an_outage_in_the_middle_of_a_split_loses_nothing_and_rejects_nothing_early(clinic, postgres_server, tmp_path):
    session = clinic.start_session()
    ended = clinic.clinician.end_session(session.id)
    in_time, late = straddling(session.id, ended.ended_at)
    spool = Spool(tmp_path / "spool.sqlite3")
    spool.add(in_time + late)

    def outage_after_second_insert(inserts: int) -> None:  # the refused whole batch, then the first half stored
        if inserts == 2:
            postgres_server.stop()

    link = CountingLink(clinic, after_insert=outage_after_second_insert)
    worker = worker_on(link, spool)
    try:
        with pytest.raises(StoreUnavailable):
            worker.cycle()
        during = spool.totals()
        # The half stored before the outage is acknowledged; nothing is rejected while the database cannot answer.
        assert link.inserts[0] == len(in_time) + len(late) and during.acknowledged == link.inserts[1] > 0
        assert during.rejected == 0
        assert during.spooled == during.acknowledged + during.pending
    finally:
        postgres_server.start()
    worker.cycle()

    assert stored_ids(clinic, session.id) == {r.id for r in in_time}
    assert set(rejected_rows(spool)) == {r.id for r in late}
    totals = spool.totals()
    assert (totals.spooled, totals.acknowledged, totals.rejected, totals.pending) == (
        len(in_time) + len(late), len(in_time), len(late), 0)


def test_wrong_device_key_is_a_clear_fatal_error(clinic, tmp_path):
    worker = make_worker(clinic, Spool(tmp_path / "spool.sqlite3"), key="wrong-key")
    with pytest.raises(DeviceAuthError, match=str(clinic.device_id)):
        worker.cycle()


@pytest.mark.slow
def test_outage_keeps_readings_spooled_then_sends_them(clinic, postgres_server, tmp_path, caplog):
    session = clinic.start_session()
    spool = Spool(tmp_path / "spool.sqlite3")
    worker = make_worker(clinic, spool, manual_session=session.id)

    def failed_attempts_with_30_spooled() -> int:  # the worker logs every failed round with the spool's backlog
        return sum(1 for r in caplog.records if r.getMessage().startswith("database still unreachable; 30 readings spooled"))

    caplog.set_level(logging.INFO, logger="pi_agent.sync")
    worker.start()
    try:
        spool.add(readings(session.id, 10))
        worker.wake()
        _wait_until(lambda: spool.pending_count() == 0, 60)
        postgres_server.stop()
        try:
            spool.add(readings(session.id, 30, datetime.now(timezone.utc) + timedelta(seconds=5)))
            worker.wake()
            # A round that tried to reach the database with the 30 readings waiting, and failed.
            _wait_until(lambda: failed_attempts_with_30_spooled() >= 1, 60)
            assert spool.pending_count() == 30  # nothing sent, nothing lost
            assert database_is_down(clinic)
        finally:
            postgres_server.start()
        _wait_until(lambda: spool.pending_count() == 0, 60)
    finally:
        worker.stop(flush_timeout=15)
    assert count(clinic, session.id) == 40
    assert worker.sent == 40


def database_is_down(clinic) -> bool:
    """The outage is real: the database answers nobody, not only the worker."""
    try:
        clinic.clinician.ping()
    except StoreUnavailable:
        return True
    return False


def _wait_until(condition, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.1)
