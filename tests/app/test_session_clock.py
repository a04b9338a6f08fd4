"""One session clock, through the real app on a real PostgreSQL: Stop means stop (dashboard, review and CSV agree),
no notes on an ended session from the live page, review notes carry their session time, the review's axis runs from
start to end, times in the clinician's time zone."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone

import pytest

from app import clinical_exports, clock, review
from store.errors import InvalidInput, SessionNotLive
from store.models import Session
from tests.app.conftest import open_page, page_text
from tests.app.helpers import began_ago, consenting_patient, device_session, synthetic_readings


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_readings_captured_after_stop_are_in_no_count(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Ramón Soto")
    session, device_store = device_session(clinician_store, store_factory, patient)
    session = began_ago(store_factory, session, 15)
    at = open_page(signed_in_app, "pages/live.py", session=session.id)
    device_store.insert_readings(synthetic_readings(session, ["neutral"] * 6 + ["happy"] * 4))
    at.run()
    button(at, "Stop session").click().run()
    ended = clinician_store.get_session(session.id)
    # The agent's last batch: two readings captured in time (arriving late) and three captured after Stop. The database
    # takes the first two and refuses the others (stop means stop: no tolerance after the end).
    in_time = synthetic_readings(ended, ["sad"] * 2, start=ended.ended_at - timedelta(seconds=0.8), every_s=0.4)
    after_stop = synthetic_readings(ended, ["fear"] * 3, start=ended.ended_at + timedelta(seconds=1), every_s=1.0)
    assert device_store.insert_readings(in_time) == 2
    with pytest.raises(SessionNotLive, match="after the end"):
        device_store.insert_readings(after_stop)
    at.run()
    dashboard = {m.label: m.value for m in at.metric}["Readings"]
    result = review.build(clinician_store, ended)
    rows = list(csv.DictReader(io.StringIO(review.readings_csv(clinician_store, result).decode())))
    reviewed = open_page(at, "pages/review.py", session=session.id)
    shown = {m.label: m.value for m in reviewed.metric}["Readings"]
    assert dashboard == shown == str(len(rows)) == "12"
    assert "fear" not in {r["dominant"] for r in rows}


def test_an_ended_session_takes_no_note_from_the_live_page(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Sara Tello")
    session, _ = device_session(clinician_store, store_factory, patient)
    at = open_page(signed_in_app, "pages/live.py", session=session.id)
    stale = session  # a page opened while live, submitted after the end
    clinician_store.end_session(session.id)
    at.run()
    assert "Note at this moment" not in [t.label for t in at.text_input]
    assert "notes are added in the review" in page_text(at)
    from app import sessions

    with pytest.raises(InvalidInput, match="has ended"):
        sessions.annotate(clinician_store, stale, "typed after the end")
    assert clinician_store.list_annotations(session.id) == []


def test_review_notes_carry_the_session_time_they_refer_to_and_stay_within_it(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Teo Ulloa")
    session, device_store = device_session(clinician_store, store_factory, patient)
    session = began_ago(store_factory, session, 45)
    device_store.insert_readings(synthetic_readings(session, ["neutral"] * 40))
    ended = clinician_store.end_session(session.id)
    at = open_page(signed_in_app, "pages/review.py", session=session.id)
    inputs = {t.label: t for t in at.text_input}
    inputs["Session time (m:ss)"].input("0:25")
    inputs["Note"].input("looked away at the question")
    button(at, "Add note").click().run()
    assert not at.exception
    [note] = clinician_store.list_annotations(session.id)
    assert note.text == "looked away at the question"
    assert clock.session_offset_s(ended, note.at) == pytest.approx(25.0)

    result = review.build(clinician_store, ended)
    end_s = (ended.ended_at - ended.started_at).total_seconds()
    with pytest.raises(ValueError, match="within the session"):
        review.add_note(clinician_store, result, clock.format_offset(end_s + 600), "ten minutes after the end")
    with pytest.raises(ValueError, match="not a session time"):
        review.add_note(clinician_store, result, "later", "no time")
    figure = result.figures()[0][1]
    assert list(figure.layout.xaxis.range) == pytest.approx([0, end_s])  # the axis is the session, not the notes


def test_the_review_axis_runs_from_start_to_end_even_with_an_old_late_note(clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Úrsula Vega")
    session, device_store = device_session(clinician_store, store_factory, patient)
    session = began_ago(store_factory, session, 45)
    device_store.insert_readings(synthetic_readings(session, ["neutral"] * 40))
    ended = clinician_store.end_session(session.id)
    clinician_store.add_annotation(session.id, ended.ended_at + timedelta(minutes=13), "stamped late by old code")
    result = review.build(clinician_store, ended)
    figure = result.figures()[0][1]
    assert figure.layout.xaxis.range[1] == pytest.approx((ended.ended_at - ended.started_at).total_seconds())


# --- pure clock ---------------------------------------------------------------------------------------------------------


def test_times_are_written_in_the_clinicians_zone_with_seconds():
    start = datetime(2026, 12, 2, 13, 3, 12, tzinfo=timezone.utc)
    end = datetime(2026, 12, 2, 13, 43, 50, tzinfo=timezone.utc)
    assert clock.format_span(start, end, "Europe/Madrid") == "2026-12-02 14:03:12-14:43:50 CET"
    assert clock.format_moment(start, "America/New_York") == "2026-12-02 08:03:12 EST"
    assert clock.format_moment(start, "Not/AZone") == "2026-12-02 13:03:12 UTC"  # a bad setting does not break a page
    assert clock.format_span(start, end + timedelta(hours=12), "Europe/Madrid") == "2026-12-02 14:03:12 CET - 2026-12-03 02:43:50 CET"


def test_session_times_parse_as_minutes_and_seconds():
    assert clock.parse_offset("1:05") == 65 and clock.parse_offset("1:02:03") == 3723 and clock.parse_offset("42") == 42
    for bad in ("", "abc", "1:75"):
        with pytest.raises(ValueError):
            clock.parse_offset(bad)


def test_a_recorded_video_is_timed_by_its_readings():
    now = datetime.now(timezone.utc)
    video = Session(id=None, patient_id=None, clinician_id=None, mode="recorded_video", status="ended", started_at=now, ended_at=now)
    assert clock.session_end(video) is None


def test_a_clinician_chooses_a_time_zone_and_the_pages_and_report_use_it(signed_in_app, clinician_store, store_factory, clinician):
    from tests.app.helpers import recorded_session

    patient = consenting_patient(clinician_store, "Víctor Wong")
    session = recorded_session(clinician_store, store_factory, patient, ["neutral"] * 20)
    at = open_page(signed_in_app, "pages/sessions.py")
    at.selectbox(key="time_zone").set_value("Europe/Madrid")
    button(at, "Save time zone").click().run()
    assert not at.exception and clinician_store.get_time_zone() == "Europe/Madrid"
    expected = clock.format_span(session.started_at, session.ended_at, "Europe/Madrid")
    assert expected.endswith(" CET") and expected[10] == " " and expected.count(":") == 4  # date, two times with seconds
    assert any(expected in link.label for link in at.get("page_link"))
    html = clinical_exports.html_report(clinician_store, review.build(clinician_store, session), patient, clinician,
                                        tz="Europe/Madrid")
    assert expected in html and "UTC to" not in html


def test_the_sessions_page_lists_live_sessions_with_a_stop_button(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Wanda Xu")
    session, _ = device_session(clinician_store, store_factory, patient)
    at = open_page(signed_in_app, "pages/sessions.py")
    button(at, "Stop").click().run()
    assert not at.exception
    assert clinician_store.get_session(session.id).status == "ended"
    assert f"Stopped the session of Wanda Xu." in page_text(at)
