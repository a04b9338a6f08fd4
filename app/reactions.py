"""Reactions to events (issue 15): how the face changed in a window after a marker against the window before it.

For a marker at session time m, with window lengths B (before) and A (after) in seconds:
    before = readings with m - B <= t < m,     after = readings with m <= t < m + A
and for each measure x (the seven class probabilities, valence, arousal; see app/affect.py):
    change = mean(x | after) - mean(x | before)
with a 95 % Welch confidence interval: se = sqrt(s_a^2/n_a + s_b^2/n_b), Welch-Satterthwaite degrees of freedom,
change +- t_{0.975, df} * se (s = sample standard deviation). It needs at least two readings on each side; otherwise the
interval is None. A marker type (in one session, or across sessions) pools the before- and after-readings of all its
markers. Readings a few hundred milliseconds apart are not independent, so the interval is narrower than an honest one
would be: read it as "how noisy the two windows are", not as a significance test (docs/app.md says the same).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from app import affect
from fer.labels import LABELS

MEASURES: tuple[str, ...] = (*LABELS, "valence", "arousal")
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Reaction:
    group: str  # what was pooled: a marker's description, or a marker type
    measure: str  # one of MEASURES
    n_before: int
    n_after: int
    mean_before: float | None
    mean_after: float | None
    change: float | None
    ci_low: float | None
    ci_high: float | None
    events: int = 1  # markers pooled


def measures_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """`t` and every measure per reading."""
    values = frame[["t", *LABELS]].copy()
    return pd.concat([values, affect.valence_arousal(frame)], axis=1)


def windows(measured: pd.DataFrame, at_s: float, before_s: float, after_s: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    t = measured["t"]
    return measured[(t >= at_s - before_s) & (t < at_s)], measured[(t >= at_s) & (t < at_s + after_s)]


def reactions(group: str, pairs: Iterable[tuple[pd.DataFrame, pd.DataFrame]], events: int = 1) -> list[Reaction]:
    """One Reaction per measure from pooled (before, after) window pairs of measures frames."""
    pairs = list(pairs)
    before = pd.concat([b for b, _ in pairs]) if pairs else pd.DataFrame(columns=list(MEASURES))
    after = pd.concat([a for _, a in pairs]) if pairs else pd.DataFrame(columns=list(MEASURES))
    found = []
    for measure in MEASURES:
        b = before[measure].astype("float64").tolist() if len(before) else []
        a = after[measure].astype("float64").tolist() if len(after) else []
        mean_b = sum(b) / len(b) if b else None
        mean_a = sum(a) / len(a) if a else None
        change = None if mean_a is None or mean_b is None else mean_a - mean_b
        low, high = welch_interval(b, a)
        found.append(Reaction(group, measure, len(b), len(a), mean_b, mean_a, change, low, high, events))
    return found


def marker_reactions(frame: pd.DataFrame, at_s: float, before_s: float, after_s: float, group: str) -> list[Reaction]:
    return reactions(group, [windows(measures_frame(frame), at_s, before_s, after_s)])


def pooled_reactions(sessions: Sequence[tuple[pd.DataFrame, Sequence[float]]], before_s: float, after_s: float,
                     group: str) -> list[Reaction]:
    """One group (a marker type) over several sessions: each (readings frame, marker times in that session's seconds)."""
    pairs = []
    for frame, times in sessions:
        if not times:
            continue
        measured = measures_frame(frame)
        pairs += [windows(measured, at, before_s, after_s) for at in times]
    return reactions(group, pairs, events=len(pairs))


def welch_interval(before: Sequence[float], after: Sequence[float], confidence: float = CONFIDENCE
                   ) -> tuple[float | None, float | None]:
    """The Welch confidence interval of mean(after) - mean(before); (None, None) with fewer than 2 readings a side."""
    n_b, n_a = len(before), len(after)
    if n_b < 2 or n_a < 2:
        return None, None
    mean_b, mean_a = sum(before) / n_b, sum(after) / n_a
    var_b = sum((x - mean_b) ** 2 for x in before) / (n_b - 1)
    var_a = sum((x - mean_a) ** 2 for x in after) / (n_a - 1)
    q_b, q_a = var_b / n_b, var_a / n_a
    se = math.sqrt(q_b + q_a)
    change = mean_a - mean_b
    if se == 0.0:
        return change, change
    df = (q_b + q_a) ** 2 / (q_b ** 2 / (n_b - 1) + q_a ** 2 / (n_a - 1))
    half = student_t_quantile(0.5 + confidence / 2, df) * se
    return change - half, change + half


def student_t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t with `df` (real, > 0) degrees of freedom, by bisection on the exact CDF."""
    if not 0.5 <= p < 1:
        raise ValueError("p must be in [0.5, 1)")
    low, high = 0.0, 1.0
    while _t_cdf(high, df) < p:
        high *= 2
    for _ in range(200):
        mid = (low + high) / 2
        if _t_cdf(mid, df) < p:
            low = mid
        else:
            high = mid
        if high - low < 1e-12:
            break
    return (low + high) / 2


def _t_cdf(t: float, df: float) -> float:
    # P(T <= t) for t >= 0: 1 - I_x(df/2, 1/2) / 2 with x = df / (df + t^2)
    x = df / (df + t * t)
    return 1.0 - 0.5 * _regularized_beta(x, df / 2, 0.5)


def _regularized_beta(x: float, a: float, b: float) -> float:
    """I_x(a, b) by Lentz's continued fraction (Numerical Recipes, betacf), using the symmetry for fast convergence."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1) / (a + b + 2):
        return front * _beta_fraction(x, a, b) / a
    return 1.0 - front * _beta_fraction(1.0 - x, b, a) / b


def _beta_fraction(x: float, a: float, b: float) -> float:
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for numerator in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)), -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def reactions_table(found: Sequence[Reaction]) -> pd.DataFrame:
    """Rows for display and export: one per group and measure."""
    return pd.DataFrame(
        [{"group": r.group, "measure": r.measure, "events": r.events, "n_before": r.n_before, "n_after": r.n_after,
          "mean_before": r.mean_before, "mean_after": r.mean_after, "change": r.change, "ci95_low": r.ci_low,
          "ci95_high": r.ci_high} for r in found],
        columns=["group", "measure", "events", "n_before", "n_after", "mean_before", "mean_after", "change", "ci95_low",
                 "ci95_high"],
    )


def reaction_figure(found: Sequence[Reaction], height: int = 300):
    """Change after vs before per measure (bars) with the 95 % Welch interval (error bars) for one group."""
    import plotly.graph_objects as go

    shown = [r for r in found if r.change is not None]
    fig = go.Figure(go.Bar(
        x=[r.measure for r in shown],
        y=[r.change for r in shown],
        error_y=dict(type="data", symmetric=False,
                     array=[(r.ci_high - r.change) if r.ci_high is not None else 0 for r in shown],
                     arrayminus=[(r.change - r.ci_low) if r.ci_low is not None else 0 for r in shown]),
        marker_color=["#6a3d9a" if r.measure in ("valence", "arousal") else "#999999" for r in shown],
        hovertemplate="%{x}: %{y:+.3f}<extra></extra>",
    ))
    fig.add_hline(y=0, line_color="black", line_width=1)
    fig.update_yaxes(title_text="after − before")
    fig.update_layout(height=height, margin=dict(l=40, r=20, t=20, b=40))
    return fig
