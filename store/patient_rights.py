"""What both backends share for patients' data rights: input checks and turning the database functions' JSON
(public.patient_export, public.erase_patient, public.apply_retention in supabase/migrations/20261202050100_*) into models.

The SQL does the work in one place for both backends (direct SQL and PostgREST `rpc`); this module only validates and
parses. See docs/privacy.md for what each right does.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any

from store import validation as check
from store.errors import InvalidInput
from store.markers import Marker
from store.models import (
    Annotation,
    ConsentRecord,
    ConsentText,
    ErasureResult,
    Patient,
    PatientExport,
    Reading,
    RecordEntry,
    RetentionItem,
    Session,
)

CONSENT_TEXT_LIMIT = 20_000
ERASED_TABLES = ("readings", "annotations", "sessions", "record_entries", "consent_records")
READINGS_PAGE = 100_000  # readings per readings_since call while exporting (the function's own maximum)


def checked_consent_text(text: object) -> str:
    if not isinstance(text, str) or not text.strip() or len(text) > CONSENT_TEXT_LIMIT or "\x00" in text:
        raise InvalidInput(f"the consent text must have 1 to {CONSENT_TEXT_LIMIT} characters")
    return text.strip()


def checked_confirmation(confirmation: object) -> str:
    if not isinstance(confirmation, str) or not confirmation or len(confirmation) > 200 or "\x00" in confirmation:
        raise InvalidInput("type the patient's full name, exactly as recorded, to confirm the erasure")
    return confirmation


def checked_keep(keep: object) -> timedelta:
    if not isinstance(keep, timedelta) or keep < check.LATE_READING_GRACE:
        raise InvalidInput(f"readings must be kept at least {check.LATE_READING_GRACE} (the late-reading grace period), "
                           f"got {keep!r}")
    return keep


def interval_literal(keep: timedelta) -> str:
    """A PostgreSQL interval PostgREST passes through unchanged (whole seconds are plenty for days of retention)."""
    return f"{int(keep.total_seconds())} seconds"


def _uuid(value: Any) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(str(value))


def _datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def consent_text_from_row(row: dict[str, Any]) -> ConsentText:
    return ConsentText(int(row["version"]), row["text"], _datetime(row.get("published_at")))


def consent_record_from_row(row: dict[str, Any]) -> ConsentRecord:
    return ConsentRecord(
        id=_uuid(row["id"]),
        patient_id=_uuid(row["patient_id"]),
        given=bool(row["given"]),
        consent_date=_date(row.get("consent_date")),
        scope=row.get("scope") or "",
        text_version=int(row["text_version"]),
        consent_text=row["consent_text"],
        recorded_by=_uuid(row.get("recorded_by")),
        recorded_at=_datetime(row["recorded_at"]),
    )


def patient_from_json(row: dict[str, Any]) -> Patient:
    return Patient(
        id=_uuid(row["id"]), clinician_id=_uuid(row["clinician_id"]), full_name=row["full_name"],
        date_of_birth=_date(row.get("date_of_birth")), diagnosis=row.get("diagnosis") or "",
        in_treatment_since=_date(row.get("in_treatment_since")), contact=row.get("contact") or "",
        notes=row.get("notes") or "", consent_facial_analysis=bool(row.get("consent_facial_analysis")),
        consent_date=_date(row.get("consent_date")), consent_scope=row.get("consent_scope") or "",
        archived=bool(row.get("archived")), created_at=_datetime(row.get("created_at")),
    )


def _record_entry(row: dict[str, Any]) -> RecordEntry:
    return RecordEntry(_uuid(row["id"]), _uuid(row["patient_id"]), _date(row["entry_date"]), row["kind"], row["text"],
                       _uuid(row["author_id"]), _datetime(row.get("created_at")))


def _session(row: dict[str, Any]) -> Session:
    return Session(
        id=_uuid(row["id"]), patient_id=_uuid(row["patient_id"]), clinician_id=_uuid(row["clinician_id"]),
        mode=row["mode"], status=row["status"], device_id=_uuid(row.get("device_id")),
        started_at=_datetime(row.get("started_at")), ended_at=_datetime(row.get("ended_at")),
        join_expires_at=_datetime(row.get("join_expires_at")), created_at=_datetime(row.get("created_at")),
    )


def _annotation(row: dict[str, Any]) -> Annotation:
    return Annotation(_uuid(row["id"]), _uuid(row["session_id"]), _datetime(row["at"]), row["text"],
                      _uuid(row["author_id"]))


def export_from_json(document: dict[str, Any], readings: dict[uuid.UUID, list[Reading]]) -> PatientExport:
    """public.patient_export's document plus the readings fetched per session."""
    sessions = [_session(row) for row in document["sessions"]]
    return PatientExport(
        patient=patient_from_json(document["patient"]),
        record_entries=[_record_entry(row) for row in document["record_entries"]],
        consents=[consent_record_from_row(row) for row in document["consents"]],
        sessions=sessions,
        annotations=[_annotation(row) for row in document["annotations"]],
        readings={s.id: readings.get(s.id, []) for s in sessions},
        markers=[_marker(row) for row in document.get("markers", [])],
    )


def _marker(row: dict[str, Any]) -> Marker:
    return Marker(id=_uuid(row["id"]), session_id=_uuid(row["session_id"]), at=_datetime(row["at"]), kind=row["kind"],
                  text=row["text"], author_id=_uuid(row["author_id"]), created_at=_datetime(row["created_at"]),
                  updated_at=_datetime(row["updated_at"]))


def erasure_from_json(patient_id: uuid.UUID, document: dict[str, Any]) -> ErasureResult:
    return ErasureResult(patient_id, {table: int(document.get(table, 0)) for table in ERASED_TABLES})


def retention_item_from_row(row: dict[str, Any]) -> RetentionItem:
    return RetentionItem(_uuid(row["session_id"]), _uuid(row["patient_id"]), _datetime(row["ended_at"]),
                         int(row["readings"]))
