"""The clinician's live dashboard of a remote session says which mode it runs in (AppTest, the real app script): waiting,
in the patient's browser (with the server's count of video frames received: 0, and no relayed video), or on the server
with the reason; and in server mode whether the patient's video is relayed (only when REMOTE_VIDEO_RELAY=on and the
clinician ticked the relay when starting the session)."""

from __future__ import annotations

from app import browser_analysis, links, remote
from settings import Settings
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


def test_a_fallback_to_server_mode_is_shown_with_its_reason_and_no_relayed_video(signed_in_app, clinician_store):
    session = remote_session(clinician_store)
    browser_analysis.report_mode(session.id, "server", "this browser cannot run the analysis itself (no WebAssembly)")
    at = open_page(signed_in_app, "pages/live.py", session=session.id)
    assert not at.exception, at.exception
    text = page_text(at)
    assert "Analysis mode: on this server because this browser cannot run the analysis itself (no WebAssembly)" in text
    assert "no video is relayed to this dashboard" in text and "Run your usual video call beside it" in text
    assert "The patient's video appears here" not in text  # REMOTE_VIDEO_RELAY is off by default


def test_with_the_relay_allowed_a_server_mode_session_shows_no_video_unless_the_clinician_chose_it(
        signed_in_app, clinician_store, monkeypatch):
    monkeypatch.setenv("REMOTE_VIDEO_RELAY", "on")
    monkeypatch.setenv("REMOTE_ANALYSIS", "server")
    unrelayed = remote_session(clinician_store)
    browser_analysis.report_mode(unrelayed.id, "server")
    at = open_page(signed_in_app, "pages/live.py", session=unrelayed.id)
    assert not at.exception, at.exception
    assert "no video is relayed to this dashboard" in page_text(at)
    assert "The patient's video appears here" not in page_text(at)
    clinician_store.end_session(unrelayed.id)

    patient = consenting_patient(clinician_store, "Relayed Remote Patient")
    relayed = links.start_remote(clinician_store, Settings.load(), patient, relay_video=True).session
    browser_analysis.report_mode(relayed.id, "server")
    at = open_page(signed_in_app, "pages/live.py", session=relayed.id)
    assert not at.exception, at.exception
    text = page_text(at)
    assert "relayed to this dashboard (you chose the relay when starting" in text
    assert "The patient's video appears here once they start their camera" in text


def test_the_sessions_page_offers_the_relay_unticked_only_when_the_setting_allows_it(
        signed_in_app, clinician_store, monkeypatch):
    patient = consenting_patient(clinician_store, "Relay Choice Patient")
    at = open_page(signed_in_app, "pages/sessions.py", patient=patient.id)
    at.radio(key="start_mode").set_value("remote").run()
    assert not at.exception, at.exception
    assert links.RELAY_CHOICE_LABEL not in [c.label for c in at.checkbox]
    assert links.NO_RELAY_CAPTION in page_text(at)

    monkeypatch.setenv("REMOTE_VIDEO_RELAY", "on")
    at.run()
    [choice] = [c for c in at.checkbox if c.label == links.RELAY_CHOICE_LABEL]
    assert choice.value is False  # explicit: off unless the clinician ticks it
    choice.check().run()
    next(b for b in at.button if b.label == "Start remote session").click().run()
    assert not at.exception, at.exception
    [session] = clinician_store.list_sessions(patient_id=patient.id, status="live")
    assert remote.video_relayed(Settings.load(), session.id)
    monkeypatch.setenv("REMOTE_VIDEO_RELAY", "off")
    assert not remote.video_relayed(Settings.load(), session.id)  # the setting off wins over a session's choice
