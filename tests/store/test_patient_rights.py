"""Patients' data rights on a real PostgreSQL (store.postgres, RLS on): consent versions and withdrawal, the complete
export, erasure down to an audit tombstone, and retention of ended sessions' readings. Completeness is checked against the
database catalogue (every table with a patient or session reference), read as superuser, not against the store itself."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone

import psycopg
import pytest
from psycopg.rows import dict_row

from store.api import Actor
from store.errors import InvalidInput, InvalidToken, NotFound, PermissionDenied, SessionNotLive
from store.models import NewPatient, Reading
from store.validation import LATE_READING_GRACE
from tests.store.conftest import HAPPY, SAD, World, readings_for

# public.patient_export's lists, by the table each comes from
EXPORTED_TABLES = {"patients", "record_entries", "consent_records", "sessions", "readings", "annotations",
                   "session_markers"}
# Tables that reference a session but hold no data about the patient: left out of the export on purpose, and still
# required to be empty after erasure (they go with the session, ON DELETE CASCADE).
NOT_EXPORTED = {"remote_join_links": "the join link, encrypted with the app's key: a credential, not the patient's data"}


@pytest.fixture
def world(store_factory) -> World:
    return World(store_factory())


@pytest.fixture
def superuser(database_url):
    conn = psycopg.connect(database_url, autocommit=True, row_factory=dict_row)
    yield conn
    conn.close()


def tables_referencing(conn, target: str) -> list[tuple[str, str]]:
    """(table, column) for every public table column that references `target` (patients or sessions): a foreign key to
    it, or a column named patient_id / session_id (references nobody declared)."""
    rows = conn.execute(
        """
        SELECT c.conrelid::regclass::text AS tbl, a.attname AS col
        FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY (c.conkey)
        WHERE c.contype = 'f' AND c.confrelid = %(target)s::regclass
        UNION
        SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = 'public' AND column_name = %(column)s
        UNION
        SELECT %(target)s::text, 'id'
        """,
        {"target": f"public.{target}", "column": target[:-1] + "_id"},
    ).fetchall()
    return sorted({(r["tbl"].removeprefix("public."), r["col"]) for r in rows})


def rows_referencing(conn, patient_id: uuid.UUID, session_ids: list[uuid.UUID]) -> dict[str, set[str]]:
    """table -> ids of its rows that reference the patient or one of the sessions (every table the catalogue names)."""
    found: dict[str, set[str]] = {}
    for target, ids in (("patients", [patient_id]), ("sessions", session_ids)):
        for table, column in tables_referencing(conn, target):
            key = "id" if has_column(conn, table, "id") else column  # e.g. remote_join_links: one row per session
            rows = conn.execute(
                f'SELECT "{key}"::text AS id FROM public."{table}" WHERE "{column}" = ANY (%s)', (ids,)
            ).fetchall()
            found.setdefault(table, set()).update(r["id"] for r in rows)
    return found


def has_column(conn, table: str, column: str) -> bool:
    return conn.execute("SELECT 1 FROM information_schema.columns WHERE table_schema = 'public' AND table_name = %s "
                        "AND column_name = %s", (table, column)).fetchone() is not None


def audit_rows(conn) -> list[dict]:
    return conn.execute("SELECT * FROM audit_log ORDER BY id").fetchall()


def a_patient_with_everything(world: World, store, device_id, name: str):
    """A consenting patient with a record entry, an ended in-person session (readings, a note) and a remote session."""
    patient = world.patient(store, name=name)
    store.update_patient(patient.id, contact=f"{name.lower().replace(' ', '.')}@example.org", notes=f"notes on {name}")
    store.add_record_entry(patient.id, date(2026, 2, 1), "diagnosis", f"diagnosis of {name}")
    session = store.start_session(patient.id, "in_person", device_id)
    # inside the session's bounds (the database refuses readings before its start or from the future)
    store.insert_readings(readings_for(session.id, 12, start=session.started_at)
                          + readings_for(session.id, 3, SAD, start=session.started_at + timedelta(seconds=20)))
    store.add_annotation(session.id, session.started_at + timedelta(seconds=1), f"note about {name}")
    store.add_marker(session.id, session.started_at + timedelta(seconds=2), "topic: family", f"marker about {name}")
    store.end_session(session.id)
    remote = store.start_remote_session(patient.id)
    store.insert_remote_readings(remote.token, readings_for(remote.session.id, 4, source="remote"))
    store.end_session(remote.session.id)
    return store.get_patient(patient.id), [session.id, remote.session.id]


# --- consent versions ------------------------------------------------------------------------------------------------
def test_each_consent_and_withdrawal_is_kept_with_the_wording_agreed_to(world):
    _, store = world.clinician()
    current = store.current_consent_text()
    assert current.version == 1 and "withdraw this consent at any time" in current.text
    patient = world.patient(store)  # consents on 2026-01-05
    store.record_consent(patient.id, False, date(2026, 3, 1), "facial analysis in sessions")
    history = store.consent_history(patient.id)
    assert [(c.given, c.consent_date, c.text_version) for c in history] == [
        (True, date(2026, 1, 5), 1), (False, date(2026, 3, 1), 1)]
    assert all(c.consent_text == current.text for c in history)
    assert not store.consent_is_current(patient.id)


def test_a_changed_consent_text_asks_for_new_consent_before_the_next_session(world):
    clinician, store = world.clinician()
    _, admin = world.clinician("admin")
    patient = world.patient(store)
    device, _ = world.device(store)
    assert store.consent_is_current(patient.id)
    with pytest.raises(PermissionDenied):
        store.publish_consent_text("clinicians may not change the wording")
    published = admin.publish_consent_text("Version two of the wording: readings are kept for one year.")
    assert published.version == 2 and store.current_consent_text() == published
    assert not store.consent_is_current(patient.id)
    with pytest.raises(PermissionDenied, match="consent text changed"):
        store.start_session(patient.id, "in_person", device.id)
    with pytest.raises(PermissionDenied, match="consent text changed"):
        store.start_remote_session(patient.id)
    store.record_consent(patient.id, True, date(2026, 4, 1), "facial analysis in sessions")  # agreed to version 2
    assert store.consent_is_current(patient.id)
    store.start_session(patient.id, "in_person", device.id)
    latest = store.consent_history(patient.id)[-1]
    assert (latest.given, latest.text_version, latest.consent_text, latest.recorded_by) == (
        True, 2, published.text, clinician.id)
    with pytest.raises(InvalidInput, match="current consent text already"):
        admin.publish_consent_text(published.text)


# --- withdrawal --------------------------------------------------------------------------------------------------------
def test_withdrawal_ends_the_live_sessions_at_once_and_no_new_one_can_start(world, superuser):
    clinician, store = world.clinician()
    session, device_store = world.in_person_session(store)
    patient_id = session.patient_id
    remote = store.start_remote_session(patient_id)
    assert device_store.live_session_for_device().id == session.id
    device_store.insert_readings(readings_for(session.id, 3, start=datetime.now(timezone.utc)))

    withdrawn = store.record_consent(patient_id, False, date.today(), "facial analysis in sessions")

    assert not withdrawn.consent_facial_analysis
    assert {s.id: s.status for s in store.list_sessions(patient_id)} == {session.id: "ended", remote.session.id: "ended"}
    assert device_store.live_session_for_device() is None  # what the Pi agent polls
    with pytest.raises(InvalidToken):
        store.session_for_token(remote.token)  # what the patient's page polls
    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    with pytest.raises(SessionNotLive):
        device_store.insert_readings(readings_for(session.id, 1, start=later))
    with pytest.raises(SessionNotLive):
        store.insert_remote_readings(remote.token, readings_for(remote.session.id, 1, source="remote", start=later))
    with pytest.raises(PermissionDenied, match="not consented"):
        store.start_remote_session(patient_id)
    audit = [(r["actor"], r["action"], r["entity"], r["entity_id"]) for r in audit_rows(superuser)]
    label = f"clinician:{clinician.id}"
    assert (label, "consent_withdrawn", "patient", str(patient_id)) in audit
    assert (label, "end_consent_withdrawn", "session", str(session.id)) in audit
    assert (label, "end_consent_withdrawn", "session", str(remote.session.id)) in audit
    withdrawal = store.consent_history(patient_id)[-1]
    assert (withdrawal.given, withdrawal.consent_date) == (False, date.today())


def test_withdrawal_over_plain_sql_ends_the_session_too(world, superuser):
    """The trigger, not the store, ends the sessions: any write path (PostgREST table update included) does it."""
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    superuser.execute("UPDATE patients SET consent_facial_analysis = false WHERE id = %s", (session.patient_id,))
    assert device_store.live_session_for_device() is None
    assert store.get_session(session.id).status == "ended"


# --- export -------------------------------------------------------------------------------------------------------------
def test_the_export_holds_every_row_of_the_patient_and_nothing_of_another(world, superuser):
    clinician, store = world.clinician()
    device, _ = world.device(store)
    alice, alice_sessions = a_patient_with_everything(world, store, device.id, "Alice Example")
    bob, bob_sessions = a_patient_with_everything(world, store, device.id, "Bob Other")

    export = store.export_patient(alice.id)

    in_database = rows_referencing(superuser, alice.id, alice_sessions)
    assert set(in_database) == EXPORTED_TABLES | set(NOT_EXPORTED), \
        "a table references patients or sessions that the export leaves out"
    in_database = {table: ids for table, ids in in_database.items() if table not in NOT_EXPORTED}
    exported = {
        "patients": {str(export.patient.id)},
        "record_entries": {str(r.id) for r in export.record_entries},
        "consent_records": {str(c.id) for c in export.consents},
        "sessions": {str(s.id) for s in export.sessions},
        "readings": {str(r.id) for rs in export.readings.values() for r in rs},
        "annotations": {str(a.id) for a in export.annotations},
        "session_markers": {str(m.id) for m in export.markers},
    }
    assert exported == in_database
    assert len(exported["readings"]) == 19 and len(exported["consent_records"]) == 1
    assert export.patient == store.get_patient(alice.id)
    text = json.dumps(repr(export))
    assert "Bob" not in text and all(str(i) not in text for i in [bob.id, *bob_sessions])
    last = audit_rows(superuser)[-2]  # the get_patient view above comes after the export
    assert (last["actor"], last["action"], last["entity"], last["entity_id"]) == (
        f"clinician:{clinician.id}", "export", "patient", str(alice.id))


def test_another_clinician_cannot_export_the_patient(world):
    _, store = world.clinician()
    _, other = world.clinician()
    patient = world.patient(store)
    with pytest.raises(NotFound):
        other.export_patient(patient.id)
    _, admin = world.clinician("admin")
    assert admin.export_patient(patient.id).patient.id == patient.id


# --- erasure ------------------------------------------------------------------------------------------------------------
def test_erasure_leaves_no_row_about_the_patient_and_the_audit_rows_untouched(world, superuser):
    _, store = world.clinician()
    admin_clinician, admin = world.clinician("admin")
    device, _ = world.device(store)
    alice, alice_sessions = a_patient_with_everything(world, store, device.id, "Alice Example")
    bob, bob_sessions = a_patient_with_everything(world, store, device.id, "Bob Other")
    bob_before = rows_referencing(superuser, bob.id, bob_sessions)
    audit_before = audit_rows(superuser)

    result = admin.erase_patient(alice.id, "Alice Example")

    assert result.deleted == {"readings": 19, "annotations": 1, "sessions": 2, "record_entries": 1,
                              "consent_records": 1}
    left = rows_referencing(superuser, alice.id, alice_sessions)
    assert {table: ids for table, ids in left.items() if ids} == {}
    assert set(left) >= EXPORTED_TABLES  # the catalogue query did look at every table
    # no text anywhere in the schema still holds her name, contact or notes
    for column in superuser.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
            "AND data_type IN ('text', 'jsonb', 'character varying')").fetchall():
        hits = superuser.execute(
            f'SELECT count(*) AS n FROM public."{column["table_name"]}" WHERE "{column["column_name"]}"::text '
            "ILIKE ANY (ARRAY['%%Alice Example%%', '%%alice.example@%%', '%%notes on Alice%%'])").fetchone()["n"]
        assert hits == 0, f"{column['table_name']}.{column['column_name']} still mentions the patient"
    # the audit log: every earlier row exactly as it was, plus one tombstone with ids only
    audit_after = audit_rows(superuser)
    assert audit_after[:len(audit_before)] == audit_before
    tombstone = audit_after[len(audit_before):]
    assert [(r["actor"], r["action"], r["entity"], r["entity_id"]) for r in tombstone] == [
        (f"clinician:{admin_clinician.id}", "erase", "patient", str(alice.id))]
    # nothing of her through any store call; Bob untouched
    for call in (lambda: store.get_patient(alice.id), lambda: store.export_patient(alice.id),
                 lambda: store.consent_history(alice.id), lambda: admin.get_session(alice_sessions[0]),
                 lambda: store.readings_since(alice_sessions[0]), lambda: store.list_annotations(alice_sessions[0])):
        with pytest.raises(NotFound):
            call()
    assert alice.id not in {p.id for p in admin.list_patients(include_archived=True)}
    assert store.list_sessions(alice.id) == []
    assert rows_referencing(superuser, bob.id, bob_sessions) == bob_before


def test_erasure_needs_an_admin_and_the_exact_name_and_no_live_session(world, superuser):
    _, store = world.clinician()
    _, admin = world.clinician("admin")
    session, _ = world.in_person_session(store)
    patient = store.get_patient(session.patient_id)
    with pytest.raises(PermissionDenied):
        store.erase_patient(patient.id, patient.full_name)
    with pytest.raises(InvalidInput, match="full name"):
        admin.erase_patient(patient.id, patient.full_name.upper())
    with pytest.raises(InvalidInput, match="live session"):
        admin.erase_patient(patient.id, patient.full_name)
    with pytest.raises(NotFound):
        admin.erase_patient(uuid.uuid4(), "Nobody")
    assert store.get_patient(patient.id) == patient  # nothing was erased
    assert not [r for r in audit_rows(superuser) if r["action"] == "erase"]
    store.record_consent(patient.id, False, date.today(), "")  # withdrawal ends the session
    assert admin.erase_patient(patient.id, patient.full_name).deleted["sessions"] == 1


def test_a_clinician_calling_the_erase_function_directly_is_refused(world, superuser):
    clinician, store = world.clinician()
    patient = world.patient(store)
    with superuser.transaction(force_rollback=True):
        superuser.execute("SET LOCAL ROLE authenticated")
        superuser.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(
            {"role": "authenticated", "actor": "clinician", "sub": str(clinician.id), "app_role": "clinician"}),))
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="only admins"):
            superuser.execute("SELECT public.erase_patient(%s, %s)", (patient.id, patient.full_name))
    assert store.get_patient(patient.id).id == patient.id


# --- retention ----------------------------------------------------------------------------------------------------------
def test_retention_deletes_exactly_the_readings_of_sessions_ended_longer_ago(world, superuser):
    _, store = world.clinician()
    device, device_store = world.device(store)
    patient = world.patient(store)
    ended_days_ago = {}
    for days in (40, 31, 29, None):  # None: still live
        session = store.start_session(patient.id, "in_person", device.id)
        store.insert_readings(readings_for(session.id, 5))
        store.add_annotation(session.id, session.started_at, "kept")
        if days is not None:
            store.end_session(session.id)
            superuser.execute("UPDATE sessions SET ended_at = now() - %s WHERE id = %s", (timedelta(days=days), session.id))
        ended_days_ago[session.id] = days
    expired = {sid for sid, days in ended_days_ago.items() if days is not None and days > 30}
    system = world.system

    planned = system.apply_retention(timedelta(days=30), dry_run=True)
    assert {i.session_id for i in planned} == expired and all(i.readings == 5 for i in planned)
    assert superuser.execute("SELECT count(*) AS n FROM readings").fetchone()["n"] == 20  # a dry run deletes nothing

    applied = system.apply_retention(timedelta(days=30), dry_run=False)
    assert [(i.session_id, i.readings) for i in applied] == [(i.session_id, i.readings) for i in planned]
    counts = {row["session_id"]: row["n"] for row in superuser.execute(
        "SELECT session_id, count(*) AS n FROM readings GROUP BY session_id").fetchall()}
    assert counts == {sid: 5 for sid in ended_days_ago if sid not in expired}
    assert len(store.list_sessions(patient.id)) == 4  # sessions and notes stay; only readings expire
    assert all(len(store.list_annotations(sid)) == 1 for sid in ended_days_ago)
    audit = {(r["action"], r["entity_id"]) for r in audit_rows(superuser) if r["action"] == "retention_delete"}
    assert audit == {("retention_delete", str(sid)) for sid in expired}
    assert system.apply_retention(timedelta(days=30), dry_run=False) == []  # idempotent


def test_retention_is_for_the_system_and_never_shorter_than_the_late_reading_grace(world):
    _, store = world.clinician()
    with pytest.raises(PermissionDenied):
        store.apply_retention(timedelta(days=30))
    with pytest.raises(InvalidInput, match="at least"):
        world.system.apply_retention(LATE_READING_GRACE - timedelta(seconds=1))


def test_consent_history_is_read_only_and_only_visible_with_the_patient(world, superuser):
    owner, store = world.clinician()
    other, other_store = world.clinician()
    patient = world.patient(store)
    with pytest.raises(NotFound):
        other_store.consent_history(patient.id)

    def as_clinician(clinician):
        superuser.execute("SET LOCAL ROLE authenticated")
        superuser.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(
            {"role": "authenticated", "actor": "clinician", "sub": str(clinician.id), "app_role": "clinician"}),))

    with superuser.transaction(force_rollback=True):
        as_clinician(other)
        assert superuser.execute("SELECT count(*) AS n FROM consent_records").fetchone()["n"] == 0
    with superuser.transaction(force_rollback=True):
        as_clinician(owner)
        assert superuser.execute("SELECT count(*) AS n FROM consent_records").fetchone()["n"] == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            superuser.execute("UPDATE consent_records SET given = false")  # history cannot be rewritten
    with superuser.transaction(force_rollback=True):
        as_clinician(owner)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            superuser.execute("INSERT INTO consent_texts (version, text) VALUES (99, 'sneaky')")
    with superuser.transaction(force_rollback=True):
        superuser.execute("SET LOCAL ROLE anon")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            superuser.execute("SELECT count(*) FROM consent_records")
