"""Typed event markers (issue 15): the clinician's marker types, marking a session now or at a chosen session time, and
drawing markers on any timeline figure. No Streamlit here (the widgets are in app/marker_ui.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

import pandas as pd
import plotly.graph_objects as go

from store.api import Store
from store.errors import InvalidInput
from store.markers import UNCHANGED, Marker, MarkerType
from store.models import Session

# Offered to a clinician who has no marker types yet (removing every type brings these back).
DEFAULT_MARKER_TYPES: tuple[tuple[str, str], ...] = (
    ("topic: family", "1"),
    ("exercise start", "2"),
    ("distress", "3"),
    ("topic: work", "4"),
    ("relief", "5"),
)
MARKER_COLOR = "#6a3d9a"  # not one of the emotion colours (app/charts.py), so a marker never reads as an emotion
MARKER_TRACE_NAME = "markers"
CLOCK_SKEW = timedelta(seconds=5)  # a marker may sit this far outside the session (devices' clocks differ)


def default_types(clinician_id) -> list[MarkerType]:
    """The defaults as unsaved types (a fixed id per label, so widget keys stay stable)."""
    import uuid

    return [MarkerType(uuid.uuid5(uuid.NAMESPACE_URL, f"psya-default-marker/{label}"), clinician_id, label, shortcut, position)
            for position, (label, shortcut) in enumerate(DEFAULT_MARKER_TYPES)]


def marker_types(store: Store) -> list[MarkerType]:
    """The acting clinician's marker types, or the defaults while they have saved none. Read-only: the live dashboard
    calls this on every full run, so it writes nothing (see `editable_marker_types`)."""
    return store.list_marker_types() or default_types(store.actor.id)


def editable_marker_types(store: Store) -> list[MarkerType]:
    """The clinician's saved types, storing the defaults first when they have none (before they add or remove one)."""
    types = store.list_marker_types()
    if types:
        return types
    for kind in default_types(store.actor.id):
        store.add_marker_type(kind.label, kind.shortcut, kind.position)
    return store.list_marker_types()


def next_free_shortcut(types: Sequence[MarkerType]) -> str:
    used = {t.shortcut for t in types}
    return next((key for key in "123456789" if key not in used), "")


def timeline_origin(session: Session, frame: pd.DataFrame | None = None) -> datetime:
    """Where a session's timeline counts seconds from: the same zero as analytics.readings_frame (`t`)."""
    if frame is not None and not frame.empty:
        first = frame["captured_at"].iloc[0] - pd.Timedelta(seconds=float(frame["t"].iloc[0]))
        return first.to_pydatetime()
    return session.started_at or session.created_at or datetime.now(timezone.utc)


def session_end(session: Session, frame: pd.DataFrame | None = None) -> datetime:
    """The last instant a marker may mark: the session's end (now while live), or its last reading if later (readings
    of a recorded video, a device clock running ahead)."""
    end = session.ended_at or datetime.now(timezone.utc)
    if frame is not None and not frame.empty:
        end = max(end, frame["captured_at"].iloc[-1].to_pydatetime())
    return end


def _check_within_session(session: Session, at: datetime, frame: pd.DataFrame | None = None) -> None:
    start = session.started_at or session.created_at
    if frame is not None and not frame.empty:
        start = min(start, timeline_origin(session, frame)) if start else timeline_origin(session, frame)
    end = session_end(session, frame)
    if start is not None and not (start - CLOCK_SKEW <= at <= end + CLOCK_SKEW):
        raise InvalidInput("A marker must lie within the session (between its start and its end).")


def mark_now(store: Store, session: Session, kind: str, text: str = "", now: datetime | None = None) -> Marker:
    """A marker at this instant of a live session (one click or its shortcut on the live dashboard)."""
    if session.status != "live":
        raise InvalidInput("Only a live session is marked now; mark an ended session at a time in its review.")
    return store.add_marker(session.id, now or datetime.now(timezone.utc), kind, text)


def mark_at(store: Store, session: Session, origin: datetime, seconds: float, kind: str, text: str = "",
            frame: pd.DataFrame | None = None) -> Marker:
    """A marker `seconds` into the session's timeline (the review's "add at a chosen time"); `frame`, the session's
    readings, widens the allowed span to every reading."""
    at = origin + timedelta(seconds=float(seconds))
    _check_within_session(session, at, frame)
    return store.add_marker(session.id, at, kind, text)


def move_marker(store: Store, session: Session, marker: Marker, origin: datetime, seconds: float | None = None,
                kind: str | None = None, text: str | None = None, frame: pd.DataFrame | None = None) -> Marker:
    at: object = UNCHANGED
    if seconds is not None:
        at = origin + timedelta(seconds=float(seconds))
        _check_within_session(session, at, frame)  # type: ignore[arg-type]
    return store.update_marker(marker.id, at=at, kind=UNCHANGED if kind is None else kind,
                               text=UNCHANGED if text is None else text)


def offset_s(marker: Marker, origin: datetime) -> float:
    return (marker.at - origin).total_seconds()


def describe(marker: Marker) -> str:
    return f"{marker.kind}: {marker.text}" if marker.text else marker.kind


def markers_frame(markers: Sequence[Marker], origin: datetime) -> pd.DataFrame:
    """One row per marker: the export's markers table (see docs/app.md, "Export dictionary")."""
    return pd.DataFrame(
        [{"marker_id": str(m.id), "at_utc": m.at.astimezone(timezone.utc).isoformat(timespec="milliseconds"),
          "t_s": round(offset_s(m, origin), 3), "kind": m.kind, "text": m.text} for m in markers],
        columns=["marker_id", "at_utc", "t_s", "kind", "text"],
    )


def add_to_figure(figure: go.Figure, markers: Sequence[Marker], origin: datetime, y: float = 0.97) -> go.Figure:
    """Draw markers on a timeline figure whose x axis is seconds since `origin`: a dotted line across every subplot and a
    hoverable point (type and text) at the top of the first. Returns the same figure."""
    if not markers:
        return figure
    has_rows = getattr(figure, "_grid_ref", None) is not None
    for marker in markers:
        line = dict(x=offset_s(marker, origin), line_dash="dot", line_color=MARKER_COLOR, line_width=1.5, opacity=0.8)
        figure.add_vline(**line, row="all", col=1, exclude_empty_subplots=False) if has_rows else figure.add_vline(**line)
    point = go.Scatter(
        x=[offset_s(m, origin) for m in markers],
        y=[y] * len(markers),
        mode="markers",
        name=MARKER_TRACE_NAME,
        marker=dict(symbol="star", size=12, color=MARKER_COLOR, line=dict(color="white", width=1)),
        text=[describe(m) for m in markers],
        hovertemplate="%{text}<extra>marker at %{x:.0f} s</extra>",
        cliponaxis=False,
    )
    figure.add_trace(point, row=1, col=1) if has_rows else figure.add_trace(point)
    return figure


def visible_markers(store: Store, session: Session) -> list[Marker]:
    """The session's markers for its own clinician; [] for anyone else (an admin reviewing a colleague's session sees
    no markers: they are the treating clinician's notes)."""
    from store.errors import NotFound, PermissionDenied

    try:
        return store.list_markers(session.id)
    except (NotFound, PermissionDenied):
        return []
