"""Plotly figures for the dashboard, review, progress and report. Pure: data in, `go.Figure` out (no Streamlit)."""

from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from app import analytics
from fer.labels import LABELS
from store.models import Annotation

# One fixed colour per emotion on every chart, hues far apart (red, green, purple, gold, blue, pink, grey): the old
# palette had angry/disgust (red/brown) and sad/surprise (blue/cyan) hard to tell apart. tests/app/test_charts.py
# checks every pair differs by a CIELAB distance of at least 30.
EMOTION_COLORS: dict[str, str] = {
    "angry": "#d62728",
    "disgust": "#2ca02c",
    "fear": "#6a3d9a",
    "happy": "#f2b701",
    "sad": "#1f77b4",
    "surprise": "#e377c2",
    "neutral": "#7f7f7f",
}
VALENCE_COLOR = "#222222"  # not an emotion's colour
LIVE_SMOOTHING_S = 3.0
LIVE_CHART_KEY = "live_chart"  # st.plotly_chart key: the browser finds it as `.st-key-live_chart .js-plotly-plot`


def _layout(fig: go.Figure, height: int, title: str | None = None) -> go.Figure:
    # The legend sits below the plot: above it, Plotly's toolbar (top right) covered its last entries.
    fig.update_layout(
        height=height,
        title=title,
        margin=dict(l=40, r=20, t=40 if title else 30, b=100),
        legend=dict(orientation="h", yanchor="top", y=-0.22, xanchor="left", x=0),
        hovermode="x unified",
    )
    return fig


def probabilities_figure(frame: pd.DataFrame, title: str | None = None, height: int = 360, uirevision: str | None = None) -> go.Figure:
    """The seven probabilities over session time (seconds), one line each."""
    fig = go.Figure()
    for label in LABELS:
        fig.add_trace(
            go.Scatter(x=frame["t"], y=frame[label], name=label, mode="lines", line=dict(color=EMOTION_COLORS[label], width=1.6))
        )
    fig.update_xaxes(title_text="seconds since start")
    fig.update_yaxes(title_text="probability", range=[0, 1])
    if uirevision:
        fig.update_layout(uirevision=uirevision)  # keep the clinician's zoom across the live chart's refreshes
    return _layout(fig, height, title)


def live_figure(frame: pd.DataFrame, session_key: str) -> go.Figure:
    """The whole session so far as stacked areas of the probabilities smoothed over 3 s (readable at a glance: the
    widest band is the emotion that dominates), downsampled so a long session stays light to redraw every second."""
    smoothed = analytics.smooth(analytics.downsample(frame, 1200), LIVE_SMOOTHING_S)
    fig = go.Figure()
    for label in LABELS:
        fig.add_trace(
            go.Scatter(
                x=smoothed["t"], y=smoothed[label], name=label, mode="lines", stackgroup="probabilities",
                line=dict(color=EMOTION_COLORS[label], width=0.5), fillcolor=EMOTION_COLORS[label],
                hovertemplate=f"{label} %{{y:.0%}}<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="seconds since start")
    fig.update_yaxes(title_text="probability (smoothed 3 s)", range=[0, 1], tickformat=".0%")
    fig.update_layout(uirevision=session_key)  # keep the clinician's zoom across the live chart's refreshes
    return _layout(fig, 340)


def distribution_figure(distribution: dict[str, float], title: str | None = None, height: int = 260) -> go.Figure:
    fig = go.Figure(
        go.Bar(
            x=list(LABELS),
            y=[distribution.get(label, 0.0) for label in LABELS],
            marker_color=[EMOTION_COLORS[label] for label in LABELS],
            text=[f"{distribution.get(label, 0.0):.0%}" for label in LABELS],
            textposition="outside",
        )
    )
    fig.update_yaxes(range=[0, 1.1], tickformat=".0%")
    return _layout(fig, height, title)


def review_figure(
    smoothed: pd.DataFrame,
    annotations: Sequence[Annotation] = (),
    peaks: Sequence[analytics.Peak] = (),
    session_start: pd.Timestamp | None = None,
    height: int = 560,
    x_end: float | None = None,
) -> go.Figure:
    """Session review: smoothed probabilities (top), the dominant-emotion band (middle), valence (bottom); annotations
    as dashed markers across all rows, peaks as points on their emotion's line."""
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, row_heights=[0.62, 0.1, 0.28], vertical_spacing=0.04)
    for label in LABELS:
        fig.add_trace(
            go.Scatter(x=smoothed["t"], y=smoothed[label], name=label, mode="lines", line=dict(color=EMOTION_COLORS[label], width=1.8), legendgroup=label),
            row=1,
            col=1,
        )
    for segment in analytics.dominant_segments(smoothed):
        fig.add_trace(
            go.Bar(
                x=[max(segment.duration_s, 0.5)],
                base=[segment.start_s],
                y=["dominant"],
                orientation="h",
                marker_color=EMOTION_COLORS[segment.label],
                showlegend=False,
                legendgroup=segment.label,
                hovertemplate=f"{segment.label}: {segment.start_s:.0f}-{segment.end_s:.0f} s<extra></extra>",
            ),
            row=2,
            col=1,
        )
    valence = analytics.valence(smoothed)
    fig.add_trace(
        go.Scatter(x=smoothed["t"], y=valence, name="valence", mode="lines", line=dict(color=VALENCE_COLOR, width=1.6), fill="tozeroy", fillcolor="rgba(34,34,34,0.15)"),
        row=3,
        col=1,
    )
    if peaks:
        fig.add_trace(
            go.Scatter(
                x=[p.t for p in peaks],
                y=[p.value for p in peaks],
                mode="markers",
                name="peaks",
                marker=dict(symbol="triangle-up", size=11, color=[EMOTION_COLORS[p.label] for p in peaks], line=dict(color="black", width=1)),
                text=[f"{p.label} {p.value:.2f}" for p in peaks],
                hovertemplate="peak: %{text} at %{x:.0f} s<extra></extra>",
            ),
            row=1,
            col=1,
        )
    if annotations and session_start is not None:
        for note in annotations:
            at = (pd.Timestamp(note.at).tz_convert("UTC") - session_start).total_seconds()
            fig.add_vline(x=at, line_dash="dash", line_color="#444", opacity=0.6)
        fig.add_trace(
            go.Scatter(
                x=[(pd.Timestamp(n.at).tz_convert("UTC") - session_start).total_seconds() for n in annotations],
                y=[1.02] * len(annotations),
                mode="markers",
                name="notes",
                marker=dict(symbol="diamond", size=10, color="#444"),
                text=[html.escape(n.text) for n in annotations],  # Plotly renders <a>, <b>... in texts
                hovertemplate="%{text}<extra>note at %{x:.0f} s</extra>",
            ),
            row=1,
            col=1,
        )
    fig.update_yaxes(range=[0, 1.05], title_text="probability", row=1, col=1)
    fig.update_yaxes(showticklabels=False, row=2, col=1)
    fig.update_yaxes(range=[-1, 1], title_text="valence", row=3, col=1)
    fig.update_xaxes(title_text="seconds since start", row=3, col=1)
    if x_end is not None:  # the session's own clock: start to end, whatever else lies around it
        fig.update_xaxes(range=[0, max(x_end, 1.0)])
    fig.update_layout(barmode="overlay")
    return _layout(fig, height)


def baseline_figure(changed: pd.DataFrame, height: int = 300) -> go.Figure:
    """Change of each emotion against the patient's neutral baseline (0 = as at rest)."""
    fig = go.Figure()
    for label in LABELS:
        fig.add_trace(go.Scatter(x=changed["t"], y=changed[label], name=label, mode="lines", line=dict(color=EMOTION_COLORS[label], width=1.4)))
    fig.add_hline(y=0, line_color="black", line_width=1)
    fig.update_yaxes(title_text="change vs baseline", range=[-1, 1])
    fig.update_xaxes(title_text="seconds since start")
    return _layout(fig, height)


def _error_bars(progress: pd.DataFrame, name: str) -> dict | None:
    low, high = progress.get(f"{name}_low"), progress.get(f"{name}_high")
    if low is None or high is None or low.isna().all():
        return None
    return dict(type="data", symmetric=False, array=(high - progress[name]).tolist(), arrayminus=(progress[name] - low).tolist(), thickness=1.2, width=4)


def progress_figure(progress: pd.DataFrame, trends: dict[str, analytics.Trend], height: int = 440) -> go.Figure:
    """Each emotion's mean proportion per session (markers with their 95 % bootstrap interval), joined by a thin line;
    a dashed trend line on the same axis, so it runs through the points it summarises, and only for an emotion whose
    trend is one (slope interval excluding zero)."""
    fig = go.Figure()
    x = progress["session"].tolist()
    hover = [f"session {n} · {pd.Timestamp(d):%Y-%m-%d}" if d is not None and not pd.isna(d) else f"session {n}" for n, d in zip(progress["session"], progress["started_at"])]
    for label in LABELS:
        fig.add_trace(
            go.Scatter(
                x=x, y=progress[label], name=label, mode="lines+markers", legendgroup=label, hovertext=hover,
                line=dict(color=EMOTION_COLORS[label], width=1), marker=dict(color=EMOTION_COLORS[label], size=8),
                error_y=_error_bars(progress, label),
            )
        )
    for label in LABELS:
        line = trends.get(label)
        if line is None or not line.significant:
            continue
        fig.add_trace(
            go.Scatter(
                x=x, y=[line.at(i) for i in range(len(x))], mode="lines", name=f"{label} trend", legendgroup=label,
                showlegend=False, line=dict(color=EMOTION_COLORS[label], dash="dash", width=2.5),
            )
        )
    fig.update_yaxes(title_text="mean proportion", range=[0, 1], tickformat=".0%")
    fig.update_xaxes(title_text="session", dtick=1)
    return _layout(fig, height)


def valence_progress_figure(progress: pd.DataFrame, valence_trend: analytics.Trend, height: int = 300) -> go.Figure:
    fig = go.Figure(
        go.Scatter(
            x=progress["session"], y=progress["valence"], mode="lines+markers", name="valence (95 % interval)",
            line=dict(color=VALENCE_COLOR, width=1), error_y=_error_bars(progress, "valence"),
        )
    )
    if valence_trend.significant:
        fig.add_trace(
            go.Scatter(x=progress["session"], y=[valence_trend.at(i) for i in range(len(progress))], mode="lines", name=f"trend ({valence_trend.direction})", line=dict(dash="dash", color=VALENCE_COLOR, width=2.5))
        )
    fig.add_hline(y=0, line_color="#999", line_width=1)
    fig.update_yaxes(range=[-1, 1], title_text="valence index")
    fig.update_xaxes(title_text="session", dtick=1)
    return _layout(fig, height)
