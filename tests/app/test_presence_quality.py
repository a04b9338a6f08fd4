"""Presence and data quality on the live dashboard and in the review: the dashboard says within seconds when the
patient or their face is gone, low-quality readings are flagged and left out of the numbers (setting, default on)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from app import presence, quality, review
from store.models import Reading, Session
from tests.app.conftest import open_page, page_text
from tests.app.helpers import began_ago, consenting_patient, device_session, one_hot, synthetic_readings

NOW = datetime(2026, 12, 2, 14, 0, 0, tzinfo=timezone.utc)


def live(mode: str = "remote") -> Session:
    return Session(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), mode, "live", started_at=NOW - timedelta(minutes=5))


def reading(box) -> Reading:
    return Reading(uuid.uuid4(), NOW, one_hot("happy"), "pi", box=box)


# --- pure ---------------------------------------------------------------------------------------------------------------


def test_presence_says_present_no_face_or_disconnected_from_the_newest_reading_and_the_source():
    assert presence.assess(live(), NOW - timedelta(seconds=1), True, NOW).state == "present"
    gone = presence.assess(live(), NOW - timedelta(seconds=12), False, NOW)
    assert gone.state == "disconnected" and gone.message == "Patient disconnected · last reading 12 s ago" and not gone.current
    away = presence.assess(live(), NOW - timedelta(seconds=12), True, NOW)
    assert away.state == "no_face" and away.message.startswith("No face for 12 s")
    assert presence.assess(live("in_person"), NOW - timedelta(seconds=40), False, NOW).message.startswith("Room camera offline")
    assert presence.assess(live(), None, None, NOW).message == "Waiting for the first reading…"
    assert presence.assess(live(), NOW - timedelta(seconds=4), None, NOW).state == "no_face"  # unknown source: no face


def test_a_browser_analysed_patient_is_there_while_their_page_sends_batches():
    from app import browser_analysis

    session_id = uuid.uuid4()
    assert presence.browser_connected(session_id, NOW) is None  # no batch yet in this process: unknown, not gone
    browser_analysis.note_batch(session_id, NOW - timedelta(seconds=1))
    assert presence.browser_connected(session_id, NOW) is True
    browser_analysis.note_batch(session_id, NOW - timedelta(seconds=6))
    assert presence.browser_connected(session_id, NOW) is False


def test_a_reading_is_low_quality_when_the_face_is_tiny_cut_off_or_turned_away():
    assert quality.quality_problems(reading((200, 150, 120, 120))) == ()
    assert quality.quality_problems(reading((200, 150, 30, 30))) == ("tiny face",)
    assert quality.quality_problems(reading((0, 150, 120, 120))) == ("face at the frame edge",)
    assert quality.quality_problems(reading((560, 150, 80, 120))) == ("face at the frame edge",)  # touches the right edge
    assert quality.quality_problems(reading(None)) == ("no face box",)
    summary = quality.summarize([reading((200, 150, 120, 120))] * 3 + [reading((200, 150, 20, 20))], analysed_frames=8)
    assert (summary.usable, summary.low_quality, summary.usable_share) == (3, 1, 3 / 8)
    assert quality.summarize([reading((200, 150, 120, 120))] * 3 + [reading(None)]).usable_share == 0.75


# --- through the app ---------------------------------------------------------------------------------------------------


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_dashboard_says_the_remote_patient_is_gone_and_drops_the_current_emotion(signed_in_app, clinician_store, system_store):
    patient = consenting_patient(clinician_store, "Yago Zamora")
    started = clinician_store.start_remote_session(patient.id)
    session = started.session
    now = datetime.now(timezone.utc)
    system_store.insert_remote_readings(started.token, [
        Reading(session.id, now - timedelta(seconds=1), one_hot("fear"), "remote", box=(200, 150, 120, 120)),
    ])
    at = open_page(signed_in_app, "pages/live.py", session=session.id)
    # No patient stream is open in this process (the patient closed the tab): within seconds, the page says so.
    import time

    deadline = time.monotonic() + 30
    while "Patient disconnected" not in page_text(at) and time.monotonic() < deadline:
        time.sleep(1.0)
        at.run()
    assert "Patient disconnected · last reading" in page_text(at)
    assert metrics(at)["Current emotion"] == "—"  # not "fear" indefinitely
    assert metrics(at)["Last reading"].endswith("s ago")


def test_in_browser_mode_batches_that_stop_say_disconnected_and_empty_batches_say_no_face(signed_in_app, clinician_store, system_store, store_factory):
    """Browser analysis (the default): no video reaches the server, so the patient's page sends a batch about once a
    second, empty when no face is seen. Batches that stop (tab closed) mean "Patient disconnected"; empty batches that
    keep coming mean "No face"."""
    from app import browser_analysis

    patient = consenting_patient(clinician_store, "Berta Cano")
    started = clinician_store.start_remote_session(patient.id)
    session = began_ago(store_factory, started.session, 60)
    browser_analysis.report_mode(session.id, "browser")
    now = datetime.now(timezone.utc)
    system_store.insert_remote_readings(started.token, [
        Reading(session.id, now - timedelta(seconds=12), one_hot("fear"), "remote", box=(200, 150, 120, 120)),
    ])
    browser_analysis.note_batch(session.id, now - timedelta(seconds=11))  # the last batch came with that reading
    at = open_page(signed_in_app, "pages/live.py", session=session.id)
    assert not at.exception, at.exception
    text = page_text(at)
    assert "Patient disconnected · last reading 1" in text and "No face" not in text
    assert metrics(at)["Current emotion"] == "—"

    browser_analysis.note_batch(session.id)  # the page is back, sending empty batches: it sees no face
    at.run()
    text = page_text(at)
    assert "No face for 1" in text and "Patient disconnected" not in text


def test_the_dashboard_says_no_face_while_the_room_camera_is_alive(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Zoe Abad")
    session, device_store = device_session(clinician_store, store_factory, patient)
    session = began_ago(store_factory, session, 60)
    device_store.heartbeat()
    device_store.insert_readings(synthetic_readings(session, ["happy"] * 5, start=datetime.now(timezone.utc) - timedelta(seconds=17)))
    at = open_page(signed_in_app, "pages/live.py", session=session.id)
    text = page_text(at)
    assert "No face for 1" in text  # 13 s or so: the last reading was captured about 13 s ago
    assert metrics(at)["Current emotion"] == "—"
    device_store.insert_readings(synthetic_readings(session, ["sad"], start=datetime.now(timezone.utc)))
    at.run()
    assert "Patient present" in page_text(at) and metrics(at)["Current emotion"] == "sad"


def test_low_quality_readings_are_flagged_and_left_out_of_the_numbers(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Abel Bravo")
    session, device_store = device_session(clinician_store, store_factory, patient)
    session = began_ago(store_factory, session, 30)
    good = synthetic_readings(session, ["happy"] * 6)
    tiny = [Reading(session.id, session.started_at + timedelta(seconds=10 + i), one_hot("angry"), "pi", box=(200, 150, 20, 20)) for i in range(2)]
    device_store.insert_readings(good + tiny)
    ended = clinician_store.end_session(session.id)
    result = review.build(clinician_store, ended)
    assert result.summary.readings == 6 and result.summary.distribution["angry"] == 0.0
    assert result.quality.low_quality == 2
    everything = review.build(clinician_store, ended, exclude_low_quality=False)
    assert everything.summary.readings == 8
    at = open_page(signed_in_app, "pages/review.py", session=session.id)
    assert metrics(at)["Readings"] == "6"
    assert "Usable face in 75% of the 8 readings; 2 low-quality readings" in page_text(at)
    live_page = open_page(at, "pages/live.py", session=session.id)
    assert metrics(live_page)["Readings"] == "6" and "(2 low-quality readings left out)" in page_text(live_page)
