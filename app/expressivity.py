"""Expressivity per session (issue 15): measures of expressive range that clinicians discuss under blunted or flat affect,
computed from the readings, and their course across a treatment against the patient's own first sessions.

These are observations of the face as the model sees it, not diagnoses: a low value can come from the camera angle, the
lighting, glasses, medication, culture or the topic of the session as well as from the patient's affect.

For a session with readings i = 1..N (probability vectors p_i over the 7 classes, session times t_i):
  - smoothed dominant label d_i: the class with the largest mean probability over the readings in (t_i - W, t_i],
    W = SMOOTHING_S (so single-frame flicker of the model does not count as an expression);
  - non_neutral_share  = (1/N) * #{i : d_i != neutral}                             (0 = always neutral)
  - variability        = (1/7) * sum_k sd_i(p_ik)   (sample standard deviation over the session of each class
                         probability, averaged over the classes)                   (0 = the face never changes)
  - entropy            = -sum_k q_k log2 q_k / log2 7, q_k = #{i : d_i = k} / N    (0 = one label only, 1 = all equally)
  - change_rate        = #{i > 1 : d_i != d_(i-1)} / ((t_N - t_1) / 60)            (changes of expression per minute)
Sessions with fewer than MIN_READINGS readings give no measures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from fer.labels import LABELS

SMOOTHING_S = 3.0
MIN_READINGS = 10
FIRST_SESSIONS = 3  # the patient's reference: the mean of their first sessions with measures
MEASURES: dict[str, str] = {
    "non_neutral_share": "Share of time away from neutral",
    "variability": "Variability of the emotion mix",
    "entropy": "Entropy of the emotion mix",
    "change_rate": "Expression changes per minute",
}


@dataclass(frozen=True)
class Expressivity:
    readings: int
    non_neutral_share: float
    variability: float
    entropy: float
    change_rate: float | None  # None for a session shorter than a second


def smoothed_dominant(frame: pd.DataFrame, window_s: float = SMOOTHING_S) -> pd.Series:
    indexed = frame.set_index(pd.to_datetime(frame["captured_at"], utc=True))[list(LABELS)]
    rolled = indexed.rolling(pd.Timedelta(seconds=window_s)).mean()
    # first maximum in label order: the same tie-break as everywhere else (max() over fer.labels.LABELS)
    return pd.Series(rolled.to_numpy().argmax(axis=1), index=frame.index).map(dict(enumerate(LABELS)))


def session_expressivity(frame: pd.DataFrame, window_s: float = SMOOTHING_S) -> Expressivity | None:
    """The four measures of one session's readings frame (see the module docstring), or None with too few readings."""
    n = len(frame)
    if n < MIN_READINGS:
        return None
    dominant = smoothed_dominant(frame, window_s)
    shares = dominant.value_counts(normalize=True)
    entropy = -sum(q * math.log2(q) for q in shares if q > 0) / math.log2(len(LABELS))
    variability = float(frame[list(LABELS)].std(ddof=1).mean())
    changes = int((dominant != dominant.shift()).iloc[1:].sum())
    minutes = (float(frame["t"].iloc[-1]) - float(frame["t"].iloc[0])) / 60
    return Expressivity(
        readings=n,
        non_neutral_share=float((dominant != "neutral").mean()),
        variability=variability,
        entropy=float(max(entropy, 0.0)),
        change_rate=changes / minutes if minutes >= 1 / 60 else None,
    )


@dataclass(frozen=True)
class ExpressivityCourse:
    frame: pd.DataFrame  # one row per session with measures, oldest first: session (1..), started_at, readings, MEASURES
    reference: dict[str, float | None]  # mean over the first FIRST_SESSIONS rows, per measure
    reference_sessions: int


def course(points: Sequence[tuple[object, datetime | None, Expressivity | None]], first: int = FIRST_SESSIONS
           ) -> ExpressivityCourse:
    """Sessions (id, start, measures) -> the course across the treatment and the first sessions' reference."""
    rows = [{"session_id": sid, "started_at": when, "readings": e.readings,
             **{name: getattr(e, name) for name in MEASURES}} for sid, when, e in points if e is not None]
    frame = pd.DataFrame(rows, columns=["session_id", "started_at", "readings", *MEASURES])
    if not frame.empty:
        frame = frame.sort_values("started_at", kind="stable").reset_index(drop=True)
    frame.insert(0, "session", range(1, len(frame) + 1))
    head = frame.head(first)
    reference = {name: (None if head[name].dropna().empty else float(head[name].dropna().mean())) for name in MEASURES}
    return ExpressivityCourse(frame, reference, len(head))


def course_figure(result: ExpressivityCourse, height: int = 520):
    """The four measures per session (lines), each against the mean of the patient's first sessions (dashed)."""
    from plotly.subplots import make_subplots
    import plotly.graph_objects as go

    fig = make_subplots(rows=2, cols=2, subplot_titles=list(MEASURES.values()), vertical_spacing=0.16)
    for index, name in enumerate(MEASURES):
        row, col = index // 2 + 1, index % 2 + 1
        fig.add_trace(go.Scatter(x=result.frame["session"], y=result.frame[name], mode="lines+markers", name=MEASURES[name],
                                 line=dict(color="#6a3d9a"), showlegend=False,
                                 hovertemplate="session %{x}: %{y:.3f}<extra></extra>"), row=row, col=col)
        if result.reference[name] is not None:
            fig.add_hline(y=result.reference[name], line_dash="dash", line_color="#555", row=row, col=col,
                          annotation_text=f"first {result.reference_sessions}", annotation_position="top left")
        fig.update_xaxes(title_text="session", dtick=1, row=row, col=col)
    fig.update_layout(height=height, margin=dict(l=40, r=20, t=40, b=40))
    return fig


def patient_course(store, patient_id) -> ExpressivityCourse:
    """Every session of a patient, through the store (reads each session's readings once)."""
    from app import sessions as session_service

    points = []
    for session in store.list_sessions(patient_id):
        frame = session_service.session_frame(store, session)
        when = frame["captured_at"].iloc[0].to_pydatetime() if not frame.empty else session.started_at
        points.append((session.id, when, session_expressivity(frame)))
    return course(points)
