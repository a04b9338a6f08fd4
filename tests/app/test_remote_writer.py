"""Batched writes of remote readings, against a real PostgreSQL through the store: batching, retry without loss or
doubles, closing when the session ends, and the patient's token check."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone

import pytest

from app.remote import INVALID_LINK_MESSAGE, ReadingBatchWriter, check_join_token, join_link, remote_writer
from settings import Settings
from store.errors import StoreUnavailable
from store.models import NewPatient, Reading, RemoteJoin

PROBABILITIES = (0.05, 0.01, 0.04, 0.6, 0.1, 0.1, 0.1)


@pytest.fixture
def remote_join(clinician_store) -> RemoteJoin:
    """A live remote session for a consenting patient of the acting clinician."""
    patient = clinician_store.create_patient(NewPatient(full_name=f"Remote Patient {uuid.uuid4().hex[:6]}"))
    clinician_store.record_consent(patient.id, True, date.today(), "facial analysis during sessions")
    return clinician_store.start_remote_session(patient.id)


def make_readings(session_id: uuid.UUID, count: int) -> list[Reading]:
    return make_readings_at(session_id, datetime.now(timezone.utc), count)


def make_readings_at(session_id: uuid.UUID, start: datetime, count: int) -> list[Reading]:
    return [
        Reading(session_id=session_id, captured_at=start + timedelta(milliseconds=250 * i), probabilities=PROBABILITIES,
                source="remote", box=(100, 80, 200, 200))
        for i in range(count)
    ]


class CountingWrite:
    """Wraps the real store write: counts calls and can fail the first few the way a dropped connection does."""

    def __init__(self, write: Callable[[Sequence[Reading]], int], fail_first: int = 0, fail_after_commit: int = 0):
        self._write = write
        self.fail_first = fail_first
        self.fail_after_commit = fail_after_commit
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def __call__(self, batch: Sequence[Reading]) -> int:
        with self.lock:
            self.batches.append(len(batch))
            if self.fail_first > 0:
                self.fail_first -= 1
                raise StoreUnavailable("connection refused (injected)")
        written = self._write(batch)
        with self.lock:
            if self.fail_after_commit > 0:
                # The insert committed but the answer was lost: the writer cannot know, so it must retry safely.
                self.fail_after_commit -= 1
                raise StoreUnavailable("server closed the connection unexpectedly (injected)")
        return written


def wait_until(predicate: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def stored_ids(clinician_store, session_id: uuid.UUID) -> list[uuid.UUID]:
    return [r.id for r in clinician_store.readings_since(session_id).readings]


def test_readings_reach_their_session_in_a_few_batches(clinician_store, system_store, remote_join):
    write = CountingWrite(remote_writer(system_store, remote_join.token))
    writer = ReadingBatchWriter(write, interval_s=0.5)
    readings = make_readings(remote_join.session.id, 20)
    for reading in readings:
        writer.add(reading)
    status = writer.stop(timeout=10)
    assert status.written == 20 and status.pending == 0 and status.last_error == ""
    assert sorted(stored_ids(clinician_store, remote_join.session.id)) == sorted(r.id for r in readings)
    assert len(write.batches) <= 3  # batched, not one insert per reading


def test_the_first_reading_is_written_without_waiting_for_a_full_interval(clinician_store, system_store, remote_join):
    writer = ReadingBatchWriter(remote_writer(system_store, remote_join.token), interval_s=60)
    writer.add(make_readings(remote_join.session.id, 1)[0])
    try:
        assert wait_until(lambda: writer.status().written == 1, timeout=20)
    finally:
        writer.stop()
    assert len(stored_ids(clinician_store, remote_join.session.id)) == 1


def test_a_failed_write_keeps_the_batch_and_retries_until_stored(clinician_store, system_store, remote_join):
    write = CountingWrite(remote_writer(system_store, remote_join.token), fail_first=2)
    writer = ReadingBatchWriter(write, interval_s=0.2)
    readings = make_readings(remote_join.session.id, 12)
    for reading in readings:
        writer.add(reading)
    assert wait_until(lambda: writer.status().written == 12)
    status = writer.stop()
    assert status.failed_attempts == 2 and status.pending == 0 and status.last_error == ""
    assert sorted(stored_ids(clinician_store, remote_join.session.id)) == sorted(r.id for r in readings)


def test_readings_made_while_the_database_is_down_are_stored_once_it_is_back(
    postgres_server, clinician_store, system_store, remote_join
):
    writer = ReadingBatchWriter(remote_writer(system_store, remote_join.token), interval_s=0.2, max_backoff_s=0.5)
    readings = make_readings(remote_join.session.id, 10)
    with postgres_server.outage():
        for reading in readings:
            writer.add(reading)
        assert wait_until(lambda: writer.status().failed_attempts >= 1, timeout=60)
        status = writer.status()
        assert status.written == 0 and status.pending == 10 and status.last_error
    assert wait_until(lambda: writer.status().written == 10, timeout=60)
    writer.stop()
    assert sorted(stored_ids(clinician_store, remote_join.session.id)) == sorted(r.id for r in readings)


def test_a_retry_after_a_lost_acknowledgement_does_not_double_readings(clinician_store, system_store, remote_join):
    write = CountingWrite(remote_writer(system_store, remote_join.token), fail_after_commit=1)
    writer = ReadingBatchWriter(write, interval_s=0.2)
    readings = make_readings(remote_join.session.id, 8)
    for reading in readings:
        writer.add(reading)
    assert wait_until(lambda: writer.status().pending == 0 and writer.status().failed_attempts == 1)
    writer.stop()
    ids = stored_ids(clinician_store, remote_join.session.id)
    assert len(ids) == 8 and set(ids) == {r.id for r in readings}


def test_stop_writes_what_is_still_pending(clinician_store, system_store, remote_join):
    writer = ReadingBatchWriter(remote_writer(system_store, remote_join.token), interval_s=60)
    first, *rest = make_readings(remote_join.session.id, 6)
    writer.add(first)
    assert wait_until(lambda: writer.status().written == 1)
    for reading in rest:  # these would wait a whole minute for the next batch...
        writer.add(reading)
    status = writer.stop(timeout=10)  # ...but stopping flushes them
    assert status.written == 6
    assert len(stored_ids(clinician_store, remote_join.session.id)) == 6


def test_ending_the_session_closes_the_writer(clinician_store, system_store, remote_join):
    closed: list[str] = []
    writer = ReadingBatchWriter(remote_writer(system_store, remote_join.token), interval_s=0.1, on_closed=closed.append)
    before_end = make_readings(remote_join.session.id, 1)
    writer.add(before_end[0])
    assert wait_until(lambda: writer.status().written == 1)
    ended = clinician_store.end_session(remote_join.session.id)
    after_end = make_readings_at(remote_join.session.id, ended.ended_at + timedelta(seconds=10), 2)
    writer.add(after_end[0])
    assert wait_until(lambda: writer.status().closed_reason != "")
    assert closed and writer.status().closed_reason == closed[0]
    assert writer.status().refused == 1 and writer.status().pending == 0
    assert not writer.add(after_end[1])  # nothing more is accepted once closed
    writer.stop()
    assert stored_ids(clinician_store, remote_join.session.id) == [before_end[0].id]


def test_readings_captured_before_the_end_are_kept_when_a_batch_straddles_it(clinician_store, system_store, remote_join):
    """The store refuses a batch as a whole when any reading in it was captured after the end: the writer still stores
    the ones captured in time (the last seconds of the session) and drops only the late ones."""
    write = CountingWrite(remote_writer(system_store, remote_join.token))
    ended = clinician_store.end_session(remote_join.session.id)
    in_time = make_readings_at(remote_join.session.id, ended.ended_at - timedelta(seconds=3), 5)  # 250 ms apart
    too_late = make_readings_at(remote_join.session.id, ended.ended_at + timedelta(seconds=20), 4)
    writer = ReadingBatchWriter(write, interval_s=60)
    for reading in [*too_late[:2], *in_time, *too_late[2:]]:  # arrival order need not be capture order
        writer.add(reading)
    status = writer.stop(timeout=10)
    assert sorted(stored_ids(clinician_store, remote_join.session.id)) == sorted(r.id for r in in_time)
    assert status.written == 5 and status.refused == 4 and status.pending == 0 and status.closed_reason
    assert len(write.batches) <= 6  # the whole batch, then a bisection: a few round trips, not one per reading


def test_pending_readings_are_bounded_while_the_store_is_down(remote_join):
    def store_down(batch: Sequence[Reading]) -> int:
        raise StoreUnavailable("down (injected)")

    writer = ReadingBatchWriter(store_down, interval_s=0.05, max_pending=10, max_backoff_s=0.1)
    for reading in make_readings(remote_join.session.id, 25):
        writer.add(reading)
    status = writer.stop(timeout=0.3)
    assert status.pending == 10 and status.overflowed == 15 and status.written == 0
    assert "down" in status.last_error


def test_a_valid_token_opens_its_live_session(system_store, remote_join):
    check = check_join_token(system_store, remote_join.token)
    assert check.ok and check.session.id == remote_join.session.id and check.session.mode == "remote"


@pytest.mark.parametrize("token", ["", "   ", None, "not-a-real-token", "x" * 5000])
def test_missing_or_unknown_tokens_get_the_clear_message(system_store, token):
    check = check_join_token(system_store, token)
    assert not check.ok and check.message == INVALID_LINK_MESSAGE and not check.retry_later


def test_an_ended_sessions_token_is_refused(clinician_store, system_store, remote_join):
    clinician_store.end_session(remote_join.session.id)
    check = check_join_token(system_store, remote_join.token)
    assert not check.ok and check.message == INVALID_LINK_MESSAGE


def test_an_expired_token_is_refused(clinician_store, system_store):
    patient = clinician_store.create_patient(NewPatient(full_name="Expiring Link"))
    clinician_store.record_consent(patient.id, True, date.today(), "facial analysis during sessions")
    join = clinician_store.start_remote_session(patient.id, ttl=timedelta(seconds=1))
    time.sleep(1.5)
    check = check_join_token(system_store, join.token)
    assert not check.ok and check.message == INVALID_LINK_MESSAGE


def test_join_links_use_the_public_base_url():
    settings = Settings(public_base_url="https://clinic.example.org")
    assert join_link(settings, "abc-_123") == "https://clinic.example.org/join?token=abc-_123"
