"""The recording loop in-process (dry run, no database): one frame that cannot be analysed is logged and skipped, and
the loop goes on analysing the frames after it. (Its pace, analysed frames per second, is measured in `make bench`.)"""

from __future__ import annotations

import logging
import threading

from pi_agent.agent import Agent
from pi_agent.config import AgentConfig
from pi_agent.sources import FrameGrabber, open_source
from pi_agent.spool import Spool
from pi_agent.sync import SyncWorker
from pi_agent.vision import FrameAnalyzer, load_fer_analyze

CALLS_BEFORE_STOP = 6


def test_a_frame_that_fails_analysis_is_skipped_not_fatal(faceless_clip, model_path, tmp_path, caplog):
    real = FrameAnalyzer(load_fer_analyze(model_path))
    calls = {"n": 0}
    agent: Agent

    class FlakyAnalyzer:
        """The real analysis, except that the 2nd frame fails; asks the agent to stop after the 6th."""

        def analyze(self, image):
            calls["n"] += 1
            if calls["n"] == CALLS_BEFORE_STOP:
                agent.stop_requested.set()
            if calls["n"] == 2:
                raise ValueError("garbage frame from the driver")
            return real.analyze(image)

    config = AgentConfig(dry_run=True, fps=5, source=str(faceless_clip))
    spool = Spool(tmp_path / "spool.sqlite3")
    sync = SyncWorker(None, spool, None, heartbeat_seconds=30, session_poll_seconds=3, batch_seconds=1, retry_max_seconds=1)
    agent = Agent(config, FlakyAnalyzer(), spool, sync, open_frames=lambda: FrameGrabber(open_source(str(faceless_clip))))
    # A deadline only for a broken loop (never reached when it works): stop it rather than hang the suite.
    watchdog = threading.Timer(120.0, agent.stop_requested.set)
    watchdog.start()
    try:
        with caplog.at_level(logging.INFO, logger="pi_agent"):
            assert agent.run() == 0
    finally:
        watchdog.cancel()
    assert calls["n"] == CALLS_BEFORE_STOP, "the loop stopped before it reached the 6th frame (watchdog)"
    assert "could not analyse a frame" in caplog.text and "garbage frame" in caplog.text
    # Every frame it was given but the broken one was analysed: the loop carried on after the failure.
    assert agent.stats.frames_analysed == CALLS_BEFORE_STOP - 1
    assert f"agent stopped: {CALLS_BEFORE_STOP - 1} frames analysed" in caplog.text
