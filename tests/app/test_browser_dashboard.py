"""The clinician's live dashboard of a remote session says which mode it runs in (AppTest, the real app script): waiting,
in the patient's browser (with the server's count of video frames received: 0, and no relayed video), or on the server
with the reason."""

from __future__ import annotations

from app import browser_analysis
from tests.app.conftest import open_page, page_text
from tests.app.helpers import consenting_patient


def remote_session(clinician_store):
    patient = consenting_patient(clinician_store, "Dashboard Remote Patient")
    return clinician_store.start_remote_session(patient.id).session


def test_a_remote_session_waiting_for_its_patient_says_so(signed_in_app, clinician_store):
    session = remote_session(clinician_store)
    at = open_page(signed_in_app, "pages/live.py", session=session.id)
    assert not at.exception, at.exception
    assert "Analysis mode: waiting for the patient (configured: in the patient's browser" in page_text(at)


def test_browser_mode_is_shown_with_zero_video_frames_and_no_relay(signed_in_app, clinician_store):
    session = remote_session(clinician_store)
    browser_analysis.report_mode(session.id, "browser")
    at = open_page(signed_in_app, "pages/live.py", session=session.id)
    assert not at.exception, at.exception
    text = page_text(at)
    assert "Analysis mode: in the patient's browser" in text
    assert "video frames received by this server for this session: 0" in text
    assert "The patient's video appears here" not in text  # nothing to relay in browser mode


def test_a_fallback_to_server_mode_is_shown_with_its_reason_and_the_relay(signed_in_app, clinician_store):
    session = remote_session(clinician_store)
    browser_analysis.report_mode(session.id, "server", "this browser cannot run the analysis itself (no WebAssembly)")
    at = open_page(signed_in_app, "pages/live.py", session=session.id)
    assert not at.exception, at.exception
    text = page_text(at)
    assert "Analysis mode: on this server because this browser cannot run the analysis itself (no WebAssembly)" in text
    assert "The patient's video appears here once they start their camera" in text
