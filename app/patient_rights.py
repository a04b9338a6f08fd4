"""Patients' data rights for the patient page (docs/privacy.md): consent state and withdrawal, the complete export as one
zip, and erasure. The store and the database do the work (one transaction each); this module shapes it for the page.

The export zip (no patient name in any file name: names leak into download folders and mail subjects):
    README.txt                       what each file is
    patient.json                     everything, machine-readable (format "psya-patient-export", version 1)
    fhir-bundle.json                 the same as a FHIR R4 Bundle (app.fhir_export)
    sessions/session-<day>-<id8>.csv     the readings of each session (the review page's CSV)
    sessions/session-<day>-<id8>.html    each session's printable report (the review page's report)
"""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from app import analytics, clock, exports, fhir_export, report_pdf
from app import markers as marker_service
from fer.labels import LABELS
from store.api import Store
from store.errors import InvalidInput
from store.models import Clinician, ConsentRecord, ConsentText, ErasureResult, Patient, PatientExport, Reading, Session

EXPORT_FORMAT = "psya-patient-export"
EXPORT_VERSION = 1
README = """Export of everything Psychopathology Assistant holds about one patient (GDPR articles 15 and 20).

patient.json      machine-readable: the patient, medical record entries, consent history (with the consent text agreed
                  to), sessions, each session's annotations and readings (emotion probabilities, face box, timestamps).
fhir-bundle.json  the same as a FHIR R4 Bundle: Patient, Consent, Encounter (sessions), Observation (one per reading).
sessions/         per session: the readings as CSV and the printable report (HTML; open in a browser, print to PDF).

No video and no images are stored by the system, so there are none here. Emotion readings are not a diagnosis.
Confidential clinical information.
"""


# --- consent ------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConsentState:
    current_text: ConsentText
    history: list[ConsentRecord]  # oldest first
    is_current: bool  # consent given to the current wording: sessions may start

    @property
    def needs_new_consent(self) -> bool:
        """Consent was given, but to wording that has changed since."""
        latest = self.history[-1] if self.history else None
        return latest is not None and latest.given and latest.text_version != self.current_text.version


def consent_state(store: Store, patient_id: uuid.UUID) -> ConsentState:
    return ConsentState(store.current_consent_text(), store.consent_history(patient_id),
                        store.consent_is_current(patient_id))


def consent_sentence(state: ConsentState) -> str:
    if state.is_current:
        return f"Consent given to the current consent text (version {state.current_text.version})."
    if state.needs_new_consent:
        agreed = state.history[-1].text_version
        return (f"The consent text changed (version {agreed} was agreed to, version {state.current_text.version} is "
                "current): ask the patient for new consent before the next session.")
    if state.history and not state.history[-1].given:
        when = state.history[-1].consent_date
        return f"Consent withdrawn{f' on {when.isoformat()}' if when else ''}: no session can start."
    return "No consent to facial analysis: sessions cannot be started."


def withdraw_consent(store: Store, patient: Patient, on: date | None = None) -> list[Session]:
    """Record the withdrawal; the database ends the patient's live sessions in the same transaction (the Pi agent and
    the patient's browser see the end on their next poll). Returns the sessions that were live and are now ended."""
    live = [s for s in store.list_sessions(patient.id) if s.status in ("scheduled", "live")]
    store.record_consent(patient.id, False, on or date.today(), patient.consent_scope)
    return [store.get_session(s.id) for s in live]


# --- export ---------------------------------------------------------------------------------------------------------------
def _reading_json(reading: Reading) -> dict[str, Any]:
    return {
        "id": str(reading.id),
        "captured_at": reading.captured_at.isoformat(),
        "probabilities": dict(zip(LABELS, reading.probabilities)),
        "dominant": reading.dominant,
        "box": None if reading.box is None else dict(zip(("x", "y", "w", "h"), reading.box)),
        "faces": reading.faces,
        "source": reading.source,
    }


def _value(value: object) -> object:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _record(obj: object) -> dict[str, Any]:
    return {name: _value(getattr(obj, name)) for name in obj.__dataclass_fields__}


def export_document(export: PatientExport, generated_at: datetime) -> dict[str, Any]:
    """The machine-readable export: every field of every row, sessions with their annotations, event markers and
    readings nested."""
    return {
        "format": EXPORT_FORMAT,
        "version": EXPORT_VERSION,
        "generated_at": generated_at.isoformat(),
        "patient": _record(export.patient),
        "record_entries": [_record(e) for e in export.record_entries],
        "consent_history": [_record(c) for c in export.consents],
        "sessions": [
            {**_record(s),
             "annotations": [_record(a) for a in export.annotations if a.session_id == s.id],
             "markers": [_record(m) for m in export.markers if m.session_id == s.id],
             "readings": [_reading_json(r) for r in export.readings[s.id]]}
            for s in export.sessions
        ],
    }


def _clinicians(store: Store) -> dict[uuid.UUID, Clinician]:
    return {c.id: c for c in store.list_clinicians()}


def _session_report(export: PatientExport, session: Session, clinician: Clinician, tz: str | None) -> tuple[bytes, bytes]:
    # the session clock of the review (app.clock): readings captured after Stop are in no report
    frame = analytics.readings_frame(clock.readings_in_session(export.readings[session.id], session),
                                     start=session.started_at)
    content = report_pdf.ReportContent(
        patient=export.patient, session=session, clinician=clinician, frame=frame,
        annotations=sorted((a for a in export.annotations if a.session_id == session.id), key=lambda a: a.at),
        markers=sorted((m for m in export.markers if m.session_id == session.id), key=lambda m: m.at),
        origin=marker_service.timeline_origin(session, frame), tz=tz, peaks=analytics.summarize(frame).peaks)
    return exports.readings_csv(frame), report_pdf.session_report_html(content).encode("utf-8")


def export_zip(store: Store, patient_id: uuid.UUID, generated_at: datetime | None = None, tz: str | None = None) -> bytes:
    """The complete export of one patient as zip bytes. Audited by the store ("export", "patient"). `tz`: the exporting
    clinician's time zone, for the clock times in the session reports."""
    generated_at = generated_at or datetime.now(timezone.utc)
    export = store.export_patient(patient_id)
    clinicians = _clinicians(store)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", README)
        archive.writestr("patient.json", json.dumps(export_document(export, generated_at), indent=1, ensure_ascii=False))
        archive.writestr("fhir-bundle.json", json.dumps(fhir_export.bundle(export, generated_at), ensure_ascii=False))
        for session in export.sessions:
            clinician = clinicians.get(session.clinician_id) or Clinician(
                session.clinician_id, "", f"clinician {str(session.clinician_id)[:8]}", "clinician", "")
            csv_bytes, html_bytes = _session_report(export, session, clinician, tz)
            base = exports.export_file_name(export.patient, session, "")[:-1]
            archive.writestr(f"sessions/{base}.csv", csv_bytes)
            archive.writestr(f"sessions/{base}.html", html_bytes)
    return buffer.getvalue()


def export_file_name(patient: Patient, generated_at: datetime | None = None) -> str:
    day = (generated_at or datetime.now(timezone.utc)).strftime("%Y%m%d")
    return f"patient-export-{day}-{str(patient.id)[:8]}.zip"


# --- erasure -----------------------------------------------------------------------------------------------------------------
def erase(store: Store, patient: Patient, typed_name: str) -> ErasureResult:
    """Admins only; the typed name must match the patient's full name exactly (checked again by the database)."""
    if typed_name != patient.full_name:
        raise InvalidInput("Type the patient's full name exactly as shown to confirm the erasure.")
    return store.erase_patient(patient.id, typed_name)


def erasure_sentence(result: ErasureResult) -> str:
    parts = ", ".join(f"{n} {table.replace('_', ' ')}" for table, n in result.deleted.items())
    return f"Erased: {parts}. Only an audit entry that an erasure happened remains."
