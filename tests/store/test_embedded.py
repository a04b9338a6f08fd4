"""The zero-configuration default: `open_store(Settings(data_dir=...))` starts a real PostgreSQL under data_dir/pgdata,
which outlives the process that started it (app restarts, the Pi agent beside the app) and is shared safely."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from settings import Settings
from store import open_store
from store.embedded import EmbeddedPostgres
from tests.conftest import private_temp_dir

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# What a separate process (the Streamlit app, a Pi agent) does: open the store, use it, report which server it reached.
OPEN_IN_ANOTHER_PROCESS = """
import json, sys
from pathlib import Path
from settings import Settings
from store import open_store
store = open_store(Settings(data_dir=Path(sys.argv[1])))
store.ping()
with store._pool.connection() as conn:
    pid = conn.execute("SELECT pg_postmaster_start_time()::text AS started").fetchone()["started"]
print(json.dumps({"clinicians": store.count_clinicians(), "started": pid}))
store.close()
"""


def open_in_another_process(data_dir: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", OPEN_IN_ANOTHER_PROCESS, str(data_dir)], cwd=PROJECT_ROOT,
                            env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def result_of(process: subprocess.Popen) -> dict:
    out, err = process.communicate(timeout=180)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


@pytest.fixture
def data_dir():
    path = private_temp_dir("psya-test-embedded-")
    yield path
    EmbeddedPostgres(path).stop()
    shutil.rmtree(path, ignore_errors=True)


def test_the_first_open_creates_a_private_migrated_server_on_loopback(data_dir):
    store = open_store(Settings(data_dir=data_dir))
    try:
        assert store.count_clinicians() == 0
        state = json.loads((data_dir / "embedded-postgres.json").read_text())
        secret = data_dir / "embedded-postgres.secret"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert (data_dir / "pgdata" / "PG_VERSION").exists()
        url = EmbeddedPostgres(data_dir).url()
        assert f"@127.0.0.1:{state['port']}/" in url
        with psycopg.connect(url) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
            assert conn.execute("SELECT count(*) FROM supabase_migrations.schema_migrations").fetchone()[0] >= 3
        with pytest.raises(psycopg.OperationalError):  # a password is required: no trust authentication
            psycopg.connect(url.replace(secret.read_text().strip(), "wrong"), connect_timeout=5).close()
    finally:
        store.close()


def test_the_server_outlives_the_process_that_started_it_and_is_reused(data_dir):
    first = result_of(open_in_another_process(data_dir))  # starts the server, then the process exits
    assert EmbeddedPostgres(data_dir).is_running()
    second = result_of(open_in_another_process(data_dir))  # an app restart: same server, not a new one
    assert second["started"] == first["started"]


def test_two_processes_opening_a_fresh_data_dir_at_once_share_one_server(data_dir):
    app, agent = open_in_another_process(data_dir), open_in_another_process(data_dir)
    app_result, agent_result = result_of(app), result_of(agent)
    assert app_result["started"] == agent_result["started"]
    with psycopg.connect(EmbeddedPostgres(data_dir).url()) as conn:
        applied = conn.execute("SELECT count(*) FROM supabase_migrations.schema_migrations").fetchone()[0]
    assert applied == len(list((PROJECT_ROOT / "supabase" / "migrations").glob("*.sql")))


def test_after_a_stop_the_next_open_restarts_on_the_same_port_with_the_data_kept(data_dir):
    store = open_store(Settings(data_dir=data_dir))
    clinician = store.create_clinician("kept", "Kept", "$2b$04$hash", "clinician")
    store.close()
    port = json.loads((data_dir / "embedded-postgres.json").read_text())["port"]
    EmbeddedPostgres(data_dir).stop()
    assert not EmbeddedPostgres(data_dir).is_running()
    store = open_store(Settings(data_dir=data_dir))
    try:
        assert store.get_clinician_by_username("kept").id == clinician.id
        assert json.loads((data_dir / "embedded-postgres.json").read_text())["port"] == port
    finally:
        store.close()


def test_a_busy_saved_port_moves_the_server_to_a_free_one(data_dir):
    from tests.ports import occupied

    open_store(Settings(data_dir=data_dir)).close()
    port = json.loads((data_dir / "embedded-postgres.json").read_text())["port"]
    EmbeddedPostgres(data_dir).stop()
    with occupied(port):
        store = open_store(Settings(data_dir=data_dir))
        store.ping()
        store.close()
        assert json.loads((data_dir / "embedded-postgres.json").read_text())["port"] != port


def test_the_management_command_on_a_data_dir_nothing_has_used_says_so(tmp_path, monkeypatch, capsys):
    from store.embedded import main

    monkeypatch.setenv("PSYA_DATA_DIR", str(tmp_path / "never-used"))
    assert main(["stop"]) == 0 and main(["status"]) == 0
    assert main(["url"]) == 1
    assert "no embedded database under" in capsys.readouterr().out
    assert not (tmp_path / "never-used").exists()


def test_the_server_log_is_private_and_rotated(postgres_server):
    """The embedded server's log can hold SQL text and client addresses: owner-only files, rotated by the server."""
    embedded = postgres_server.embedded
    with psycopg.connect(postgres_server.superuser_url(), autocommit=True) as conn:
        settings = {name: conn.execute(f"SHOW {name}").fetchone()[0] for name in (
            "logging_collector", "log_directory", "log_file_mode", "log_rotation_age", "log_rotation_size",
            "log_truncate_on_rotation", "log_filename")}
        conn.execute("SELECT pg_rotate_logfile()")
    assert settings == {"logging_collector": "on", "log_directory": "log", "log_file_mode": "0600",
                        "log_rotation_age": "1d", "log_rotation_size": "10MB", "log_truncate_on_rotation": "on",
                        "log_filename": "postgresql-%a.log"}
    assert stat.S_IMODE(embedded.paths.log_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(embedded.paths.pgdata.stat().st_mode) & 0o077 == 0  # pgdata/log lives inside it
    log_dir = embedded.paths.pgdata / "log"
    files = list(log_dir.glob("postgresql-*.log"))
    assert files and all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in files)


def test_a_large_startup_log_is_rotated_at_start(tmp_path):
    from store.embedded import STARTUP_LOG_MAX_BYTES

    server = EmbeddedPostgres(tmp_path)
    server.paths.data_dir.mkdir(parents=True, exist_ok=True)
    server.paths.log_file.write_text("x" * (STARTUP_LOG_MAX_BYTES + 1))
    server.paths.log_file.chmod(0o644)
    server._prepare_startup_log()
    rotated = server.paths.log_file.with_name(server.paths.log_file.name + ".1")
    assert rotated.stat().st_size == STARTUP_LOG_MAX_BYTES + 1 and server.paths.log_file.stat().st_size == 0
    assert stat.S_IMODE(server.paths.log_file.stat().st_mode) == 0o600 == stat.S_IMODE(rotated.stat().st_mode)
