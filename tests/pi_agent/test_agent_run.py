"""`python -m pi_agent run` as a real process, on a real clip of FER2013 faces, into a real PostgreSQL: it records only
while a session is live for its device, survives the database going away and the process being killed without losing or
doubling a reading, reconnects to a camera that stops, and exits 0 after flushing on SIGTERM."""

from __future__ import annotations

import math
import re
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from fer.labels import LABELS
from pi_agent.spool import Spool
from tests.pi_agent.conftest import PROJECT_ROOT, Clinic, start_agent

pytestmark = pytest.mark.slow


class RunningAgent:
    def __init__(self, clinic: Clinic, tmp_path: Path, clip: Path, model: Path, *extra: str, env: dict | None = None,
                 clock_ahead_seconds: float | None = None):
        self.clinic = clinic
        self.data_dir = tmp_path / "agent-data"
        self.log = tmp_path / "agent-output.log"
        args = ["run", "--source", str(clip), "--fps", "4", "--model", str(model), *extra]
        environment = clinic.env(tmp_path, **(env or {}))
        if clock_ahead_seconds is None:
            self.process = start_agent(args, environment, self.log)
        else:  # the same agent on a device whose clock is set wrong (tests/pi_agent/skewed_agent.py)
            command = [sys.executable, "-m", "tests.pi_agent.skewed_agent", str(clock_ahead_seconds), *args]
            with self.log.open("ab") as handle:
                self.process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=environment, stdout=handle,
                                                stderr=subprocess.STDOUT)

    @property
    def spool_path(self) -> Path:
        return self.data_dir / "agent_spool.sqlite3"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for_output(self, text: str, timeout: float) -> None:
        wait_until(lambda: text in self.output() or self.process.poll() is not None, timeout, f"agent to log {text!r}")
        assert text in self.output(), f"agent exited ({self.process.returncode}) without logging {text!r}:\n{self.output()}"

    def wait_for_count(self, text: str, times: int, timeout: float) -> None:
        wait_until(lambda: self.output().count(text) >= times or self.process.poll() is not None, timeout,
                   f"agent to log {text!r} {times} times")
        assert self.output().count(text) >= times, f"agent exited ({self.process.returncode}):\n{self.output()}"

    def terminate(self, timeout: float = 40) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"agent did not exit within {timeout} s of SIGTERM:\n{self.output()}")

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def rejected_capture_times(self) -> list[datetime]:
        db = sqlite3.connect(self.spool_path)
        try:
            return [datetime.fromisoformat(row[0]) for row in db.execute("SELECT captured_at FROM rejected")]
        finally:
            db.close()

    def spool_totals(self):
        spool = Spool(self.spool_path)
        try:
            return spool.totals()
        finally:
            spool.close()


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.25)


def wait_for_heartbeats(clinic: Clinic, count: int, timeout: float) -> None:
    """Until the device's heartbeat (written by the agent's sync rounds) has moved `count` times from now on."""
    def last_heartbeat():
        return next(d for d in clinic.clinician.list_devices() if d.id == clinic.device_id).last_heartbeat

    seen = [last_heartbeat()]

    def moved() -> bool:
        current = last_heartbeat()
        if current is not None and current != seen[-1]:
            seen.append(current)
        return len(seen) > count

    wait_until(moved, timeout, f"{count} heartbeats")


def spooled_after(agent: "RunningAgent", since: datetime) -> set[uuid.UUID]:
    """Ids of the readings waiting in the agent's spool that were captured after `since`."""
    spool = Spool(agent.spool_path)
    try:
        return {r.id for r in spool.oldest(limit=100_000) if r.captured_at > since}
    finally:
        spool.close()


def stored(clinic: Clinic, session_id: uuid.UUID):
    return clinic.clinician.readings_since(session_id).readings


def assert_readings_are_sound(readings, frame_size=(640, 480)) -> None:
    assert readings
    for r in readings:
        assert r.source == "pi"
        assert len(r.probabilities) == len(LABELS)
        assert math.isclose(sum(r.probabilities), 1.0, abs_tol=1e-3)
        x, y, w, h = r.box
        assert 0 <= x and 0 <= y and w > 0 and h > 0 and x + w <= frame_size[0] + 2 and y + h <= frame_size[1] + 2
        assert r.faces >= 1
    times = [r.captured_at for r in readings]
    assert len(set(times)) == len(times), "two readings of one analysed frame: largest-face-only or a duplicate"


def assert_spool_accounts_for(readings, agent: "RunningAgent", refusals_allowed: bool = False):
    """Every reading the agent spooled was stored exactly once or, when allowed, refused by the database (captured after
    the session ended); none is still waiting. Returns the spool's totals."""
    totals = agent.spool_totals()
    assert totals.pending == 0
    assert totals.acknowledged + totals.rejected == totals.spooled
    assert len(readings) == totals.acknowledged  # exact: none lost, none doubled
    if not refusals_allowed:
        assert totals.rejected == 0
    return totals


def test_records_only_while_a_session_is_live_then_flushes_on_sigterm(clinic, face_clip, model_path, tmp_path):
    agent = RunningAgent(clinic, tmp_path, face_clip, model_path)
    try:
        agent.wait_for_output("no live session for this device", 60)
        # Idle: the agent keeps asking (each sync round heartbeats, then polls the session), yet the camera stays closed.
        # Two heartbeats after the idle answer prove later rounds ran, however slow the machine.
        wait_for_heartbeats(clinic, 2, 60)
        assert "camera opened" not in agent.output()
        session = clinic.start_session()
        agent.wait_for_output(f"session {session.id} is live", 60)
        wait_until(lambda: len(stored(clinic, session.id)) >= 12, 90, "12 readings in the database")
        clinic.clinician.end_session(session.id)
        agent.wait_for_output("no live session for this device: idle", 60)
        # The last batch of the session reaches the database or the spool's rejected table (too late), then SIGTERM.
        wait_until(lambda: agent.spool_totals().pending == 0, 60, "the spool to drain")
        code = agent.terminate()
    finally:
        if agent.process.poll() is None:
            agent.kill()
    assert code == 0, agent.output()
    assert "received SIGTERM" in agent.output()
    readings = stored(clinic, session.id)
    assert_readings_are_sound(readings)
    # Every reading captured reached the database or, if the session ended before it was sent, was kept aside.
    assert_spool_accounts_for(readings, agent, refusals_allowed=True)
    assert all(session.started_at <= r.captured_at for r in readings)
    device = next(d for d in clinic.clinician.list_devices() if d.id == clinic.device_id)
    assert device.last_heartbeat is not None


def test_a_device_clock_30_s_ahead_is_corrected_and_nothing_captured_after_stop_is_stored(
    clinic, face_clip, model_path, tmp_path
):
    agent = RunningAgent(clinic, tmp_path, face_clip, model_path, clock_ahead_seconds=30)
    try:
        agent.wait_for_output("no live session for this device", 60)
        measured = re.search(r"device clock is ([0-9.]+) s ahead of the database's", agent.output())
        assert measured and abs(float(measured.group(1)) - 30) < 1, agent.output()
        session = clinic.start_session()
        agent.wait_for_output(f"session {session.id} is live", 60)
        wait_until(lambda: len(stored(clinic, session.id)) >= 12, 90, "12 readings in the database")
        ended = clinic.clinician.end_session(session.id)
        # The agent records until its next poll tells it the session is over (0.5 s here, 3 s by default)...
        agent.wait_for_output("no live session for this device: idle", 60)
        wait_until(lambda: agent.spool_totals().pending == 0, 60, "the spool to drain")
        code = agent.terminate()
    finally:
        if agent.process.poll() is None:
            agent.kill()
    assert code == 0, agent.output()
    readings = stored(clinic, session.id)
    assert_readings_are_sound(readings)
    # ...stamped in database time: uncorrected, every reading would lie 30 s after the moment it was captured, and the
    # last 30 s of them after the end.
    assert all(session.started_at <= r.captured_at <= ended.ended_at for r in readings)
    assert ended.ended_at - max(r.captured_at for r in readings) < timedelta(seconds=15)
    # Whatever it captured after Stop was refused and kept aside (never retried); nothing captured in time was.
    totals = assert_spool_accounts_for(readings, agent, refusals_allowed=True)
    assert all(t > ended.ended_at for t in agent.rejected_capture_times())
    assert "were captured after it ended and are not stored" in agent.output() or totals.rejected == 0
    device = next(d for d in clinic.clinician.list_devices() if d.id == clinic.device_id)
    assert device.clock_offset_ms is not None and abs(device.clock_offset_ms + 30_000) < 1000


def test_database_outage_mid_run_loses_and_doubles_nothing(clinic, postgres_server, face_clip, model_path, tmp_path):
    session = clinic.start_session()
    agent = RunningAgent(clinic, tmp_path, face_clip, model_path)
    try:
        wait_until(lambda: len(stored(clinic, session.id)) >= 4, 90, "first readings")
        outage_start = datetime.now(timezone.utc)
        postgres_server.stop()
        try:
            agent.wait_for_output("database unreachable", 60)
            # The agent keeps recording into its spool meanwhile, and keeps trying (and failing) to send.
            wait_until(lambda: len(spooled_after(agent, outage_start)) >= 4, 90, "4 readings spooled during the outage")
            retries = agent.output().count("database still unreachable")
            agent.wait_for_count("database still unreachable", retries + 1, 60)
            during_outage = spooled_after(agent, outage_start)
        finally:
            postgres_server.start()
        agent.wait_for_output("database reachable again", 60)
        wait_until(lambda: agent.spool_totals().pending == 0, 60, "the spool to drain")
        code = agent.terminate()
    finally:
        if agent.process.poll() is None:
            agent.kill()
        if not postgres_server.is_running():
            postgres_server.start()
    assert code == 0, agent.output()
    readings = stored(clinic, session.id)
    assert_readings_are_sound(readings)
    assert_spool_accounts_for(readings, agent)
    assert during_outage <= {r.id for r in readings}, "readings captured while the database was down must arrive afterwards"


def test_spooled_readings_survive_a_killed_agent_and_are_sent_after_restart(
    clinic, postgres_server, face_clip, model_path, tmp_path
):
    session = clinic.start_session()
    postgres_server.stop()
    try:
        # Database down from the start: with --session the agent records anyway, into its spool.
        first = RunningAgent(clinic, tmp_path, face_clip, model_path, "--session", str(session.id))
        try:
            wait_until(lambda: first.spool_path.exists() and first.spool_totals().pending >= 8, 90, "8 spooled readings")
        finally:
            first.kill()  # SIGKILL: no flush, no goodbye
        before_restart = Spool(first.spool_path)
        spooled_ids = {r.id for r in before_restart.oldest(limit=100_000)}
        before_restart.close()
        assert len(spooled_ids) >= 8
    finally:
        postgres_server.start()
    second = RunningAgent(clinic, tmp_path, face_clip, model_path, "--session", str(session.id))
    try:
        wait_until(lambda: spooled_ids <= {r.id for r in stored(clinic, session.id)}, 60, "the old spool to be sent")
        code = second.terminate()
    finally:
        if second.process.poll() is None:
            second.kill()
    assert code == 0, second.output()
    readings = stored(clinic, session.id)
    assert_spool_accounts_for(readings, second)  # one spool for both runs: every reading of either, once
    assert_readings_are_sound(readings)


def test_sigterm_while_the_database_is_down_exits_promptly_and_keeps_the_readings(
    clinic, postgres_server, face_clip, model_path, tmp_path
):
    session = clinic.start_session()
    postgres_server.stop()
    try:
        agent = RunningAgent(clinic, tmp_path, face_clip, model_path, "--session", str(session.id))
        try:
            wait_until(lambda: agent.spool_path.exists() and agent.spool_totals().pending >= 4, 90, "spooled readings")
            # Promptly means: one last attempt to send, which fails, and no waiting for the database. The deadline is
            # generous (a slow machine), far below the unbounded wait of a flush that kept retrying.
            code = agent.terminate(timeout=90)
        finally:
            if agent.process.poll() is None:
                agent.kill()
    finally:
        postgres_server.start()
    assert code == 0, agent.output()
    after_sigterm = agent.output().split("received SIGTERM", 1)[1]
    assert "database still unreachable" in after_sigterm  # the final flush was attempted and failed
    totals = agent.spool_totals()
    assert totals.pending == totals.spooled >= 4  # all kept for the next start
    assert f"{totals.pending} still spooled (sent at next start)" in after_sigterm


def test_a_camera_that_stops_delivering_is_reconnected(clinic, fer2013_dir, model_path, tmp_path):
    from bench.agent import make_face_clip

    short_clip = tmp_path / "short.mp4"
    make_face_clip(fer2013_dir, short_clip, seconds=2, fps=10)  # ends after 2 s, like a camera unplugged
    session = clinic.start_session()
    agent = RunningAgent(clinic, tmp_path, short_clip, model_path, "--session", str(session.id))
    try:
        agent.wait_for_count("camera lost", 1, 60)
        agent.wait_for_count("camera reconnected", 1, 30)
        agent.wait_for_count("camera lost", 2, 60)  # and again: the agent keeps trying
        code = agent.terminate()
    finally:
        if agent.process.poll() is None:
            agent.kill()
    assert code == 0, agent.output()
    assert "reconnecting in" in agent.output()
    readings = stored(clinic, session.id)
    assert_readings_are_sound(readings)
    assert_spool_accounts_for(readings, agent)
