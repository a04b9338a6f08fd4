"""Helpers for video streams: smoothing probabilities over time and per-frame metrics printed as the seed did."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import psutil

from fer.labels import LABELS


class ProbabilitySmoother:
    """Exponential moving average of probability vectors: `smoothed = alpha * new + (1 - alpha) * smoothed`.

    Frame-to-frame predictions flicker; a clinician's chart should follow the expression, not the noise.
    alpha=1 disables smoothing. Call `reset()` when the face is lost or a new session starts.
    """

    def __init__(self, alpha: float = 0.3) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self._state: np.ndarray | None = None

    def update(self, probabilities: Sequence[float] | np.ndarray) -> np.ndarray:
        values = np.asarray(probabilities, dtype=np.float32)
        if values.shape != (len(LABELS),):
            raise ValueError(f"expected {len(LABELS)} probabilities, got shape {values.shape}")
        if self._state is None:
            self._state = values.copy()
        else:
            self._state = self.alpha * values + (1 - self.alpha) * self._state
        return self._state / self._state.sum()

    @property
    def value(self) -> np.ndarray | None:
        return None if self._state is None else self._state / self._state.sum()

    @property
    def dominant(self) -> str | None:
        return None if self._state is None else LABELS[int(np.argmax(self._state))]

    def reset(self) -> None:
        self._state = None


@dataclass(frozen=True)
class FrameMetrics:
    detection_ms: list[float]  # per face, as the seed printed "Time for face i det."
    prediction_ms: float
    process_id: int
    memory_percent: float  # resident memory of this process, % of the machine's RAM
    cpu_percent: float  # this process's CPU since the previous measurement (psutil semantics; 100 = one core)
    dominant: str | None  # None when no face was found

    def format(self) -> str:
        """The seed's console block (times in seconds, as it printed them)."""
        lines = [f" * Time for face {i} det.: {ms / 1000}" for i, ms in enumerate(self.detection_ms)]
        lines += [
            f" * Time for prediction: {self.prediction_ms / 1000}",
            f" * Process ID: {self.process_id}",
            f" * Memory {self.memory_percent:.4f}%",
            f" * CPU {self.cpu_percent:.1f}%",
            f" * Emotion: {self.dominant.capitalize() if self.dominant else 'no face'}",
        ]
        return "\n".join(lines) + "\n"


class MetricsMonitor:
    """Collects FrameMetrics for this process; keeps one psutil.Process so CPU % is measured between frames."""

    def __init__(self) -> None:
        self._process = psutil.Process(os.getpid())
        self._process.cpu_percent(None)  # first call only starts the measurement

    def measure(self, results: Sequence[object]) -> FrameMetrics:
        """Metrics for one frame's `fer.analyze` results (a list of FaceResult)."""
        detection = [float(getattr(r, "detection_ms")) for r in results]
        prediction = float(getattr(results[0], "prediction_ms")) if results else 0.0
        dominant = str(getattr(results[0], "dominant")) if results else None
        return FrameMetrics(detection, prediction, self._process.pid, float(self._process.memory_percent()),
                            float(self._process.cpu_percent(None)), dominant)
