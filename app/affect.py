"""Valence and arousal of a reading, from the seven class probabilities: the one place this module family maps classes to
the two affect dimensions, so it can be swapped for the project-wide mapping at merge.

Mapping (pleasure/valence, arousal), each in [-1, 1], from the Pleasure-Arousal-Dominance ratings of emotion terms by
Russell & Mehrabian (1977), "Evidence for a three-factor theory of emotions", Journal of Research in Personality 11(3),
273-294, as tabulated in affective-computing work (e.g. Gebhard 2005, "ALMA: a layered model of affect", AAMAS, for anger
and fear): angry (-0.51, 0.59), disgust (-0.60, 0.35), fear (-0.64, 0.60), happy (0.76, 0.48), sad (-0.63, -0.27),
surprise (0.40, 0.67). Neutral is the origin (0, 0) by construction (no rating; it means "no expression"). Secondary
tabulations differ in a few values (fear's arousal is also quoted as 0.82, happy as (0.81, 0.51)); the numbers here are the
ones stated, and docs/app.md says so.

A reading's valence (arousal) is the expectation of the class coordinates under its probabilities: sum_i p_i * v_i.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fer.labels import LABELS

# label -> (valence, arousal)
AFFECT_COORDINATES: dict[str, tuple[float, float]] = {
    "angry": (-0.51, 0.59),
    "disgust": (-0.60, 0.35),
    "fear": (-0.64, 0.60),
    "happy": (0.76, 0.48),
    "sad": (-0.63, -0.27),
    "surprise": (0.40, 0.67),
    "neutral": (0.0, 0.0),
}


def valence_arousal(frame: pd.DataFrame) -> pd.DataFrame:
    """Per reading of a readings frame (columns LABELS): `valence` and `arousal`, same index."""
    probabilities = frame[list(LABELS)].to_numpy(dtype="float64") if len(frame) else np.zeros((0, len(LABELS)))
    coordinates = np.asarray([AFFECT_COORDINATES[label] for label in LABELS], dtype="float64")  # 7 x 2
    values = probabilities @ coordinates
    return pd.DataFrame({"valence": values[:, 0], "arousal": values[:, 1]}, index=frame.index)
