"""CONTRACT TEST of the Supabase REST backend's data-rights calls against PostgREST's documented protocol, on the stand-in
server of test_supabase_rest_contract.py: visibility checks first (the service key bypasses RLS), then the database
functions as `rpc` with named arguments, audit rows named after the acting admin or clinician, and the SQL's error
prefixes mapped to store errors. The functions themselves run on real PostgreSQL in test_patient_rights.py."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from store.api import Actor
from store.errors import InvalidInput, PermissionDenied
from tests.store.test_supabase_rest_contract import (  # noqa: F401 (fixtures)
    ADMIN,
    CLINICIAN,
    PATIENT_ID,
    SESSION_ID,
    Reply,
    error,
    fake,
    patient_row,
    reading_row,
    store,
)

OTHER_SESSION = uuid.UUID("66666666-6666-4666-8666-666666666666")


def export_document() -> dict:
    session = {"patient_id": str(PATIENT_ID), "mode": "in_person", "status": "ended", "device_id": None,
               "started_at": "2026-11-25T09:00:00+00:00", "ended_at": "2026-11-25T10:00:00+00:00",
               "join_expires_at": None, "created_at": "2026-11-25T09:00:00+00:00"}
    return {
        "patient": patient_row(),
        "record_entries": [],
        "consents": [{"id": str(uuid.uuid4()), "patient_id": str(PATIENT_ID), "given": True,
                      "consent_date": "2026-01-05", "scope": "sessions", "text_version": 1, "consent_text": "I agree",
                      "recorded_by": str(CLINICIAN.id), "recorded_at": "2026-01-05T10:00:00+00:00"}],
        "sessions": [{**session, "id": str(SESSION_ID), "clinician_id": str(CLINICIAN.id)},
                     {**session, "id": str(OTHER_SESSION), "clinician_id": str(ADMIN.id)}],
        "annotations": [{"id": str(uuid.uuid4()), "session_id": str(OTHER_SESSION), "at": "2026-11-25T09:01:00+00:00",
                         "text": "by the admin", "author_id": str(ADMIN.id)}],
        "reading_counts": {str(SESSION_ID): 2, str(OTHER_SESSION): 0},
    }


def test_export_checks_visibility_calls_the_function_pages_readings_and_audits(fake, store):
    fake.reply("GET", "/rest/v1/patients", Reply(200, [{"id": str(PATIENT_ID)}]))
    fake.reply("POST", "/rest/v1/rpc/patient_export", Reply(200, export_document()))
    ids = [uuid.uuid4(), uuid.uuid4()]
    fake.reply("POST", "/rest/v1/rpc/readings_since", Reply(200, [reading_row(7, ids[0], 0), reading_row(9, ids[1], 250)]))
    fake.reply("POST", "/rest/v1/audit_log", Reply(201))

    export = store.as_actor(Actor.for_clinician(CLINICIAN)).export_patient(PATIENT_ID)

    visible = fake.only("GET", "/rest/v1/patients")
    # visibility by row-level security under the clinician's JWT: no ownership filter in the request
    assert visible.param("id") == f"eq.{PATIENT_ID}" and visible.param("clinician_id") is None
    assert fake.only("POST", "/rest/v1/rpc/patient_export").body == {"p_patient": str(PATIENT_ID)}
    # the sessions_select policy: this clinician did not run the admin's session, so neither it nor its note is exported
    assert [s.id for s in export.sessions] == [SESSION_ID] and export.annotations == []
    assert fake.only("POST", "/rest/v1/rpc/readings_since").body == {
        "p_session": str(SESSION_ID), "p_cursor": 0, "p_limit": 100_000}
    assert [r.id for r in export.readings[SESSION_ID]] == ids
    assert export.consents[0].consent_text == "I agree" and export.patient.full_name == "Ana Pérez"
    assert fake.only("POST", "/rest/v1/audit_log").body == {
        "actor": f"clinician:{CLINICIAN.id}", "action": "export", "entity": "patient", "entity_id": str(PATIENT_ID)}


def test_erasure_is_one_rpc_named_after_the_admin(fake, store):
    fake.reply("POST", "/rest/v1/rpc/erase_patient", Reply(200, {
        "readings": 40, "annotations": 1, "sessions": 2, "record_entries": 3, "consent_records": 2}))
    result = store.as_actor(Actor.for_clinician(ADMIN)).erase_patient(PATIENT_ID, "Ana Pérez")
    assert fake.only("POST", "/rest/v1/rpc/erase_patient").body == {
        "p_patient": str(PATIENT_ID), "p_confirmation": "Ana Pérez", "p_actor": f"clinician:{ADMIN.id}"}
    assert result.deleted["readings"] == 40 and result.deleted["consent_records"] == 2
    assert [r.path for r in fake.requests] == ["/rest/v1/rpc/erase_patient"]  # the tombstone is written by the function


def test_erasure_by_a_clinician_never_reaches_the_network(fake, store):
    with pytest.raises(PermissionDenied):
        store.as_actor(Actor.for_clinician(CLINICIAN)).erase_patient(PATIENT_ID, "Ana Pérez")
    assert fake.requests == []


def test_a_wrong_confirmation_raised_by_the_function_is_invalid_input(fake, store):
    fake.reply("POST", "/rest/v1/rpc/erase_patient", error(
        400, "P0001", "invalid_input: the confirmation must be the patient's full name, exactly as recorded"))
    with pytest.raises(InvalidInput, match="full name"):
        store.as_actor(Actor.for_clinician(ADMIN)).erase_patient(PATIENT_ID, "ana")


def test_retention_sends_the_period_as_an_interval_and_the_dry_run_flag(fake, store):
    fake.reply("POST", "/rest/v1/rpc/apply_retention", Reply(200, [{
        "session_id": str(SESSION_ID), "patient_id": str(PATIENT_ID), "ended_at": "2026-10-01T10:00:00+00:00",
        "readings": 1200}]))
    items = store.apply_retention(timedelta(days=30), dry_run=True)
    assert fake.only("POST", "/rest/v1/rpc/apply_retention").body == {"p_keep": "2592000 seconds", "p_dry_run": True}
    assert [(i.session_id, i.readings) for i in items] == [(SESSION_ID, 1200)]
    with pytest.raises(PermissionDenied):
        store.as_actor(Actor.for_clinician(ADMIN)).apply_retention(timedelta(days=30))


def test_publishing_consent_wording_names_the_admin_and_a_refused_start_is_permission_denied(fake, store):
    fake.reply("POST", "/rest/v1/rpc/publish_consent_text", Reply(200, 2))
    fake.reply("GET", "/rest/v1/consent_texts", Reply(200, [{"version": 2, "text": "New wording",
                                                             "published_at": "2026-12-01T10:00:00+00:00"}]))
    published = store.as_actor(Actor.for_clinician(ADMIN)).publish_consent_text("New wording")
    assert fake.only("POST", "/rest/v1/rpc/publish_consent_text").body == {
        "p_text": "New wording", "p_actor": f"clinician:{ADMIN.id}"}
    assert published.version == 2
    fake.reply("GET", "/rest/v1/patients", Reply(200, [{"consent_facial_analysis": True, "archived": False}]))
    fake.reply("POST", "/rest/v1/sessions", error(403, "42501", "the consent text changed (now "
                                                  "version 2) since the patient consented; record new consent first"))
    with pytest.raises(PermissionDenied, match="consent text changed"):
        store.as_actor(Actor.for_clinician(CLINICIAN)).start_remote_session(PATIENT_ID)
