"""`python -m store.migrate` on a real PostgreSQL: bootstrap only where Supabase's pieces are missing, migrations in
order, recorded the way the Supabase CLI records them, idempotent and safe to run concurrently."""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

from store.migrate import MIGRATIONS_DIR, apply_migrations, migration_files

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def empty_database(postgres_server):
    """A brand-new database with nothing applied (no auth schema)."""
    name = f"empty_{secrets.token_hex(5)}"
    with psycopg.connect(postgres_server.superuser_url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres_server.superuser_url(name)
    postgres_server.drop_database(name)


def versions() -> list[str]:
    return [path.name.split("_", 1)[0] for path in migration_files()]


def test_migration_files_follow_the_supabase_cli_naming():
    files = migration_files()
    assert files, f"no migrations in {MIGRATIONS_DIR}"
    for path in files:
        version, _, name = path.stem.partition("_")
        assert version.isdigit() and len(version) == 14 and name, path.name
    assert versions() == sorted(versions())


def test_a_vanilla_database_gets_the_bootstrap_then_every_migration(empty_database):
    assert apply_migrations(empty_database) == versions()
    with psycopg.connect(empty_database) as conn:
        recorded = [row[0] for row in conn.execute(
            "SELECT version FROM supabase_migrations.schema_migrations ORDER BY version")]
        functions = {row[0] for row in conn.execute(
            "SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'auth'")}
        roles = {row[0] for row in conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role')")}
        rls = dict(conn.execute(
            "SELECT relname, relrowsecurity FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
        ).fetchall())
    assert recorded == versions()
    assert {"uid", "jwt", "role"} <= functions
    assert roles == {"anon", "authenticated", "service_role"}
    assert rls and all(rls.values()), f"tables without row-level security: {[t for t, on in rls.items() if not on]}"


def test_auth_uid_and_jwt_read_the_postgrest_claims(empty_database):
    apply_migrations(empty_database)
    with psycopg.connect(empty_database) as conn:
        conn.execute("SELECT set_config('request.jwt.claims', %s, true)",
                     ('{"sub": "6f1d2c1e-0000-4000-8000-000000000001", "role": "authenticated"}',))
        uid, role = conn.execute("SELECT auth.uid()::text, auth.jwt() ->> 'role'").fetchone()
    assert (uid, role) == ("6f1d2c1e-0000-4000-8000-000000000001", "authenticated")


def test_running_again_applies_nothing_and_changes_nothing(empty_database):
    apply_migrations(empty_database)
    assert apply_migrations(empty_database) == []


def test_an_existing_auth_schema_is_left_alone(empty_database):
    """On Supabase the auth schema exists: the bootstrap must not run (it would replace Supabase's own functions)."""
    with psycopg.connect(empty_database, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA auth")
        conn.execute("CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS "
                     "$$ SELECT nullif(current_setting('request.jwt.claims', true), '')::jsonb $$")
        conn.execute("CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS "
                     "$$ SELECT (auth.jwt() ->> 'sub')::uuid $$")
        conn.execute("COMMENT ON FUNCTION auth.jwt() IS 'supabase original'")
    apply_migrations(empty_database)
    with psycopg.connect(empty_database) as conn:
        comment = conn.execute("SELECT obj_description('auth.jwt()'::regprocedure)").fetchone()[0]
    assert comment == "supabase original"


def test_concurrent_runs_wait_for_each_other_and_apply_once(empty_database):
    results: list[list[str]] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            results.append(apply_migrations(empty_database))
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not failures
    assert sorted(results, key=len) == [[], [], versions()]


def test_a_failing_migration_leaves_nothing_half_applied(empty_database, tmp_path):
    apply_migrations(empty_database)
    broken = tmp_path / "migrations"
    broken.mkdir()
    for path in migration_files():
        (broken / path.name).write_text(path.read_text())
    (broken / "29990101000000_broken.sql").write_text(
        "CREATE TABLE public.half_done (id int);\nSELECT * FROM no_such_table;\n")
    with pytest.raises(psycopg.errors.UndefinedTable):
        apply_migrations(empty_database, broken)
    with psycopg.connect(empty_database) as conn:
        assert conn.execute("SELECT to_regclass('public.half_done')").fetchone()[0] is None
        assert conn.execute("SELECT count(*) FROM supabase_migrations.schema_migrations WHERE version = '29990101000000'"
                            ).fetchone()[0] == 0


def test_the_command_line_migrates_and_reports(empty_database):
    result = subprocess.run([sys.executable, "-m", "store.migrate", "--database-url", empty_database],
                            cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
                            env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert f"applied {len(versions())} migration(s)" in result.stdout
    again = subprocess.run([sys.executable, "-m", "store.migrate", "--database-url", empty_database],
                           cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
                           env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"})
    assert "none pending" in again.stdout


def test_an_unreachable_database_is_a_clear_error():
    from store.errors import StoreUnavailable

    with pytest.raises(StoreUnavailable, match="cannot connect"):
        apply_migrations("postgresql://nobody:nothing@127.0.0.1:1/none?connect_timeout=2")
