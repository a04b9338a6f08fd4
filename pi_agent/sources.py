"""Frame sources: the Pi camera (Picamera2), a USB camera index, a video file or an RTSP/HTTP stream.

A `FrameGrabber` thread reads the source continuously and keeps only the newest frame, so the analysis loop always sees
"now" (a camera's internal buffer would otherwise hand it frames seconds old) and a slow analysis never backs frames up.
Video files are played at their own frame rate, like a camera, unless `realtime=False`. When the source fails or ends
the grabber reports it lost; the agent closes it and reconnects with back-off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from pi_agent import clock as device_clock

log = logging.getLogger("pi_agent.source")


class SourceError(RuntimeError):
    """The source could not be opened (no camera at that index, unreadable file, unreachable stream)."""


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # BGR uint8
    captured_at: datetime  # UTC, when the frame was read: database time in the agent (device clock + measured offset)
    index: int  # frames read from this source since it was opened


class FrameSource(Protocol):
    description: str

    def read(self) -> np.ndarray | None:
        """The next frame (BGR), or None when the source has ended or failed."""

    def close(self) -> None: ...


def picamera2_available() -> bool:
    try:
        import picamera2  # noqa: F401  (apt: python3-picamera2; only on Raspberry Pi OS)
    except Exception:  # ImportError, or libcamera missing underneath it
        return False
    return True


def open_source(spec: str, width: int = 640, height: int = 480, fps_hint: float = 0.0, realtime: bool = True) -> FrameSource:
    """`spec`: "auto" (Picamera2 when installed, else camera 0), "picamera", a camera index ("0"), a video file path,
    or a URL (rtsp://, http://, https://). Raises SourceError when it cannot be opened."""
    if spec == "auto":
        spec = "picamera" if picamera2_available() else "0"
    if spec == "picamera":
        return PicameraSource(width, height, fps_hint)
    if spec.isdigit():
        return OpenCVSource(int(spec), f"camera {spec}", width, height, fps_hint, pace=False)
    if "://" in spec:
        return OpenCVSource(spec, f"stream {_redact(spec)}", width, height, fps_hint, pace=False)
    path = Path(spec)
    if not path.is_file():
        raise SourceError(f"video file not found: {path}")
    return OpenCVSource(str(path), f"video file {path}", 0, 0, 0.0, pace=realtime)


class OpenCVSource:
    def __init__(self, target: int | str, description: str, width: int, height: int, fps_hint: float, pace: bool) -> None:
        import cv2

        self.description = description
        self._capture = cv2.VideoCapture(target)
        if not self._capture.isOpened():
            self._capture.release()
            raise SourceError(f"cannot open {description}")
        if isinstance(target, int):
            # Ask the camera for a modest size and rate: fewer pixels to convert, less CPU on the Pi.
            if width and height:
                self._capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                self._capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            if fps_hint:
                self._capture.set(cv2.CAP_PROP_FPS, max(5.0, fps_hint * 2))
            self._capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        native_fps = self._capture.get(cv2.CAP_PROP_FPS) or 0.0
        self._frame_interval = 1.0 / native_fps if pace and 1.0 <= native_fps <= 240.0 else 0.0
        self._next_due = time.monotonic()

    def read(self) -> np.ndarray | None:
        if self._frame_interval:
            # Play files at their own speed, as a camera would deliver them.
            delay = self._next_due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._next_due = max(self._next_due + self._frame_interval, time.monotonic() - 1.0)
        ok, image = self._capture.read()
        return image if ok and image is not None and image.size else None

    def close(self) -> None:
        self._capture.release()


class PicameraSource:
    """Raspberry Pi camera through libcamera's Picamera2 (Bookworm: `sudo apt install python3-picamera2`)."""

    def __init__(self, width: int, height: int, fps_hint: float) -> None:
        try:
            from picamera2 import Picamera2
        except Exception as error:
            raise SourceError(f"Picamera2 is not available ({error}); install python3-picamera2 or pass --source 0") from error
        self.description = "Pi camera (Picamera2)"
        try:
            self._camera = Picamera2()
            # "RGB888" is B,G,R in memory: exactly OpenCV's BGR order.
            controls = {"FrameRate": max(5.0, fps_hint * 2)} if fps_hint else {}
            config = self._camera.create_video_configuration(
                main={"size": (width or 640, height or 480), "format": "RGB888"}, controls=controls
            )
            self._camera.configure(config)
            self._camera.start()
        except Exception as error:
            raise SourceError(f"cannot open the Pi camera: {error}") from error

    def read(self) -> np.ndarray | None:
        try:
            return self._camera.capture_array("main")
        except Exception as error:
            log.warning("Pi camera read failed: %s", error)
            return None

    def close(self) -> None:
        try:
            self._camera.stop()
            self._camera.close()
        except Exception:  # closing a camera that already vanished must not crash the agent
            pass


class FrameGrabber:
    """Reads a source on a background thread and keeps the newest frame."""

    def __init__(self, source: FrameSource, clock: Callable[[], datetime] | None = None) -> None:
        self.source = source
        # stamps each frame when it is read: the agent passes its DatabaseClock.now (database time, pi_agent/clock.py)
        self._clock = clock or device_clock.device_now
        self._condition = threading.Condition()
        self._latest: Frame | None = None
        self._taken_index = -1
        self._lost = False
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="frame-grabber", daemon=True)
        self._thread.start()

    @property
    def lost(self) -> bool:
        return self._lost

    def take(self, timeout: float) -> Frame | None:
        """The newest frame not taken yet; waits up to `timeout`. None when nothing new came (or the source is lost)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while not self._stop and not self._lost and (self._latest is None or self._latest.index == self._taken_index):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._condition.wait(remaining)
            frame = self._latest
            if frame is None or frame.index == self._taken_index:
                return None
            self._taken_index = frame.index
            return frame

    def close(self) -> None:
        with self._condition:
            self._stop = True
            self._condition.notify_all()
        self._thread.join(timeout=5)
        self.source.close()

    def _run(self) -> None:
        index = 0
        while not self._stop:
            try:
                image = self.source.read()
            except Exception as error:  # a driver error must end in "lost", not kill the thread silently
                log.warning("reading %s failed: %s", self.source.description, error)
                image = None
            with self._condition:
                if image is None:
                    self._lost = True
                    self._condition.notify_all()
                    return
                self._latest = Frame(image, self._clock(), index)
                index += 1
                self._condition.notify_all()


def _redact(url: str) -> str:
    """Keep camera passwords (rtsp://user:pass@host) out of the logs."""
    scheme, _, rest = url.partition("://")
    if "@" in rest.split("/", 1)[0]:
        rest = "***@" + rest.split("@", 1)[1]
    return f"{scheme}://{rest}"
