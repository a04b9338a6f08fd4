"""The join page in each analysis mode, through the real app script (AppTest): browser mode promises, in plain words,
that the video stays on the device; server mode keeps its own consent text; a server that cannot offer browser
analysis asks the patient a second, explicit consent before any video is streamed."""

from __future__ import annotations

from datetime import date

import pytest

from app import browser_analysis
from store.models import NewPatient

CONSENT_LABEL = "I have read the above and agree to facial analysis during this session."
SERVER_FALLBACK_LABEL = "I agree that my camera video is sent to the clinic's server for this analysis (it is not recorded)."


def start_remote(clinician_store):
    patient = clinician_store.create_patient(NewPatient(full_name="Join Page Patient"))
    clinician_store.record_consent(patient.id, True, date.today(), "facial analysis during sessions")
    return clinician_store.start_remote_session(patient.id)


def open_join_page(new_app, token: str):
    at = new_app()
    at.query_params["token"] = token
    at.switch_page("pages/join.py")
    return at.run()


def markdown_text(at) -> str:
    return " ".join(m.value for m in at.markdown)


def test_browser_mode_tells_the_patient_their_video_stays_on_their_device(new_app, clinician_store, monkeypatch):
    if browser_analysis.build_problem():
        pytest.skip(browser_analysis.build_problem())
    monkeypatch.setenv("REMOTE_ANALYSIS", "browser")
    join = start_remote(clinician_store)
    at = open_join_page(new_app, join.token)
    assert not at.exception, at.exception
    text = markdown_text(at)
    assert "Your video stays on your device" in text
    assert "No video or picture of you is recorded" in text
    assert [c.label for c in at.checkbox] == [CONSENT_LABEL]
    at.checkbox[0].check().run()
    assert not at.exception, at.exception
    assert not at.warning  # no fallback: the component is shown (the browser then reports whether it can run the model)
    assert browser_analysis.session_mode(join.session.id) is None  # mode known once the browser reports


def test_server_mode_keeps_the_server_consent_text(new_app, clinician_store, monkeypatch):
    monkeypatch.setenv("REMOTE_ANALYSIS", "server")
    join = start_remote(clinician_store)
    at = open_join_page(new_app, join.token)
    assert not at.exception, at.exception
    text = markdown_text(at)
    assert "sent to your clinician's server" in text and "stays on your device" not in text
    at.checkbox[0].check().run()
    assert [c.label for c in at.checkbox] == [CONSENT_LABEL]  # no second consent: the first one said it all
    assert browser_analysis.session_mode(join.session.id).mode == "server"


def test_without_the_built_bundle_the_patient_is_asked_before_video_goes_to_the_server(new_app, clinician_store,
                                                                                     monkeypatch, tmp_path):
    monkeypatch.setenv("REMOTE_ANALYSIS", "browser")
    monkeypatch.setattr(browser_analysis, "BUILD_DIR", tmp_path / "not-built")
    join = start_remote(clinician_store)
    at = open_join_page(new_app, join.token)
    assert "sent to your clinician's server" in markdown_text(at)  # the consent text matches what will happen
    at.checkbox[0].check().run()
    assert not at.exception, at.exception
    assert any("cannot run in your browser" in w.value and "not built" in w.value for w in at.warning)
    assert [c.label for c in at.checkbox] == [CONSENT_LABEL, SERVER_FALLBACK_LABEL]
    report = browser_analysis.session_mode(join.session.id)
    assert report.mode == "server" and "not built" in report.reason
