"""Rules the database itself enforces, whatever the client (20261202010100_reading_time_bounds.sql,
20261202010200_session_rules.sql), on a real PostgreSQL: bounded reading times, ended sessions that stay ended, and join
links capped at 7 days. Each is tried through the store and as raw SQL under the clinician's own role (the Supabase REST
path), because before these migrations only Python (or nothing) held them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import errors

from store.api import Actor
from store.common import role_and_claims
from store.errors import InvalidInput
from store.validation import (
    JOIN_LINK_MAX_LIFETIME,
    READING_CLOCK_SKEW,
    RECORDED_VIDEO_MAX_LENGTH,
)
from tests.store.conftest import HAPPY, World, readings_for


@pytest.fixture
def world(store_factory) -> World:
    return World(store_factory())


@pytest.fixture
def sql(database_url):
    conn = psycopg.connect(database_url, autocommit=True)

    @contextmanager
    def as_actor(actor: Actor) -> Iterator:
        role, claims = role_and_claims(actor)
        with conn.transaction(force_rollback=True):
            cur = conn.cursor()
            cur.execute(f"SET LOCAL ROLE {role}")
            cur.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
            yield cur

    yield as_actor
    conn.close()


def test_the_sql_constants_agree_with_the_python_store(sql):
    with sql(Actor.system()) as cur:
        row = cur.execute("SELECT app.reading_clock_skew(), app.recorded_video_max_length(), "
                          "app.join_link_max_lifetime()").fetchone()
    assert row == (READING_CLOCK_SKEW, RECORDED_VIDEO_MAX_LENGTH, JOIN_LINK_MAX_LIFETIME)


# --- bounded reading times ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("captured_at", [datetime(1971, 1, 1, tzinfo=timezone.utc), datetime(2099, 1, 1, tzinfo=timezone.utc)],
                         ids=["1971", "2099"])
def test_a_device_reading_from_a_wrong_clock_is_refused(world, captured_at):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    with pytest.raises(InvalidInput, match="is refused"):
        device_store.insert_readings(readings_for(session.id, 1, start=captured_at))
    assert store.session_aggregate(session.id).readings == 0


def test_one_bad_reading_refuses_its_whole_batch_and_says_which(world):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    good = readings_for(session.id, 3)
    bad = readings_for(session.id, 1, start=datetime(1971, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(InvalidInput, match="1971-01-01.*before the session started"):
        device_store.insert_readings(good + bad)
    assert device_store.insert_readings(good) == 3


def test_readings_within_the_clock_skew_of_the_start_and_of_now_are_taken(world):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    early = readings_for(session.id, 1, start=session.started_at - READING_CLOCK_SKEW + timedelta(seconds=5))
    ahead = readings_for(session.id, 1, start=datetime.now(timezone.utc) + READING_CLOCK_SKEW - timedelta(seconds=5))
    assert device_store.insert_readings(early + ahead) == 2
    with pytest.raises(InvalidInput, match="before the session started"):
        device_store.insert_readings(readings_for(session.id, 1, start=session.started_at - READING_CLOCK_SKEW
                                                  - timedelta(seconds=1)))
    with pytest.raises(InvalidInput, match="in the future"):
        device_store.insert_readings(readings_for(session.id, 1, start=datetime.now(timezone.utc) + READING_CLOCK_SKEW
                                                  + timedelta(seconds=5)))


@pytest.mark.parametrize("captured_at", ["1971-01-01T00:00:00Z", "2099-01-01T00:00:00Z"])
def test_raw_sql_under_the_clinicians_role_is_held_to_the_same_bounds(world, sql, captured_at):
    clinician, store = world.clinician()
    session = store.start_session(world.patient(store).id, "recorded_video")
    with sql(Actor.for_clinician(clinician)) as cur, pytest.raises(errors.RaiseException, match="invalid_input"):
        cur.execute("INSERT INTO readings (id, session_id, captured_at, angry, disgust, fear, happy, sad, surprise, "
                    "neutral, source) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'video')",
                    (uuid.uuid4(), session.id, captured_at, *HAPPY))


def test_a_recorded_video_lays_its_timeline_from_the_start_within_the_maximum_length(world):
    _, store = world.clinician()
    session = store.start_session(world.patient(store).id, "recorded_video")
    hour_in = readings_for(session.id, 2, source="video", start=session.started_at + timedelta(hours=1))
    assert store.insert_readings(hour_in) == 2  # "in the future" by the wall clock, which is how videos are laid out
    with pytest.raises(InvalidInput, match="after the video session started"):
        store.insert_readings(readings_for(session.id, 1, source="video",
                                           start=session.started_at + RECORDED_VIDEO_MAX_LENGTH + timedelta(seconds=1)))


def test_remote_readings_are_bounded_too(world):
    _, store = world.clinician()
    join = store.start_remote_session(world.patient(store).id)
    with pytest.raises(InvalidInput, match="is refused"):
        world.system.insert_remote_readings(join.token, readings_for(join.session.id, 1, source="remote",
                                                                     start=datetime(1971, 1, 1, tzinfo=timezone.utc)))
    assert world.system.insert_remote_readings(join.token, readings_for(join.session.id, 1, source="remote")) == 1


def test_late_readings_captured_in_time_still_arrive_after_the_end(world):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    ended = store.end_session(session.id)
    assert device_store.insert_readings(readings_for(session.id, 2, start=ended.ended_at - timedelta(milliseconds=600))) == 2


# --- ended sessions --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change", [
    "status = 'live', ended_at = NULL",
    "ended_at = ended_at + interval '1 day'",
    "ended_at = ended_at - interval '1 second'",
    "started_at = started_at - interval '55 years'",
])
def test_an_ended_session_cannot_be_reopened_or_rewritten_by_its_clinician(world, sql, change):
    clinician, store = world.clinician()
    session, _ = world.in_person_session(store)
    store.end_session(session.id)
    with sql(Actor.for_clinician(clinician)) as cur, pytest.raises(errors.RaiseException, match="has ended"):
        cur.execute(f"UPDATE sessions SET {change} WHERE id = %s", (session.id,))


def test_ending_an_ended_session_again_changes_nothing(world):
    _, store = world.clinician()
    session, _ = world.in_person_session(store)
    first = store.end_session(session.id)
    assert store.end_session(session.id).ended_at == first.ended_at


@pytest.mark.parametrize("change, message", [
    ("started_at = started_at - interval '1 hour'", "cannot be rewritten"),
    ("status = 'scheduled'", "cannot go back"),
    ("status = 'ended', ended_at = now() + interval '1 day'", "ends between its start and now"),
    ("status = 'ended', ended_at = started_at - interval '1 hour'", "ends between its start and now"),
])
def test_a_live_sessions_times_only_move_forward(world, sql, change, message):
    clinician, store = world.clinician()
    session, _ = world.in_person_session(store)
    with sql(Actor.for_clinician(clinician)) as cur, pytest.raises(errors.RaiseException, match=message):
        cur.execute(f"UPDATE sessions SET {change} WHERE id = %s", (session.id,))


def test_a_session_cannot_be_created_in_the_past_or_already_ended(world, sql):
    clinician, store = world.clinician()
    patient = world.patient(store)
    insert = "INSERT INTO sessions (patient_id, clinician_id, mode, status, started_at, ended_at) VALUES (%s, %s, %s, %s, %s, %s)"
    for values, message in [(("recorded_video", "live", "1971-01-01", None), "starts now"),
                            (("recorded_video", "ended", "now", "now"), "created ended")]:
        with sql(Actor.for_clinician(clinician)) as cur, pytest.raises(errors.RaiseException, match=message):
            cur.execute(insert, (patient.id, clinician.id, *values))


# --- join links ---------------------------------------------------------------------------------------------------------
def test_a_join_link_longer_than_seven_days_is_refused_by_the_database(world, sql):
    clinician, store = world.clinician()
    patient = world.patient(store)
    with sql(Actor.for_clinician(clinician)) as cur, pytest.raises(errors.RaiseException, match="join link"):
        cur.execute("INSERT INTO sessions (patient_id, clinician_id, mode, status, started_at, join_token_hash, "
                    "join_expires_at) VALUES (%s, %s, 'remote', 'live', now(), repeat('a', 64), now() + interval '30 days')",
                    (patient.id, clinician.id))
    with sql(Actor.for_clinician(clinician)) as cur:
        cur.execute("INSERT INTO sessions (patient_id, clinician_id, mode, status, started_at, join_token_hash, "
                    "join_expires_at) VALUES (%s, %s, 'remote', 'live', now(), repeat('b', 64), now() + interval '7 days')",
                    (patient.id, clinician.id))


def test_even_the_owner_cannot_store_a_link_beyond_seven_days_of_the_session(world, database_url):
    _, store = world.clinician()
    join = store.start_remote_session(world.patient(store).id, ttl=timedelta(days=7))
    with psycopg.connect(database_url, autocommit=True) as owner, pytest.raises(errors.CheckViolation):
        owner.execute("UPDATE sessions SET join_expires_at = created_at + interval '8 days' WHERE id = %s",
                      (join.session.id,))


def test_the_store_refuses_a_link_over_the_cap_before_asking_the_database(world):
    _, store = world.clinician()
    with pytest.raises(InvalidInput, match="7 days"):
        store.start_remote_session(world.patient(store).id, ttl=JOIN_LINK_MAX_LIFETIME + timedelta(seconds=1))


def test_batches_of_every_path_still_go_in_with_bounded_times(world):
    """The bounds do not disturb normal traffic: a device batch, a clinician's video batch."""
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    assert device_store.insert_readings(readings_for(session.id, 50)) == 50
    video = store.start_session(world.patient(store).id, "recorded_video")
    assert store.insert_readings(readings_for(video.id, 50, source="video")) == 50
