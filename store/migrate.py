"""Apply `supabase/migrations/*.sql` to any PostgreSQL: `python -m store.migrate --database-url URL` (or `make migrate`).

On a vanilla server (no `auth` schema) it first applies `supabase/bootstrap/vanilla_postgres.sql`, which provides what
Supabase has built in. Applied migrations are recorded in `supabase_migrations.schema_migrations`, the table the Supabase CLI
uses, so `supabase db push` and this command agree on what is applied. Idempotent; a session-level advisory lock makes
concurrent runs (the app and a Pi agent starting together) wait for each other. Each migration runs in its own transaction.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import psycopg

from store.errors import StoreUnavailable

SUPABASE_DIR = Path(__file__).resolve().parent.parent / "supabase"
MIGRATIONS_DIR = SUPABASE_DIR / "migrations"
BOOTSTRAP_SQL = SUPABASE_DIR / "bootstrap" / "vanilla_postgres.sql"
MIGRATION_LOCK_KEY = 7_345_112_001  # arbitrary constant shared by every process that migrates this database

_HISTORY_DDL = """
CREATE SCHEMA IF NOT EXISTS supabase_migrations;
CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations (
    version text PRIMARY KEY,
    statements text[],
    name text
);
"""


def migration_files(directory: Path = MIGRATIONS_DIR) -> list[Path]:
    """Supabase CLI naming: <version>_<name>.sql, applied in version order."""
    return sorted(directory.glob("*.sql"), key=lambda p: p.name.split("_", 1)[0])


def apply_migrations(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Bootstrap if needed, then apply pending migrations. Returns the versions applied by this call."""
    try:
        conn = psycopg.connect(database_url, autocommit=True, connect_timeout=10)
    except psycopg.OperationalError as error:
        raise StoreUnavailable(f"cannot connect to apply migrations: {error}") from error
    applied: list[str] = []
    with conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            if conn.execute("SELECT to_regnamespace('auth') IS NULL").fetchone()[0]:
                with conn.transaction():
                    conn.execute(BOOTSTRAP_SQL.read_text())
            conn.execute(_HISTORY_DDL)
            done = {row[0] for row in conn.execute("SELECT version FROM supabase_migrations.schema_migrations")}
            for path in migration_files(directory):
                version, _, name = path.stem.partition("_")
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(path.read_text())
                    conn.execute(
                        "INSERT INTO supabase_migrations.schema_migrations (version, name) VALUES (%s, %s)",
                        (version, name),
                    )
                applied.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True, help="postgresql://user:password@host:port/database")
    args = parser.parse_args(argv)
    try:
        applied = apply_migrations(args.database_url)
    except StoreUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except psycopg.Error as error:
        print(f"error: a migration failed and was rolled back: {error}", file=sys.stderr)
        return 1
    print(f"applied {len(applied)} migration(s): {', '.join(applied) or 'none pending'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
