"""Typed event markers in the store, on a real PostgreSQL: per-clinician marker types, markers of a session that only
its clinician sees or changes (through the store, and through raw SQL under row-level security as PostgREST runs it)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from store.api import Actor
from store.common import role_and_claims
from store.errors import InvalidInput, NotFound, PermissionDenied
from tests.store.conftest import World

AT = datetime(2026, 12, 2, 10, 0, 5, tzinfo=timezone.utc)


@pytest.fixture
def world(store_factory) -> World:
    return World(store_factory())


@pytest.fixture
def raw_sql(database_url):
    conn = psycopg.connect(database_url, autocommit=True)

    def run(actor: Actor, statement: str, params: tuple = ()) -> list[tuple]:
        role, claims = role_and_claims(actor)
        with conn.transaction(force_rollback=True):
            cur = conn.cursor()
            cur.execute(f"SET LOCAL ROLE {role}")
            cur.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(claims),))
            cur.execute(statement, params)
            return cur.fetchall() if cur.description else [(cur.rowcount,)]

    yield run
    conn.close()


def own_session(world: World):
    clinician, store = world.clinician()
    session, _ = world.in_person_session(store)
    return clinician, store, session


def test_marker_types_belong_to_their_clinician_in_position_order(world):
    _, alice = world.clinician()
    _, bob = world.clinician()
    alice.add_marker_type("distress", "3", position=2)
    alice.add_marker_type("topic: family", "1", position=0)
    bob.add_marker_type("bob's own", "1")
    assert [(t.label, t.shortcut) for t in alice.list_marker_types()] == [("topic: family", "1"), ("distress", "3")]
    assert [t.label for t in bob.list_marker_types()] == ["bob's own"]


def test_a_marker_type_label_or_shortcut_used_twice_is_invalid_input(world):
    _, alice = world.clinician()
    alice.add_marker_type("distress", "3")
    with pytest.raises(InvalidInput):
        alice.add_marker_type("distress", "")
    with pytest.raises(InvalidInput):
        alice.add_marker_type("other", "3")
    assert len(alice.list_marker_types()) == 1


@pytest.mark.parametrize("label, shortcut", [("", ""), ("x" * 81, ""), ("ok", "0"), ("ok", "ab"), ("ok", "C")])
def test_bad_marker_types_are_refused_with_a_clear_error(world, label, shortcut):
    _, alice = world.clinician()
    with pytest.raises(InvalidInput):
        alice.add_marker_type(label, shortcut)
    assert alice.list_marker_types() == []


def test_removing_a_marker_type_keeps_the_markers_made_with_it(world):
    _, store, session = own_session(world)
    kind = store.add_marker_type("exercise start", "2")
    store.add_marker(session.id, AT, kind.label)
    store.remove_marker_type(kind.id)
    assert store.list_marker_types() == []
    assert [m.kind for m in store.list_markers(session.id)] == ["exercise start"]


def test_markers_are_added_edited_and_removed_in_time_order(world):
    clinician, store, session = own_session(world)
    later = store.add_marker(session.id, AT + timedelta(seconds=30), "distress", "  cried  ")
    earlier = store.add_marker(session.id, AT, "topic: family")
    assert [m.id for m in store.list_markers(session.id)] == [earlier.id, later.id]
    assert later.text == "cried" and later.author_id == clinician.id

    moved = store.update_marker(earlier.id, at=AT + timedelta(seconds=60), text="mother")
    assert moved.at == AT + timedelta(seconds=60) and moved.kind == "topic: family" and moved.text == "mother"
    assert moved.updated_at >= moved.created_at
    assert [m.id for m in store.list_markers(session.id)] == [later.id, earlier.id]

    store.remove_marker(later.id)
    assert [m.id for m in store.list_markers(session.id)] == [earlier.id]
    with pytest.raises(NotFound):
        store.remove_marker(later.id)


def test_marker_changes_are_audited(world, store_factory, system_store):
    _, store, session = own_session(world)
    marker = store.add_marker(session.id, AT, "distress")
    store.update_marker(marker.id, text="x")
    store.remove_marker(marker.id)
    events = [(e.action, e.entity) for e in system_store.list_audit() if e.entity_id == str(marker.id)]
    assert sorted(events) == [("create", "marker"), ("delete", "marker"), ("update", "marker")]


def test_bad_marker_input_is_refused_and_nothing_is_written(world):
    _, store, session = own_session(world)
    with pytest.raises(InvalidInput):
        store.add_marker(session.id, datetime(2026, 12, 2, 10, 0), "distress")  # naive time
    with pytest.raises(InvalidInput):
        store.add_marker(session.id, AT, "   ")
    with pytest.raises(InvalidInput):
        store.add_marker(session.id, AT, "distress", "x" * 2001)
    marker = store.add_marker(session.id, AT, "distress")
    with pytest.raises(InvalidInput):
        store.update_marker(marker.id, kind="")
    assert [(m.kind, m.text) for m in store.list_markers(session.id)] == [("distress", "")]


def test_another_clinician_or_an_admin_can_neither_see_nor_change_a_sessions_markers(world):
    _, store, session = own_session(world)
    marker = store.add_marker(session.id, AT, "distress", "private")
    _, bob = world.clinician()
    _, admin = world.clinician("admin")
    for other in (bob, admin):
        with pytest.raises(NotFound):
            other.list_markers(session.id)
        with pytest.raises(NotFound):
            other.add_marker(session.id, AT, "distress")
        with pytest.raises(NotFound):
            other.update_marker(marker.id, text="changed")
        with pytest.raises(NotFound):
            other.remove_marker(marker.id)
    assert [(m.kind, m.text) for m in store.list_markers(session.id)] == [("distress", "private")]


def test_devices_and_remote_patients_do_not_mark(world):
    _, store, session = own_session(world)
    device_store = world.system.as_actor(Actor.for_device(session.device_id))
    with pytest.raises(PermissionDenied):
        device_store.add_marker(session.id, AT, "distress")
    with pytest.raises(PermissionDenied):
        device_store.list_markers(session.id)


def test_row_level_security_hides_markers_and_types_from_everyone_but_the_owner(world, raw_sql):
    alice, store, session = own_session(world)
    store.add_marker_type("distress", "3")
    marker = store.add_marker(session.id, AT, "distress")
    bob, _ = world.clinician()
    admin, _ = world.clinician("admin")
    device = Actor.for_device(session.device_id)
    assert raw_sql(Actor.for_clinician(alice), "SELECT id FROM session_markers") == [(marker.id,)]
    for table in ("session_markers", "marker_types"):  # the device role (psya_device) has no grant on markers at all
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            raw_sql(device, f"SELECT id FROM {table}")
    for actor in (Actor.for_clinician(bob), Actor.for_clinician(admin)):
        assert raw_sql(actor, "SELECT id FROM session_markers") == []
        assert raw_sql(actor, "SELECT id FROM marker_types") == []
        assert raw_sql(actor, "UPDATE session_markers SET text = 'x' WHERE id = %s", (marker.id,)) == [(0,)]
        assert raw_sql(actor, "DELETE FROM session_markers WHERE id = %s", (marker.id,)) == [(0,)]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # bob may not insert into alice's session
        raw_sql(Actor.for_clinician(bob), "INSERT INTO session_markers (session_id, at, kind, author_id) "
                "VALUES (%s, now(), 'x', %s)", (session.id, bob.id))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # nor write in alice's name into her own session
        raw_sql(Actor.for_clinician(alice), "INSERT INTO session_markers (session_id, at, kind, author_id) "
                "VALUES (%s, now(), 'x', %s)", (session.id, bob.id))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # the anon role has no access at all
        raw_sql(Actor("remote"), "SELECT id FROM session_markers")
    with pytest.raises(psycopg.errors.InsufficientPrivilege):  # author and session are not updatable columns
        raw_sql(Actor.for_clinician(alice), "UPDATE session_markers SET author_id = %s WHERE id = %s",
                (bob.id, marker.id))
