"""The audit log is append-only and tamper-evident (20261202010300_audit_chain.sql, store/audit.py), on a real PostgreSQL.

Nobody changes a row, not even the table owner (a superuser here); the hash chain shows where an insider who disabled the
triggers changed or removed rows; refused access is audited too.
"""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from psycopg import errors

from store.audit import main as audit_main
from store.audit import verify_chain
from store.errors import NotFound
from tests.store.conftest import World


@pytest.fixture
def world(store_factory) -> World:
    return World(store_factory())


@pytest.fixture
def owner(database_url):
    """The database owner (a superuser on the embedded server): the insider with database access."""
    conn = psycopg.connect(database_url, autocommit=True)
    yield conn
    conn.close()


def some_history(world: World) -> None:
    _, store = world.clinician()
    for name in ("Ana", "Ben", "Cy"):
        patient = world.patient(store, name=name)
        store.get_patient(patient.id)


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET action = 'nothing'",
    "UPDATE audit_log SET at = at - interval '1 day' WHERE id = (SELECT min(id) FROM audit_log)",
    "DELETE FROM audit_log",
    "DELETE FROM audit_log WHERE id = (SELECT max(id) FROM audit_log)",
    "TRUNCATE audit_log",
])
def test_no_audit_row_changes_even_for_the_owner(world, owner, statement):
    some_history(world)
    before = owner.execute("SELECT count(*), max(row_hash) FROM audit_log").fetchone()
    with pytest.raises(errors.InsufficientPrivilege, match="append-only"):
        owner.execute(statement)
    assert owner.execute("SELECT count(*), max(row_hash) FROM audit_log").fetchone() == before


@pytest.mark.parametrize("role", ["service_role", "authenticated"])
def test_api_roles_have_no_update_delete_or_truncate_grant(owner, role):
    for privilege in ("UPDATE", "DELETE", "TRUNCATE"):
        assert owner.execute("SELECT has_table_privilege(%s, 'public.audit_log', %s)", (role, privilege)).fetchone() == (False,)


def test_rows_are_chained_and_the_chain_verifies(world):
    some_history(world)
    events = world.system.audit_chain()
    assert len(events) >= 7 and [e.chain_pos for e in events] == sorted(e.chain_pos for e in events)
    assert events[0].prev_hash == "0" * 64
    assert all(later.prev_hash == earlier.row_hash for earlier, later in zip(events, events[1:]))
    report = verify_chain(world.system)
    assert report.intact and report.rows == len(events) and report.head_hash == events[-1].row_hash


def test_a_client_cannot_backdate_or_prechain_a_row(world, owner):
    clinician, store = world.clinician()
    owner.execute("BEGIN")
    owner.execute("SET LOCAL ROLE service_role")
    row = owner.execute("INSERT INTO audit_log (actor, action, entity, at, chain_pos, prev_hash, row_hash) "
                        "VALUES ('system', 'export', 'session', '1971-01-01', 1, repeat('a', 64), repeat('b', 64)) "
                        "RETURNING at, chain_pos, prev_hash").fetchone()
    owner.execute("COMMIT")
    assert row[0] > datetime.now(timezone.utc) - timedelta(minutes=5) and row[2] != "a" * 64
    assert verify_chain(world.system).intact


def tamper(owner, statement: str, *params) -> None:
    """What an owner can still do: switch the guard off, change rows, switch it on again."""
    owner.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update_or_delete")
    owner.execute(statement, params)
    owner.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update_or_delete")


def test_verify_reports_the_first_edited_row(world, owner):
    some_history(world)
    events = world.system.audit_chain()
    victim = events[3]
    tamper(owner, "UPDATE audit_log SET actor = 'system' WHERE id = %s", victim.id)
    report = verify_chain(world.system)
    assert not report.intact and report.broken_at.id == victim.id and "edited" in report.reason


def test_verify_reports_the_link_after_a_deleted_row(world, owner):
    some_history(world)
    events = world.system.audit_chain()
    tamper(owner, "DELETE FROM audit_log WHERE id = %s", events[2].id)
    report = verify_chain(world.system)
    assert not report.intact and report.broken_at.id == events[3].id and "deleted" in report.reason


def test_a_cut_tail_is_caught_with_a_head_kept_from_an_earlier_run(world, owner):
    some_history(world)
    head = verify_chain(world.system)
    tamper(owner, "DELETE FROM audit_log WHERE chain_pos >= %s", head.head_pos)
    assert verify_chain(world.system).intact  # nothing links to the removed rows...
    assert not verify_chain(world.system, expect_head=f"{head.head_pos}:{head.head_hash}").intact  # ...but the head is gone


def test_the_verify_command_prints_the_result_and_exits_non_zero_when_broken(world, owner, database_url, tmp_path,
                                                                            monkeypatch):
    from store.audit import VERIFICATION_FILE, chain_id, last_verification

    monkeypatch.setenv("PSYA_DATA_DIR", str(tmp_path))  # where it records the result for the Audit page
    some_history(world)
    out = io.StringIO()
    with redirect_stdout(out):
        assert audit_main(["verify", "--database-url", database_url]) == 0
    assert out.getvalue().startswith("audit chain intact:")
    events = world.system.audit_chain()
    tamper(owner, "UPDATE audit_log SET entity_id = 'x' WHERE id = %s", events[1].id)
    out = io.StringIO()
    with redirect_stdout(out):
        assert audit_main(["verify", "--database-url", database_url]) == 1
    assert f"BROKEN at position {events[1].chain_pos}" in out.getvalue()
    recorded = last_verification(tmp_path / VERIFICATION_FILE, chain_id(world.system))
    assert recorded is not None and not recorded.intact and recorded.by == "python -m store.audit verify"
    assert f"BROKEN at position {events[1].chain_pos}" in recorded.summary
    assert last_verification(tmp_path / VERIFICATION_FILE, "another database's chain") is None
    with redirect_stdout(io.StringIO()):
        assert audit_main(["verify", "--database-url", database_url, "--no-record"]) == 1
    assert last_verification(tmp_path / VERIFICATION_FILE, chain_id(world.system)) == recorded  # untouched


def test_a_clinician_opening_another_clinicians_patient_is_audited(world):
    alice, alice_store = world.clinician()
    _, bob_store = world.clinician()
    theirs = world.patient(bob_store)
    with pytest.raises(NotFound):
        alice_store.get_patient(theirs.id)
    refused = [e for e in world.system.list_audit() if e.action == "view_denied"]
    assert [(e.actor, e.entity, e.entity_id) for e in refused] == [(f"clinician:{alice.id}", "patient", str(theirs.id))]


def test_opening_another_clinicians_session_is_audited(world):
    alice, alice_store = world.clinician()
    _, bob_store = world.clinician()
    session, _ = world.in_person_session(bob_store)
    with pytest.raises(NotFound):
        alice_store.get_session(session.id)
    assert any(e.action == "view_denied" and e.entity_id == str(session.id) and e.actor == f"clinician:{alice.id}"
               for e in world.system.list_audit())
