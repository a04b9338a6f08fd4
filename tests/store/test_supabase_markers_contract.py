"""CONTRACT TEST of the markers over Supabase REST (store.supabase_markers) against PostgREST's documented protocol (see
test_supabase_rest_contract.py for the stand-in server): the service key bypasses RLS, so every request must carry the
policies' rule itself (the acting clinician's own marker types; markers only of a session whose clinician is the actor)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from store.api import Actor
from store.errors import NotFound
from tests.store.test_supabase_rest_contract import (  # noqa: F401  (fixtures)
    ADMIN,
    CLINICIAN,
    SESSION_ID,
    Reply,
    fake,
    store,
)

MARKER_ID = uuid.UUID("66666666-6666-4666-8666-666666666666")
AT = datetime(2026, 12, 2, 10, 0, 5, tzinfo=timezone.utc)


def marker_row(**overrides):
    return {"id": str(MARKER_ID), "session_id": str(SESSION_ID), "at": "2026-12-02T10:00:05+00:00", "kind": "distress",
            "text": "", "author_id": str(CLINICIAN.id), "created_at": "2026-12-02T10:00:06+00:00",
            "updated_at": "2026-12-02T10:00:06+00:00", **overrides}


def test_adding_a_marker_checks_the_session_is_the_actors_own_then_posts_and_audits(fake, store):
    fake.reply("GET", "/rest/v1/sessions", Reply(200, [{"id": str(SESSION_ID), "clinician_id": str(CLINICIAN.id)}]))
    fake.reply("POST", "/rest/v1/session_markers", Reply(201, [marker_row()]))
    fake.reply("POST", "/rest/v1/audit_log", Reply(201))
    marker = store.as_actor(Actor.for_clinician(CLINICIAN)).add_marker(SESSION_ID, AT, "distress")
    lookup = fake.only("GET", "/rest/v1/sessions")
    # no ownership filter (the JWT makes the database apply RLS); the session's clinician is checked on the row
    assert lookup.param("id") == f"eq.{SESSION_ID}" and lookup.param("clinician_id") is None
    insert = fake.only("POST", "/rest/v1/session_markers")
    assert insert.body == {"session_id": str(SESSION_ID), "at": AT.isoformat(), "kind": "distress", "text": "",
                           "author_id": str(CLINICIAN.id)}
    assert fake.only("POST", "/rest/v1/audit_log").body["entity"] == "marker"
    assert marker.id == MARKER_ID and marker.at == AT


def test_an_admin_is_scoped_to_their_own_sessions_too(fake, store):
    # RLS shows an admin every session; the row says it is another clinician's
    fake.reply("GET", "/rest/v1/sessions", Reply(200, [{"id": str(SESSION_ID), "clinician_id": str(CLINICIAN.id)}]))
    with pytest.raises(NotFound):
        store.as_actor(Actor.for_clinician(ADMIN)).list_markers(SESSION_ID)
    assert fake.only("GET", "/rest/v1/sessions").param("clinician_id") is None
    assert not [r for r in fake.requests if r.path == "/rest/v1/session_markers"]


def test_removing_a_marker_deletes_with_id_and_session_filters(fake, store):
    fake.reply("GET", "/rest/v1/session_markers", Reply(200, [{"session_id": str(SESSION_ID)}]))
    fake.reply("GET", "/rest/v1/sessions", Reply(200, [{"id": str(SESSION_ID), "clinician_id": str(CLINICIAN.id)}]))
    fake.reply("DELETE", "/rest/v1/session_markers", Reply(200, [marker_row()]))
    fake.reply("POST", "/rest/v1/audit_log", Reply(201))
    store.as_actor(Actor.for_clinician(CLINICIAN)).remove_marker(MARKER_ID)
    delete = fake.only("DELETE", "/rest/v1/session_markers")
    assert delete.param("id") == f"eq.{MARKER_ID}" and delete.param("session_id") == f"eq.{SESSION_ID}"


def test_marker_types_are_the_acting_clinicians_by_row_level_security(fake, store):
    fake.reply("GET", "/rest/v1/marker_types", Reply(200, [
        {"id": str(MARKER_ID), "clinician_id": str(CLINICIAN.id), "label": "distress", "shortcut": "3", "position": 0,
         "created_at": "2026-12-02T10:00:06+00:00"}]))
    types = store.as_actor(Actor.for_clinician(CLINICIAN)).list_marker_types()
    request = fake.only("GET", "/rest/v1/marker_types")
    assert request.param("clinician_id") is None  # marker_types_select under the clinician's JWT
    assert [(t.label, t.shortcut) for t in types] == [("distress", "3")]
