"""A lone UTF-16 surrogate ("\ud800", what a broken JSON client sends) cannot be encoded as UTF-8: every text the store
accepts refuses it with the store's own InvalidInput (tokens and keys: their usual refusal), never a driver error."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from store.api import Actor, LoginThrottle
from store.errors import InvalidInput, InvalidToken, PermissionDenied
from store.models import NewPatient

BAD = "Ana \ud800 Pérez"
THROTTLE = LoginThrottle(5, timedelta(seconds=1), timedelta(seconds=1), timedelta(seconds=1))


def test_every_text_field_refuses_a_lone_surrogate(system_store, clinician_store, store_factory):
    patient = clinician_store.create_patient(NewPatient("Ana Pérez"))
    patient = clinician_store.record_consent(patient.id, True, date.today(), "facial analysis")
    device = clinician_store.register_device("pi-room-1", "Room 1").device
    session = clinician_store.start_session(patient.id, "in_person", device_id=device.id)
    attempts = {
        "create_patient": lambda: clinician_store.create_patient(NewPatient(BAD)),
        "create_patient notes": lambda: clinician_store.create_patient(NewPatient("Ok", notes=BAD)),
        "update_patient": lambda: clinician_store.update_patient(patient.id, diagnosis=BAD),
        "record_consent": lambda: clinician_store.record_consent(patient.id, True, date.today(), BAD),
        "list_patients": lambda: clinician_store.list_patients(search=BAD),
        "add_record_entry": lambda: clinician_store.add_record_entry(patient.id, date.today(), "other", BAD),
        "register_device": lambda: clinician_store.register_device(BAD, "Room 2"),
        "register_device room": lambda: clinician_store.register_device("pi-2", BAD),
        "add_annotation": lambda: clinician_store.add_annotation(session.id, datetime.now(timezone.utc), BAD),
        "audit": lambda: clinician_store.audit("export", "patient", BAD),
        "create_clinician": lambda: system_store.create_clinician("newdoc", BAD, "$2b$04$x", "clinician"),
        "get_clinician_by_username": lambda: system_store.get_clinician_by_username(BAD),
        "begin_login_attempt": lambda: system_store.begin_login_attempt(BAD, None, THROTTLE),
        "begin_login_attempt address": lambda: system_store.begin_login_attempt("ana", BAD, THROTTLE),
        "open_login_session": lambda: system_store.open_login_session(uuid.uuid4(), BAD * 10),
    }
    not_refused = []
    for name, attempt in attempts.items():
        try:
            attempt()
        except InvalidInput as error:
            assert "surrogate" in str(error), name
        else:
            not_refused.append(name)
    assert not_refused == []
    with pytest.raises(InvalidToken):
        clinician_store.session_for_token(BAD * 5)
    with pytest.raises(InvalidToken):
        store_factory(Actor("remote")).insert_remote_readings(BAD * 5, [])
    with pytest.raises(PermissionDenied):
        system_store.authenticate_device(device.id, BAD)
    assert [p.full_name for p in clinician_store.list_patients()] == ["Ana Pérez"]  # nothing half-written
