"""Valence and arousal of a reading, from the seven class probabilities, for the clinical modules (reactions, cohort,
PDF/FHIR reports). The mapping is the project-wide one of app.analytics (VALENCE_WEIGHTS / AROUSAL_WEIGHTS: the
valence and arousal ratings of Warriner, Kuperman & Brysbaert (2013) for the words the classes are named by, centred on
"neutral" and scaled to [-1, 1]; docs/app.md), so the review, the progress page and these modules agree.

A reading's valence (arousal) is the expectation of the class coordinates under its probabilities: sum_i p_i * v_i.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from app import analytics
from fer.labels import LABELS

# label -> (valence, arousal)
AFFECT_COORDINATES: dict[str, tuple[float, float]] = {
    label: (analytics.VALENCE_WEIGHTS[label], analytics.AROUSAL_WEIGHTS[label]) for label in LABELS
}


def valence_arousal(frame: pd.DataFrame) -> pd.DataFrame:
    """Per reading of a readings frame (columns LABELS): `valence` and `arousal`, same index."""
    probabilities = frame[list(LABELS)].to_numpy(dtype="float64") if len(frame) else np.zeros((0, len(LABELS)))
    coordinates = np.asarray([AFFECT_COORDINATES[label] for label in LABELS], dtype="float64")  # 7 x 2
    values = probabilities @ coordinates
    return pd.DataFrame({"valence": values[:, 0], "arousal": values[:, 1]}, index=frame.index)
