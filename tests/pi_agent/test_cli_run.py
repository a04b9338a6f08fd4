"""`python -m pi_agent run` from the outside: the seed-style verbose block, clear configuration errors, a refused device key,
and the Picamera2 contract (no Pi camera here: a stand-in module with Picamera2's documented calls)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from pi_agent.sources import FrameGrabber, PicameraSource, open_source

ROOT = Path(__file__).resolve().parents[2]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PSYA_", "DATABASE_URL", "SUPABASE_"))}
    env.update({"PYTHONPATH": str(ROOT), "PSYA_AGENT_ENV_FILE": str(tmp_path / "none.env"),
                "PSYA_SECRETS_FILE": str(tmp_path / "none.toml"), "PSYA_DATA_DIR": str(tmp_path / "data")})
    env.update(extra)
    return env


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


BLOCKS_WANTED = 8


def test_dry_run_verbose_prints_the_seed_metrics_per_frame(face_clip, model_path, tmp_path):
    stdout_path = tmp_path / "stdout.txt"
    with stdout_path.open("wb") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "pi_agent", "--source", str(face_clip), "--fps", "4", "--model", str(model_path),
             "--dry-run", "--verbose"],
            cwd=ROOT, env=clean_env(tmp_path, PYTHONUNBUFFERED="1"), stdout=stdout, stderr=subprocess.PIPE, text=True,
        )
    try:
        # However slow this machine is: wait for 8 printed blocks (the last line of a block is the emotion).
        wait_until(lambda: stdout_path.read_text().count(" * Emotion: ") >= BLOCKS_WANTED or process.poll() is not None,
                   120, f"{BLOCKS_WANTED} metric blocks")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    blocks = [b for b in stdout_path.read_text().split("\n\n") if b.strip()]
    assert len(blocks) >= BLOCKS_WANTED, err
    for block in blocks:
        lines = block.strip("\n").splitlines()
        assert lines[0].startswith(" * Time for face det.:") and lines[0].endswith("ms")
        assert lines[1].startswith(" * Time for prediction:")
        assert lines[2] == f" * Process ID: {process.pid}"
        assert lines[3].startswith(" * Memory ") and lines[3].endswith("%")
        assert lines[4].startswith(" * CPU ") and lines[4].endswith("%")
        assert lines[5].startswith(" * Emotion: ")
    assert any("Happy" in b for b in blocks)  # the clip opens on a FER2013 "happy" face
    from pi_agent.spool import Spool

    assert Spool(tmp_path / "data" / "agent_spool.sqlite3").totals().spooled == 0  # a dry run writes nothing


def test_recording_without_device_credentials_is_a_configuration_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pi_agent", "run", "--source", "0"], cwd=ROOT,
                            env=clean_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "PSYA_DEVICE_ID and PSYA_DEVICE_KEY are required" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_refused_device_key_stops_the_agent_with_a_clear_message(clinic, faceless_clip, model_path, tmp_path):
    env = clinic.env(tmp_path, PSYA_DEVICE_KEY="not-the-key")
    result = subprocess.run([sys.executable, "-m", "pi_agent", "run", "--source", str(faceless_clip), "--model", str(model_path)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"device {clinic.device_id} was refused by the database" in result.stderr
    assert "PSYA_DEVICE_KEY" in result.stderr


# --- Picamera2 contract -------------------------------------------------------------------------------------------------
class StandInPicamera2:
    """The Picamera2 calls the agent relies on (picamera2 0.3, Raspberry Pi OS Bookworm), recorded."""

    instances: list["StandInPicamera2"] = []

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.config: dict | None = None
        self.fail_reads = False
        StandInPicamera2.instances.append(self)

    def create_video_configuration(self, main: dict, controls: dict | None = None) -> dict:
        self.calls.append("create_video_configuration")
        return {"main": main, "controls": controls or {}}

    def configure(self, config: dict) -> None:
        self.calls.append("configure")
        self.config = config

    def start(self) -> None:
        self.calls.append("start")

    def capture_array(self, stream: str = "main") -> np.ndarray:
        if self.fail_reads:
            raise RuntimeError("camera disconnected")
        width, height = self.config["main"]["size"]
        return np.zeros((height, width, 3), np.uint8)

    def stop(self) -> None:
        self.calls.append("stop")

    def close(self) -> None:
        self.calls.append("close")


@pytest.fixture
def picamera2_module(monkeypatch):
    module = types.ModuleType("picamera2")
    module.Picamera2 = StandInPicamera2
    StandInPicamera2.instances = []
    monkeypatch.setitem(sys.modules, "picamera2", module)
    return module


def test_picamera2_contract_auto_source_prefers_the_pi_camera(picamera2_module):
    source = open_source("auto", width=640, height=480, fps_hint=4)
    assert isinstance(source, PicameraSource)
    camera = StandInPicamera2.instances[0]
    assert camera.config["main"] == {"size": (640, 480), "format": "RGB888"}  # RGB888 is BGR in memory: OpenCV order
    assert camera.config["controls"] == {"FrameRate": 8.0}  # no faster than needed: less CPU
    frame = source.read()
    assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
    source.close()
    assert camera.calls == ["create_video_configuration", "configure", "start", "stop", "close"]


def test_picamera2_contract_a_failing_camera_reads_as_lost(picamera2_module):
    source = open_source("picamera", width=320, height=240)
    StandInPicamera2.instances[0].fail_reads = True
    grabber = FrameGrabber(source)
    try:
        assert grabber.take(timeout=2.0) is None
        assert grabber.lost
    finally:
        grabber.close()


def test_without_picamera2_auto_means_the_first_usb_camera(monkeypatch):
    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails, as on a machine without it
    from pi_agent import sources

    assert not sources.picamera2_available()
    with pytest.raises(sources.SourceError, match="camera 0"):
        open_source("auto")  # no /dev/video0 here: a clear error, which the agent retries with back-off


def test_a_missing_video_file_source_is_a_clear_error(tmp_path):
    from pi_agent.sources import SourceError

    with pytest.raises(SourceError, match="video file not found"):
        open_source(str(tmp_path / "nope.mp4"))


def test_a_second_agent_on_the_same_spool_refuses_to_start(faceless_clip, model_path, tmp_path):
    command = [sys.executable, "-m", "pi_agent", "--source", str(faceless_clip), "--model", str(model_path), "--dry-run"]
    first = subprocess.Popen(command, cwd=ROOT, env=clean_env(tmp_path), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    lock = tmp_path / "data" / "agent_spool.lock"
    try:
        # The lock file exists before it is locked; the first agent writes its pid into it once it holds the lock.
        wait_until(lambda: (lock.exists() and lock.read_text().strip() == str(first.pid)) or first.poll() is not None,
                   120, "the first agent to hold the spool lock")
        assert first.poll() is None, "the first agent exited before the second one started"
        second = subprocess.run(command, cwd=ROOT, env=clean_env(tmp_path), capture_output=True, text=True, timeout=120)
        assert second.returncode == 1
        assert f"another pi_agent (pid {first.pid}) is already running" in second.stderr
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=60)
    assert first.returncode == 0


def test_log_file_rotates(tmp_path):
    import logging

    from pi_agent.cli import setup_logging

    log_file = tmp_path / "logs" / "pi_agent.log"
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    setup_logging(log_file, max_bytes=2_000, backups=2)
    try:
        for n in range(200):
            logging.getLogger("pi_agent").info("line %d of a long unattended run", n)
    finally:
        for handler in list(root.handlers):
            handler.close()
            root.removeHandler(handler)
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
    files = sorted(p.name for p in log_file.parent.iterdir())
    assert files == ["pi_agent.log", "pi_agent.log.1", "pi_agent.log.2"]
    assert all(p.stat().st_size <= 2_100 for p in log_file.parent.iterdir())
    assert "line 199" in log_file.read_text()
