"""FHIR R4 export of one session (issue 15), so the report can go into an electronic health record.

A `collection` Bundle whose entries reference each other by `urn:uuid:` fullUrls, as FHIR expects for a bundle that is
not yet on a server:
  - Patient (name, birth date, an identifier in this app's id system) and Practitioner (the clinician);
  - one Observation per emotion class: the session's mean probability (valueQuantity, UCUM "1") with a component for the
    share of readings in which it was dominant (UCUM "%");
  - one Observation for the mean valence and one for the mean arousal (app/affect.py mapping, range -1..+1, UCUM "1");
  - a DiagnosticReport (status final) whose `result` lists those Observations and whose `presentedForm` is the PDF report
    (application/pdf, base64), with the decision-support notice as its conclusion.
Every Observation has status final, category "exam" (HL7 observation-category), `subject`, `performer`,
`effectivePeriod` (the session's first to last reading) and a code in this app's code system (CODE_SYSTEM): no LOINC or
SNOMED CT code exists for a model's facial-expression probabilities, so none is pretended. The resources use only elements
that are the same in FHIR R4 (4.0.1) and R4B (4.3); the tests validate the bundle with fhir.resources' R4B models.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timezone

from app import affect
from app.report_pdf import ReportContent
from app.ui import DISCLAIMER
from fer.labels import LABELS

CODE_SYSTEM = "urn:psya:fhir:facial-expression"  # this app's own codes (a URN: nothing to resolve on a network)
ID_SYSTEM = "urn:psya:id"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
UCUM = "http://unitsofmeasure.org"
NAMESPACE = uuid.UUID("7c1d5d5e-3c41-4d0e-9a55-3f3f2a3c6f15")  # stable entry ids per session: a re-export is the same


def _urn(*parts: object) -> str:
    return f"urn:uuid:{uuid.uuid5(NAMESPACE, '/'.join(str(p) for p in parts))}"


def _instant(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _quantity(value: float, unit: str, code: str) -> dict:
    return {"value": round(float(value), 6), "unit": unit, "system": UCUM, "code": code}


def session_bundle(content: ReportContent, pdf: bytes, generated_at: datetime | None = None) -> dict:
    """The Bundle as a JSON-ready dict (see the module docstring)."""
    generated_at = generated_at or content.generated_at
    session = content.session
    patient_url, practitioner_url = _urn("patient", content.patient.id), _urn("practitioner", content.clinician.id)
    report_url = _urn("report", session.id)
    frame = content.frame
    first = frame["captured_at"].iloc[0].to_pydatetime() if not frame.empty else (session.started_at or generated_at)
    last = frame["captured_at"].iloc[-1].to_pydatetime() if not frame.empty else (session.ended_at or first)
    period = {"start": _instant(first), "end": _instant(last)}
    common = {
        "status": "final",
        "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "exam", "display": "Exam"}]}],
        "subject": {"reference": patient_url},
        "performer": [{"reference": practitioner_url}],
        "effectivePeriod": period,
        "issued": _instant(generated_at),
        "note": [{"text": f"{len(frame)} readings. {DISCLAIMER}"}],
    }
    entries: list[dict] = []
    name_parts = content.patient.full_name.split()
    patient = {"resourceType": "Patient", "identifier": [{"system": ID_SYSTEM, "value": f"patient/{content.patient.id}"}],
               "name": [{"text": content.patient.full_name, "family": name_parts[-1], "given": name_parts[:-1]}]
               if len(name_parts) > 1 else [{"text": content.patient.full_name}]}
    if content.patient.date_of_birth:
        patient["birthDate"] = content.patient.date_of_birth.isoformat()
    entries.append({"fullUrl": patient_url, "resource": patient})
    entries.append({"fullUrl": practitioner_url, "resource": {
        "resourceType": "Practitioner", "identifier": [{"system": ID_SYSTEM, "value": f"clinician/{content.clinician.id}"}],
        "name": [{"text": content.clinician.display_name}]}})

    observation_urls = []
    distribution = content.distribution()
    means = frame[list(LABELS)].mean() if not frame.empty else {label: 0.0 for label in LABELS}
    for label in LABELS:
        url = _urn("observation", session.id, label)
        observation_urls.append(url)
        entries.append({"fullUrl": url, "resource": {
            "resourceType": "Observation", **common,
            "code": {"coding": [{"system": CODE_SYSTEM, "code": f"mean-probability-{label}",
                                 "display": f"Mean probability of a {label} facial expression in the session"}],
                     "text": f"Facial expression: {label} (mean probability)"},
            "valueQuantity": _quantity(means[label], "1", "1"),
            "component": [{
                "code": {"coding": [{"system": CODE_SYSTEM, "code": f"dominant-share-{label}",
                                     "display": f"Share of readings in which {label} was the dominant expression"}]},
                "valueQuantity": _quantity(100 * distribution[label], "%", "%"),
            }],
        }})
    valence, arousal = content.mean_affect()
    for name, value in (("valence", valence), ("arousal", arousal)):
        url = _urn("observation", session.id, name)
        observation_urls.append(url)
        resource = {"resourceType": "Observation", **common,
                    "code": {"coding": [{"system": CODE_SYSTEM, "code": f"mean-{name}",
                                         "display": f"Mean {name} of the facial expression (-1 to +1)"}],
                             "text": f"Facial expression {name} (mean, -1 to +1)"}}
        if value is None:
            resource["dataAbsentReason"] = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                                                        "code": "not-performed"}]}
        else:
            resource["valueQuantity"] = _quantity(value, "1", "1")
        entries.append({"fullUrl": url, "resource": resource})

    entries.append({"fullUrl": report_url, "resource": {
        "resourceType": "DiagnosticReport",
        "identifier": [{"system": ID_SYSTEM, "value": f"session/{session.id}"}],
        "status": "final",
        "code": {"coding": [{"system": CODE_SYSTEM, "code": "session-report",
                             "display": "Facial expression analysis of a therapy session"}],
                 "text": "Facial expression analysis of a therapy session"},
        "subject": {"reference": patient_url},
        "performer": [{"reference": practitioner_url}],
        "effectivePeriod": period,
        "issued": _instant(generated_at),
        "result": [{"reference": url} for url in observation_urls],
        "conclusion": DISCLAIMER,
        "presentedForm": [{"contentType": "application/pdf", "language": "en", "title": "Session report",
                           "data": base64.b64encode(pdf).decode("ascii"), "size": len(pdf),
                           "creation": _instant(generated_at)}],
    }})
    return {"resourceType": "Bundle", "identifier": {"system": ID_SYSTEM, "value": f"session-export/{session.id}"},
            "type": "collection", "timestamp": _instant(generated_at), "entry": entries}


def session_bundle_json(content: ReportContent, pdf: bytes) -> bytes:
    return json.dumps(session_bundle(content, pdf), ensure_ascii=False, indent=1).encode("utf-8")
