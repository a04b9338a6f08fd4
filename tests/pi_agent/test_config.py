"""Agent configuration: env file < environment < flags; bad values are named clearly."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from pi_agent.cli import _config, build_parser
from pi_agent.config import AgentConfig, ConfigError, read_env_file

DEVICE = uuid.UUID("11111111-2222-3333-4444-555555555555")


def write_env(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.env"
    path.write_text(text)
    return path


def test_env_file_sets_device_database_and_camera(tmp_path):
    env = write_env(
        tmp_path,
        f"""# agent settings
PSYA_DEVICE_ID={DEVICE}
export PSYA_DEVICE_KEY="secret key"
DATABASE_URL=postgresql://u:p@db.example.org:5432/postgres
PSYA_SOURCE=rtsp://cam.local/stream
PSYA_FPS=2.5
PSYA_DATA_DIR={tmp_path / 'data'}
""",
    )
    config = AgentConfig.load(env_file=env, environ={})
    assert config.device_id == DEVICE
    assert config.device_key == "secret key"
    assert config.settings.database_url == "postgresql://u:p@db.example.org:5432/postgres"
    assert config.settings.backend == "postgres"
    assert config.source == "rtsp://cam.local/stream"
    assert config.fps == 2.5
    assert config.resolved_spool_path == tmp_path / "data" / "agent_spool.sqlite3"
    assert config.resolved_log_file == tmp_path / "data" / "logs" / "pi_agent.log"


def test_environment_wins_over_env_file_and_flags_win_over_both(tmp_path):
    env = write_env(tmp_path, "PSYA_FPS=2\nPSYA_SOURCE=0\n")
    config = AgentConfig.load(env_file=env, environ={"PSYA_FPS": "3"})
    assert config.fps == 3.0 and config.source == "0"
    args = build_parser().parse_args(["run", "--env-file", str(env), "--fps", "5", "--source", "clip.mp4", "-fs", "2"])
    flagged = _config(args)
    assert flagged.fps == 5.0 and flagged.source == "clip.mp4"
    assert (flagged.frame_width, flagged.frame_height) == (320, 180)  # the seed's --framesize 2


def test_defaults_suit_an_unattended_pi():
    config = AgentConfig.load(env_file=None, environ={"PSYA_AGENT_ENV_FILE": "/nonexistent"})
    assert config.fps == 4.0
    assert config.largest_face_only is True
    assert config.preview is False
    assert config.batch_seconds == 1.0


def test_named_env_file_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="env file not found"):
        AgentConfig.load(env_file=tmp_path / "missing.env", environ={})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("PSYA_DEVICE_ID=not-a-uuid\n", "PSYA_DEVICE_ID must be a UUID"),
        ("PSYA_FPS=fast\n", "PSYA_FPS must be a number"),
        ("just some words\n", "expected KEY=VALUE"),
    ],
)
def test_malformed_settings_name_the_setting(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        AgentConfig.load(env_file=write_env(tmp_path, text), environ={})


def test_recording_needs_device_credentials_but_dry_run_does_not():
    config = AgentConfig()
    with pytest.raises(ConfigError, match="PSYA_DEVICE_ID and PSYA_DEVICE_KEY"):
        config.validate_for_recording()
    config.with_overrides(dry_run=True).validate_for_recording()


def test_env_file_reader_keeps_equals_signs_in_values(tmp_path):
    env = write_env(tmp_path, "DATABASE_URL=postgresql://u:p@h/db?sslmode=require&x=1\n\n# c\n")
    assert read_env_file(env) == {"DATABASE_URL": "postgresql://u:p@h/db?sslmode=require&x=1"}
