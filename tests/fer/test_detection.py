"""Face detection: every clearly visible face and nothing else, on real photos and FER2013 faces in camera frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fer import BlazeFaceDetector, FaceBox, HaarFaceDetector, InvalidImageError, LABELS, make_detector
from fer.scenes import FRAME_SIZES, compose_scene, matches, textured_background

# Each reference photo has exactly one clearly visible face (../shared/datasets/photos/README.md). Face centre and
# side in pixels, read off the photos (a forehead-to-chin square); obama2's blurred partial figure must not count.
PHOTO_FACES: dict[str, tuple[float, float, float]] = {
    "alex-lacamoire.png": (260, 208, 185),
    "johnsnow_test1.jpg": (360, 252, 205),
    "lin-manuel-miranda.png": (410, 306, 360),
    "obama.jpg": (494, 248, 300),
    "obama2.jpg": (322, 414, 352),
    "obama3.jpg": (786, 435, 315),
    "obama_small.jpg": (161, 112, 144),
}


@pytest.fixture(scope="module")
def blazeface() -> BlazeFaceDetector:
    return BlazeFaceDetector()


@pytest.fixture(scope="module")
def haar() -> HaarFaceDetector:
    return HaarFaceDetector()


def read_photo(photos_dir: Path, name: str) -> np.ndarray:
    image = cv2.imread(str(photos_dir / name))
    if image is None:
        pytest.skip(f"{name} not in {photos_dir}")
    return image


def assert_is_the_face(box: FaceBox, expected: tuple[float, float, float]) -> None:
    cx, cy, side = expected
    bx, by = box.center
    assert abs(bx - cx) < 0.25 * side and abs(by - cy) < 0.25 * side, (box, expected)
    assert 0.7 * side < box.w < 1.4 * side, (box, expected)


# ---- real photos --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PHOTO_FACES))
def test_default_detector_finds_exactly_the_one_face_in_each_photo(blazeface, photos_dir: Path, name: str) -> None:
    boxes = blazeface.detect(read_photo(photos_dir, name))
    assert len(boxes) == 1, boxes
    assert_is_the_face(boxes[0], PHOTO_FACES[name])


@pytest.mark.parametrize("name", sorted(PHOTO_FACES))
def test_tuned_haar_finds_exactly_the_one_face_in_each_photo(haar, photos_dir: Path, name: str) -> None:
    boxes = haar.detect(read_photo(photos_dir, name))
    assert len(boxes) == 1, boxes
    assert_is_the_face(boxes[0], PHOTO_FACES[name])


def test_opencv_default_haar_settings_report_false_faces(photos_dir: Path) -> None:
    """Why the defaults are not used: OpenCV's minNeighbors=3 finds extra 'faces' on the photos."""
    cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"))
    counts = [len(cascade.detectMultiScale(cv2.cvtColor(read_photo(photos_dir, n), cv2.COLOR_BGR2GRAY)))
              for n in sorted(PHOTO_FACES)]
    assert sum(counts) > len(PHOTO_FACES), counts


def photo_mosaic(photos_dir: Path, columns: int, rows: int, width: int, height: int):
    """A 'group photo': the reference photos side by side (repeating), with the true face of each cell."""
    names = [sorted(PHOTO_FACES)[i % len(PHOTO_FACES)] for i in range(columns * rows)]
    cell_w, cell_h = width // columns, height // rows
    canvas = np.full((height, width, 3), 40, np.uint8)
    faces = []
    for index, name in enumerate(names):
        photo = read_photo(photos_dir, name)
        scale = min(cell_w / photo.shape[1], cell_h / photo.shape[0])
        resized = cv2.resize(photo, (int(photo.shape[1] * scale), int(photo.shape[0] * scale)), interpolation=cv2.INTER_AREA)
        x = index % columns * cell_w + (cell_w - resized.shape[1]) // 2
        y = index // columns * cell_h + (cell_h - resized.shape[0]) // 2
        canvas[y:y + resized.shape[0], x:x + resized.shape[1]] = resized
        cx, cy, side = PHOTO_FACES[name]
        faces.append((x + cx * scale, y + cy * scale, side * scale))
    return canvas, faces


@pytest.mark.parametrize("columns, rows, width, height", [(4, 2, 1280, 720), (7, 1, 1920, 1080), (4, 3, 2400, 1800),
                                                          (5, 4, 3000, 2000)])
def test_every_face_of_a_group_photo_and_nothing_else(blazeface, photos_dir: Path, columns, rows, width, height) -> None:
    """Faces down to ~60 px in frames up to 3000x2000 (large photos are also scanned as a grid of tiles)."""
    mosaic, faces = photo_mosaic(photos_dir, columns, rows, width, height)
    boxes = blazeface.detect(mosaic)
    assert len(boxes) == len(faces), (boxes, faces)
    for expected in faces:
        assert any(abs(b.center[0] - expected[0]) < 0.3 * expected[2] and abs(b.center[1] - expected[1]) < 0.3 * expected[2]
                   for b in boxes), expected


@pytest.mark.parametrize("convert", ["gray", "gray3d", "rgb", "bgra"])
def test_gray_rgb_and_bgra_frames_give_the_same_face(blazeface, photos_dir: Path, convert: str) -> None:
    bgr = read_photo(photos_dir, "obama.jpg")
    frame, color = {
        "gray": (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), "bgr"),
        "gray3d": (cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[:, :, None], "bgr"),
        "rgb": (cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), "rgb"),
        "bgra": (cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA), "bgr"),
    }[convert]
    boxes = blazeface.detect(frame, color=color)
    assert len(boxes) == 1
    assert_is_the_face(boxes[0], PHOTO_FACES["obama.jpg"])


@pytest.mark.parametrize("factor", [0.5, 3.0])
def test_any_frame_size_maps_boxes_back_to_frame_pixels(blazeface, photos_dir: Path, factor: float) -> None:
    photo = read_photo(photos_dir, "obama.jpg")
    resized = cv2.resize(photo, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
    boxes = blazeface.detect(resized)
    assert len(boxes) == 1
    cx, cy, side = PHOTO_FACES["obama.jpg"]
    assert_is_the_face(boxes[0], (cx * factor, cy * factor, side * factor))


# ---- FER2013 faces in camera-sized frames -------------------------------------------------------------------------
def scene_faces(val_faces: dict[str, list[np.ndarray]], count: int) -> list[np.ndarray]:
    """Faces from every class in turn (so expressions vary), a different set per call index."""
    return [val_faces[LABELS[i % len(LABELS)]][i // len(LABELS)] for i in range(count)]


@pytest.mark.parametrize("size_name", sorted(FRAME_SIZES))
def test_finds_fer2013_faces_in_camera_frames_without_false_ones(blazeface, val_faces, size_name: str) -> None:
    rng = np.random.default_rng(11)
    faces = scene_faces(val_faces, 40)
    found = missed = false = 0
    for index in range(0, len(faces), 2):
        scene = compose_scene(faces[index:index + 2], FRAME_SIZES[size_name], rng)
        boxes = blazeface.detect(scene.frame)
        hits = [any(matches(box, truth) for box in boxes) for truth in scene.boxes]
        found, missed = found + sum(hits), missed + len(hits) - sum(hits)
        false += sum(not any(matches(box, truth) for truth in scene.boxes) for box in boxes)
    assert found / (found + missed) >= 0.9, (found, missed)
    assert false <= 1, false


def test_textured_background_alone_has_no_face(blazeface) -> None:
    rng = np.random.default_rng(3)
    for height, width in FRAME_SIZES.values():
        assert blazeface.detect(textured_background(height, width, rng)) == []


def test_boxes_are_largest_first_and_largest_only_keeps_one(blazeface, val_faces) -> None:
    scene = compose_scene(scene_faces(val_faces, 2), FRAME_SIZES["1280x720"], np.random.default_rng(5))
    boxes = blazeface.detect(scene.frame)
    assert len(boxes) == 2
    assert boxes[0].area >= boxes[1].area
    assert blazeface.detect(scene.frame, largest_only=True) == boxes[:1]
    assert BlazeFaceDetector(largest_only=True).detect(scene.frame) == boxes[:1]


def test_faces_below_the_minimum_size_are_dropped(val_faces) -> None:
    scene = compose_scene(scene_faces(val_faces, 1), FRAME_SIZES["640x480"], np.random.default_rng(8),
                          face_fraction=(0.3, 0.3))
    assert len(BlazeFaceDetector(min_face_fraction=0.1).detect(scene.frame)) == 1
    assert BlazeFaceDetector(min_face_fraction=0.6).detect(scene.frame) == []


def test_boxes_stay_inside_the_frame(blazeface, val_faces) -> None:
    face = cv2.resize(val_faces["happy"][0], (200, 200))
    frame = textured_background(480, 640, np.random.default_rng(1))
    frame[0:200, 540:640] = face[:, :100, None]  # a face cut by the right edge
    for box in blazeface.detect(frame):
        assert box.x >= 0 and box.y >= 0 and box.x + box.w <= 640 and box.y + box.h <= 480


# ---- the box type and bad frames ----------------------------------------------------------------------------------
def test_face_box_unpacks_like_an_opencv_tuple() -> None:
    box = FaceBox(1, 2, 30, 40, score=0.9)
    x, y, w, h = box
    assert (x, y, w, h) == (1, 2, 30, 40) == box.as_tuple()
    assert box.area == 1200 and box.center == (16.0, 22.0)


@pytest.mark.parametrize("frame, message", [
    (None, "None"),
    ([[0, 1], [2, 3]], "numpy array"),
    (np.zeros((0, 0, 3), np.uint8), "empty"),
    (np.zeros((480, 640, 3), np.float32), "uint8"),
    (np.zeros((480,), np.uint8), "shape"),
    (np.zeros((4, 480, 640, 3), np.uint8), "shape"),
    (np.zeros((480, 640, 2), np.uint8), "channels"),
])
@pytest.mark.parametrize("kind", ["blazeface", "haar"])
def test_bad_frames_are_rejected_clearly(kind: str, frame, message: str) -> None:
    with pytest.raises(InvalidImageError, match=message):
        make_detector(kind).detect(frame)


def test_tiny_and_blank_frames_have_no_faces(blazeface, haar) -> None:
    for frame in (np.zeros((5, 7, 3), np.uint8), np.full((480, 640), 255, np.uint8)):
        assert blazeface.detect(frame) == [] and haar.detect(frame) == []


def test_bad_options_are_rejected() -> None:
    with pytest.raises(ValueError, match="color"):
        BlazeFaceDetector(color="hsv")
    with pytest.raises(ValueError, match="unknown detector"):
        make_detector("yolo")
    with pytest.raises(ValueError, match="min_face_fraction"):
        HaarFaceDetector(min_face_fraction=2)
