"""The FHIR export of a known synthetic session validates with fhir.resources (R4B models: the same as R4 for Bundle,
Patient, Practitioner, Observation and DiagnosticReport), references resolve inside the bundle, and the numbers and the
attached PDF are the session's."""

from __future__ import annotations

import base64
import json

import pytest

from app import fhir_session, report_pdf
from fer.labels import LABELS
from tests.app.test_reports import synthetic_content

pytest.importorskip("fhir.resources")


@pytest.fixture(scope="module")
def exported():
    content = synthetic_content()
    pdf = report_pdf.session_report_pdf(content)
    return content, pdf, json.loads(fhir_session.session_bundle_json(content, pdf))


def test_the_bundle_validates_as_fhir(exported):
    from fhir.resources.R4B.bundle import Bundle

    _, _, bundle = exported
    parsed = Bundle.model_validate(bundle)
    kinds = [entry.resource.__resource_type__ for entry in parsed.entry]
    assert kinds == ["Patient", "Practitioner"] + ["Observation"] * 9 + ["DiagnosticReport"]


def test_every_reference_resolves_to_an_entry_of_the_bundle(exported):
    _, _, bundle = exported
    urls = {entry["fullUrl"] for entry in bundle["entry"]}
    assert all(url.startswith("urn:uuid:") for url in urls) and len(urls) == len(bundle["entry"])
    references = []

    def collect(node):
        if isinstance(node, dict):
            if "reference" in node:
                references.append(node["reference"])
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(bundle)
    assert references and set(references) <= urls


def test_the_observations_carry_the_sessions_numbers_and_the_report_the_pdf(exported):
    content, pdf, bundle = exported
    resources = [entry["resource"] for entry in bundle["entry"]]
    observations = {r["code"]["coding"][0]["code"]: r for r in resources if r["resourceType"] == "Observation"}
    assert set(observations) == {f"mean-probability-{l}" for l in LABELS} | {"mean-valence", "mean-arousal"}
    sad = observations["mean-probability-sad"]
    assert sad["valueQuantity"]["value"] == pytest.approx((60 * 0.85 + 60 * 0.025) / 120)
    assert sad["component"][0]["valueQuantity"] == {"value": 50.0, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"}
    valence, _ = content.mean_affect()
    assert observations["mean-valence"]["valueQuantity"]["value"] == pytest.approx(valence, abs=1e-6)
    assert all(o["status"] == "final" and o["effectivePeriod"]["start"] == "2026-12-02T10:00:00.000Z" for o in observations.values())
    [report] = [r for r in resources if r["resourceType"] == "DiagnosticReport"]
    assert len(report["result"]) == 9 and report["status"] == "final"
    [form] = report["presentedForm"]
    assert form["contentType"] == "application/pdf" and base64.b64decode(form["data"]) == pdf and form["size"] == len(pdf)
    assert "not a diagnosis" in report["conclusion"]


def test_an_invalid_bundle_is_refused_by_the_validator(exported):
    """The validator really checks: a DiagnosticReport without its required status does not pass."""
    from fhir.resources.R4B.bundle import Bundle

    _, _, bundle = exported
    broken = json.loads(json.dumps(bundle))
    del broken["entry"][-1]["resource"]["status"]
    with pytest.raises(Exception):
        Bundle.model_validate(broken)
