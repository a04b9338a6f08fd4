"""Patients' data rights in the app, on a real PostgreSQL: the export zip (JSON, FHIR R4 Bundle validated with
fhir.resources, CSVs, reports), withdrawal from the patient page, consent wording changes, and erasure by an admin."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date

import pytest
from fhir.resources.R4B.bundle import Bundle

from app import fhir_export, patient_rights
from store.api import Actor
from store.errors import InvalidInput, NotFound
from tests.app.conftest import follow, log_in, open_page, page_text
from tests.app.helpers import consenting_patient, device_session, recorded_session, synthetic_readings


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


@pytest.fixture
def admin(system_store):
    from tests.conftest import _new_clinician

    return _new_clinician(system_store, "admin")


def open_zip(data: bytes) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data))


def test_the_export_zip_holds_json_fhir_csvs_and_reports_of_this_patient_only(clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Alice Example", contact="alice@example.org")
    first = recorded_session(clinician_store, store_factory, patient, ["happy", "sad", "neutral"])
    second = recorded_session(clinician_store, store_factory, patient, ["fear", "fear"])
    clinician_store.add_annotation(first.id, first.started_at, "opened up about work")
    clinician_store.add_record_entry(patient.id, date.today(), "session_note", "first session went well")
    other = consenting_patient(clinician_store, "Bob Other")
    recorded_session(clinician_store, store_factory, other, ["angry"])

    archive = open_zip(patient_rights.export_zip(clinician_store, patient.id))

    names = set(archive.namelist())
    session_files = {n for n in names if n.startswith("sessions/")}
    assert names - session_files == {"README.txt", "patient.json", "fhir-bundle.json"}
    assert len(session_files) == 4 and {n.rsplit(".", 1)[1] for n in session_files} == {"csv", "html"}
    assert all("Alice" not in n for n in names)  # no name in file names
    document = json.loads(archive.read("patient.json"))
    assert document["format"] == "psya-patient-export" and document["patient"]["full_name"] == "Alice Example"
    assert {s["id"]: len(s["readings"]) for s in document["sessions"]} == {str(first.id): 3, str(second.id): 2}
    assert [a["text"] for s in document["sessions"] for a in s["annotations"]] == ["opened up about work"]
    assert [e["text"] for e in document["record_entries"]] == ["first session went well"]
    [consent] = document["consent_history"]
    assert consent["given"] and consent["text_version"] == 1 and "withdraw" in consent["consent_text"]
    csv_rows = sum(archive.read(n).decode().count("\n") - 1 for n in session_files if n.endswith(".csv"))
    assert csv_rows == 5
    assert all("Alice Example" in archive.read(n).decode() for n in session_files if n.endswith(".html"))
    everything = b"".join(archive.read(n) for n in names).decode("utf-8")
    assert "Bob Other" not in everything and str(other.id) not in everything

    bundle = Bundle.model_validate(json.loads(archive.read("fhir-bundle.json")))  # raises on any invalid resource
    kinds = [entry.resource.get_resource_type() for entry in bundle.entry]
    assert kinds.count("Patient") == 1 and kinds.count("Consent") == 1 and kinds.count("Encounter") == 2
    assert kinds.count("Observation") == 5
    observation = next(e.resource for e in bundle.entry if e.resource.get_resource_type() == "Observation")
    assert [c.code.coding[0].code for c in observation.component] == [
        "angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert observation.subject.reference == f"urn:uuid:{patient.id}"
    exports = [e for e in store_factory().as_actor(Actor.system()).list_audit() if e.action == "export"]
    assert [(e.entity, e.entity_id) for e in exports] == [("patient", str(patient.id))]


def test_withdrawal_returns_the_sessions_it_ended(clinician_store, store_factory):
    patient = consenting_patient(clinician_store)
    session, _ = device_session(clinician_store, store_factory, patient)
    ended = patient_rights.withdraw_consent(clinician_store, patient, date.today())
    assert [(s.id, s.status) for s in ended] == [(session.id, "ended")]
    state = patient_rights.consent_state(clinician_store, patient.id)
    assert not state.is_current and "Consent withdrawn on" in patient_rights.consent_sentence(state)
    bundle = Bundle.model_validate(fhir_export.bundle(clinician_store.export_patient(patient.id)))
    consents = [e.resource for e in bundle.entry if e.resource.get_resource_type() == "Consent"]
    assert [(c.status, c.provision.type) for c in consents] == [("inactive", "permit"), ("inactive", "deny")]
    encounter = next(e.resource for e in bundle.entry if e.resource.get_resource_type() == "Encounter")
    assert encounter.status == "finished" and encounter.class_fhir.code == "AMB"


def test_new_consent_wording_asks_for_new_consent(clinician_store, store_factory, admin):
    patient = consenting_patient(clinician_store)
    store_factory(Actor.for_clinician(admin)).publish_consent_text("Version two.")
    state = patient_rights.consent_state(clinician_store, patient.id)
    assert state.needs_new_consent and "ask the patient for new consent" in patient_rights.consent_sentence(state)


def test_erasure_needs_the_exact_name_then_nothing_can_be_exported(clinician_store, store_factory, admin):
    patient = consenting_patient(clinician_store, "Eve Erased")
    recorded_session(clinician_store, store_factory, patient, ["happy"])
    admin_store = store_factory(Actor.for_clinician(admin))
    with pytest.raises(InvalidInput, match="full name"):
        patient_rights.erase(admin_store, patient, "eve erased")
    result = patient_rights.erase(admin_store, patient, "Eve Erased")
    assert result.deleted["sessions"] == 1 and result.deleted["readings"] == 1
    assert "1 readings" in patient_rights.erasure_sentence(result)
    with pytest.raises(NotFound):
        patient_rights.export_zip(clinician_store, patient.id)


def test_withdrawal_closes_the_remote_patients_writer_within_seconds(clinician_store, system_store):
    """The patient's page writes through app.remote's batch writer; the withdrawal reaches it the way a clinician's
    "End session" does: its next batch captured after the end is refused, it closes, and the join link is dead."""
    import time
    from datetime import datetime, timezone

    from app.remote import ReadingBatchWriter, check_join_token, remote_writer
    from store.models import Reading
    from tests.app.helpers import one_hot

    patient = consenting_patient(clinician_store, "Rita Remote")
    join = clinician_store.start_remote_session(patient.id)
    writer = ReadingBatchWriter(remote_writer(system_store, join.token), interval_s=0.25)
    ended = None
    deadline = time.monotonic() + 30
    while not writer.status().closed_reason and time.monotonic() < deadline:
        # the analysis thread keeps producing readings stamped now, 4 a second, as the page does while streaming
        writer.add(Reading(join.session.id, datetime.now(timezone.utc), one_hot("happy"), "remote", box=(1, 1, 50, 50)))
        if ended is None and writer.status().written >= 4:
            patient_rights.withdraw_consent(clinician_store, patient)
            ended = clinician_store.get_session(join.session.id)
            withdrawn_at = time.monotonic()
        time.sleep(0.25)
    closed_after = time.monotonic() - withdrawn_at
    writer.stop()
    assert ended is not None and ended.status == "ended"
    assert writer.status().closed_reason, "the writer never saw the session end"
    assert closed_after < 10  # the first batch captured after the end is refused (no tolerance after it)
    assert not check_join_token(system_store, join.token).ok
    stored = clinician_store.readings_since(join.session.id).readings
    assert stored and all(r.captured_at <= ended.ended_at for r in stored)


# --- the patient page -------------------------------------------------------------------------------------------------
def test_withdrawing_on_the_patient_page_ends_the_running_session(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Félix Soto")
    session, device_store = device_session(clinician_store, store_factory, patient)
    at = open_page(signed_in_app, "pages/patient.py", id=patient.id)
    assert "Data rights" in page_text(at)
    assert not [b for b in at.button if b.label == "Erase patient permanently"]  # admins only
    button(at, "Withdraw consent").click().run()
    assert not at.exception, at.exception
    assert "Consent withdrawn on" in page_text(at) and "1 running session(s) ended." in page_text(at)
    assert clinician_store.get_session(session.id).status == "ended"
    assert device_store.live_session_for_device() is None


def test_an_admin_erases_a_patient_from_their_page(new_app, admin, clinician_store):
    patient = consenting_patient(clinician_store, "Zoe Gone")
    at = log_in(new_app(), admin.username)
    at = open_page(at, "pages/patient.py", id=patient.id)
    at.text_input(key="erase_confirmation").input("Zoe")
    button(at, "Erase patient permanently").click().run()
    assert "Type the patient's full name exactly" in page_text(at)
    assert clinician_store.get_patient(patient.id).id == patient.id
    at.text_input(key="erase_confirmation").input("Zoe Gone")
    button(at, "Erase patient permanently").click().run()
    assert not at.exception, at.exception
    with pytest.raises(NotFound):
        clinician_store.get_patient(patient.id)
    assert "Erased:" in page_text(at)  # on the Patients page, where the app switched
    assert "Zoe Gone" not in page_text(follow(at, "pages/patients.py").run())
    assert "This patient does not exist" in page_text(open_page(at, "pages/patient.py", id=patient.id))
