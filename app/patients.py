"""Patient services for the Patients and Patient pages: form validation, changes, consent, record entries, tables."""

from __future__ import annotations

import uuid
from dataclasses import asdict, fields
from datetime import date

import pandas as pd

from store.api import Store
from store.errors import InvalidInput
from store.models import NewPatient, Patient, RecordEntry, RecordKind

MAX_NAME_LENGTH = 200
DEFAULT_CONSENT_SCOPE = "Facial expression analysis during therapy sessions; only emotion probabilities with timestamps are stored, no video."
RECORD_KIND_LABELS: dict[str, str] = {"session_note": "Session note", "diagnosis": "Diagnosis", "medication": "Medication", "other": "Other"}


def new_patient(
    full_name: str,
    date_of_birth: date | None = None,
    diagnosis: str = "",
    in_treatment_since: date | None = None,
    contact: str = "",
    notes: str = "",
    today: date | None = None,
) -> NewPatient:
    """Validated form values (InvalidInput names every problem)."""
    today = today or date.today()
    problems = []
    name = " ".join(full_name.split())
    if not name:
        problems.append("The patient's name is required.")
    elif len(name) > MAX_NAME_LENGTH:
        problems.append(f"The name is longer than {MAX_NAME_LENGTH} characters.")
    if date_of_birth and date_of_birth > today:
        problems.append("The date of birth is in the future.")
    if in_treatment_since and in_treatment_since > today:
        problems.append("'In treatment since' is in the future.")
    if date_of_birth and in_treatment_since and in_treatment_since < date_of_birth:
        problems.append("'In treatment since' is before the date of birth.")
    if problems:
        raise InvalidInput(" ".join(problems))
    return NewPatient(name, date_of_birth, diagnosis.strip(), in_treatment_since, contact.strip(), notes.strip())


def changes(current: Patient, edited: NewPatient) -> dict[str, object]:
    """Only the fields the clinician actually changed (so the audit log says what changed, and a no-op saves nothing)."""
    return {f.name: getattr(edited, f.name) for f in fields(NewPatient) if getattr(edited, f.name) != getattr(current, f.name)}


def create(store: Store, patient: NewPatient, consent: bool = False, consent_scope: str = DEFAULT_CONSENT_SCOPE, today: date | None = None) -> Patient:
    created = store.create_patient(patient)
    if consent:
        created = store.record_consent(created.id, True, today or date.today(), consent_scope)
    return created


def update(store: Store, current: Patient, edited: NewPatient) -> Patient:
    changed = changes(current, edited)
    return store.update_patient(current.id, **changed) if changed else current


def set_consent(store: Store, patient_id: uuid.UUID, given: bool, scope: str = DEFAULT_CONSENT_SCOPE, on: date | None = None) -> Patient:
    if given and not scope.strip():
        raise InvalidInput("Describe what the patient consented to.")
    return store.record_consent(patient_id, given, on or date.today(), scope.strip())


def add_record(store: Store, patient_id: uuid.UUID, entry_date: date, kind: RecordKind, text: str) -> RecordEntry:
    if not text.strip():
        raise InvalidInput("The entry is empty.")
    if entry_date > date.today():
        raise InvalidInput("The entry's date is in the future.")
    return store.add_record_entry(patient_id, entry_date, kind, text.strip())


def consent_summary(patient: Patient) -> str:
    if not patient.consent_facial_analysis:
        return "No consent to facial analysis: sessions cannot be started."
    when = f" on {patient.consent_date.isoformat()}" if patient.consent_date else ""
    return f"Consent to facial analysis given{when}. Scope: {patient.consent_scope or '—'}"


def age(patient: Patient, today: date | None = None) -> int | None:
    if patient.date_of_birth is None:
        return None
    today = today or date.today()
    born = patient.date_of_birth
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def patients_table(patients: list[Patient], today: date | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Name": p.full_name,
                "Age": age(p, today),
                "Diagnosis": p.diagnosis,
                "In treatment since": p.in_treatment_since,
                "Consent": "yes" if p.consent_facial_analysis else "no",
                "Archived": p.archived,
            }
            for p in patients
        ],
        columns=["Name", "Age", "Diagnosis", "In treatment since", "Consent", "Archived"],
    )


def records_table(entries: list[RecordEntry]) -> pd.DataFrame:
    ordered = sorted(entries, key=lambda e: (e.entry_date, e.created_at or 0), reverse=True)
    return pd.DataFrame(
        [{"Date": e.entry_date, "Kind": RECORD_KIND_LABELS.get(e.kind, e.kind), "Entry": e.text} for e in ordered],
        columns=["Date", "Kind", "Entry"],
    )


def as_new_patient(patient: Patient) -> NewPatient:
    values = asdict(patient)
    return NewPatient(**{f.name: values[f.name] for f in fields(NewPatient)})
