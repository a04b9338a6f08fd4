"""Event markers in the app: the services (defaults, marking now or at a chosen time, drawing on timelines) and the live
and review pages through the real app script (AppTest) on a real PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import plotly.graph_objects as go
import pytest

from app import markers, sessions
from store.errors import InvalidInput
from tests.app.conftest import open_page, page_text
from tests.app.helpers import consenting_patient, device_session, recorded_session, synthetic_readings


def test_a_clinician_without_marker_types_is_offered_the_defaults_saved_only_when_editing(clinician_store):
    offered = markers.marker_types(clinician_store)
    assert [(t.label, t.shortcut) for t in offered] == list(markers.DEFAULT_MARKER_TYPES)
    assert clinician_store.list_marker_types() == []  # showing the bar writes nothing
    saved = markers.editable_marker_types(clinician_store)
    assert [(t.label, t.shortcut) for t in saved] == list(markers.DEFAULT_MARKER_TYPES)
    assert [t.id for t in markers.editable_marker_types(clinician_store)] == [t.id for t in saved]  # stored once
    clinician_store.remove_marker_type(saved[0].id)
    assert [t.label for t in markers.marker_types(clinician_store)] == [label for label, _ in markers.DEFAULT_MARKER_TYPES[1:]]


def test_marking_now_needs_a_live_session_and_marking_later_a_time_inside_it(clinician_store, store_factory):
    patient = consenting_patient(clinician_store)
    session = recorded_session(clinician_store, store_factory, patient, ["neutral"] * 20)
    with pytest.raises(InvalidInput):
        markers.mark_now(clinician_store, session, "distress")
    origin = markers.timeline_origin(session)
    frame = sessions.session_frame(clinician_store, session)  # 20 readings, 1 s apart, from the start
    with pytest.raises(InvalidInput):
        markers.mark_at(clinician_store, session, origin, 3600, "distress", frame=frame)
    marker = markers.mark_at(clinician_store, session, origin, 4.5, "distress", "cried", frame)
    assert markers.offset_s(marker, origin) == pytest.approx(4.5)
    with pytest.raises(InvalidInput):
        markers.move_marker(clinician_store, session, marker, origin, seconds=-60.0, frame=frame)
    moved = markers.move_marker(clinician_store, session, marker, origin, seconds=2.0, text="", frame=frame)
    assert markers.offset_s(moved, origin) == pytest.approx(2.0) and moved.text == "" and moved.kind == "distress"
    table = markers.markers_frame([moved], origin)
    assert list(table.columns) == ["marker_id", "at_utc", "t_s", "kind", "text"]
    assert table.iloc[0]["t_s"] == 2.0 and table.iloc[0]["kind"] == "distress"


def test_markers_show_on_every_row_of_a_timeline_with_type_and_text_on_hover(clinician_store, store_factory):
    from plotly.subplots import make_subplots

    patient = consenting_patient(clinician_store)
    session = recorded_session(clinician_store, store_factory, patient, ["neutral"] * 20)
    origin = markers.timeline_origin(session)
    frame = sessions.session_frame(clinician_store, session)
    marked = [markers.mark_at(clinician_store, session, origin, 5, "topic: family", "mother", frame),
              markers.mark_at(clinician_store, session, origin, 9, "distress", frame=frame)]
    figure = make_subplots(rows=3, cols=1, shared_xaxes=True)
    for row in (1, 2, 3):
        figure.add_trace(go.Scatter(x=[0, 20], y=[0, 1]), row=row, col=1)
    markers.add_to_figure(figure, marked, origin)
    assert sorted(shape.x0 for shape in figure.layout.shapes) == [5, 5, 5, 9, 9, 9]
    [trace] = [t for t in figure.data if t.name == markers.MARKER_TRACE_NAME]
    assert list(trace.x) == [5, 9] and list(trace.text) == ["topic: family: mother", "distress"]


def test_the_live_marker_bar_marks_the_session_and_redraws_the_live_chart(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Lola Marín")
    session, device_store = device_session(clinician_store, store_factory, patient)
    device_store.insert_readings(synthetic_readings(session, ["neutral"] * 5))
    at = open_page(signed_in_app, "pages/live.py", session=session.id)
    assert not at.exception
    distress = next(b for b in at.button if b.label == "distress")
    distress.click().run()
    assert not at.exception
    [marker] = clinician_store.list_markers(session.id)
    assert marker.kind == "distress"
    at.run()  # the next refresh
    live_chart = at.session_state["live_feeds"][str(session.id)].figures[0]
    [trace] = [t for t in live_chart.data if t.name == markers.MARKER_TRACE_NAME]
    assert list(trace.text) == ["distress"]


def test_the_review_adds_edits_and_removes_markers_and_shows_reactions(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Mara Soto")
    session = recorded_session(clinician_store, store_factory, patient, ["neutral"] * 30 + ["sad"] * 30)
    at = open_page(signed_in_app, "pages/review.py", session=session.id)
    assert "Add markers to see how the face changed" in page_text(at)

    at.number_input[0].set_value(30.0)
    at.selectbox[0].set_value("distress")
    next(t for t in at.text_input if t.label == "Text (optional)").input("talked about the loss")
    next(b for b in at.button if b.label == "Add marker").click().run()
    assert not at.exception
    [marker] = clinician_store.list_markers(session.id)
    origin = markers.timeline_origin(session)
    assert (marker.kind, marker.text) == ("distress", "talked about the loss")
    assert markers.offset_s(marker, origin) == pytest.approx(30.0)

    rows = [d.value for d in at.dataframe if "Event" in d.value.columns]
    [reactions] = rows
    assert reactions.iloc[0]["Readings before"] == 30 and reactions.iloc[0]["Readings after"] == 30
    assert reactions.iloc[0]["Δ sad"].startswith("+0.825")  # 0.85 - 0.025 by construction of the synthetic readings

    next(t for t in at.text_input if t.label == "Text").input("loss of her father")
    next(b for b in at.button if b.label == "Save").click().run()
    assert [m.text for m in clinician_store.list_markers(session.id)] == ["loss of her father"]
    next(b for b in at.button if b.label == "Remove" and "review_edit_marker" in str(b.form_id)).click().run()
    assert clinician_store.list_markers(session.id) == []
