"""CONTRACT TEST of the markers over Supabase REST (store.supabase_markers) against PostgREST's documented protocol (see
test_supabase_rest_contract.py for the stand-in server): every request runs under the acting clinician's own JWT and
carries no ownership filter (the policies of 20261202060000_event_markers.sql apply); a session's markers are only for
its own clinician, which the store also checks from the session row, so an admin gets NotFound."""

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
    bearer_claims,
    fake,
    store,
)

MARKER_ID = uuid.UUID("66666666-6666-4666-8666-666666666666")
AT = datetime(2026, 12, 2, 10, 0, 5, tzinfo=timezone.utc)


def marker_row(**overrides):
    return {"id": str(MARKER_ID), "session_id": str(SESSION_ID), "at": "2026-12-02T10:00:05+00:00", "kind": "distress",
            "text": "", "author_id": str(CLINICIAN.id), "created_at": "2026-12-02T10:00:06+00:00",
            "updated_at": "2026-12-02T10:00:06+00:00", **overrides}


def own_session() -> list[dict[str, str]]:
    return [{"id": str(SESSION_ID), "clinician_id": str(CLINICIAN.id)}]


def test_adding_a_marker_checks_the_session_is_the_actors_own_then_posts_and_audits(fake, store):
    fake.reply("GET", "/rest/v1/sessions", Reply(200, own_session()))
    fake.reply("POST", "/rest/v1/session_markers", Reply(201, [marker_row()]))
    fake.reply("POST", "/rest/v1/audit_log", Reply(201))
    marker = store.as_actor(Actor.for_clinician(CLINICIAN)).add_marker(SESSION_ID, AT, "distress")
    lookup = fake.only("GET", "/rest/v1/sessions")
    assert lookup.param("id") == f"eq.{SESSION_ID}" and lookup.param("clinician_id") is None  # RLS, by the JWT
    assert bearer_claims(lookup)["sub"] == str(CLINICIAN.id)
    insert = fake.only("POST", "/rest/v1/session_markers")
    assert insert.body == {"session_id": str(SESSION_ID), "at": AT.isoformat(), "kind": "distress", "text": "",
                           "author_id": str(CLINICIAN.id)}
    assert fake.only("POST", "/rest/v1/audit_log").body["entity"] == "marker"
    assert marker.id == MARKER_ID and marker.at == AT


def test_an_admin_is_scoped_to_their_own_sessions_too(fake, store):
    fake.reply("GET", "/rest/v1/sessions", Reply(200, own_session()))  # sessions_select shows admins every session
    with pytest.raises(NotFound):
        store.as_actor(Actor.for_clinician(ADMIN)).list_markers(SESSION_ID)
    assert bearer_claims(fake.only("GET", "/rest/v1/sessions"))["sub"] == str(ADMIN.id)
    assert not [r for r in fake.requests if r.path == "/rest/v1/session_markers"]


def test_removing_a_marker_deletes_with_id_and_session_filters(fake, store):
    fake.reply("GET", "/rest/v1/session_markers", Reply(200, [{"session_id": str(SESSION_ID)}]))
    fake.reply("GET", "/rest/v1/sessions", Reply(200, own_session()))
    fake.reply("DELETE", "/rest/v1/session_markers", Reply(200, [marker_row()]))
    fake.reply("POST", "/rest/v1/audit_log", Reply(201))
    store.as_actor(Actor.for_clinician(CLINICIAN)).remove_marker(MARKER_ID)
    delete = fake.only("DELETE", "/rest/v1/session_markers")
    assert delete.param("id") == f"eq.{MARKER_ID}" and delete.param("session_id") == f"eq.{SESSION_ID}"


def test_marker_types_are_read_under_the_acting_clinicians_jwt(fake, store):
    fake.reply("GET", "/rest/v1/marker_types", Reply(200, [
        {"id": str(MARKER_ID), "clinician_id": str(CLINICIAN.id), "label": "distress", "shortcut": "3", "position": 0,
         "created_at": "2026-12-02T10:00:06+00:00"}]))
    types = store.as_actor(Actor.for_clinician(CLINICIAN)).list_marker_types()
    request = fake.only("GET", "/rest/v1/marker_types")
    assert request.param("clinician_id") is None  # marker_types_select: the owner's JWT decides
    assert bearer_claims(request)["sub"] == str(CLINICIAN.id)
    assert [(t.label, t.shortcut) for t in types] == [("distress", "3")]
