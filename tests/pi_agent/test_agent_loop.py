"""The recording loop in-process (dry run, no database): one frame that cannot be analysed is logged and skipped, and
analysis keeps the configured pace."""

from __future__ import annotations

import logging
import threading

from pi_agent.agent import Agent
from pi_agent.config import AgentConfig
from pi_agent.sources import FrameGrabber, open_source
from pi_agent.spool import Spool
from pi_agent.sync import SyncWorker
from pi_agent.vision import FrameAnalyzer, load_fer_analyze


def test_a_frame_that_fails_analysis_is_skipped_not_fatal(face_clip, model_path, tmp_path, caplog):
    real = FrameAnalyzer(load_fer_analyze(model_path))
    calls = {"n": 0}

    class FlakyAnalyzer:
        def analyze(self, image):
            calls["n"] += 1
            if calls["n"] == 2:
                raise ValueError("garbage frame from the driver")
            return real.analyze(image)

    config = AgentConfig(dry_run=True, fps=5, source=str(face_clip))
    spool = Spool(tmp_path / "spool.sqlite3")
    sync = SyncWorker(None, spool, None, heartbeat_seconds=30, session_poll_seconds=3, batch_seconds=1, retry_max_seconds=1)
    agent = Agent(config, FlakyAnalyzer(), spool, sync, open_frames=lambda: FrameGrabber(open_source(str(face_clip))))
    threading.Timer(3.0, agent.stop_requested.set).start()
    with caplog.at_level(logging.INFO, logger="pi_agent"):
        assert agent.run() == 0
    assert "could not analyse a frame" in caplog.text and "garbage frame" in caplog.text
    # ~5 analysed frames a second for 3 s, minus the one that failed
    assert 10 <= agent.stats.frames_analysed <= 16
