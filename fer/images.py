"""Frame checks and colour conversions shared by detection and preprocessing.

Frames are uint8 NumPy arrays: gray (H, W) or (H, W, 1), colour (H, W, 3) or (H, W, 4). Colour order is the caller's
to state ("bgr" as OpenCV reads, or "rgb" as browsers and PIL give); it is never guessed.
"""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy as np

from fer.errors import InvalidImageError

ColorOrder = Literal["bgr", "rgb"]
COLOR_ORDERS: tuple[str, ...] = ("bgr", "rgb")


def check_frame(frame: Any, name: str = "frame") -> np.ndarray:
    """Return `frame` as a uint8 (H, W) or (H, W, C) array, or raise InvalidImageError saying what is wrong."""
    if frame is None:
        raise InvalidImageError(f"{name} is None (camera gone or video ended?)")
    if not isinstance(frame, np.ndarray):
        raise InvalidImageError(f"{name} must be a numpy array, got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise InvalidImageError(f"{name} must be uint8 (0..255), got dtype {frame.dtype}")
    if frame.ndim not in (2, 3):
        raise InvalidImageError(f"{name} must have shape (H, W) or (H, W, C), got {frame.shape}")
    if frame.ndim == 3 and frame.shape[2] not in (1, 3, 4):
        raise InvalidImageError(f"{name} must have 1, 3 or 4 channels, got shape {frame.shape}")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise InvalidImageError(f"{name} is empty (shape {frame.shape})")
    return frame


def check_color_order(color: str) -> None:
    if color not in COLOR_ORDERS:
        raise ValueError(f"color must be one of {COLOR_ORDERS}, got {color!r}")


def to_gray(frame: np.ndarray, color: ColorOrder = "bgr") -> np.ndarray:
    frame = check_frame(frame)
    check_color_order(color)
    if frame.ndim == 2:
        return frame
    if frame.shape[2] == 1:
        return frame[:, :, 0]
    if frame.shape[2] == 4:
        code = cv2.COLOR_BGRA2GRAY if color == "bgr" else cv2.COLOR_RGBA2GRAY
    else:
        code = cv2.COLOR_BGR2GRAY if color == "bgr" else cv2.COLOR_RGB2GRAY
    return cv2.cvtColor(frame, code)


def to_rgb(frame: np.ndarray, color: ColorOrder = "bgr") -> np.ndarray:
    frame = check_frame(frame)
    check_color_order(color)
    if frame.ndim == 2 or frame.shape[2] == 1:
        return cv2.cvtColor(frame.reshape(frame.shape[:2]), cv2.COLOR_GRAY2RGB)
    if frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2RGB if color == "bgr" else cv2.COLOR_RGBA2RGB)
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB) if color == "bgr" else frame


def downscale(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """Shrink so the longer side is at most `max_side`; return the image and the factor (original / shrunk)."""
    longest = max(image.shape[:2])
    if max_side is None or longest <= max_side:
        return image, 1.0
    factor = longest / max_side
    size = (max(1, round(image.shape[1] / factor)), max(1, round(image.shape[0] / factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor
