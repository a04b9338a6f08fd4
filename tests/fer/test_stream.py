"""Stream helpers: probability smoothing over time and the seed's per-frame metrics printout."""

from __future__ import annotations

import os

import numpy as np
import pytest

from fer import LABELS, FaceBox, FaceResult, FrameMetrics, MetricsMonitor, ProbabilitySmoother

HAPPY = np.eye(7, dtype=np.float32)[LABELS.index("happy")]
SAD = np.eye(7, dtype=np.float32)[LABELS.index("sad")]


class TestProbabilitySmoother:
    def test_first_frame_is_taken_as_is(self) -> None:
        assert np.allclose(ProbabilitySmoother(0.3).update(HAPPY), HAPPY)

    def test_later_frames_are_an_exponential_average(self) -> None:
        smoother = ProbabilitySmoother(alpha=0.25)
        smoother.update(HAPPY)
        smoothed = smoother.update(SAD)
        assert np.allclose(smoothed, 0.75 * HAPPY + 0.25 * SAD)
        assert smoother.dominant == "happy"
        for _ in range(10):
            smoother.update(SAD)
        assert smoother.dominant == "sad"
        assert np.isclose(smoother.value.sum(), 1)

    def test_a_one_frame_flicker_does_not_change_the_dominant_emotion(self) -> None:
        smoother = ProbabilitySmoother(alpha=0.3)
        for probabilities in (HAPPY, HAPPY, SAD, HAPPY):
            smoother.update(probabilities)
            assert smoother.dominant == "happy"

    def test_alpha_one_disables_smoothing(self) -> None:
        smoother = ProbabilitySmoother(alpha=1.0)
        smoother.update(HAPPY)
        assert np.allclose(smoother.update(SAD), SAD)

    def test_reset_forgets_the_past(self) -> None:
        smoother = ProbabilitySmoother()
        smoother.update(HAPPY)
        smoother.reset()
        assert smoother.value is None and smoother.dominant is None
        assert np.allclose(smoother.update(SAD), SAD)

    @pytest.mark.parametrize("alpha", [0, -0.1, 1.5])
    def test_alpha_must_be_in_0_1(self, alpha: float) -> None:
        with pytest.raises(ValueError, match="alpha"):
            ProbabilitySmoother(alpha)

    def test_wrong_number_of_probabilities(self) -> None:
        with pytest.raises(ValueError, match="7 probabilities"):
            ProbabilitySmoother().update([0.5, 0.5])


class TestMetrics:
    def test_format_prints_like_the_seed(self) -> None:
        metrics = FrameMetrics([2.5], 6.25, 50495, 2.862, 3.0, "neutral")
        assert metrics.format().splitlines() == [
            " * Time for face 0 det.: 0.0025",
            " * Time for prediction: 0.00625",
            " * Process ID: 50495",
            " * Memory 2.8620%",
            " * CPU 3.0%",
            " * Emotion: Neutral",
        ]

    def test_no_face(self) -> None:
        assert " * Emotion: no face" in FrameMetrics([], 0.0, 1, 1.0, 0.0, None).format()

    def test_monitor_measures_this_process(self) -> None:
        result = FaceResult(FaceBox(0, 0, 10, 10), tuple(HAPPY.tolist()), detection_ms=4.0, prediction_ms=1.5)
        monitor = MetricsMonitor()
        busy_until = os.times().user + 0.1  # at least 0.1 s of this process's CPU time between the measurements,
        while os.times().user < busy_until:  # however slow or loaded the machine
            sum(i * i for i in range(10_000))
        metrics = monitor.measure([result])
        assert metrics.process_id == os.getpid()
        assert 0 < metrics.memory_percent < 100
        assert 0 < metrics.cpu_percent <= 100 * os.cpu_count()  # the busy loop shows; at most every core
        assert metrics.detection_ms == [4.0] and metrics.prediction_ms == 1.5 and metrics.dominant == "happy"
