"""Face detection behind one small interface: `detector.detect(frame) -> list[FaceBox]`.

Two detectors, both needing no download:
- `BlazeFaceDetector` (default): MediaPipe's BlazeFace "back camera" model (256x256, shipped in fer/models), run with
  the same LiteRT interpreter as the classifier. Wide frames are also scanned as two square tiles so faces stay large
  enough for the 256x256 input. On the reference photos it finds each face and nothing else; see docs/fer.md.
- `HaarFaceDetector`: OpenCV's frontal-face cascade from the opencv wheel, with stricter settings than OpenCV's
  defaults (which report false faces on real photos). Kept as an option and for comparison.

Boxes come back in the frame's pixel coordinates, in FER2013's framing (forehead to chin), largest first.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fer.errors import InvalidModelError, ModelNotFoundError
from fer.images import ColorOrder, check_color_order, check_frame, downscale, to_gray, to_rgb
from fer.runtime import default_runtime

MODELS_DIR = Path(__file__).resolve().parent / "models"
BLAZEFACE_MODEL_PATH = MODELS_DIR / "blazeface_back.tflite"
BLAZEFACE_SHORT_MODEL_PATH = MODELS_DIR / "blazeface_short.tflite"
# BlazeFace's six keypoints, in the model's order (MediaPipe face_detection): the subject's right eye first.
KEYPOINT_NAMES: tuple[str, ...] = ("right_eye", "left_eye", "nose_tip", "mouth", "right_ear", "left_ear")
HAAR_CASCADE_PATH = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"


@dataclass(frozen=True)
class FaceBox:
    """A face in frame pixels: top-left corner (x, y), width w, height h; `score` is the detector's confidence."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    # BlazeFace's six (x, y) keypoints in frame pixels (KEYPOINT_NAMES order); None from Haar. Not part of equality.
    keypoints: tuple[tuple[float, float], ...] | None = field(default=None, compare=False, repr=False)

    def __iter__(self) -> Iterator[int]:  # `x, y, w, h = box` as with OpenCV's tuples
        return iter((self.x, self.y, self.w, self.h))

    @property
    def area(self) -> int:
        return self.w * self.h

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def as_tuple(self) -> tuple[int, int, int, int]:
        return self.x, self.y, self.w, self.h


class FaceDetector(ABC):
    """Common options: minimum face size, largest face only, colour order, downscaling of large frames.

    min_face_fraction: faces whose side is below this fraction of the frame's shorter side are dropped (default 2%:
    small enough for the faces of a group photo, large enough to ignore specks).
    min_face_pixels: absolute minimum side in pixels (too small to classify expressions reliably).
    """

    def __init__(self, *, min_face_fraction: float = 0.02, min_face_pixels: int = 24, largest_only: bool = False,
                 color: ColorOrder = "bgr") -> None:
        check_color_order(color)
        if not 0 <= min_face_fraction < 1:
            raise ValueError(f"min_face_fraction must be in [0, 1), got {min_face_fraction}")
        self.min_face_fraction = min_face_fraction
        self.min_face_pixels = min_face_pixels
        self.largest_only = largest_only
        self.color = color

    @property
    def name(self) -> str:
        return type(self).__name__

    def detect(self, frame: np.ndarray, *, largest_only: bool | None = None,
               color: ColorOrder | None = None) -> list[FaceBox]:
        """Faces in `frame` (uint8 gray, BGR or RGB, any size), largest first."""
        frame = check_frame(frame)
        color = color or self.color
        check_color_order(color)
        height, width = frame.shape[:2]
        min_side = max(self.min_face_pixels, self.min_face_fraction * min(height, width))
        boxes = [_clamp(box, width, height) for box in self._detect(frame, color, min_side)]
        boxes = sorted((b for b in boxes if b.w >= min_side and b.h >= min_side and b.w > 0 and b.h > 0),
                       key=lambda b: b.area, reverse=True)
        if self.largest_only if largest_only is None else largest_only:
            return boxes[:1]
        return boxes

    @abstractmethod
    def _detect(self, frame: np.ndarray, color: ColorOrder, min_side: float) -> list[FaceBox]:
        """Boxes in frame coordinates (unclamped, unsorted)."""


class HaarFaceDetector(FaceDetector):
    """OpenCV's Viola-Jones cascade with stricter settings than OpenCV's defaults.

    OpenCV's minNeighbors=3 reports false faces on the reference photos and on textured backgrounds. A sweep on the
    photos and FER2013 scenes (docs/fer.md) chose minNeighbors 8, frames shrunk to 400 px and no histogram
    equalisation (it raised false detections): correct on every reference photo, but it finds only about two thirds
    of the tight FER2013 crops, which is why BlazeFace is the default. An eye-cascade verification stage was tried
    too: it removes the false faces of minNeighbors 3-5 but loses more true ones than minNeighbors 8 does.
    """

    def __init__(self, *, scale_factor: float = 1.1, min_neighbors: int = 8, max_side: int = 400,
                 cascade_path: str | Path = HAAR_CASCADE_PATH, min_face_fraction: float = 0.05,
                 **options: Any) -> None:
        super().__init__(min_face_fraction=min_face_fraction, **options)
        self.cascade = cv2.CascadeClassifier(str(cascade_path))
        if self.cascade.empty():
            raise ModelNotFoundError(f"{cascade_path}: Haar cascade not found or unreadable "
                                     f"(opencv-python-headless<5 ships it)")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.max_side = max_side
        self._lock = threading.Lock()

    def _detect(self, frame: np.ndarray, color: ColorOrder, min_side: float) -> list[FaceBox]:
        small, factor = downscale(to_gray(frame, color), self.max_side)
        minimum = max(1, int(min_side / factor))
        with self._lock:
            found = self.cascade.detectMultiScale(small, scaleFactor=self.scale_factor,
                                                  minNeighbors=self.min_neighbors, minSize=(minimum, minimum))
        return [FaceBox(round(x * factor), round(y * factor), round(w * factor), round(h * factor))
                for x, y, w, h in (found if len(found) else [])]


class BlazeFaceDetector(FaceDetector):
    """MediaPipe BlazeFace (back-camera model, 256x256), decoded here with NumPy.

    The whole frame is letterboxed into 256x256. With `tiles` (default), more square regions are scanned where that
    pass would make faces too small: wide frames (16:9) also as two squares (left and right), since letterboxing
    leaves a webcam-distance face only ~30 px wide; frames larger than 1080p (still photos) also as a grid of
    768 px squares (a third of the short side for huge photos) overlapping by a quarter, so group photos' small
    faces are found. 4:3 video frames up to 1080p (the Pi camera) need one pass only. Detections touching an inner tile edge are dropped (a face cut by the tile
    is found whole by another region) and the rest merged by weighted NMS.
    """

    INPUT_SIZE = 256
    TILE_ASPECT = 1.5  # frames longer than this times their short side get the two extra square tiles
    FINE_TILE = 768  # grid tile side for frames whose short side exceeds FINE_MIN_SIDE (faces >= ~45 px)
    FINE_MIN_SIDE = 1200
    # The grid scans many more windows, so its detections need a higher score: at 0.5 a 59 px patch of armour in a
    # 3000x2000 mosaic of the reference photos passed, at 0.65 a blurred corner of obama.jpg enlarged 3x; true faces
    # in the mosaics scored 0.81-0.97.
    FINE_SCORE_THRESHOLD = 0.75
    # A grid tile only reports faces up to this fraction of its side: larger ones are cut by some tile, and the
    # whole-frame pass finds them whole.
    FINE_MAX_FACE = 0.4
    STRIDES = (16, 32, 32, 32)  # SSD anchor layout of the back-camera model (MediaPipe face_detection_back.pbtxt)
    # From BlazeFace's eyebrow-to-chin box to FER2013's forehead-to-chin framing: measured on FER2013 faces placed in
    # frames (median side ratio 1.19, centre 0.11 side higher) and on the reference photos against Haar (1.13, 0.12).
    BOX_SCALE = 1.16
    BOX_SHIFT_UP = 0.11

    def __init__(self, *, score_threshold: float = 0.5, iou_threshold: float = 0.3, tiles: bool = True,
                 model_path: str | Path = BLAZEFACE_MODEL_PATH, num_threads: int = 1, **options: Any) -> None:
        super().__init__(**options)
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ModelNotFoundError(f"{model_path}: BlazeFace model not found (it ships in fer/models)")
        runtime = default_runtime()
        try:
            self._interpreter = runtime.make_interpreter(str(model_path), num_threads)
            self._interpreter.allocate_tensors()
        except Exception as error:
            raise InvalidModelError(f"{model_path}: {runtime.name} cannot load this model ({error})") from error
        self._input = self._interpreter.get_input_details()[0]
        outputs = self._interpreter.get_output_details()
        # Output order differs between conversions: regressors have 16 values per anchor, scores 1.
        self._boxes_index = next(o["index"] for o in outputs if o["shape"][-1] == 16)
        self._scores_index = next(o["index"] for o in outputs if o["shape"][-1] == 1)
        self.anchors = ssd_anchors(self.INPUT_SIZE, self.STRIDES)
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.tiles = tiles
        self.runtime_name = runtime.name
        self._lock = threading.Lock()

    def _detect(self, frame: np.ndarray, color: ColorOrder, min_side: float) -> list[FaceBox]:
        rgb = to_rgb(frame, color)
        height, width = rgb.shape[:2]
        candidates = [self._detect_region(rgb, region, threshold)
                      for region, threshold in self.scan_regions(width, height)]
        kept = weighted_nms(np.concatenate(candidates), self.iou_threshold)
        return [self._to_face_box(row) for row in kept]

    def scan_regions(self, width: int, height: int) -> list[tuple[tuple[int, int, int, int], float]]:
        """((x, y, w, h), score threshold) of every region scanned for a frame of this size, the whole frame first."""
        regions = [((0, 0, width, height), self.score_threshold)]
        if not self.tiles:
            return regions
        short, long = min(width, height), max(width, height)
        if long > self.TILE_ASPECT * short:
            for offset in (0, long - short):
                square = (offset, 0, short, short) if width > height else (0, offset, short, short)
                regions.append((square, self.score_threshold))
        if short > self.FINE_MIN_SIDE:
            # A third of the short side beyond 2300 px keeps huge photos to ~15 tiles (faces >= ~2% of the side).
            tile, threshold = max(self.FINE_TILE, short // 3), max(self.score_threshold, self.FINE_SCORE_THRESHOLD)
            for y in _tile_offsets(height, tile):
                for x in _tile_offsets(width, tile):
                    regions.append(((x, y, tile, tile), threshold))
        return regions

    def _detect_region(self, frame: np.ndarray, region: tuple[int, int, int, int], threshold: float) -> np.ndarray:
        """Rows (x0, y0, x1, y1, score, 6 keypoints as x, y) in frame pixels for one region, letterboxed into the
        model's input."""
        dx, dy, region_w, region_h = region
        rgb = frame[dy:dy + region_h, dx:dx + region_w]
        size = self.INPUT_SIZE
        height, width = rgb.shape[:2]
        scale = size / max(height, width)
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        canvas = np.zeros((size, size, 3), dtype=np.uint8)
        pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
        canvas[pad_y:pad_y + new_h, pad_x:pad_x + new_w] = shrink(rgb, (new_w, new_h))
        tensor = (canvas.astype(np.float32) * np.float32(1 / 127.5) - 1.0)[None]
        with self._lock:
            self._interpreter.set_tensor(self._input["index"], tensor)
            self._interpreter.invoke()
            raw_boxes = self._interpreter.get_tensor(self._boxes_index)[0]
            raw_scores = self._interpreter.get_tensor(self._scores_index)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -80, 80)))
        keep = scores >= threshold
        if not keep.any():
            return np.zeros((0, ROW_WIDTH), dtype=np.float32)
        raw, anchors = raw_boxes[keep, :4] / size, self.anchors[keep]
        cx, cy = raw[:, 0] + anchors[:, 0], raw[:, 1] + anchors[:, 1]
        half_w, half_h = raw[:, 2] / 2, raw[:, 3] / 2
        # Model coordinates (0..1 of the letterboxed square) -> region pixels -> frame pixels.
        to_x = lambda v: (v * size - pad_x) / scale + dx  # noqa: E731
        to_y = lambda v: (v * size - pad_y) / scale + dy  # noqa: E731
        points = raw_boxes[keep, 4:16] / size
        keypoints = [to_x(points[:, 2 * k] + anchors[:, 0]) if axis == 0 else to_y(points[:, 2 * k + 1] + anchors[:, 1])
                     for k in range(len(KEYPOINT_NAMES)) for axis in (0, 1)]
        rows = np.stack([to_x(cx - half_w), to_y(cy - half_h), to_x(cx + half_w), to_y(cy + half_h),
                         scores[keep], *keypoints], axis=1).astype(np.float32)
        rows = rows[~_touches_inner_edge(rows, region, frame.shape[1], frame.shape[0])]
        if region[2] < frame.shape[1] and region[3] < frame.shape[0]:  # a grid tile (not the frame, not a strip)
            rows = rows[np.maximum(rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1]) <= self.FINE_MAX_FACE * region[2]]
        return rows

    def _to_face_box(self, row: np.ndarray) -> FaceBox:
        x0, y0, x1, y1, score = (float(v) for v in row[:5])
        side = max(x1 - x0, y1 - y0)
        new_side = side * self.BOX_SCALE
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - self.BOX_SHIFT_UP * side
        points = tuple((float(row[5 + 2 * k]), float(row[6 + 2 * k])) for k in range(len(KEYPOINT_NAMES)))
        return FaceBox(round(cx - new_side / 2), round(cy - new_side / 2), round(new_side), round(new_side), score,
                       points if len(row) >= ROW_WIDTH else None)

    def detect_region(self, frame: np.ndarray, region: tuple[int, int, int, int], *, color: ColorOrder | None = None,
                      threshold: float | None = None) -> list[FaceBox]:
        """Faces inside one region (x, y, w, h) of `frame` only, in frame pixels, best score first: the tracker's
        cheap search around the last box. Only the region is converted and scaled; no tiles, no size filter."""
        frame = check_frame(frame)
        color = color or self.color
        height, width = frame.shape[:2]
        x, y, w, h = region
        x0, y0, x1, y1 = max(0, int(x)), max(0, int(y)), min(width, int(x + w)), min(height, int(y + h))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return []
        # Every `step`-th pixel first: a face square several times the input's side needs no full-resolution colour
        # conversion and area resize (that cost more than the 128x128 inference itself); 1-2x the input is left
        # for the area resize to smooth.
        step = max(1, max(x1 - x0, y1 - y0) // self.INPUT_SIZE)
        crop = frame[y0:y1, x0:x1]
        if step > 1:  # nearest-neighbour decimation reads the frame's rows in place (a strided NumPy copy is slower)
            crop = cv2.resize(crop, ((x1 - x0) // step, (y1 - y0) // step), interpolation=cv2.INTER_NEAREST)
        rgb = to_rgb(crop, color)
        rows = self._detect_region(rgb, (0, 0, rgb.shape[1], rgb.shape[0]),
                                   self.score_threshold if threshold is None else threshold)
        rows[:, [0, 2]] *= (x1 - x0) / rgb.shape[1]
        rows[:, [1, 3]] *= (y1 - y0) / rgb.shape[0]
        rows[:, 5::2] *= (x1 - x0) / rgb.shape[1]
        rows[:, 6::2] *= (y1 - y0) / rgb.shape[0]
        rows[:, [0, 2]] += x0
        rows[:, [1, 3]] += y0
        rows[:, 5::2] += x0
        rows[:, 6::2] += y0
        boxes = [_clamp(self._to_face_box(row), width, height) for row in weighted_nms(rows, self.iou_threshold)]
        return sorted((b for b in boxes if b.w > 0 and b.h > 0), key=lambda b: b.score, reverse=True)


class BlazeFaceShortDetector(BlazeFaceDetector):
    """MediaPipe BlazeFace "short range" (front camera) model, 128x128: faces within ~2 m that fill a good part of the
    input. About a quarter of the back model's cost; the tracker runs it on a square around the last face box, where
    the face fills the input as this model expects. As a whole-frame detector it misses small faces: use the back
    model (`BlazeFaceDetector`) to find faces in a frame."""

    INPUT_SIZE = 128
    STRIDES = (8, 16, 16, 16)  # MediaPipe face_detection_short_range.pbtxt

    def __init__(self, *, model_path: str | Path = BLAZEFACE_SHORT_MODEL_PATH, tiles: bool = False,
                 **options: Any) -> None:
        super().__init__(model_path=model_path, tiles=tiles, **options)


def _tile_offsets(length: int, tile: int) -> list[int]:
    """Start offsets of `tile`-long windows covering `length` with at least a quarter tile of overlap."""
    if length <= tile:
        return [0]
    count = int(np.ceil((length - tile) / (0.75 * tile))) + 1
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def _touches_inner_edge(rows: np.ndarray, region: tuple[int, int, int, int], width: int, height: int) -> np.ndarray:
    """Which boxes reach an edge of the region that is not an edge of the frame (likely a face cut by the tile)."""
    x, y, w, h = region
    margin = 0.01 * max(w, h)
    cut = np.zeros(len(rows), dtype=bool)
    if x > 0:
        cut |= rows[:, 0] <= x + margin
    if y > 0:
        cut |= rows[:, 1] <= y + margin
    if x + w < width:
        cut |= rows[:, 2] >= x + w - margin
    if y + h < height:
        cut |= rows[:, 3] >= y + h - margin
    return cut


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to `size` (width, height). Large frames go through a cheap linear step to twice the target first:
    INTER_AREA straight from 1080p costs ~10x more and the detector does not need its last bit of anti-aliasing."""
    width, height = size
    if image.shape[1] > 4 * width and image.shape[0] > 4 * height:
        image = cv2.resize(image, (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def ssd_anchors(input_size: int, strides: tuple[int, ...]) -> np.ndarray:
    """Anchor centres (x, y) in 0..1, as MediaPipe's SsdAnchorsCalculator makes them (2 anchors per cell per layer)."""
    centres: list[tuple[float, float]] = []
    layer = 0
    while layer < len(strides):
        repeats = 0
        last = layer
        while last < len(strides) and strides[last] == strides[layer]:
            repeats += 2
            last += 1
        cells = input_size // strides[layer]
        for y in range(cells):
            for x in range(cells):
                centres.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * repeats)
        layer = last
    return np.asarray(centres, dtype=np.float32)


def weighted_nms(rows: np.ndarray, iou_threshold: float, containment: float = 0.6) -> list[np.ndarray]:
    """MediaPipe's weighted non-maximum suppression: overlapping boxes are averaged, weighted by score.

    Then a box lying mostly (`containment` of its area) inside a better one is dropped: a part of a face seen by
    one region while another region saw the whole face.
    """
    order = np.argsort(-rows[:, 4]) if len(rows) else np.zeros(0, dtype=int)
    remaining = rows[order]
    kept: list[np.ndarray] = []
    while len(remaining):
        best = remaining[0]
        overlaps = _iou(best, remaining) > iou_threshold
        overlaps[0] = True
        group = remaining[overlaps]
        weights = group[:, 4:5]
        averaged = (group * weights).sum(axis=0) / weights.sum()  # box and keypoints; the score stays the best one
        merged = np.concatenate([averaged[:4], best[4:5], averaged[5:]])
        remaining = remaining[~overlaps]
        if not any(_inside_fraction(merged, other) > containment for other in kept):
            kept.append(merged)
    return kept


def _inside_fraction(box: np.ndarray, other: np.ndarray) -> float:
    ix = max(0.0, min(box[2], other[2]) - max(box[0], other[0]))
    iy = max(0.0, min(box[3], other[3]) - max(box[1], other[1]))
    return float(ix * iy / max((box[2] - box[0]) * (box[3] - box[1]), 1e-6))


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    ix = np.clip(np.minimum(box[2], others[:, 2]) - np.maximum(box[0], others[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], others[:, 3]) - np.maximum(box[1], others[:, 1]), 0, None)
    inter = ix * iy
    union = (box[2] - box[0]) * (box[3] - box[1]) + (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1]) - inter
    return inter / np.maximum(union, 1e-6)


def _clamp(box: FaceBox, width: int, height: int) -> FaceBox:
    x0, y0 = max(0, box.x), max(0, box.y)
    x1, y1 = min(width, box.x + box.w), min(height, box.y + box.h)
    return FaceBox(x0, y0, max(0, x1 - x0), max(0, y1 - y0), box.score, box.keypoints)


ROW_WIDTH = 5 + 2 * len(KEYPOINT_NAMES)  # x0, y0, x1, y1, score, then the keypoints as x, y pairs

DETECTORS: dict[str, type[FaceDetector]] = {"blazeface": BlazeFaceDetector, "haar": HaarFaceDetector}


def make_detector(kind: str = "blazeface", **options: Any) -> FaceDetector:
    """A detector by name ("blazeface" or "haar") with its options."""
    if kind not in DETECTORS:
        raise ValueError(f"unknown detector {kind!r}; choose one of {sorted(DETECTORS)}")
    return DETECTORS[kind](**options)
