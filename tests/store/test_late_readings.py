"""Late readings, through the Store API on each backend that runs here: a reading captured before a session ended is part
of its record even when it reaches the database after the clinician ended it (agents batch once a second and spool
through outages). Taken: captured by ended_at (stop means stop: LATE_READING_TOLERANCE is zero, device clocks are
corrected instead), sent within LATE_READING_GRACE of the end.
Refused with SessionNotLive: anything captured after that, or sent after the grace period. Who may write is unchanged."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from store.api import Actor, Store
from store.errors import InvalidInput, InvalidToken, NotFound, PermissionDenied, SessionNotLive
from store.validation import LATE_READING_GRACE, LATE_READING_TOLERANCE
from tests.store.conftest import readings_for


def move_end_back(system: Store, session_id, by: timedelta) -> datetime:
    """Pretend the session (an hour long) ended `by` earlier (as if the readings had sat in a spool that long). Test-only
    SQL as the table owner on the system store's own connection: no API role may rewrite a session's times
    (20261202010200_session_rules.sql)."""
    with system._pool.connection() as conn:  # noqa: SLF001 - both backends here are PostgresStore
        return conn.execute("UPDATE sessions SET started_at = started_at - %s - interval '1 hour', ended_at = ended_at - %s "
                            "WHERE id = %s RETURNING ended_at", (by, by, session_id)).fetchone()["ended_at"]


def test_a_reading_captured_before_the_end_is_stored_after_the_session_ended(world):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    ended = store.end_session(session.id)
    last_seconds = readings_for(session.id, 8, start=ended.ended_at - timedelta(seconds=2))  # up to end - 0.25 s
    assert device_store.insert_readings(last_seconds) == 8
    assert store.readings_since(session.id).readings == last_seconds
    assert store.session_aggregate(session.id).readings == 8
    assert store.get_session(session.id).status == "ended"  # taking late readings does not reopen the session


def test_stop_means_stop_a_reading_captured_1_s_after_the_end_is_refused(world):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    ended = store.end_session(session.id)
    assert LATE_READING_TOLERANCE == timedelta(0)
    with pytest.raises(SessionNotLive, match="after the end"):
        device_store.insert_readings(readings_for(session.id, 1, start=ended.ended_at + timedelta(seconds=1)))
    assert device_store.insert_readings(readings_for(session.id, 1, start=ended.ended_at)) == 1  # at Stop itself
    assert len(store.readings_since(session.id).readings) == 1


def test_a_reading_captured_after_the_end_is_refused_with_its_whole_batch(world):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    ended = store.end_session(session.id)
    before = readings_for(session.id, 2, start=ended.ended_at - timedelta(seconds=1))
    after = readings_for(session.id, 1, start=ended.ended_at + LATE_READING_TOLERANCE + timedelta(milliseconds=1))
    with pytest.raises(SessionNotLive, match="after the end"):
        device_store.insert_readings(before + after)
    assert store.readings_since(session.id).readings == []  # all or nothing, as ever
    assert device_store.insert_readings(before) == 2  # the caller can send the part captured in time


def test_late_readings_are_refused_once_the_grace_period_is_over(world):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    store.end_session(session.id)
    ended_at = move_end_back(world.system, session.id, LATE_READING_GRACE + timedelta(seconds=1))
    with pytest.raises(SessionNotLive, match="more than"):
        device_store.insert_readings(readings_for(session.id, 1, start=ended_at - timedelta(minutes=5)))
    assert store.readings_since(session.id).readings == []


def test_spooled_readings_are_taken_late_in_the_grace_period(world):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    store.end_session(session.id)
    ended_at = move_end_back(world.system, session.id, LATE_READING_GRACE - timedelta(minutes=1))
    spooled = readings_for(session.id, 4, start=ended_at - timedelta(minutes=10))
    assert device_store.insert_readings(spooled) == 4


def test_a_retry_of_stored_readings_is_a_no_op_even_after_the_grace_period(world):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    batch = readings_for(session.id, 3)
    assert device_store.insert_readings(batch) == 3
    store.end_session(session.id)
    move_end_back(world.system, session.id, LATE_READING_GRACE * 2)
    assert device_store.insert_readings(batch) == 0  # the acknowledgement was lost; the readings are in the record
    assert len(store.readings_since(session.id).readings) == 3


def test_another_device_still_cannot_write_late_readings_into_the_session(world):
    _, store = world.clinician()
    session, _ = world.in_person_session(store)
    _, intruder = world.device(store)
    ended = store.end_session(session.id)
    with pytest.raises((NotFound, PermissionDenied)):
        intruder.insert_readings(readings_for(session.id, 1, start=ended.ended_at - timedelta(seconds=1)))
    assert store.readings_since(session.id).readings == []


def test_late_readings_do_not_change_which_session_is_live_for_the_device(world):
    _, store = world.clinician()
    first, device_store = world.in_person_session(store)
    ended = store.end_session(first.id)
    second = store.start_session(world.patient(store).id, "in_person", first.device_id)
    assert device_store.insert_readings(readings_for(first.id, 2, start=ended.ended_at - timedelta(seconds=1))) == 2
    assert device_store.live_session_for_device().id == second.id
    store.end_session(second.id)
    assert device_store.live_session_for_device() is None


def test_a_clinician_uploads_late_recorded_video_readings_into_their_own_session(world):
    _, store = world.clinician()
    session = store.start_session(world.patient(store).id, "recorded_video")
    ended = store.end_session(session.id)
    # the last half second of the video, up to its end
    assert store.insert_readings(readings_for(session.id, 2, source="video",
                                              start=ended.ended_at - timedelta(milliseconds=250))) == 2
    _, other = world.clinician()
    with pytest.raises(NotFound):
        other.insert_readings(readings_for(session.id, 1, source="video", start=ended.ended_at))


# --- the patient's browser: the join token -----------------------------------------------------------------------------------
def test_remote_readings_captured_before_the_end_are_stored_with_the_token_after_it(world):
    _, store = world.clinician()
    join = store.start_remote_session(world.patient(store).id)
    remote = world.system.as_actor(Actor("remote"))
    ended = store.end_session(join.session.id)
    late = readings_for(join.session.id, 3, source="remote", start=ended.ended_at - timedelta(seconds=1))
    assert remote.insert_remote_readings(join.token, late) == 3
    assert remote.insert_remote_readings(join.token, late) == 0  # idempotent on the reading ids
    assert store.readings_since(join.session.id).readings == late
    with pytest.raises(InvalidToken):
        remote.session_for_token(join.token)  # the link no longer opens the session


def test_remote_readings_captured_after_the_end_are_refused(world):
    _, store = world.clinician()
    join = store.start_remote_session(world.patient(store).id)
    remote = world.system.as_actor(Actor("remote"))
    ended = store.end_session(join.session.id)
    with pytest.raises(SessionNotLive):
        remote.insert_remote_readings(join.token, readings_for(
            join.session.id, 1, source="remote", start=ended.ended_at + LATE_READING_TOLERANCE + timedelta(seconds=1)))
    assert store.readings_since(join.session.id).readings == []


def test_the_token_is_dead_for_good_after_the_grace_period(world):
    _, store = world.clinician()
    join = store.start_remote_session(world.patient(store).id)
    remote = world.system.as_actor(Actor("remote"))
    store.end_session(join.session.id)
    ended_at = move_end_back(world.system, join.session.id, LATE_READING_GRACE + timedelta(seconds=1))
    with pytest.raises(InvalidToken):
        remote.insert_remote_readings(join.token, readings_for(join.session.id, 1, source="remote",
                                                               start=ended_at - timedelta(seconds=1)))
    assert store.readings_since(join.session.id).readings == []


def test_the_token_of_one_ended_session_cannot_write_late_readings_into_another(world):
    _, store = world.clinician()
    join = store.start_remote_session(world.patient(store).id)
    other = store.start_remote_session(world.patient(store).id)
    remote = world.system.as_actor(Actor("remote"))
    ended = store.end_session(join.session.id)
    store.end_session(other.session.id)
    with pytest.raises(InvalidInput, match="token's session"):
        remote.insert_remote_readings(join.token, readings_for(other.session.id, 1, source="remote",
                                                               start=ended.ended_at - timedelta(seconds=1)))
    assert store.readings_since(other.session.id).readings == []
