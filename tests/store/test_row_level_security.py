"""Row-level security on a real PostgreSQL, exercised the way PostgREST runs each request: in a transaction,
`SET LOCAL ROLE <role>` and `set_config('request.jwt.claims', '<claims json>', true)`, then plain SQL.

Data is set up through the store (service role); every check below bypasses the store, so these policies hold for any
client with a JWT: the Supabase REST API, a misbehaving app, a stolen device key.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import errors

from store.api import Actor
from store.common import role_and_claims
from store.validation import CLOCK_OFFSET_LIMIT, LATE_READING_GRACE, LATE_READING_TOLERANCE, late_readings_refusal, reading_row
from tests.store.conftest import HAPPY, World, readings_for

READING_COLUMNS = "id, session_id, captured_at, angry, disgust, fear, happy, sad, surprise, neutral, source"


@pytest.fixture
def sql(database_url):
    """`with sql(actor) as cur:` runs statements as PostgREST would for that actor; rolled back at the end."""
    conn = psycopg.connect(database_url, autocommit=True)

    @contextmanager
    def as_actor(actor: Actor | None = None, role: str | None = None, claims: dict | None = None) -> Iterator:
        if actor is not None:
            role, claims = role_and_claims(actor)
        tx = conn.transaction(force_rollback=True)
        with tx:
            cur = conn.cursor()
            cur.execute(f"SET LOCAL ROLE {role}")
            cur.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims or {}),))
            yield cur

    yield as_actor
    conn.close()


@pytest.fixture
def world(store_factory) -> World:
    return World(store_factory())


def reading_values(session_id: uuid.UUID, captured_at: datetime | None = None) -> tuple:
    return (uuid.uuid4(), session_id, captured_at or datetime.now(timezone.utc), *HAPPY, "pi")


INSERT_READING = f"INSERT INTO readings ({READING_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


def clinician_actor(clinician) -> Actor:
    return Actor.for_clinician(clinician)


# --- patients and records --------------------------------------------------------------------------------------------------
def test_a_clinician_selects_only_their_own_patients(world, sql):
    alice, alice_store = world.clinician()
    _, bob_store = world.clinician()
    mine, theirs = world.patient(alice_store), world.patient(bob_store)
    with sql(clinician_actor(alice)) as cur:
        ids = {row[0] for row in cur.execute("SELECT id FROM patients")}
    assert mine.id in ids and theirs.id not in ids


def test_an_admin_selects_every_patient(world, sql):
    admin, _ = world.clinician("admin")
    _, alice_store = world.clinician()
    _, bob_store = world.clinician()
    a, b = world.patient(alice_store), world.patient(bob_store)
    with sql(clinician_actor(admin)) as cur:
        ids = {row[0] for row in cur.execute("SELECT id FROM patients")}
    assert {a.id, b.id} <= ids


def test_the_admin_claim_alone_does_not_make_a_device_an_admin(world, sql):
    _, store = world.clinician()
    patient = world.patient(store)
    device, _ = world.device(store)
    claims = {"role": "authenticated", "actor": "device", "sub": str(device.id), "app_role": "admin"}
    with sql(role="authenticated", claims=claims) as cur:
        assert cur.execute("SELECT count(*) FROM patients WHERE id = %s", (patient.id,)).fetchone()[0] == 0


def test_a_clinician_cannot_create_a_patient_owned_by_someone_else(world, sql):
    alice, _ = world.clinician()
    bob, _ = world.clinician()
    with sql(clinician_actor(alice)) as cur, pytest.raises(errors.InsufficientPrivilege, match="row-level security"):
        cur.execute("INSERT INTO patients (clinician_id, full_name) VALUES (%s, 'stolen')", (bob.id,))


def test_updates_to_another_clinicians_patient_touch_no_rows(world, sql):
    alice, _ = world.clinician()
    _, bob_store = world.clinician()
    theirs = world.patient(bob_store)
    with sql(clinician_actor(alice)) as cur:
        assert cur.execute("UPDATE patients SET notes = 'x' WHERE id = %s", (theirs.id,)).rowcount == 0


def test_a_clinician_cannot_hand_their_patient_to_another_clinician(world, sql):
    alice, alice_store = world.clinician()
    bob, _ = world.clinician()
    mine = world.patient(alice_store)
    with sql(clinician_actor(alice)) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("UPDATE patients SET clinician_id = %s WHERE id = %s", (bob.id, mine.id))


def test_record_entries_follow_their_patient_and_are_authored_by_the_writer(world, sql):
    alice, alice_store = world.clinician()
    bob, _ = world.clinician()
    patient = world.patient(alice_store)
    alice_store.add_record_entry(patient.id, date.today(), "other", "private")
    with sql(clinician_actor(bob)) as cur:
        assert cur.execute("SELECT count(*) FROM record_entries").fetchone()[0] == 0
    with sql(clinician_actor(bob)) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("INSERT INTO record_entries (patient_id, entry_date, kind, text, author_id) "
                    "VALUES (%s, now(), 'other', 'x', %s)", (patient.id, bob.id))
    with sql(clinician_actor(alice)) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("INSERT INTO record_entries (patient_id, entry_date, kind, text, author_id) "
                    "VALUES (%s, now(), 'other', 'x', %s)", (patient.id, bob.id))  # forged author


# --- secrets are not readable ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("statement", [
    "SELECT password_hash FROM clinicians",
    "SELECT key_hash FROM devices",
    "SELECT join_token_hash FROM sessions",
    "SELECT * FROM devices",
])
def test_authenticated_users_cannot_read_secret_hashes(world, sql, statement):
    admin, _ = world.clinician("admin")
    with sql(clinician_actor(admin)) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(statement)


def test_a_clinician_cannot_create_accounts_or_raise_their_role(world, sql):
    alice, _ = world.clinician()
    with sql(clinician_actor(alice)) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("INSERT INTO clinicians (username, display_name, password_hash, role) "
                    "VALUES ('mallory', 'M', 'x', 'admin')")
    with sql(clinician_actor(alice)) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("UPDATE clinicians SET role = 'admin' WHERE id = %s", (alice.id,))


# --- sessions --------------------------------------------------------------------------------------------------------------------
def test_no_session_row_can_be_created_for_a_patient_without_consent(world, sql):
    alice, alice_store = world.clinician()
    patient = world.patient(alice_store, consent=False)
    with sql(clinician_actor(alice)) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("INSERT INTO sessions (patient_id, clinician_id, mode, status, started_at) "
                    "VALUES (%s, %s, 'recorded_video', 'live', now())", (patient.id, alice.id))


def test_devices_act_as_their_own_role_which_sees_no_table(world, sql):
    _, store = world.clinician()
    session, _ = world.in_person_session(store)
    for statement in ["SELECT id FROM sessions", "SELECT * FROM readings", "SELECT id FROM devices",
                      "SELECT * FROM patients", "SELECT * FROM audit_log"]:
        with sql(Actor.for_device(session.device_id)) as cur, pytest.raises(errors.InsufficientPrivilege):
            cur.execute(statement)


def test_device_claims_under_the_authenticated_role_see_nothing_either(world, sql):
    """The device branches of the authenticated policies are gone (20261202010000_device_role.sql)."""
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    device_store.insert_readings(readings_for(session.id, 2))
    claims = {"role": "authenticated", "actor": "device", "sub": str(session.device_id)}
    with sql(role="authenticated", claims=claims) as cur:
        assert cur.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
        assert cur.execute("SELECT count(*) FROM readings").fetchone()[0] == 0
    with sql(role="authenticated", claims=claims) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(INSERT_READING, reading_values(session.id))


# --- readings --------------------------------------------------------------------------------------------------------------------
# Table inserts under RLS are the clinicians' path (recorded video; the Supabase REST API); devices use
# public.device_insert_readings (tests/store/test_device_role.py).
def test_a_clinician_inserts_readings_into_their_live_session(world, sql):
    alice, store = world.clinician()
    session, _ = world.in_person_session(store)
    with sql(clinician_actor(alice)) as cur:
        assert cur.execute(INSERT_READING, reading_values(session.id)).rowcount == 1


def test_a_clinician_cannot_insert_into_another_clinicians_session(world, sql):
    _, store = world.clinician()
    bob, _ = world.clinician()
    session, _ = world.in_person_session(store)
    with sql(clinician_actor(bob)) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(INSERT_READING, reading_values(session.id))


# Late readings (20261125100000_late_readings.sql, 20261203010000_device_clock.sql): after the end, only readings captured
# by ended_at (stop means stop: device clocks are corrected, no tolerance), and only for 24 h after the end.
def test_a_reading_captured_before_the_end_is_inserted_after_the_session_ended(world, sql):
    alice, store = world.clinician()
    session, _ = world.in_person_session(store)
    ended = store.end_session(session.id)
    with sql(clinician_actor(alice)) as cur:
        assert cur.execute(INSERT_READING, reading_values(session.id, ended.ended_at - timedelta(milliseconds=2))).rowcount == 1
        assert cur.execute(INSERT_READING, reading_values(session.id, ended.ended_at)).rowcount == 1  # at the end itself


def test_a_reading_captured_after_the_session_ended_is_refused(world, sql):
    alice, store = world.clinician()
    session, _ = world.in_person_session(store)
    ended = store.end_session(session.id)
    late = ended.ended_at + timedelta(milliseconds=1)  # just after Stop (there was a 5 s tolerance: now none)
    with sql(clinician_actor(alice)) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(INSERT_READING, reading_values(session.id, late))


def test_late_readings_are_refused_once_the_grace_period_is_over(world, sql, database_url):
    alice, store = world.clinician()
    session, _ = world.in_person_session(store)
    store.end_session(session.id)
    with psycopg.connect(database_url, autocommit=True) as conn:  # the owner simulates time passing
        ended_at = conn.execute("UPDATE sessions SET started_at = now() - interval '25 hours', "
                                "ended_at = now() - interval '24 hours 1 second' WHERE id = %s "
                                "RETURNING ended_at", (session.id,)).fetchone()[0]
    with sql(clinician_actor(alice)) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(INSERT_READING, reading_values(session.id, ended_at - timedelta(seconds=1)))


def test_a_scheduled_session_takes_no_readings(world, sql, database_url):
    alice, store = world.clinician()
    session, _ = world.in_person_session(store)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE sessions SET status = 'scheduled', started_at = NULL WHERE id = %s", (session.id,))
    with sql(clinician_actor(alice)) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(INSERT_READING, reading_values(session.id, datetime(2020, 1, 1, tzinfo=timezone.utc)))


def test_the_insert_function_explains_late_refusals_and_skips_stored_readings(world, sql, database_url):
    alice, store = world.clinician()
    session, _ = world.in_person_session(store)
    stored = readings_for(session.id, 2)
    store.insert_readings(stored)
    ended = store.end_session(session.id)
    after = readings_for(session.id, 1, start=ended.ended_at + timedelta(seconds=1))
    with sql(clinician_actor(alice)) as cur, pytest.raises(errors.RaiseException,
                                                           match="session_not_live: .* after the end"):
        cur.execute("SELECT insert_readings(%s::jsonb)", (json.dumps([reading_row(r) for r in after]),))
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE sessions SET started_at = now() - interval '3 days', ended_at = now() - interval '2 days' "
                     "WHERE id = %s", (session.id,))
    with sql(clinician_actor(alice)) as cur, pytest.raises(errors.RaiseException,
                                                           match="session_not_live: .* more than"):
        cur.execute("SELECT insert_readings(%s::jsonb)", (json.dumps([reading_row(r) for r in after]),))
    # a retry of readings already stored is a no-op, not a refusal, whatever the session's state
    with sql(clinician_actor(alice)) as cur:
        assert cur.execute("SELECT insert_readings(%s::jsonb)",
                           (json.dumps([reading_row(r) for r in stored]),)).fetchone()[0] == 0


def test_the_late_reading_constants_agree_with_the_python_store(world, sql):
    with sql(Actor.system()) as cur:
        tolerance, grace, offset_limit = cur.execute(
            "SELECT app.late_reading_tolerance(), app.late_reading_grace(), app.device_clock_offset_limit()").fetchone()
    assert (tolerance, grace, offset_limit) == (LATE_READING_TOLERANCE, LATE_READING_GRACE, CLOCK_OFFSET_LIMIT)
    assert tolerance == timedelta(0)  # stop means stop: clocks are corrected, not absorbed by a tolerance


@pytest.mark.parametrize("status, ended_ago, captured_after_end, taken", [
    ("live", None, timedelta(hours=1), True),
    ("scheduled", None, timedelta(hours=-1), False),
    ("ended", timedelta(minutes=1), timedelta(seconds=-30), True),
    ("ended", timedelta(minutes=1), timedelta(0), True),
    ("ended", timedelta(minutes=1), timedelta(microseconds=1), False),
    ("ended", timedelta(minutes=1), timedelta(seconds=1), False),
    ("ended", timedelta(hours=23, minutes=59), timedelta(0), True),
    ("ended", timedelta(hours=24, minutes=1), timedelta(0), False),
], ids=["live", "scheduled", "captured before the end", "at the end", "just after the end", "1 s after the end",
        "within the grace",
        "after the grace"])
def test_sql_and_python_apply_the_same_late_reading_rule(world, sql, status, ended_ago, captured_after_end, taken):
    with sql(Actor.system()) as cur:
        now = cur.execute("SELECT now()").fetchone()[0]
        ended_at = None if ended_ago is None else now - ended_ago
        captured_at = (ended_at or now) + captured_after_end
        in_sql = cur.execute("SELECT app.session_takes_reading(%s, %s, %s)", (status, ended_at, captured_at)).fetchone()[0]
    in_python = late_readings_refusal("s", status, ended_at, captured_at, now) is None
    assert in_sql is in_python is taken


def test_devices_cannot_end_sessions_or_rewrite_readings(world, sql):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    for statement in ["UPDATE sessions SET status = 'ended', ended_at = now()", "UPDATE readings SET happy = 1",
                      "DELETE FROM readings"]:
        with sql(Actor.for_device(session.device_id)) as cur, pytest.raises(errors.InsufficientPrivilege):
            cur.execute(statement)


def test_clinicians_read_only_their_sessions_readings(world, sql):
    alice, alice_store = world.clinician()
    bob, _ = world.clinician()
    session, device_store = world.in_person_session(alice_store)
    device_store.insert_readings(readings_for(session.id, 2))
    with sql(clinician_actor(alice)) as cur:
        assert cur.execute("SELECT count(*) FROM readings").fetchone()[0] == 2
    with sql(clinician_actor(bob)) as cur:
        assert cur.execute("SELECT count(*) FROM readings").fetchone()[0] == 0


def test_the_cursor_column_cannot_be_forged(world, sql):
    alice, store = world.clinician()
    session, _ = world.in_person_session(store)
    with sql(clinician_actor(alice)) as cur:
        cur.execute(f"INSERT INTO readings ({READING_COLUMNS}, seq) VALUES "
                    "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 999999999)", reading_values(session.id))
        assert cur.execute("SELECT max(seq) FROM readings").fetchone()[0] < 999999999


def test_the_probability_constraints_hold_in_sql_too(world, sql):
    alice, store = world.clinician()
    session, _ = world.in_person_session(store)
    for bad in [("NaN", 0, 0, 0, 0, 0, 0), (-0.5, 0.5, 0.5, 0.5, 0, 0, 0), (0.5, 0, 0, 0, 0, 0, 0)]:
        with sql(clinician_actor(alice)) as cur, pytest.raises(errors.CheckViolation):
            cur.execute(INSERT_READING, (uuid.uuid4(), session.id, datetime.now(timezone.utc), *bad, "pi"))


# --- remote patients (anon + join token) -------------------------------------------------------------------------------------
def test_anon_reads_and_writes_no_table(world, sql):
    for statement in ["SELECT * FROM patients", "SELECT * FROM readings", "SELECT id FROM sessions",
                      "SELECT * FROM audit_log"]:
        with sql(role="anon") as cur, pytest.raises(errors.InsufficientPrivilege):
            cur.execute(statement)


def test_anon_inserts_readings_only_through_the_token_function(world, sql):
    _, store = world.clinician()
    join = store.start_remote_session(world.patient(store).id)
    with sql(role="anon") as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute(INSERT_READING, reading_values(join.session.id))
    row = {"id": str(uuid.uuid4()), "session_id": str(join.session.id),
           "captured_at": datetime.now(timezone.utc).isoformat(), "source": "remote",
           **dict(zip(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"], HAPPY))}
    with sql(role="anon") as cur:
        assert cur.execute("SELECT insert_remote_readings(%s, %s::jsonb)", (join.token, json.dumps([row]))).fetchone()[0] == 1
    with sql(role="anon") as cur, pytest.raises(errors.RaiseException, match="invalid_token"):
        cur.execute("SELECT insert_remote_readings(%s, %s::jsonb)", ("wrong-token-" + "x" * 30, json.dumps([row])))


def test_an_expired_join_token_is_refused_by_the_database(world, sql, database_url):
    _, store = world.clinician()
    join = store.start_remote_session(world.patient(store).id)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE sessions SET join_expires_at = now() - interval '1 second' WHERE id = %s", (join.session.id,))
    with sql(role="anon") as cur, pytest.raises(errors.RaiseException, match="invalid_token"):
        cur.execute("SELECT * FROM session_for_token(%s)", (join.token,))


def remote_rows(session_id: uuid.UUID, captured_at: datetime) -> str:
    return json.dumps([reading_row(r) for r in readings_for(session_id, 1, source="remote", start=captured_at)])


def test_anon_sends_late_readings_with_the_token_of_an_ended_session_within_the_grace_period(world, sql, database_url):
    _, store = world.clinician()
    join = store.start_remote_session(world.patient(store).id)
    ended = store.end_session(join.session.id)
    insert = "SELECT insert_remote_readings(%s, %s::jsonb)"
    with sql(role="anon") as cur:
        assert cur.execute(insert, (join.token, remote_rows(join.session.id, ended.ended_at))).fetchone()[0] == 1
    with sql(role="anon") as cur, pytest.raises(errors.RaiseException, match="session_not_live: .* after the end"):
        cur.execute(insert, (join.token, remote_rows(join.session.id, ended.ended_at + timedelta(seconds=6))))
    with sql(role="anon") as cur, pytest.raises(errors.RaiseException, match="invalid_token"):
        cur.execute("SELECT * FROM session_for_token(%s)", (join.token,))  # the patient's page: the session is over
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE sessions SET ended_at = now() - interval '25 hours' WHERE id = %s", (join.session.id,))
    with sql(role="anon") as cur, pytest.raises(errors.RaiseException, match="invalid_token"):
        cur.execute(insert, (join.token, remote_rows(join.session.id, ended.ended_at - timedelta(days=1, hours=2))))


def test_anon_sends_readings_captured_before_the_link_expired_but_none_after(world, sql, database_url):
    _, store = world.clinician()
    join = store.start_remote_session(world.patient(store).id)
    with psycopg.connect(database_url, autocommit=True) as conn:
        expired = conn.execute("UPDATE sessions SET join_expires_at = now() - interval '1 minute' WHERE id = %s "
                               "RETURNING join_expires_at", (join.session.id,)).fetchone()[0]
    insert = "SELECT insert_remote_readings(%s, %s::jsonb)"
    with sql(role="anon") as cur:
        assert cur.execute(insert, (join.token, remote_rows(join.session.id, expired - timedelta(seconds=1)))).fetchone()[0] == 1
    with sql(role="anon") as cur, pytest.raises(errors.RaiseException, match="invalid_token"):
        cur.execute(insert, (join.token, remote_rows(join.session.id, expired + timedelta(seconds=30))))


def test_a_late_remote_batch_still_goes_only_into_the_tokens_session(world, sql):
    _, store = world.clinician()
    join = store.start_remote_session(world.patient(store).id)
    other = store.start_remote_session(world.patient(store).id)
    ended = store.end_session(join.session.id)
    store.end_session(other.session.id)
    with sql(role="anon") as cur, pytest.raises(errors.RaiseException, match="token's session"):
        cur.execute("SELECT insert_remote_readings(%s, %s::jsonb)",
                    (join.token, remote_rows(other.session.id, ended.ended_at - timedelta(seconds=1))))


def test_the_token_function_never_returns_the_token_hash(world, sql):
    _, store = world.clinician()
    join = store.start_remote_session(world.patient(store).id)
    with sql(role="anon") as cur:
        cur.execute("SELECT * FROM session_for_token(%s)", (join.token,))
        assert "join_token_hash" not in [c.name for c in cur.description]


def test_anon_cannot_call_the_clinician_reading_functions(world, sql):
    _, store = world.clinician()
    session, _ = world.in_person_session(store)
    with sql(role="anon") as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("SELECT * FROM readings_since(%s)", (session.id,))


# --- audit -----------------------------------------------------------------------------------------------------------------------
def test_nobody_writes_audit_rows_in_another_actors_name(world, sql):
    alice, _ = world.clinician()
    bob, _ = world.clinician()
    with sql(clinician_actor(alice)) as cur:
        cur.execute("INSERT INTO audit_log (actor, action, entity) VALUES (%s, 'export', 'session')",
                    (f"clinician:{alice.id}",))
    with sql(clinician_actor(alice)) as cur, pytest.raises(errors.InsufficientPrivilege):
        cur.execute("INSERT INTO audit_log (actor, action, entity) VALUES (%s, 'export', 'session')",
                    (f"clinician:{bob.id}",))


def test_only_admins_read_the_audit_log_and_nobody_edits_it(world, sql):
    alice, alice_store = world.clinician()
    admin, _ = world.clinician("admin")
    world.patient(alice_store)
    with sql(clinician_actor(alice)) as cur:
        assert cur.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0
    with sql(clinician_actor(admin)) as cur:
        assert cur.execute("SELECT count(*) FROM audit_log").fetchone()[0] > 0
    for statement in ["UPDATE audit_log SET action = 'nothing'", "DELETE FROM audit_log"]:
        with sql(clinician_actor(admin)) as cur, pytest.raises(errors.InsufficientPrivilege):
            cur.execute(statement)


def test_the_service_role_bypasses_row_level_security(world, sql):
    _, alice_store = world.clinician()
    patient = world.patient(alice_store)
    with sql(Actor.system()) as cur:
        assert cur.execute("SELECT count(*) FROM patients WHERE id = %s", (patient.id,)).fetchone()[0] == 1


def test_a_request_without_claims_sees_nothing(world, sql):
    _, alice_store = world.clinician()
    world.patient(alice_store)
    with sql(role="authenticated", claims={}) as cur:
        assert cur.execute("SELECT count(*) FROM patients").fetchone()[0] == 0
        assert cur.execute("SELECT count(*) FROM sessions").fetchone()[0] == 0
