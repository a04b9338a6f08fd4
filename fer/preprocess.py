"""From a frame and a face box to the classifier's input: margin crop, grayscale, resize.

The margin is the seed project's (`y:y+17h/16, x-w/32:x+33w/32`): a little chin and sides, as in FER2013's crops.
Normalisation is not done here: it belongs to the model and comes from its metadata (see `EmotionClassifier`).
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from fer.detection import FaceBox
from fer.errors import InvalidImageError
from fer.images import ColorOrder, to_gray


def margin_crop(gray: np.ndarray, box: FaceBox) -> np.ndarray:
    """The seed's crop of `box` with margins, clamped to the frame; never empty."""
    height, width = gray.shape[:2]
    x0 = max(0, int(box.x - box.w / 32))
    x1 = min(width, int(box.x + 33 * box.w / 32))
    y0 = max(0, int(box.y))
    y1 = min(height, int(box.y + 17 * box.h / 16))
    if x1 <= x0 or y1 <= y0:
        raise InvalidImageError(f"face box {box} lies outside the {width}x{height} frame")
    return gray[y0:y1, x0:x1]


def face_crops(frame: np.ndarray, boxes: Iterable[FaceBox], size: tuple[int, int] = (48, 48),
               color: ColorOrder = "bgr") -> np.ndarray:
    """Grayscale margin crops of every box, resized to `size` (height, width): uint8 (N, H, W).

    48x48 (FER2013's size) is a fine default: `EmotionClassifier.predict` resizes to its own input anyway.
    """
    gray = to_gray(frame, color)
    crops = [resize_face(margin_crop(gray, box), size) for box in boxes]
    if not crops:
        return np.zeros((0, *size), dtype=np.uint8)
    return np.stack(crops)


def laplacian_variance(face: np.ndarray) -> float:
    """A standard sharpness measure: the variance of the image's Laplacian (higher is sharper)."""
    return float(cv2.Laplacian(face, cv2.CV_64F).var())


def resize_face(face: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if face.shape[:2] == tuple(size):
        return face
    # INTER_AREA when shrinking avoids aliasing; linear when enlarging small faces.
    shrinking = face.shape[0] > size[0] or face.shape[1] > size[1]
    return cv2.resize(face, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
