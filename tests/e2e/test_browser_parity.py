"""Browser analysis gives the same numbers as Python: the built bundle (frontend/build) in Debian Chromium, LiteRT.js
running the configured model (the shipped int8 one by default) with the sidecar-driven preprocessing ported to
JavaScript, against fer's own pipeline on the same pixels.

Three sets of real faces: FER2013 val faces (the whole 48x48 image is the face box), faces found by fer's BlazeFace in
the reference photos (scaled to camera size: margin crop + INTER_AREA resize from a large frame), and FER2013 faces
placed in 640x480 camera frames analysed end to end (BlazeFace in the browser too). Must hold: max absolute difference
<= 0.02 per class and the same dominant label on >= 98% of the faces.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from settings import Settings
from tests.e2e.browser_bundle import (BundleServer, analyze_in_browser, bundle_skip_reason, classify_in_browser,
                                      launch, load_analyzer, open_bundle_page)
from tests.e2e.fixtures_video import compose_frame

pytestmark = [pytest.mark.browser]

MAX_ABS_DIFF = 0.02
MIN_SAME_LABEL = 0.98
FER_FACES_PER_CLASS = 12
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


@pytest.fixture(scope="module")
def browser_page():
    reason = bundle_skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    server = BundleServer()
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = open_bundle_page(browser, server)
            load_analyzer(page, Settings.load(environ={}))
            yield page
        finally:
            browser.close()
            server.close()


@pytest.fixture(scope="module")
def classifier():
    import fer

    return fer.EmotionClassifier.load(Settings.load(environ={}).model_path)


def fer_faces(fer2013_dir: Path) -> list[np.ndarray]:
    faces = []
    for label in CLASSES:
        for path in sorted((fer2013_dir / "val" / label).glob("*.jpg"))[:FER_FACES_PER_CLASS]:
            faces.append(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
    assert len(faces) >= 6 * FER_FACES_PER_CLASS
    return faces


def python_probabilities(classifier, rgb: np.ndarray, box) -> np.ndarray:
    from fer.detection import FaceBox
    from fer.preprocess import face_crops

    return classifier.predict(face_crops(rgb, [FaceBox(*box)], classifier.input_size, "rgb"))[0]


def assert_parity(browser: np.ndarray, python: np.ndarray, what: str) -> None:
    diff = np.abs(browser - python)
    # A face whose two most likely emotions are within the allowed probability difference of each other may come out
    # with either label on either side (int8 rounding); the label must agree on every other face.
    top2 = np.sort(python, axis=1)[:, -2:]
    decided = (top2[:, 1] - top2[:, 0]) > 2 * MAX_ABS_DIFF
    same = float((browser.argmax(1) == python.argmax(1))[decided].mean())
    print(f"\n{what}: {len(python)} faces ({int(decided.sum())} not near a tie), max |diff| {diff.max():.2e}, "
          f"mean {diff.mean():.2e}, same label {same:.1%}")
    assert diff.max() <= MAX_ABS_DIFF, f"{what}: max difference {diff.max():.4f} (face {int(diff.max(1).argmax())})"
    assert decided.mean() >= 0.5, f"{what}: most faces are near a tie, the label check would prove little"
    assert same >= MIN_SAME_LABEL


def test_fer2013_val_faces_get_the_same_probabilities_in_the_browser(browser_page, classifier, fer2013_dir):
    cases = [(np.repeat(face[:, :, None], 3, axis=2), (0, 0, face.shape[1], face.shape[0])) for face in fer_faces(fer2013_dir)]
    browser = classify_in_browser(browser_page, cases)
    python = np.stack([python_probabilities(classifier, rgb, box) for rgb, box in cases])
    assert_parity(browser, python, "FER2013 val faces")


def photo_frames(photos_dir: Path) -> list[np.ndarray]:
    """The reference photos scaled to fit 640x480 (a camera frame), RGB."""
    frames = []
    for path in sorted(photos_dir.iterdir()):
        image = cv2.imread(str(path))
        if image is None:
            continue
        scale = min(640 / image.shape[1], 480 / image.shape[0], 1.0)
        if scale < 1:
            image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        frames.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    return frames


def test_photo_face_crops_get_the_same_probabilities_in_the_browser(browser_page, classifier, photos_dir):
    from fer.detection import BlazeFaceDetector

    detector = BlazeFaceDetector()
    cases = [(rgb, box.as_tuple()) for rgb in photo_frames(photos_dir) for box in detector.detect(rgb, color="rgb")]
    assert len(cases) >= 5, "the reference photos should hold several faces"
    browser = classify_in_browser(browser_page, cases)
    python = np.stack([python_probabilities(classifier, rgb, box) for rgb, box in cases])
    assert_parity(browser, python, "photo face crops")


def test_camera_frames_analysed_end_to_end_match_fer_analyze(browser_page, classifier, fer2013_dir):
    """BlazeFace in the browser as well: the same face box (within a pixel or two) and the same probabilities."""
    import fer

    faces = fer_faces(fer2013_dir)[::3]
    gray_frames = [compose_frame(face, (200, 120, 240, 240)) for face in faces]
    frames = [np.repeat(f[:, :, None], 3, axis=2) for f in gray_frames]
    results = analyze_in_browser(browser_page, frames)
    browser, python = [], []
    for frame, result in zip(frames, results):
        expected = fer.analyze(frame, classifier=classifier, color="rgb")
        assert (result["reading"] is None) == (not expected), "the browser and fer disagree on whether there is a face"
        if not expected:
            continue
        main = max(expected, key=lambda r: r.box.area)
        assert np.abs(np.asarray(result["reading"]["box"]) - np.asarray(main.box.as_tuple())).max() <= 2
        assert result["reading"]["faces"] == len(expected)
        browser.append(result["reading"]["probabilities"])
        python.append(main.probabilities)
    assert len(python) >= 0.9 * len(frames)
    assert_parity(np.asarray(browser), np.asarray(python), "camera frames end to end")
