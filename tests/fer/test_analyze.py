"""fer.analyze: one call from a frame to one FaceResult per face, with a cached default classifier and detector."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

import fer
from fer import LABELS, FaceBox, FaceResult, HaarFaceDetector, InvalidImageError, ModelNotFoundError
from fer import analysis as analyze_module
from fer import classifier as classifier_module
from fer.scenes import FRAME_SIZES, compose_scene, matches


def test_one_result_per_face_with_box_probabilities_dominant_and_timings(real_classifier, val_faces) -> None:
    scene = compose_scene([val_faces["happy"][0], val_faces["surprise"][0]], FRAME_SIZES["1280x720"],
                          np.random.default_rng(2))
    results = fer.analyze(scene.frame, classifier=real_classifier)
    assert len(results) == 2
    for result in results:
        assert isinstance(result, FaceResult) and isinstance(result.box, FaceBox)
        assert any(matches(result.box, truth) for truth in scene.boxes)
        assert len(result.probabilities) == 7 and abs(sum(result.probabilities) - 1) < 1e-4
        assert result.dominant in LABELS and result.dominant == max(result.emotions, key=result.emotions.get)
        assert result.detection_ms > 0 and result.prediction_ms > 0
        x, y, w, h = result.box
        assert w > 0 and h > 0


def test_happy_faces_in_frames_are_mostly_read_as_happy(real_classifier, val_faces) -> None:
    """Detection box framing + margin crop must give the classifier FER2013-like crops."""
    rng = np.random.default_rng(4)
    dominant = []
    for face in val_faces["happy"][:20]:
        scene = compose_scene([face], FRAME_SIZES["640x480"], rng)
        results = fer.analyze(scene.frame, classifier=real_classifier)
        dominant.append(results[0].dominant if results else None)
    assert dominant.count("happy") >= 14, dominant


def test_accepts_rgb_and_gray_frames(real_classifier, photos_dir: Path) -> None:
    bgr = cv2.imread(str(photos_dir / "obama.jpg"))
    from_bgr = fer.analyze(bgr, classifier=real_classifier)
    from_rgb = fer.analyze(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), classifier=real_classifier, color="rgb")
    from_gray = fer.analyze(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), classifier=real_classifier)
    assert len(from_bgr) == len(from_rgb) == len(from_gray) == 1
    assert from_bgr[0].box == from_rgb[0].box
    assert np.allclose(from_bgr[0].probabilities, from_rgb[0].probabilities, atol=1e-5)
    assert from_bgr[0].dominant == "happy"  # he smiles in this photo


def test_another_detector_can_be_passed(real_classifier, photos_dir: Path) -> None:
    results = fer.analyze(cv2.imread(str(photos_dir / "obama_small.jpg")), classifier=real_classifier,
                          detector=HaarFaceDetector())
    assert len(results) == 1


def test_largest_only(real_classifier, val_faces) -> None:
    scene = compose_scene([val_faces["sad"][0], val_faces["fear"][0]], FRAME_SIZES["1920x1080"], np.random.default_rng(9))
    assert len(fer.analyze(scene.frame, classifier=real_classifier)) == 2
    assert len(fer.analyze(scene.frame, classifier=real_classifier, largest_only=True)) == 1


def test_no_face_gives_an_empty_list(real_classifier) -> None:
    assert fer.analyze(np.full((480, 640, 3), 90, np.uint8), classifier=real_classifier) == []


@pytest.mark.parametrize("frame", [None, np.zeros((0, 640, 3), np.uint8), np.zeros((48, 48), np.float64), "frame.jpg"])
def test_bad_frames_raise_invalid_image(real_classifier, frame) -> None:
    with pytest.raises(InvalidImageError):
        fer.analyze(frame, classifier=real_classifier)


def test_default_detector_and_classifier_are_created_once(monkeypatch, tiny_model_dir: Path) -> None:
    monkeypatch.setattr(analyze_module, "_default_classifier", None)
    monkeypatch.setattr(classifier_module, "DEFAULT_MODEL_PATH", tiny_model_dir / "tiny_float.tflite")
    assert fer.default_detector() is fer.default_detector()
    assert fer.default_classifier() is fer.default_classifier()
    assert fer.default_classifier().name == "tiny"


def test_without_the_shipped_model_analyze_names_the_export_command(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(analyze_module, "_default_classifier", None)
    monkeypatch.setattr(classifier_module, "DEFAULT_MODEL_PATH", tmp_path / "fer_edge_int8.tflite")
    with pytest.raises(ModelNotFoundError, match="python -m training.export"):
        fer.analyze(np.zeros((480, 640, 3), np.uint8))
