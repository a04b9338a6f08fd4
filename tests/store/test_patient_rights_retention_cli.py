"""`python -m store.retention apply` as cron runs it, on a real PostgreSQL: unset keeps everything, the dry run lists
and deletes nothing, apply deletes exactly the expired readings, a period shorter than the late-reading grace is refused."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest

from settings import Settings
from tests.store.conftest import World, readings_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def world(store_factory) -> World:
    return World(store_factory())


def run_retention(database_url: str, tmp_path: Path, *args: str, days: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PSYA_", "DATABASE_URL", "SUPABASE_", "READINGS_"))}
    env.update({"PYTHONPATH": str(ROOT), "DATABASE_URL": database_url, "PSYA_DATA_DIR": str(tmp_path / "data"),
                "PSYA_SECRETS_FILE": str(tmp_path / "none.toml")})
    if days is not None:
        env["READINGS_RETENTION_DAYS"] = days
    return subprocess.run([sys.executable, "-m", "store.retention", "apply", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_retention_command_dry_run_then_apply(world, database_url, tmp_path):
    _, store = world.clinician()
    device, _ = world.device(store)
    patient = world.patient(store)
    old = store.start_session(patient.id, "in_person", device.id)
    store.insert_readings(readings_for(old.id, 6))
    store.end_session(old.id)
    recent = store.start_session(patient.id, "in_person", device.id)
    store.insert_readings(readings_for(recent.id, 4))
    store.end_session(recent.id)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("UPDATE sessions SET ended_at = now() - interval '91 days' WHERE id = %s", (old.id,))
        conn.execute("UPDATE sessions SET ended_at = now() - interval '89 days' WHERE id = %s", (recent.id,))

        unset = run_retention(database_url, tmp_path)
        assert unset.returncode == 0 and "nothing to do" in unset.stdout

        dry = run_retention(database_url, tmp_path, "--dry-run", days="90")
        assert dry.returncode == 0, dry.stderr
        assert f"session {old.id}" in dry.stdout and "would delete 6 readings" in dry.stdout
        assert str(recent.id) not in dry.stdout
        assert dry.stdout.strip().endswith("dry run: would delete 6 readings of 1 sessions ended more than 90 days ago")
        assert conn.execute("SELECT count(*) FROM readings").fetchone()[0] == 10

        applied = run_retention(database_url, tmp_path, days="90")
        assert applied.returncode == 0, applied.stderr
        assert applied.stdout.strip().endswith("deleted 6 readings of 1 sessions ended more than 90 days ago")
        remaining = conn.execute("SELECT session_id, count(*) FROM readings GROUP BY 1").fetchall()
        assert remaining == [(recent.id, 4)]

        again = run_retention(database_url, tmp_path, "--days", "90")
        assert again.returncode == 0 and "deleted 0 readings of 0 sessions" in again.stdout


def test_a_retention_shorter_than_the_late_reading_grace_is_refused(database_url, tmp_path):
    result = run_retention(database_url, tmp_path, days="0")
    assert result.returncode == 2
    assert "at least 1 day" in result.stderr and "Traceback" not in result.stderr


def test_the_setting_is_read_from_the_environment():
    assert Settings.load({}, Path("/nonexistent")).readings_retention_days is None
    assert Settings.load({"READINGS_RETENTION_DAYS": "365"}, Path("/nonexistent")).readings_retention_days == 365
