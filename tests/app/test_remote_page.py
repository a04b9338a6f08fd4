"""The patient's join page through the real app script (AppTest): no login needed, token checked before anything else,
consent before the camera."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qs, urlparse

from app.remote import INVALID_LINK_MESSAGE
from store.models import NewPatient

CONSENT_LABEL = "I have read the above and agree to facial analysis during this session."


def open_join_page(new_app, token: str | None):
    at = new_app()
    if token is not None:
        at.query_params["token"] = token
    at.switch_page("pages/join.py")
    return at.run()


def start_remote(clinician_store):
    patient = clinician_store.create_patient(NewPatient(full_name="Page Patient"))
    clinician_store.record_consent(patient.id, True, date.today(), "facial analysis during sessions")
    return clinician_store.start_remote_session(patient.id)


def test_a_link_without_a_token_gets_the_clear_message_and_no_consent_form(new_app, clinician):
    at = open_join_page(new_app, None)
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [INVALID_LINK_MESSAGE]
    assert not at.checkbox


def test_an_unknown_token_gets_the_clear_message(new_app, clinician):
    at = open_join_page(new_app, "this-is-not-a-valid-join-token")
    assert [e.value for e in at.error] == [INVALID_LINK_MESSAGE]
    assert not at.checkbox


def test_an_ended_sessions_link_gets_the_clear_message(new_app, clinician_store):
    join = start_remote(clinician_store)
    clinician_store.end_session(join.session.id)
    at = open_join_page(new_app, join.token)
    assert [e.value for e in at.error] == [INVALID_LINK_MESSAGE]
    assert not at.checkbox


def test_a_valid_link_asks_for_consent_before_any_camera(new_app, clinician_store):
    join = start_remote(clinician_store)
    at = open_join_page(new_app, join.token)
    assert not at.exception, at.exception
    assert not at.error
    assert [c.label for c in at.checkbox] == [CONSENT_LABEL]
    assert not at.checkbox[0].value
    assert any("Tick the box" in i.value for i in at.info)
    assert "No video or picture of you is recorded" in " ".join(m.value for m in at.markdown)


def test_in_server_mode_the_join_page_says_truthfully_whether_the_clinician_sees_the_video(new_app, clinician_store,
                                                                                          monkeypatch):
    from app import links
    from settings import Settings

    monkeypatch.setenv("REMOTE_ANALYSIS", "server")
    monkeypatch.setenv("REMOTE_VIDEO_RELAY", "on")
    join = start_remote(clinician_store)
    text = " ".join(m.value for m in open_join_page(new_app, join.token).markdown)
    assert "not shown to your clinician" in text and "Your clinician sees your video" not in text
    clinician_store.end_session(join.session.id)

    from tests.app.helpers import consenting_patient

    patient = consenting_patient(clinician_store, "Relayed Page Patient")
    started = links.start_remote(clinician_store, Settings.load(), patient, relay_video=True)
    token = parse_qs(urlparse(started.link).query)["token"][0]
    text = " ".join(m.value for m in open_join_page(new_app, token).markdown)
    assert "Your clinician sees your video" in text and "not shown to your clinician" not in text
