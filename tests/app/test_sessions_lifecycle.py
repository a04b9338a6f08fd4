"""No orphaned or duplicate sessions: one live session per patient, the join link shown again after a reload and
renewed on request, idle live sessions ended automatically with an audit entry."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from app import lifecycle, links, sessions
from settings import Settings
from store.errors import InvalidToken
from tests.app.conftest import follow, open_page, page_text
from tests.app.helpers import began_ago, consenting_patient, device_session, synthetic_readings


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_starting_a_second_session_for_a_patient_offers_to_return_or_end_the_live_one(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Carmen Duque")
    live, _ = device_session(clinician_store, store_factory, patient)
    at = open_page(signed_in_app, "pages/sessions.py", patient=patient.id)
    assert "Carmen Duque already has a live session" in page_text(at)
    assert "Start in-person session" not in [b.label for b in at.button]
    assert any(link.label == "Return to the live session" for link in at.get("page_link"))
    with pytest.raises(lifecycle.AlreadyLive):
        sessions.start_in_person(clinician_store, patient, live.device_id)
    button(at, "End it").click().run()
    assert clinician_store.get_session(live.id).status == "ended"
    assert "Start in-person session" in [b.label for b in at.button]


def test_the_join_link_is_shown_again_after_a_reload_and_a_new_link_replaces_it(signed_in_app, new_app, clinician_store, system_store, app_env):
    from tests.app.conftest import log_in

    patient = consenting_patient(clinician_store, "Diego Esteban")
    at = open_page(signed_in_app, "pages/sessions.py", patient=patient.id)
    at.radio(key="start_mode").set_value("remote").run()
    button(at, "Start remote session").click().run()
    [session] = clinician_store.list_sessions(patient.id, status="live")
    first = next(c.value for c in follow(at, "pages/live.py").run().code if "token=" in c.value)

    # A reload: a new browser session, nothing in session_state.
    again = new_app()
    log_in(again, signed_in_app.session_state["_psya_clinician"].username)
    again = open_page(again, "pages/live.py", session=session.id)
    assert first in [c.value for c in again.code]

    button(again, "New link").click().run()
    second = next(c.value for c in again.code if "token=" in c.value)
    assert second != first
    again.run()  # the page reruns by itself (every second, and right after it loads): the notice stays
    assert "the old one no longer works" in page_text(again)
    with pytest.raises(InvalidToken):
        system_store.session_for_token(first.split("token=", 1)[1])
    assert system_store.session_for_token(second.split("token=", 1)[1]).id == session.id
    assert clinician_store.get_join_link(session.id) is not None and "token=" not in clinician_store.get_join_link(session.id)


def test_a_saved_link_under_another_key_is_not_shown_but_can_be_renewed(clinician_store, tmp_path):
    patient = consenting_patient(clinician_store, "Elena Fuentes")
    settings = Settings(cookie_key="k" * 40, data_dir=tmp_path)
    started = links.start_remote(clinician_store, settings, patient)
    assert links.recall(clinician_store, settings, started.session.id) == started.link
    assert links.recall(clinician_store, Settings(cookie_key="other" * 8, data_dir=tmp_path), started.session.id) is None


def test_an_idle_live_session_is_ended_automatically_with_an_audit_entry(clinician_store, store_factory, admin_store):
    patient = consenting_patient(clinician_store, "Félix Gil")
    idle, device_store = device_session(clinician_store, store_factory, patient)
    idle = began_ago(store_factory, idle, 45 * 60)
    device_store.insert_readings(synthetic_readings(idle, ["neutral"] * 3))  # its last reading: about 45 min ago
    other = consenting_patient(clinician_store, "Gema Haro")
    busy, busy_device = device_session(clinician_store, store_factory, other, name="pi-room-2")
    busy = began_ago(store_factory, busy, 45 * 60)
    busy_device.insert_readings(synthetic_readings(busy, ["neutral"], start=datetime.now(timezone.utc) - timedelta(minutes=2)))
    ended = lifecycle.end_idle_sessions(clinician_store, idle_minutes=30)
    assert [e.session.id for e in ended] == [idle.id]
    assert clinician_store.get_session(idle.id).status == "ended" and clinician_store.get_session(busy.id).status == "live"
    assert ("auto_end", "session", str(idle.id)) in {(e.action, e.entity, e.entity_id) for e in admin_store.list_audit()}


def test_the_sessions_page_says_when_it_ended_an_idle_session(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Hilda Ibáñez")
    idle, _ = device_session(clinician_store, store_factory, patient)
    began_ago(store_factory, idle, 31 * 60)
    at = open_page(signed_in_app, "pages/sessions.py")
    assert "Ended automatically: a live session idle since" in page_text(at)
    at.run()  # the page reruns right after it loads (the login cookie component): the notice must survive it
    assert "Ended automatically: a live session idle since" in page_text(at)
    assert clinician_store.get_session(idle.id).status == "ended"


def test_the_idle_time_is_a_setting_in_minutes_fractions_allowed(clinician_store, store_factory, tmp_path):
    """IDLE_SESSION_MINUTES=0.05 (3 s) lets the browser test see an automatic end without waiting half an hour."""
    settings = Settings.load(environ={"IDLE_SESSION_MINUTES": "0.05"}, secrets_file=tmp_path / "none.toml")
    assert settings.idle_session_minutes == 0.05
    patient = consenting_patient(clinician_store, "Irene Jara")
    idle, _ = device_session(clinician_store, store_factory, patient)
    idle = began_ago(store_factory, idle, 4)
    assert [e.session.id for e in lifecycle.end_idle_sessions(clinician_store, settings.idle_session_minutes)] == [idle.id]
