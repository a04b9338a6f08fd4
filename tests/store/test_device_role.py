"""A stolen Raspberry Pi: what its env file's credentials can do, tried as an attacker would, on a real PostgreSQL.

Every Pi gets its own database login (20261202010000_device_role.sql; `python -m store.devices provision`). With it one can
heartbeat, learn whether a session is live for this device and add readings to that session, through four SECURITY
DEFINER functions; nothing else: no table, no other device, no escalation.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import errors

from pi_agent.config import AgentConfig
from pi_agent.sync import DeviceLink
from store import open_store
from store.api import Actor
from store.devices import agent_env_text, device_database_url, main as devices_main
from store.errors import InvalidInput, NotFound, PermissionDenied
from store.postgres import PostgresStore
from store.validation import reading_row
from tests.store.conftest import World, readings_for

TABLES = ["patients", "clinicians", "record_entries", "annotations", "audit_log", "readings", "sessions", "devices"]


@pytest.fixture
def world(store_factory) -> World:
    return World(store_factory())


@pytest.fixture
def clinic(world, database_url):
    """A clinician with a live in-person session on a registered device, and that device's own credentials."""
    _, store = world.clinician()
    patient = world.patient(store)
    registration = store.register_device("pi-room-1", "Room 1")
    session = store.start_session(patient.id, "in_person", registration.device.id)
    url = device_database_url(database_url, registration.login, registration.key)
    return store, patient, registration, session, url


@pytest.fixture
def device_sql(clinic):
    conn = psycopg.connect(clinic[4], autocommit=True)
    yield conn
    conn.close()


def test_registering_a_device_creates_a_login_with_no_power_of_its_own(clinic, database_url):
    _, _, registration, _, _ = clinic
    assert registration.login == "psya_dev_" + registration.device.id.hex
    with psycopg.connect(database_url) as admin:
        row = admin.execute("SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolreplication, rolcanlogin, "
                            "rolconnlimit FROM pg_roles WHERE rolname = %s", (registration.login,)).fetchone()
        memberships = [r[0] for r in admin.execute(
            "SELECT b.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member "
            "JOIN pg_roles b ON b.oid = m.roleid WHERE r.rolname = %s", (registration.login,))]
        owns = admin.execute("SELECT count(*) FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = %s)",
                             (registration.login,)).fetchone()[0]
    assert row == (False, False, False, False, False, True, 10)
    assert memberships == ["psya_device"] and owns == 0


@pytest.mark.parametrize("table", TABLES)
def test_the_device_login_reads_no_table(device_sql, table):
    with pytest.raises(errors.InsufficientPrivilege):
        device_sql.execute(f"SELECT * FROM {table} LIMIT 1")


@pytest.mark.parametrize("statement", [
    "UPDATE sessions SET status = 'ended', ended_at = now()",
    "DELETE FROM audit_log",
    "UPDATE devices SET last_heartbeat = now()",
    "UPDATE devices SET clock_offset_ms = 0",
    "INSERT INTO patients (clinician_id, full_name) VALUES (gen_random_uuid(), 'x')",
    "SELECT * FROM readings_since('00000000-0000-0000-0000-000000000000')",
    "SELECT * FROM session_aggregate('00000000-0000-0000-0000-000000000000')",
    "SELECT insert_readings('[]'::jsonb)",
    "SELECT app.create_device_login(gen_random_uuid(), 'x')",
])
def test_the_device_login_writes_nothing_and_calls_no_other_function(device_sql, statement):
    with pytest.raises((errors.InsufficientPrivilege, errors.UndefinedFunction)):
        device_sql.execute(statement)


@pytest.mark.parametrize("role", ["authenticated", "service_role", "anon", "postgres"])
def test_the_device_login_cannot_switch_to_a_privileged_role(device_sql, role):
    with pytest.raises(errors.InsufficientPrivilege):
        device_sql.execute(f"SET ROLE {role}")


def test_reset_role_and_forged_claims_change_nothing(clinic, device_sql, world):
    store, patient, registration, session, _ = clinic
    other = store.register_device("pi-room-2", "Room 2")
    device_sql.execute("RESET ROLE")
    for claims in [{"role": "service_role"}, {"role": "psya_device", "sub": str(other.device.id)},
                   {"role": "authenticated", "actor": "clinician", "sub": str(store.actor.id), "app_role": "admin"}]:
        device_sql.execute("SELECT set_config('request.jwt.claims', %s, false)", (json.dumps(claims),))
        with pytest.raises(errors.InsufficientPrivilege):
            device_sql.execute("SELECT * FROM patients")
        device_sql.execute("SELECT device_heartbeat()")  # acts as itself, whatever the claims say
    # with the other device's claims it still saw and stamped only itself
    assert device_sql.execute("SELECT id FROM device_live_session()").fetchone()[0] == session.id
    beats = {d.id: d.last_heartbeat for d in store.list_devices()}
    assert beats[registration.device.id] is not None and beats[other.device.id] is None


def test_the_device_cannot_create_roles_or_objects(device_sql):
    for statement in ["CREATE ROLE intruder LOGIN", "CREATE TABLE public.loot (x int)",
                      "GRANT psya_device TO CURRENT_USER", "ALTER ROLE CURRENT_USER BYPASSRLS"]:
        with pytest.raises(errors.InsufficientPrivilege):
            device_sql.execute(statement)


def test_the_store_over_the_device_login_does_the_device_job(clinic):
    store, _, registration, session, url = clinic
    device_id = registration.device.id
    pi = PostgresStore.connect(url, max_size=2)
    try:
        assert pi.authenticate_device(device_id, registration.key).id == device_id
        with pytest.raises(PermissionDenied):
            pi.authenticate_device(device_id, "not-the-key")
        acting = pi.as_actor(Actor.for_device(device_id))
        acting.heartbeat()
        assert acting.live_session_for_device().id == session.id
        batch = readings_for(session.id, 4)
        assert acting.insert_readings(batch) == 4
        assert acting.insert_readings(batch) == 0  # a retry stays idempotent without reading anything back
        assert [r.id for r in store.readings_since(session.id).readings] == [r.id for r in batch]
        for attempt in [lambda: acting.readings_since(session.id), lambda: acting.session_aggregate(session.id),
                        lambda: acting.list_patients(), lambda: acting.list_sessions(), lambda: acting.list_devices(),
                        lambda: pi.list_clinicians(), lambda: pi.count_clinicians(),
                        lambda: pi.create_clinician("mallory", "M", "x" * 60, "admin"), lambda: pi.list_audit()]:
            with pytest.raises(PermissionDenied):
                attempt()
    finally:
        pi.close()


def test_a_device_writes_only_into_the_live_session_assigned_to_it(clinic, world):
    store, _, registration, session, url = clinic
    patient = world.patient(store)
    other_device = store.register_device("pi-room-3", "Room 3")
    other_session = store.start_session(patient.id, "in_person", other_device.device.id)
    video = store.start_session(world.patient(store).id, "recorded_video")
    pi = PostgresStore.connect(url, max_size=1).as_actor(Actor.for_device(registration.device.id))
    try:
        for target in (other_session.id, video.id, uuid.uuid4()):
            with pytest.raises(NotFound):
                pi.insert_readings(readings_for(target, 1))
        with pytest.raises(InvalidInput, match="source pi"):
            pi.insert_readings(readings_for(session.id, 1, source="remote"))
    finally:
        pi.close()
    assert store.session_aggregate(other_session.id).readings == 0 and store.session_aggregate(video.id).readings == 0


def test_a_revoked_device_login_stops_working_at_once(clinic, world):
    _, _, registration, _, url = clinic
    admin, admin_store = world.clinician("admin")
    live = psycopg.connect(url, autocommit=True)
    admin_store.revoke_device(registration.device.id)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=5).close()
    with pytest.raises(psycopg.OperationalError):  # its open connection was ended too
        live.execute("SELECT device_heartbeat()")
    live.close()
    # a device JWT (Supabase REST) of the revoked device is refused as well
    with pytest.raises(PermissionDenied):
        world.system.as_actor(Actor.for_device(registration.device.id)).heartbeat()
    assert {d.id: d.revoked_at for d in admin_store.list_devices()}[registration.device.id] is not None


def test_only_admins_revoke_devices(clinic):
    store, _, registration, _, url = clinic
    with pytest.raises(PermissionDenied):
        store.revoke_device(registration.device.id)
    psycopg.connect(url).close()  # still works


def test_provision_prints_a_complete_env_file_the_agent_runs_with(world, database_url, tmp_path):
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        assert devices_main(["provision", "--database-url", database_url, "--name", "pi-cli", "--room", "Room 9"]) == 0
    env_file = tmp_path / "agent.env"
    env_file.write_text(out.getvalue())
    config = AgentConfig.load(env_file=env_file, environ={})
    assert config.settings.database_url and "postgres:" not in config.settings.database_url
    assert config.device_id is not None and config.device_key
    # the agent's own link, on nothing but these credentials
    link = DeviceLink(lambda: open_store(config.settings), config.device_id, config.device_key)
    try:
        link.call(lambda s: s.heartbeat())
        assert link.call(lambda s: s.live_session_for_device()) is None
    finally:
        link.close()
    devices = {d.id: d for d in world.system.list_devices()}
    assert devices[config.device_id].name == "pi-cli" and devices[config.device_id].last_heartbeat is not None


def test_a_registration_can_be_turned_into_an_env_file_only_with_its_login(clinic, database_url):
    _, _, registration, _, _ = clinic
    text = agent_env_text(registration, database_url, host="db.clinic.lan", port=6543)
    lines = dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert lines["DATABASE_URL"].startswith(f"postgresql://{registration.login}:{registration.key}@db.clinic.lan:6543/")
    assert lines["PSYA_DEVICE_ID"] == str(registration.device.id) and lines["PSYA_DEVICE_KEY"] == registration.key


def test_the_supabase_pooler_user_suffix_is_kept():
    url = device_database_url("postgresql://postgres.abcdefgh:pw@aws-0-eu.pooler.supabase.com:6543/postgres?sslmode=require",
                              "psya_dev_" + "0" * 32, "k-e_y")
    assert url == ("postgresql://psya_dev_" + "0" * 32 + ".abcdefgh:k-e_y@aws-0-eu.pooler.supabase.com:6543/postgres"
                   "?sslmode=require")


def test_only_the_registering_clinician_creates_a_devices_login(world, database_url):
    _, alice = world.clinician()
    _, bob = world.clinician()
    registration = alice.register_device("pi-x", "Room")
    with psycopg.connect(database_url, autocommit=True) as conn, pytest.raises(errors.RaiseException,
                                                                               match="already has"):
        conn.execute("SET ROLE authenticated")
        conn.execute("SELECT set_config('request.jwt.claims', %s, false)",
                     (json.dumps({"role": "authenticated", "actor": "clinician", "sub": str(alice.actor.id),
                                  "app_role": "clinician"}),))
        conn.execute("SELECT app.create_device_login(%s, 'SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5')",
                     (registration.device.id,))
    other = alice.register_device("pi-y", "Room")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE devices SET db_role = NULL WHERE id = %s", (other.device.id,))
        conn.execute("SET ROLE authenticated")
        conn.execute("SELECT set_config('request.jwt.claims', %s, false)",
                     (json.dumps({"role": "authenticated", "actor": "clinician", "sub": str(bob.actor.id),
                                  "app_role": "clinician"}),))
        with pytest.raises(errors.RaiseException, match="only whoever registered"):
            conn.execute("SELECT app.create_device_login(%s, 'SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5')",
                         (other.device.id,))


def test_the_device_functions_refuse_callers_that_are_no_device(world, database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET ROLE psya_device")
        for call in ["SELECT device_heartbeat()", "SELECT * FROM device_live_session()",
                     "SELECT device_insert_readings('[]'::jsonb)"]:
            with pytest.raises(errors.RaiseException, match="permission_denied"):
                conn.execute(call)


# One session clock (20261203010000_device_clock.sql): the heartbeat answers the database's clock and stores the offset
# the device measured, on its own row only; Stop means stop, enforced by the database itself for the device login.
def test_the_heartbeat_answers_the_clock_of_the_moment_and_stores_the_devices_offset(clinic, device_sql, world):
    store, _, registration, _, _ = clinic
    other = store.register_device("pi-room-2", "Room 2")
    with device_sql.transaction():  # clock_timestamp(), not now(): two calls in one transaction differ
        first = device_sql.execute("SELECT device_heartbeat(-3400)").fetchone()[0]
        time.sleep(0.05)
        second = device_sql.execute("SELECT device_heartbeat()").fetchone()[0]
    assert second - first >= timedelta(milliseconds=50)
    assert abs(second - datetime.now(timezone.utc)) < timedelta(seconds=5)
    # the heartbeat without an offset kept the one reported before it
    assert next(d for d in store.list_devices() if d.id == registration.device.id).clock_offset_ms == -3400
    device_sql.execute("SELECT set_config('request.jwt.claims', %s, false)",
                       (json.dumps({"role": "psya_device", "sub": str(other.device.id)}),))
    device_sql.execute("SELECT device_heartbeat(99)")  # forged claims: still itself
    devices = {d.id: d for d in store.list_devices()}
    mine, theirs = devices[registration.device.id], devices[other.device.id]
    # the call with forged claims stamped this device, not the other
    assert mine.clock_offset_ms == 99 and mine.clock_measured_at is not None
    assert theirs.clock_offset_ms is None and theirs.clock_measured_at is None and theirs.last_heartbeat is None


@pytest.mark.parametrize("offset_ms", [86_400_001, -86_400_001])
def test_an_offset_of_more_than_a_day_is_refused(device_sql, offset_ms):
    with pytest.raises(errors.RaiseException, match="invalid_input: a clock offset"):
        device_sql.execute("SELECT device_heartbeat(%s)", (offset_ms,))


def test_stop_means_stop_for_the_device_login(clinic, device_sql):
    """Through the device's own login: after Stop the database refuses a reading captured 1 s after the end, and stores one
    captured 1 s before it that arrives later (late arrival, not late capture)."""
    store, _, _, session, _ = clinic
    ended = store.end_session(session.id)
    in_time = readings_for(session.id, 1, start=ended.ended_at - timedelta(seconds=1))
    after_stop = readings_for(session.id, 1, start=ended.ended_at + timedelta(seconds=1))
    insert = "SELECT device_insert_readings(%s::jsonb)"
    with pytest.raises(errors.RaiseException, match="session_not_live: .* is after the end"):
        device_sql.execute(insert, (json.dumps([reading_row(r) for r in after_stop]),))
    with pytest.raises(errors.RaiseException, match="session_not_live"):  # all or nothing: not even with one in time
        device_sql.execute(insert, (json.dumps([reading_row(r) for r in in_time + after_stop]),))
    assert device_sql.execute(insert, (json.dumps([reading_row(r) for r in in_time]),)).fetchone()[0] == 1
    assert [r.captured_at for r in store.readings_since(session.id).readings] == [in_time[0].captured_at]
