"""Camera-sized test scenes made from FER2013 faces: a textured background with faces pasted at known places.

Used by the tests and benchmarks (never by the product): real faces at known boxes, at VGA..1080p frame sizes.
FER2013 crops are tight (forehead to chin, little hair), which is harder for detectors than a real head, so
detection numbers measured on these scenes are a conservative estimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from fer.detection import FaceBox

FRAME_SIZES: dict[str, tuple[int, int]] = {"640x480": (480, 640), "1280x720": (720, 1280), "1920x1080": (1080, 1920)}


@dataclass(frozen=True)
class Scene:
    frame: np.ndarray  # uint8 BGR (H, W, 3)
    boxes: list[FaceBox]  # where the faces were pasted


def textured_background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A colourful multi-scale noise texture with a few flat 'furniture' rectangles: busy, but contains no face."""
    background = np.zeros((height, width, 3), dtype=np.float32)
    for cell, weight in ((8, 0.25), (32, 0.35), (128, 0.4)):
        noise = rng.random((max(2, height // cell), max(2, width // cell), 3)).astype(np.float32)
        background += weight * 255 * cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(4):
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        x1, y1 = x0 + int(rng.integers(width // 10, width // 3)), y0 + int(rng.integers(height // 10, height // 3))
        background[y0:y1, x0:x1] = rng.integers(0, 256, 3)
    return np.clip(background, 0, 255).astype(np.uint8)


def compose_scene(faces: Sequence[np.ndarray], frame_size: tuple[int, int], rng: np.random.Generator,
                  face_fraction: tuple[float, float] = (0.25, 0.45)) -> Scene:
    """Paste grayscale `faces` (any size) without overlap; each face's side is a `face_fraction` of the shorter side."""
    height, width = frame_size
    frame = textured_background(height, width, rng)
    boxes: list[FaceBox] = []
    for face in faces:
        for _attempt in range(100):
            side = int(rng.uniform(*face_fraction) * min(height, width))
            x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
            candidate = FaceBox(x, y, side, side)
            if not any(_overlap(candidate, other) for other in boxes):
                break
        else:
            raise ValueError(f"cannot place {len(faces)} faces in a {width}x{height} frame without overlap")
        resized = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
        frame[y:y + side, x:x + side] = resized[:, :, None]
        boxes.append(candidate)
    return Scene(frame, boxes)


def matches(found: FaceBox, truth: FaceBox) -> bool:
    """A detection is the pasted face when their centres are within half the true side of each other."""
    (fx, fy), (tx, ty) = found.center, truth.center
    return abs(fx - tx) < truth.w / 2 and abs(fy - ty) < truth.h / 2


def _overlap(a: FaceBox, b: FaceBox, gap: int = 8) -> bool:
    return not (a.x + a.w + gap <= b.x or b.x + b.w + gap <= a.x or a.y + a.h + gap <= b.y or b.y + b.h + gap <= a.y)
