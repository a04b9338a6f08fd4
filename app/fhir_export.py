"""A patient's export as a FHIR R4 `Bundle` (type collection): Patient, one Consent per consent or withdrawal, one
Encounter per session and one Observation per reading (the 7 emotion probabilities as components).

Plain JSON (dicts), no FHIR library at run time; tests validate the result with `fhir.resources` (R4B models: Patient,
Consent, Encounter, Observation and Bundle are structurally unchanged from R4 4.0.1). Codes the project defines itself
live under the code system EMOTION_SYSTEM; everything else uses HL7 and LOINC codes.
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from typing import Any

from fer.labels import LABELS
from store.models import ConsentRecord, PatientExport, Reading, Session

EMOTION_SYSTEM = "urn:psychopathology-assistant:fhir:emotion"
OBSERVATION_CODE = "facial-emotion-probabilities"
IDENTIFIER_SYSTEM = "urn:psychopathology-assistant:id"
UCUM = "http://unitsofmeasure.org"
ENCOUNTER_CLASS = {  # HL7 v3 ActCode
    "in_person": ("AMB", "ambulatory"),
    "remote": ("VR", "virtual"),
    "recorded_video": ("AMB", "ambulatory"),
}
ENCOUNTER_STATUS = {"scheduled": "planned", "live": "in-progress", "ended": "finished"}


def _instant(value: datetime) -> str:
    return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _ref(resource_id: object) -> dict[str, str]:
    return {"reference": f"urn:uuid:{resource_id}"}


def _identifier(value: object) -> list[dict[str, str]]:
    return [{"system": IDENTIFIER_SYSTEM, "value": str(value)}]


def patient_resource(export: PatientExport) -> dict[str, Any]:
    patient = export.patient
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(patient.id),
        "identifier": _identifier(patient.id),
        "active": not patient.archived,
        "name": [{"text": patient.full_name}],
    }
    if patient.date_of_birth:
        resource["birthDate"] = patient.date_of_birth.isoformat()
    if patient.contact:
        resource["telecom"] = [{"system": "other", "value": patient.contact}]
    return resource


def consent_resource(record: ConsentRecord, latest: bool) -> dict[str, Any]:
    """A given consent is active while it is the latest entry; a withdrawal is an inactive consent denying the use."""
    provision: dict[str, Any] = {"type": "permit" if record.given else "deny"}
    if record.consent_date:
        provision["period"] = {"start": record.consent_date.isoformat()}
    return {
        "resourceType": "Consent",
        "id": str(record.id),
        "identifier": _identifier(record.id),
        "status": "active" if record.given and latest else "inactive",
        "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "treatment"}]},
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": _ref(record.patient_id),
        "dateTime": _instant(record.recorded_at),
        "policyRule": {"text": f"Consent text version {record.text_version}: {record.scope}".strip(": ")},
        "sourceAttachment": {
            "contentType": "text/plain; charset=utf-8",
            "title": f"Consent text version {record.text_version}",
            "data": base64.b64encode(record.consent_text.encode("utf-8")).decode("ascii"),
        },
        "provision": provision,
    }


def encounter_resource(session: Session) -> dict[str, Any]:
    code, display = ENCOUNTER_CLASS[session.mode]
    resource: dict[str, Any] = {
        "resourceType": "Encounter",
        "id": str(session.id),
        "identifier": _identifier(session.id),
        "status": ENCOUNTER_STATUS[session.status],
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": code, "display": display},
        "subject": _ref(session.patient_id),
    }
    period = {k: _instant(v) for k, v in (("start", session.started_at), ("end", session.ended_at)) if v is not None}
    if period:
        resource["period"] = period
    return resource


def observation_resource(reading: Reading, patient_id: object) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": str(reading.id),
        "identifier": _identifier(reading.id),
        "status": "final",
        "code": {"coding": [{"system": EMOTION_SYSTEM, "code": OBSERVATION_CODE}],
                 "text": "Facial expression emotion probabilities (not a diagnosis)"},
        "subject": _ref(patient_id),
        "encounter": _ref(reading.session_id),
        "effectiveDateTime": _instant(reading.captured_at),
        "method": {"text": f"automatic facial expression analysis ({reading.source})"},
        "component": [
            {"code": {"coding": [{"system": EMOTION_SYSTEM, "code": label}], "text": label},
             "valueQuantity": {"value": round(float(p), 6), "unit": "probability", "system": UCUM, "code": "1"}}
            for label, p in zip(LABELS, reading.probabilities)
        ],
    }


def bundle(export: PatientExport, generated_at: datetime | None = None) -> dict[str, Any]:
    generated_at = generated_at or datetime.now(timezone.utc)
    resources = [patient_resource(export)]
    resources += [consent_resource(c, latest=(i == len(export.consents) - 1)) for i, c in enumerate(export.consents)]
    resources += [encounter_resource(s) for s in export.sessions]
    resources += [observation_resource(r, export.patient.id) for s in export.sessions for r in export.readings[s.id]]
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "identifier": {"system": IDENTIFIER_SYSTEM, "value": f"export-{export.patient.id}-{generated_at:%Y%m%dT%H%M%SZ}"},
        "timestamp": _instant(generated_at),
        "entry": [{"fullUrl": f"urn:uuid:{r['id']}", "resource": r} for r in resources],
    }
