"""Agent benchmark: the Pi agent's analysis next to a seed-style loop (Haar at 640x360 + the seed's EDNN, raw 0-255 input,
every frame), on the same clip of FER2013 faces, in one run.

Rows: analysed frames per second with no rate limit (decode + detect + classify, in this process), then CPU % and RSS
of each as a separate process at 5 analysed frames per second, reading the clip at its own frame rate like a camera.
`python -m bench.agent seed --source CLIP --fps 5` is the seed-style loop as a process (used by the CPU/RSS rows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from bench.table import Section

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("FER_SHARED_DIR", PROJECT_ROOT.parent / "shared"))
CLIP_FPS = 15
CLIP_SECONDS = 20
LOAD_SECONDS = 20.0
LOAD_WARMUP_SECONDS = 4.0
FRAME_SIZE = (640, 480)


# --- the clip --------------------------------------------------------------------------------------------------------
def make_face_clip(fer2013_dir: Path, out: Path, seconds: float = CLIP_SECONDS, fps: int = CLIP_FPS,
                   classes: tuple[str, ...] = ("happy", "neutral", "surprise", "sad", "angry", "fear"),
                   seconds_per_face: float = 1.0, face_side: int = 240, split: str = "val") -> list[Path]:
    """Write a 640x480 BGR video (mp4v) showing FER2013 faces, one per `seconds_per_face`, each upscaled to `face_side`
    px on a plain background and drifting slowly (a detector must find it again every frame). Returns the images used."""
    import cv2

    per_class = int(np.ceil(seconds / seconds_per_face / len(classes)))
    groups = [sorted((fer2013_dir / split / c).glob("*.jpg"))[:per_class] for c in classes]
    images = [g[i] for i in range(per_class) for g in groups if i < len(g)]
    if not images:
        raise FileNotFoundError(f"no FER2013 images under {fer2013_dir / split}")
    width, height = FRAME_SIZE
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {out}")
    frames = int(seconds * fps)
    per_face = max(1, int(seconds_per_face * fps))
    try:
        for n in range(frames):
            face = cv2.imread(str(images[(n // per_face) % len(images)]), cv2.IMREAD_GRAYSCALE)
            frame = np.full((height, width), 110, np.uint8)
            x = (width - face_side) // 2 + int(20 * np.sin(n / fps))
            y = (height - face_side) // 2
            frame[y : y + face_side, x : x + face_side] = cv2.resize(face, (face_side, face_side), interpolation=cv2.INTER_CUBIC)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    finally:
        writer.release()
    return images


# --- the seed-style loop ----------------------------------------------------------------------------------------------
class SeedLoop:
    """What the seed's rpi/main.py did per frame: resize to 640x360, Haar (scale 1.3, 5 neighbours), the seed crop
    (y:y+17h/16, x-w/32:x+33w/32), 48x48, raw 0-255 float input, one interpreter call per face."""

    def __init__(self, model_path: Path) -> None:
        import cv2

        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        self._interpreter = _interpreter(model_path)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]

    def analyze(self, frame: np.ndarray) -> int:
        import cv2

        frame = cv2.resize(frame, (640, 360))
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        results = 0
        for x, y, w, h in self._cascade.detectMultiScale(gray, 1.3, 5):
            crop = gray[y : y + 17 * h // 16, max(0, x - w // 32) : x + 33 * w // 32]
            face = cv2.resize(crop, (48, 48)).astype(np.float32)[None, :, :, None]
            self._interpreter.set_tensor(self._input, face)
            self._interpreter.invoke()
            self._interpreter.get_tensor(self._output)
            results += 1
        return results


def _interpreter(model_path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # the same fallback order as fer
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            from tensorflow.lite import Interpreter
    interpreter = Interpreter(model_path=str(model_path), num_threads=1)
    interpreter.allocate_tensors()
    return interpreter
