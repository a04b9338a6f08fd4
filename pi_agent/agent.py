"""The recording loop: camera -> faces -> emotion probabilities -> spool, while a session is live for this device.

Threads: the main thread analyses frames; `FrameGrabber` reads the camera; `SyncWorker` talks to the database. The camera
is opened only while recording (the camera light then means "recording", and an idle Pi uses no CPU on video).
SIGTERM/SIGINT: stop capturing, spool the last partial batch, give the sync worker one last chance to send, exit 0.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from pi_agent.config import AgentConfig
from pi_agent.sources import Frame, FrameGrabber, SourceError, open_source
from pi_agent.spool import Spool
from pi_agent.sync import Backoff, DeviceLink, SyncWorker
from pi_agent.vision import FrameAnalysis, FrameAnalyzer
from store.models import Reading

log = logging.getLogger("pi_agent")

FINAL_FLUSH_SECONDS = 10.0


@dataclass
class AgentStats:
    frames_analysed: int = 0
    readings: int = 0
    camera_reconnects: int = 0
    started: float = field(default_factory=time.monotonic)


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        analyzer: FrameAnalyzer,
        spool: Spool,
        sync: SyncWorker,
        open_frames: Callable[[], FrameGrabber] | None = None,
    ) -> None:
        self.config = config
        self.analyzer = analyzer
        self.spool = spool
        self.sync = sync
        self.stats = AgentStats()
        self.stop_requested = threading.Event()
        self._open_frames = open_frames or self._open_configured_source
        self._grabber: FrameGrabber | None = None
        self._camera_backoff = Backoff(first=1.0, cap=config.retry_max_seconds)
        self._camera_retry_at = 0.0
        self._batch: list[Reading] = []
        self._batch_started = time.monotonic()
        from fer import MetricsMonitor

        self._metrics = MetricsMonitor()
        self._preview = config.preview
        self._last_logged: dict[str, float] = {}

    # --- lifecycle ------------------------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        def request_stop(signum: int, _frame: object) -> None:
            log.info("received %s: flushing and stopping", signal.Signals(signum).name)
            self.stop_requested.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

    def run(self) -> int:
        """Runs until stopped; returns the process exit code."""
        log.info(
            "agent started (pid %d): source=%s fps=%s device=%s session=%s spool=%s (%d pending)",
            os.getpid(), self.config.source, self.config.fps or "unlimited", self.config.device_id,
            self.config.session_id or "assigned by the app", self.spool.path, self.spool.pending_count(),
        )
        self.sync.start()
        try:
            while not self.stop_requested.is_set():
                if self.sync.fatal is not None:
                    return 2
                target = self.sync.current_session
                if target is None and not self.config.dry_run:
                    self._close_camera()
                    self._flush_batch()
                    self.stop_requested.wait(0.5)
                    continue
                self._record_one(target.session_id if target else None)
        finally:
            self._close_camera()
            self._flush_batch()
            self.sync.stop(flush_timeout=FINAL_FLUSH_SECONDS)
            pending = self.spool.pending_count()
            log.info(
                "agent stopped: %d frames analysed, %d readings captured, %d sent this run, %d still spooled%s",
                self.stats.frames_analysed, self.stats.readings, self.sync.sent, pending,
                " (sent at next start)" if pending else "",
            )
        return 2 if self.sync.fatal is not None else 0

    # --- one analysed frame ---------------------------------------------------------------------------------------
    def _record_one(self, session_id: uuid.UUID | None) -> None:
        grabber = self._camera()
        if grabber is None:
            self._maybe_flush()
            return
        interval = 1.0 / self.config.fps if self.config.fps > 0 else 0.0
        tick = time.monotonic()
        frame = grabber.take(timeout=1.0)
        if frame is None:
            if grabber.lost:
                self._camera_lost(grabber)
            self._maybe_flush()
            return
        self._camera_backoff.succeeded()
        try:
            analysis = self.analyzer.analyze(frame.image)
        except Exception as error:  # one bad frame (odd size, driver garbage) must not stop an unattended recorder
            self._log_throttled("frame", "could not analyse a frame from %s: %s", grabber.source.description, error)
            self._maybe_flush()
            return
        self.stats.frames_analysed += 1
        if session_id is not None:
            self._batch.extend(self._readings(session_id, frame, analysis))
        if self.config.verbose:
            self._print_metrics(analysis)
        if self._preview:
            self._show(frame.image, analysis)
        self._maybe_flush()
        if interval:
            # Sleep the rest of the period, waking at once on SIGTERM.
            self.stop_requested.wait(max(0.0, interval - (time.monotonic() - tick)))

    def _readings(self, session_id: uuid.UUID, frame: Frame, analysis: FrameAnalysis) -> list[Reading]:
        readings = [
            Reading(
                session_id=session_id,
                captured_at=frame.captured_at,
                probabilities=face.probabilities,
                source="pi",
                box=face.box,
                faces=analysis.faces_found,
            )
            for face in analysis.faces
        ]
        self.stats.readings += len(readings)
        return readings

    def _maybe_flush(self) -> None:
        if time.monotonic() - self._batch_started >= self.config.batch_seconds:
            self._flush_batch()

    def _flush_batch(self) -> None:
        """Commit the batch to the spool (durable from here on) and nudge the sync worker."""
        self._batch_started = time.monotonic()
        if not self._batch or self.config.dry_run:
            self._batch = []
            return
        try:
            self.spool.add(self._batch)
        except sqlite3.Error as error:
            # Disk full or SD card trouble: keep the readings in memory and try again at the next batch.
            self._log_throttled("spool", "cannot write the spool %s (%s); %d readings held in memory",
                                self.spool.path, error, len(self._batch))
            return
        self._batch = []
        self.sync.wake()

    def _log_throttled(self, key: str, message: str, *args: object) -> None:
        """Log a repeating error at most once a minute."""
        now = time.monotonic()
        if now - self._last_logged.get(key, -1e9) >= 60.0:
            self._last_logged[key] = now
            log.error(message, *args)

    # --- camera ---------------------------------------------------------------------------------------------------
    def _camera(self) -> FrameGrabber | None:
        if self._grabber is not None:
            return self._grabber
        if time.monotonic() < self._camera_retry_at:
            self.stop_requested.wait(min(0.5, self._camera_retry_at - time.monotonic()))
            return None
        try:
            self._grabber = self._open_frames()
        except SourceError as error:
            delay = self._camera_backoff.failed()
            self._camera_retry_at = time.monotonic() + delay
            log.warning("camera unavailable: %s; retrying in %.0f s", error, delay)
            return None
        if self._camera_backoff.current:
            self.stats.camera_reconnects += 1
            log.info("camera reconnected: %s", self._grabber.source.description)
        else:
            log.info("camera opened: %s", self._grabber.source.description)
        # The back-off is reset by the first frame, not by opening: a camera that opens and fails at once must not be
        # retried every second forever.
        return self._grabber

    def _camera_lost(self, grabber: FrameGrabber) -> None:
        delay = self._camera_backoff.failed()
        self._camera_retry_at = time.monotonic() + delay
        log.warning("camera lost: %s stopped delivering frames; reconnecting in %.0f s", grabber.source.description, delay)
        self._close_camera()

    def _close_camera(self) -> None:
        if self._grabber is not None:
            self._grabber.close()
            self._grabber = None

    def _open_configured_source(self) -> FrameGrabber:
        source = open_source(self.config.source, self.config.frame_width, self.config.frame_height or 480, self.config.fps)
        return FrameGrabber(source, clock=self.sync.clock.now)  # readings in database time

    # --- verbose and preview --------------------------------------------------------------------------------------
    def _print_metrics(self, analysis: FrameAnalysis) -> None:
        """The seed's per-frame console block (fer.MetricsMonitor), in milliseconds."""
        metrics = self._metrics.measure(analysis.results)
        detection = ", ".join(f"{ms:.1f}" for ms in metrics.detection_ms) or f"{analysis.detection_ms:.1f} (no face)"
        recorded = ", ".join(face.dominant.capitalize() for face in analysis.faces) or "no face"
        print(
            f" * Time for face det.: {detection} ms\n"
            f" * Time for prediction: {metrics.prediction_ms:.1f} ms\n"
            f" * Process ID: {metrics.process_id}\n"
            f" * Memory {metrics.memory_percent:.4f}%\n"
            f" * CPU {metrics.cpu_percent:.1f}%\n"
            f" * Emotion: {recorded} ({analysis.faces_found} face(s) in view)\n",
            flush=True,
        )

    def _show(self, image: np.ndarray, analysis: FrameAnalysis) -> None:
        import cv2

        canvas = image.copy()
        for face in analysis.faces:
            x, y, w, h = face.box
            cv2.rectangle(canvas, (x, y), (x + w, y + h), (0, 255, 0), 2)
            cv2.putText(canvas, face.dominant, (x, max(0, y - 8)), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 255, 0), 2)
        try:
            cv2.imshow("pi_agent preview (q to close)", canvas)
            if cv2.waitKey(1) & 0xFF == ord("q"):
                cv2.destroyAllWindows()
                self._preview = False
        except cv2.error as error:
            # opencv-python-headless has no window support; the Pi is normally headless anyway.
            log.warning("--preview needs a desktop and OpenCV with GUI support (%s); preview disabled", error)
            self._preview = False


def build_agent(config: AgentConfig, analyzer: FrameAnalyzer) -> Agent:
    """Wire the real parts from the configuration."""
    from store import open_store

    spool = Spool(config.resolved_spool_path)
    link = None
    if not config.dry_run:
        assert config.device_id is not None and config.device_key is not None
        link = DeviceLink(lambda: open_store(config.settings), config.device_id, config.device_key)
    sync = SyncWorker(
        link,
        spool,
        manual_session=config.session_id,
        heartbeat_seconds=config.heartbeat_seconds,
        session_poll_seconds=config.session_poll_seconds,
        batch_seconds=config.batch_seconds,
        retry_max_seconds=config.retry_max_seconds,
    )
    return Agent(config, analyzer, spool, sync)
