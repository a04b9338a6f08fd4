"""Comparisons (issue 15): two sessions of one patient side by side, and a cohort view of the acting clinician's own
patients (sessions per week, mean valence per session). Nothing here crosses clinicians: the cohort keeps only patients
whose clinician is the actor, even for an admin (who may see every patient elsewhere)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pandas as pd
import plotly.graph_objects as go

from app import affect, reactions, sessions
from app import markers as marker_service
from fer.labels import LABELS
from store.api import Store
from store.models import Session


@dataclass(frozen=True)
class SessionSide:
    session: Session
    frame: pd.DataFrame
    markers: list
    distribution: dict[str, float]
    mean_valence: float | None
    mean_arousal: float | None
    reactions: dict[str, list[reactions.Reaction]]  # marker type -> its pooled reactions in this session


def session_side(store: Store, session: Session, before_s: float, after_s: float) -> SessionSide:
    frame = sessions.session_frame(store, session)
    if frame.empty:
        distribution = {label: 0.0 for label in LABELS}
        valence = arousal = None
    else:
        shares = frame["dominant"].value_counts(normalize=True)
        distribution = {label: float(shares.get(label, 0.0)) for label in LABELS}
        values = affect.valence_arousal(frame).mean()
        valence, arousal = float(values["valence"]), float(values["arousal"])
    found = marker_service.visible_markers(store, session)
    origin = marker_service.timeline_origin(session, frame)
    by_kind = {}
    for kind in sorted({m.kind for m in found}):
        times = [marker_service.offset_s(m, origin) for m in found if m.kind == kind]
        by_kind[kind] = reactions.pooled_reactions([(frame, times)], before_s, after_s, kind)
    return SessionSide(session, frame, found, distribution, valence, arousal, by_kind)


def affect_figure(side: SessionSide, height: int = 260) -> go.Figure:
    """Valence and arousal over the session (9-reading centred mean), markers drawn on it."""
    fig = go.Figure()
    if not side.frame.empty:
        values = affect.valence_arousal(side.frame).rolling(9, min_periods=1, center=True).mean()
        fig.add_trace(go.Scatter(x=side.frame["t"], y=values["valence"], name="valence", mode="lines", line=dict(color="#2ca02c")))
        fig.add_trace(go.Scatter(x=side.frame["t"], y=values["arousal"], name="arousal", mode="lines", line=dict(color="#ff7f0e")))
    fig.update_yaxes(range=[-1, 1], title_text="valence / arousal")
    fig.update_xaxes(title_text="seconds since start")
    fig.update_layout(height=height, margin=dict(l=40, r=20, t=20, b=40), legend=dict(orientation="h", y=1.1))
    return marker_service.add_to_figure(fig, side.markers, marker_service.timeline_origin(side.session, side.frame))


# --- cohort ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cohort:
    sessions: pd.DataFrame  # one row per session with readings: patient_id, patient, started_at, week, readings, mean_valence
    per_week: pd.DataFrame  # week (Monday, ISO), sessions


def cohort(store: Store) -> Cohort:
    """The acting clinician's own patients only (never another clinician's, even for an admin)."""
    own = [p for p in store.list_patients(include_archived=True) if p.clinician_id == store.actor.id]
    rows = []
    for patient in own:
        for session in store.list_sessions(patient.id):
            if session.clinician_id != store.actor.id:
                continue
            aggregate = store.session_aggregate(session.id)
            if aggregate.readings == 0:
                continue
            when = aggregate.first_at or session.started_at or session.created_at
            # valence is linear in the probabilities: the mean valence of the readings is the valence of their mean
            mean = pd.DataFrame([aggregate.mean_probabilities], columns=list(LABELS))
            rows.append({"patient_id": patient.id, "patient": patient.full_name, "started_at": when,
                         "readings": aggregate.readings,
                         "mean_valence": float(affect.valence_arousal(mean)["valence"].iloc[0])})
    frame = pd.DataFrame(rows, columns=["patient_id", "patient", "started_at", "readings", "mean_valence"])
    if frame.empty:
        return Cohort(frame.assign(week=pd.Series(dtype="object")), pd.DataFrame(columns=["week", "sessions"]))
    frame = frame.sort_values("started_at", kind="stable").reset_index(drop=True)
    frame["week"] = [(t.astimezone(timezone.utc).date() - pd.Timedelta(days=t.astimezone(timezone.utc).weekday())) for t in frame["started_at"]]
    per_week = frame.groupby("week").size().rename("sessions").reset_index()
    return Cohort(frame, per_week)


def per_week_figure(result: Cohort, height: int = 260) -> go.Figure:
    fig = go.Figure(go.Bar(x=[str(w) for w in result.per_week["week"]], y=result.per_week["sessions"], marker_color="#6a3d9a"))
    fig.update_xaxes(title_text="week (Monday)", type="category")
    fig.update_yaxes(title_text="sessions", dtick=1)
    fig.update_layout(height=height, margin=dict(l=40, r=20, t=20, b=40))
    return fig


def valence_figure(result: Cohort, height: int = 320) -> go.Figure:
    fig = go.Figure()
    for patient, rows in result.sessions.groupby("patient", sort=True):
        fig.add_trace(go.Scatter(x=rows["started_at"], y=rows["mean_valence"], name=str(patient), mode="lines+markers"))
    fig.add_hline(y=0, line_color="black", line_width=1)
    fig.update_yaxes(title_text="mean valence per session", range=[-1, 1])
    fig.update_layout(height=height, margin=dict(l=40, r=20, t=20, b=40), legend=dict(orientation="h", y=1.1))
    return fig
