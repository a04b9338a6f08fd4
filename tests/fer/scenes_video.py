"""Frames for the tracker's tests, composed from the real face photos in ../shared/datasets/photos: a person's photo
placed on a background of its own shot, drifting a little from frame to frame as a seated person does."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

FRAME_SIZE = (640, 360)  # width, height: a 16:9 video frame
PATIENT = "obama.jpg"
OTHER_PERSON = "lin-manuel-miranda.png"


def photo(photos_dir: Path, name: str) -> np.ndarray:
    image = cv2.imread(str(photos_dir / name))
    if image is None:
        raise FileNotFoundError(photos_dir / name)
    return image


def shot_frame(image: np.ndarray, *, height: int, left: int, top: int = 0, background: tuple[int, int, int] = (60, 90, 70),
               frame_size: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    """`image` scaled to `height` px and placed at (left, top) on a flat background (cropped at the frame's edges)."""
    width, frame_height = frame_size
    scaled = cv2.resize(image, (max(1, round(image.shape[1] * height / image.shape[0])), height),
                        interpolation=cv2.INTER_AREA)
    frame = np.empty((frame_height, width, 3), np.uint8)
    frame[:] = background
    x0, y0 = max(0, left), max(0, top)
    x1, y1 = min(width, left + scaled.shape[1]), min(frame_height, top + scaled.shape[0])
    if x1 > x0 and y1 > y0:
        frame[y0:y1, x0:x1] = scaled[y0 - top : y1 - top, x0 - left : x1 - left]
    return frame


def drifting_shot(image: np.ndarray, frames: int, *, height: int = 340, left: int = 170, top: int = 10,
                  background: tuple[int, int, int] = (60, 90, 70), start: int = 0) -> list[np.ndarray]:
    """`frames` frames of one shot, the person swaying by a few pixels (a tracker must follow, not re-detect)."""
    return [shot_frame(image, height=height, left=left + round(6 * np.sin((start + n) / 4)), top=top,
                       background=background) for n in range(frames)]


def empty_frames(frames: int, background: tuple[int, int, int] = (60, 90, 70)) -> list[np.ndarray]:
    frame = np.empty((FRAME_SIZE[1], FRAME_SIZE[0], 3), np.uint8)
    frame[:] = background
    return [frame.copy() for _ in range(frames)]


def write_clip(frames: list[np.ndarray], path: Path, fps: float = 15.0) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError("OpenCV cannot write MP4 here")
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path
