"""Store over a direct PostgreSQL connection (the embedded server, Supabase direct/pooler URL, or any Postgres).

Defence in depth: every request is one transaction that first switches to the actor's database role and JWT claims exactly
as PostgREST does (`set_config('role', ...)`, `set_config('request.jwt.claims', ...)`, both transaction-local), so the
row-level security policies in supabase/migrations guard the data even if app code asks for the wrong rows. The app's
connecting user only needs to be a member of anon/authenticated/service_role/psya_device (Supabase's `postgres` is; the
bootstrap SQL and the device role migration arrange it on a vanilla server).

A Pi agent connects with its device's own login instead (`python -m store.devices provision`): that login is a member of
`psya_device` only, so the same code acting as the device works, and everything else is refused by the database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from fer.labels import LABELS
from store import patient_rights as rights
from store import validation as check
from store.api import Actor, LoginThrottle, Store
from store.common import (
    checked_recording_times,
    checked_time_zone,
    PATIENT_FIELDS,
    PATIENT_TEXT_FIELDS,
    error_from_database_message,
    escape_like,
    hash_secret,
    new_secret,
    require_clinician,
    require_device,
    require_system,
    role_and_claims,
    scram_verifier,
)
from store.errors import InvalidInput, NotFound, PermissionDenied, StoreError, StoreUnavailable
from store.postgres_markers import PostgresMarkers
from store.models import (
    Annotation,
    AuditEvent,
    Clinician,
    ConsentRecord,
    ConsentText,
    Device,
    DeviceRegistration,
    ErasureResult,
    NewPatient,
    Patient,
    PatientExport,
    Reading,
    ReadingPage,
    RecordEntry,
    RecordKind,
    RemoteJoin,
    RetentionItem,
    Role,
    Session,
    SessionAggregate,
    SessionMode,
)

CLINICIAN_COLUMNS = "id, username, display_name, role, failed_logins, locked_until, created_at, active"
PATIENT_COLUMNS = ("id, clinician_id, full_name, date_of_birth, diagnosis, in_treatment_since, contact, notes, "
                   "consent_facial_analysis, consent_date, consent_scope, archived, created_at")
RECORD_COLUMNS = "id, patient_id, entry_date, kind, text, author_id, created_at"
DEVICE_COLUMNS = "id, name, room, last_heartbeat, created_at, revoked_at, clock_offset_ms, clock_measured_at"
SESSION_COLUMNS = ("id, patient_id, clinician_id, mode, status, device_id, started_at, ended_at, join_expires_at, "
                   "created_at")
ANNOTATION_COLUMNS = "id, session_id, at, text, author_id"
READING_COLUMNS = ("id, seq, session_id, captured_at, angry, disgust, fear, happy, sad, surprise, neutral, "
                   "box_x, box_y, box_w, box_h, faces, source")

AUDIT_COLUMNS = "id, actor, action, entity, entity_id, at, chain_pos, prev_hash, row_hash"
POOL_WAIT_S = 5.0  # how long a request waits for a connection before StoreUnavailable
CONNECT_TIMEOUT_S = 3


def _configure_connection(conn: psycopg.Connection) -> None:
    # UTC everywhere; timestamps come back timezone-aware
    conn.execute("SET TIME ZONE 'UTC'")
    conn.commit()


def create_pool(database_url: str, max_size: int = 8) -> ConnectionPool:
    return ConnectionPool(
        database_url,
        min_size=1,
        max_size=max_size,
        timeout=POOL_WAIT_S,
        # prepare_threshold=None: no server-side prepared statements, so Supabase's transaction pooler works too
        kwargs={"connect_timeout": CONNECT_TIMEOUT_S, "prepare_threshold": None, "row_factory": dict_row},
        configure=_configure_connection,
        check=ConnectionPool.check_connection,  # drop connections that died with a server restart
        reconnect_timeout=24 * 3600,  # keep trying through long outages instead of giving up
        name="psya-store",
        open=True,
    )


def map_database_error(error: Exception) -> StoreError:
    """Driver exceptions -> store errors (callers never see psycopg types)."""
    if isinstance(error, (PoolTimeout, psycopg.OperationalError, psycopg.InterfaceError)):
        return StoreUnavailable(f"database unavailable: {error}".strip())
    if isinstance(error, pg_errors.RaiseException):
        mapped = error_from_database_message(error.diag.message_primary or str(error))
        if mapped is not None:
            return mapped
    if isinstance(error, pg_errors.InsufficientPrivilege):
        return PermissionDenied(error.diag.message_primary or str(error))
    if isinstance(error, pg_errors.ForeignKeyViolation):
        return NotFound(error.diag.message_detail or str(error))
    if isinstance(error, pg_errors.UniqueViolation):
        return InvalidInput(f"already exists: {error.diag.message_detail or error}")
    if isinstance(error, (pg_errors.IntegrityError, psycopg.DataError)):
        return InvalidInput(error.diag.message_primary or str(error) if hasattr(error, "diag") else str(error))
    if isinstance(error, pg_errors.UndefinedTable) or isinstance(error, pg_errors.UndefinedFunction):
        return StoreError(f"the database schema is missing or old; run `make migrate DATABASE_URL=...`: {error}")
    return StoreError(str(error))


class PostgresStore(PostgresMarkers, Store):
    def __init__(self, pool: ConnectionPool, actor: Actor | None = None, owns_pool: bool = True) -> None:
        self._pool = pool
        self.actor = actor or Actor.system()
        self._owns_pool = owns_pool

    @classmethod
    def connect(cls, database_url: str, max_size: int = 8) -> "PostgresStore":
        return cls(create_pool(database_url, max_size=max_size))

    def as_actor(self, actor: Actor) -> "PostgresStore":
        role_and_claims(actor)  # validate early
        return PostgresStore(self._pool, actor, owns_pool=False)

    def close(self) -> None:
        if self._owns_pool:
            self._pool.close()

    # --- transactions ---------------------------------------------------------------------------------------------
    @contextmanager
    def _tx(self, actor: Actor | None = None) -> Iterator[psycopg.Connection]:
        """One transaction under the actor's role and claims; driver errors become store errors, nothing half-written."""
        role, claims = role_and_claims(actor or self.actor)
        try:
            with self._pool.connection() as conn:
                with conn.transaction():
                    conn.execute(
                        "SELECT set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                        (role, json.dumps(claims)),
                    )
                    yield conn
        except StoreError:
            raise
        except (psycopg.Error, PoolTimeout) as error:
            raise map_database_error(error) from error

    def _audit(self, conn: psycopg.Connection, action: str, entity: str, entity_id: object) -> None:
        conn.execute(
            "INSERT INTO audit_log (actor, action, entity, entity_id) VALUES (%s, %s, %s, %s)",
            (self.actor.label, action, entity, str(entity_id)),
        )

    def ping(self) -> None:
        # no role switch: works for every login, a device's own included
        try:
            with self._pool.connection() as conn:
                conn.execute("SELECT 1")
        except (psycopg.Error, PoolTimeout) as error:
            raise map_database_error(error) from error

    # --- clinicians -------------------------------------------------------------------------------------------------
    def _clinician_select(self) -> str:
        # only the service role can read password hashes (column privileges); others get "" in password_hash
        if self.actor.kind == "system":
            return f"SELECT {CLINICIAN_COLUMNS}, password_hash FROM clinicians"
        return f"SELECT {CLINICIAN_COLUMNS}, '' AS password_hash FROM clinicians"

    def count_clinicians(self) -> int:
        with self._tx() as conn:
            return conn.execute("SELECT count(*) AS n FROM clinicians").fetchone()["n"]

    def create_clinician(self, username: str, display_name: str, password_hash: str, role: Role) -> Clinician:
        require_system(self.actor, "create clinician accounts")
        check.text("username", username)
        check.text("display_name", display_name)
        check.text("password_hash", password_hash)
        check.role(role)
        with self._tx() as conn:
            row = conn.execute(
                f"INSERT INTO clinicians (username, display_name, password_hash, role) VALUES (%s, %s, %s, %s) "
                f"RETURNING {CLINICIAN_COLUMNS}, password_hash",
                (username, display_name, password_hash, role),
            ).fetchone()
            self._audit(conn, "create", "clinician", row["id"])
        return Clinician(**row)

    def get_clinician_by_username(self, username: str) -> Clinician | None:
        check.text("username", username)
        with self._tx() as conn:
            row = conn.execute(f"{self._clinician_select()} WHERE username = %s", (username,)).fetchone()
        return Clinician(**row) if row else None

    def list_clinicians(self) -> list[Clinician]:
        with self._tx() as conn:
            rows = conn.execute(f"{self._clinician_select()} ORDER BY username").fetchall()
        return [Clinician(**row) for row in rows]

    def record_login_result(self, username: str, success: bool, address: str | None = None) -> None:
        require_system(self.actor, "record login results")
        check.text("username", username)
        with self._tx() as conn:
            if success:
                conn.execute("SELECT public.login_throttle_reset(%s, %s)", (username, _address(address)))
            row = conn.execute("SELECT id FROM clinicians WHERE username = %s", (username,)).fetchone()
            self._audit(conn, "login" if success else "login_failed", "clinician", row["id"] if row else username)

    # --- login throttle, login sessions and account care (system actor; see the 20261202020* migrations) ------------
    def begin_login_attempt(self, username: str, address: str | None, throttle: LoginThrottle) -> timedelta:
        require_system(self.actor, "throttle logins")
        check.text("username", username)
        with self._tx() as conn:
            row = conn.execute(
                "SELECT public.login_attempt_begin(%s, %s, %s, %s, %s, %s, %s) AS wait_s",
                (username, _address(address), *check.login_throttle(throttle)),
            ).fetchone()
        return timedelta(seconds=row["wait_s"])

    def reset_login_throttle(self, username: str) -> None:
        require_system(self.actor, "unlock logins")
        check.text("username", username)
        with self._tx() as conn:
            conn.execute("SELECT public.login_throttle_reset(%s, NULL)", (username,))
            self._audit(conn, "unlock", "clinician", username)

    def open_login_session(self, clinician_id: uuid.UUID, token: str, address: str | None = None) -> None:
        require_system(self.actor, "open login sessions")
        check.a_uuid("clinician_id", clinician_id)
        with self._tx() as conn:
            row = conn.execute("SELECT public.login_session_open(%s, %s, %s) AS id",
                               (clinician_id, hash_secret(check.text("token", token)), _address(address))).fetchone()
            if row["id"] is None:
                raise PermissionDenied(f"clinician {clinician_id} is deactivated or does not exist")

    def resume_login_session(self, token: str, idle: timedelta, lifetime: timedelta) -> Clinician | None:
        require_system(self.actor, "resume login sessions")
        with self._tx() as conn:
            row = conn.execute(
                f"SELECT {CLINICIAN_COLUMNS}, password_hash FROM public.login_session_resume(%s, %s, %s)",
                (hash_secret(check.text("token", token)), *check.session_lifetimes(idle, lifetime)),
            ).fetchone()
        return Clinician(**row) if row else None

    def end_login_session(self, token: str) -> None:
        require_system(self.actor, "end login sessions")
        with self._tx() as conn:
            conn.execute("SELECT public.login_session_end(%s)", (hash_secret(check.text("token", token)),))

    def revoke_login_sessions(self, clinician_id: uuid.UUID, keep_token: str | None = None) -> int:
        require_system(self.actor, "revoke login sessions")
        check.a_uuid("clinician_id", clinician_id)
        keep = None if keep_token is None else hash_secret(check.text("token", keep_token))
        with self._tx() as conn:
            ended = conn.execute("SELECT public.login_sessions_revoke(%s, %s) AS n", (clinician_id, keep)).fetchone()["n"]
            self._audit(conn, "revoke_sessions", "clinician", clinician_id)
        return ended

    def set_password_hash(self, clinician_id: uuid.UUID, password_hash: str) -> None:
        require_system(self.actor, "change passwords")
        check.a_uuid("clinician_id", clinician_id)
        check.text("password_hash", password_hash)
        with self._tx() as conn:
            row = conn.execute("UPDATE clinicians SET password_hash = %s WHERE id = %s RETURNING id",
                               (password_hash, clinician_id)).fetchone()
            if row is None:
                raise NotFound(f"clinician {clinician_id}")
            self._audit(conn, "password_change", "clinician", clinician_id)

    def set_clinician_active(self, clinician_id: uuid.UUID, active: bool) -> None:
        require_system(self.actor, "deactivate accounts")
        check.a_uuid("clinician_id", clinician_id)
        with self._tx() as conn:
            row = conn.execute("UPDATE clinicians SET active = %s WHERE id = %s RETURNING id",
                               (bool(active), clinician_id)).fetchone()
            if row is None:
                raise NotFound(f"clinician {clinician_id}")
            if not active:
                conn.execute("SELECT public.login_sessions_revoke(%s, NULL)", (clinician_id,))
            self._audit(conn, "activate" if active else "deactivate", "clinician", clinician_id)

    # --- patients ---------------------------------------------------------------------------------------------------
    def create_patient(self, patient: NewPatient) -> Patient:
        require_clinician(self.actor, "create patients")
        values = _checked_patient_fields({name: getattr(patient, name) for name in PATIENT_FIELDS})
        columns = ", ".join(values)
        with self._tx() as conn:
            row = conn.execute(
                f"INSERT INTO patients (clinician_id, {columns}) "
                f"VALUES (%s, {', '.join(['%s'] * len(values))}) RETURNING {PATIENT_COLUMNS}",
                (self.actor.id, *values.values()),
            ).fetchone()
            self._audit(conn, "create", "patient", row["id"])
        return Patient(**row)

    def _update_patient(self, patient_id: uuid.UUID, values: dict[str, object], action: str) -> Patient:
        check.a_uuid("patient_id", patient_id)
        assignments = ", ".join(f"{column} = %s" for column in values)
        with self._tx() as conn:
            row = conn.execute(
                f"UPDATE patients SET {assignments} WHERE id = %s RETURNING {PATIENT_COLUMNS}",
                (*values.values(), patient_id),
            ).fetchone()
            if row is None:
                raise NotFound(f"patient {patient_id}")
            self._audit(conn, action, "patient", patient_id)
        return Patient(**row)

    def update_patient(self, patient_id: uuid.UUID, **changes: object) -> Patient:
        unknown = set(changes) - set(PATIENT_FIELDS)
        if unknown:
            raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}; changeable: {', '.join(PATIENT_FIELDS)}")
        if not changes:
            return self.get_patient(patient_id)
        return self._update_patient(patient_id, _checked_patient_fields(changes), "update")

    def archive_patient(self, patient_id: uuid.UUID, archived: bool = True) -> Patient:
        return self._update_patient(patient_id, {"archived": bool(archived)}, "archive" if archived else "unarchive")

    def record_consent(self, patient_id: uuid.UUID, given: bool, on: date, scope: str) -> Patient:
        check.optional_date("consent_date", on)
        if on is None:
            raise InvalidInput("consent_date is required")
        check.text("consent_scope", scope)
        values = {"consent_facial_analysis": bool(given), "consent_date": on, "consent_scope": scope}
        return self._update_patient(patient_id, values, "consent_given" if given else "consent_withdrawn")

    def get_patient(self, patient_id: uuid.UUID) -> Patient:
        check.a_uuid("patient_id", patient_id)
        with self._tx() as conn:
            row = conn.execute(f"SELECT {PATIENT_COLUMNS} FROM patients WHERE id = %s", (patient_id,)).fetchone()
            # a refused view is audited too (committed with this transaction, so it is not raised inside it)
            if row is not None or self.actor.kind == "clinician":
                self._audit(conn, "view" if row is not None else "view_denied", "patient", patient_id)
        if row is None:
            raise NotFound(f"patient {patient_id}")
        return Patient(**row)

    def list_patients(self, search: str = "", include_archived: bool = False) -> list[Patient]:
        check.text("search", search)
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT {PATIENT_COLUMNS} FROM patients "
                "WHERE (%(all)s OR NOT archived) AND full_name ILIKE %(pattern)s ESCAPE '\\' "
                "ORDER BY lower(full_name), id",
                {"all": include_archived, "pattern": f"%{escape_like(search.strip())}%"},
            ).fetchall()
        return [Patient(**row) for row in rows]

    def add_record_entry(self, patient_id: uuid.UUID, entry_date: date, kind: RecordKind, text: str) -> RecordEntry:
        require_clinician(self.actor, "write medical records")
        check.a_uuid("patient_id", patient_id)
        if check.optional_date("entry_date", entry_date) is None:
            raise InvalidInput("entry_date is required")
        check.record_kind(kind)
        check.text("record_text", text)
        with self._tx() as conn:
            self._require_visible(conn, "patients", patient_id, "patient")
            row = conn.execute(
                f"INSERT INTO record_entries (patient_id, entry_date, kind, text, author_id) "
                f"VALUES (%s, %s, %s, %s, %s) RETURNING {RECORD_COLUMNS}",
                (patient_id, entry_date, kind, text, self.actor.id),
            ).fetchone()
            self._audit(conn, "create", "record_entry", row["id"])
        return RecordEntry(**row)

    def list_record_entries(self, patient_id: uuid.UUID) -> list[RecordEntry]:
        check.a_uuid("patient_id", patient_id)
        with self._tx() as conn:
            self._require_visible(conn, "patients", patient_id, "patient")
            rows = conn.execute(
                f"SELECT {RECORD_COLUMNS} FROM record_entries WHERE patient_id = %s "
                "ORDER BY entry_date DESC, created_at DESC",
                (patient_id,),
            ).fetchall()
        return [RecordEntry(**row) for row in rows]

    @staticmethod
    def _require_visible(conn: psycopg.Connection, table: str, row_id: uuid.UUID, what: str) -> None:
        if conn.execute(f"SELECT 1 FROM {table} WHERE id = %s", (row_id,)).fetchone() is None:
            raise NotFound(f"{what} {row_id}")

    # --- devices ----------------------------------------------------------------------------------------------------
    def register_device(self, name: str, room: str) -> DeviceRegistration:
        if self.actor.kind != "system":
            require_clinician(self.actor, "register devices")
        check.text("device_name", name)
        check.text("room", room)
        key = new_secret()
        with self._tx() as conn:
            row = conn.execute(
                f"INSERT INTO devices (name, room, key_hash, created_by) VALUES (%s, %s, %s, %s) "
                f"RETURNING {DEVICE_COLUMNS}",
                (name, room, hash_secret(key), self.actor.id),
            ).fetchone()
            # the device's own database login, password = key (sent as a SCRAM verifier, never in plain text)
            login = conn.execute("SELECT app.create_device_login(%s, %s) AS login",
                                 (row["id"], scram_verifier(key))).fetchone()["login"]
            self._audit(conn, "create", "device", row["id"])
        return DeviceRegistration(Device(**row), key, login)

    def revoke_device(self, device_id: uuid.UUID) -> None:
        device_id = check.a_uuid("device_id", device_id)
        with self._tx() as conn:
            conn.execute("SELECT public.revoke_device(%s)", (device_id,))
            if self.actor.kind == "clinician":
                self._audit(conn, "revoke", "device", device_id)

    def list_devices(self) -> list[Device]:
        with self._tx() as conn:
            rows = conn.execute(f"SELECT {DEVICE_COLUMNS} FROM devices ORDER BY name, id").fetchall()
        return [Device(**row) for row in rows]

    def authenticate_device(self, device_id: uuid.UUID, key: str) -> Device:
        if self.actor.kind != "system":
            require_device(self.actor, "authenticate itself")
        device_id = check.a_uuid("device_id", device_id)
        if self.actor.kind == "device" and self.actor.id != device_id:
            raise PermissionDenied("wrong device id or key")
        if not isinstance(key, str) or not key or len(key) > 200 or not _encodable(key):
            raise PermissionDenied("wrong device id or key")
        # always as the device: this works over the app's connection and over the device's own login alike
        with self._tx(Actor.for_device(device_id)) as conn:
            row = conn.execute("SELECT * FROM public.device_authenticate(%s, %s)", (device_id, key)).fetchone()
        return Device(**row)

    def heartbeat(self, clock_offset: timedelta | None = None) -> datetime:
        require_device(self.actor, "send heartbeats")
        offset_ms = check.clock_offset_ms(clock_offset)
        with self._tx() as conn:
            row = conn.execute("SELECT public.device_heartbeat(%s::integer) AS database_time", (offset_ms,)).fetchone()
        return row["database_time"]

    def live_session_for_device(self) -> Session | None:
        require_device(self.actor, "ask for its live session")
        with self._tx() as conn:
            row = conn.execute("SELECT * FROM public.device_live_session()").fetchone()
        return Session(**row) if row else None

    # --- sessions ---------------------------------------------------------------------------------------------------
    def _check_patient_can_start(self, conn: psycopg.Connection, patient_id: uuid.UUID) -> None:
        row = conn.execute(
            "SELECT consent_facial_analysis, archived FROM patients WHERE id = %s", (patient_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"patient {patient_id}")
        if row["archived"]:
            raise PermissionDenied("the patient is archived")
        if not row["consent_facial_analysis"]:
            raise PermissionDenied("the patient has not consented to facial analysis; record consent first")

    def _insert_session(self, conn: psycopg.Connection, values: dict[str, object],
                        join_ttl: timedelta | None = None) -> Session:
        columns = ", ".join(values)
        # the join expiry comes from the server clock, like every other timestamp
        row = conn.execute(
            f"INSERT INTO sessions (clinician_id, status, started_at, join_expires_at, {columns}) "
            f"VALUES (%s, 'live', now(), now() + %s, {', '.join(['%s'] * len(values))}) RETURNING {SESSION_COLUMNS}",
            (self.actor.id, join_ttl, *values.values()),
        ).fetchone()
        self._audit(conn, "start", "session", row["id"])
        return Session(**row)

    def start_session(self, patient_id: uuid.UUID, mode: SessionMode, device_id: uuid.UUID | None = None) -> Session:
        require_clinician(self.actor, "start sessions")
        check.a_uuid("patient_id", patient_id)
        check.session_mode(mode)
        if mode == "remote":
            raise InvalidInput("remote sessions need a join token: use start_remote_session")
        if mode == "in_person" and device_id is None:
            raise InvalidInput("an in_person session needs a device_id")
        if device_id is not None:
            device_id = check.a_uuid("device_id", device_id)
        with self._tx() as conn:
            self._check_patient_can_start(conn, patient_id)
            if device_id is not None:
                self._require_visible(conn, "devices", device_id, "device")
                busy = conn.execute(
                    "SELECT 1 FROM sessions WHERE device_id = %s AND status = 'live'", (device_id,)
                ).fetchone()
                if busy:
                    raise InvalidInput("the device is already in a live session; end that one first")
            return self._insert_session(conn, {"patient_id": patient_id, "mode": mode, "device_id": device_id})

    def start_remote_session(self, patient_id: uuid.UUID, ttl: timedelta = timedelta(hours=2)) -> RemoteJoin:
        require_clinician(self.actor, "start sessions")
        check.a_uuid("patient_id", patient_id)
        if not isinstance(ttl, timedelta) or ttl <= timedelta(0) or ttl > check.JOIN_LINK_MAX_LIFETIME:
            raise InvalidInput("ttl must be a positive timedelta of at most 7 days (the database refuses longer links)")
        token = new_secret()
        with self._tx() as conn:
            self._check_patient_can_start(conn, patient_id)
            session = self._insert_session(
                conn, {"patient_id": patient_id, "mode": "remote", "join_token_hash": hash_secret(token)}, join_ttl=ttl
            )
        return RemoteJoin(session, token)

    def end_session(self, session_id: uuid.UUID) -> Session:
        check.a_uuid("session_id", session_id)
        with self._tx() as conn:
            row = conn.execute(
                f"UPDATE sessions SET status = 'ended', ended_at = coalesce(ended_at, now()) "
                f"WHERE id = %s RETURNING {SESSION_COLUMNS}",
                (session_id,),
            ).fetchone()
            if row is None:
                raise NotFound(f"session {session_id}")
            self._audit(conn, "end", "session", session_id)
        return Session(**row)

    def get_session(self, session_id: uuid.UUID) -> Session:
        check.a_uuid("session_id", session_id)
        with self._tx() as conn:
            row = conn.execute(f"SELECT {SESSION_COLUMNS} FROM sessions WHERE id = %s", (session_id,)).fetchone()
            if row is None and self.actor.kind == "clinician":
                self._audit(conn, "view_denied", "session", session_id)
        if row is None:
            raise NotFound(f"session {session_id}")
        return Session(**row)

    def list_sessions(self, patient_id: uuid.UUID | None = None, status: str | None = None) -> list[Session]:
        if patient_id is not None:
            check.a_uuid("patient_id", patient_id)
        if status is not None:
            check.session_status(status)
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT {SESSION_COLUMNS} FROM sessions "
                "WHERE (%(patient)s::uuid IS NULL OR patient_id = %(patient)s::uuid) "
                "AND (%(status)s::text IS NULL OR status = %(status)s::text) "
                "ORDER BY created_at DESC, id",
                {"patient": patient_id, "status": status},
            ).fetchall()
        return [Session(**row) for row in rows]

    def session_for_token(self, token: str) -> Session:
        _check_token(token)
        with self._tx(Actor("remote")) as conn:
            row = conn.execute("SELECT * FROM public.session_for_token(%s)", (token,)).fetchone()
        return Session(**row)

    # --- readings ---------------------------------------------------------------------------------------------------
    def insert_readings(self, readings: Sequence[Reading]) -> int:
        batch = check.readings(readings)
        if not batch:
            return 0
        # grouped by session (stable: keeps capture order within a session) so concurrent batches take the per-session
        # locks of the readings_assign_seq trigger in the same order and cannot deadlock
        batch.sort(key=lambda r: str(r.session_id))
        payload = json.dumps([check.reading_row(r) for r in batch])
        # devices have their own function (only their sessions, source pi); clinicians go through RLS
        function = "public.device_insert_readings" if self.actor.kind == "device" else "public.insert_readings"
        with self._tx() as conn:
            return conn.execute(f"SELECT {function}(%s::jsonb) AS n", (payload,)).fetchone()["n"]

    def insert_remote_readings(self, token: str, readings: Sequence[Reading]) -> int:
        _check_token(token)
        batch = check.readings(readings)
        if not batch:
            self.session_for_token(token)  # still tell the browser when its link is dead
            return 0
        payload = json.dumps([check.reading_row(r) for r in batch])
        # always as anon: the token, not a login, is what authorises the patient's browser
        with self._tx(Actor("remote")) as conn:
            return conn.execute(
                "SELECT public.insert_remote_readings(%s, %s::jsonb) AS n", (token, payload)
            ).fetchone()["n"]

    def readings_since(self, session_id: uuid.UUID, cursor: int = 0, limit: int = 10_000) -> ReadingPage:
        check.a_uuid("session_id", session_id)
        if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
            raise InvalidInput(f"cursor must be a non-negative integer, got {cursor!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
            raise InvalidInput(f"limit must be an integer in [1, 100000], got {limit!r}")
        with self._tx() as conn:
            self._require_visible(conn, "sessions", session_id, "session")
            rows = conn.execute(
                "SELECT * FROM public.readings_since(%s, %s, %s)", (session_id, cursor, limit)
            ).fetchall()
        return ReadingPage([reading_from_row(r) for r in rows], rows[-1]["seq"] if rows else cursor)

    def session_aggregate(self, session_id: uuid.UUID) -> SessionAggregate:
        check.a_uuid("session_id", session_id)
        with self._tx() as conn:
            self._require_visible(conn, "sessions", session_id, "session")
            row = conn.execute("SELECT * FROM public.session_aggregate(%s)", (session_id,)).fetchone()
        return aggregate_from_row(session_id, row)

    # --- annotations and audit ----------------------------------------------------------------------------------------
    def add_annotation(self, session_id: uuid.UUID, at: datetime, text: str) -> Annotation:
        require_clinician(self.actor, "annotate sessions")
        check.a_uuid("session_id", session_id)
        check.aware_datetime("at", at)
        check.text("annotation_text", text)
        with self._tx() as conn:
            self._require_visible(conn, "sessions", session_id, "session")
            row = conn.execute(
                f"INSERT INTO annotations (session_id, at, text, author_id) VALUES (%s, %s, %s, %s) "
                f"RETURNING {ANNOTATION_COLUMNS}",
                (session_id, at, text, self.actor.id),
            ).fetchone()
        return Annotation(**row)

    def list_annotations(self, session_id: uuid.UUID) -> list[Annotation]:
        check.a_uuid("session_id", session_id)
        with self._tx() as conn:
            self._require_visible(conn, "sessions", session_id, "session")
            rows = conn.execute(
                f"SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE session_id = %s ORDER BY at, created_at",
                (session_id,),
            ).fetchall()
        return [Annotation(**row) for row in rows]

    def audit(self, action: str, entity: str, entity_id: str) -> None:
        check.text("audit_action", action)
        check.text("audit_entity", entity)
        check.text("audit_entity_id", str(entity_id))
        if self.actor.kind == "remote":
            raise PermissionDenied("remote patients do not write the audit log")
        with self._tx() as conn:
            self._audit(conn, action, entity, entity_id)

    def list_audit(self, limit: int = 500) -> list[AuditEvent]:
        if not (self.actor.kind == "system" or (self.actor.kind == "clinician" and self.actor.role == "admin")):
            raise PermissionDenied("only admins read the audit log")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
            raise InvalidInput(f"limit must be an integer in [1, 100000], got {limit!r}")
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY chain_pos DESC LIMIT %s", (limit,)
            ).fetchall()
        return [AuditEvent(**row) for row in rows]

    def audit_chain(self, after: int = 0, limit: int = 10_000) -> list[AuditEvent]:
        if not (self.actor.kind == "system" or (self.actor.kind == "clinician" and self.actor.role == "admin")):
            raise PermissionDenied("only admins read the audit log")
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise InvalidInput(f"after must be a non-negative integer, got {after!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
            raise InvalidInput(f"limit must be an integer in [1, 100000], got {limit!r}")
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT {AUDIT_COLUMNS} FROM audit_log WHERE chain_pos > %s ORDER BY chain_pos LIMIT %s", (after, limit)
            ).fetchall()
        return [AuditEvent(**row) for row in rows]


    # --- patients' data rights (SQL in supabase/migrations/20261202050000_* and 20261202050100_*) ----------------------
    def current_consent_text(self) -> ConsentText:
        with self._tx() as conn:
            row = conn.execute(
                "SELECT version, text, published_at FROM consent_texts ORDER BY version DESC LIMIT 1"
            ).fetchone()
        if row is None:
            raise NotFound("consent text (only clinicians read it)")
        return rights.consent_text_from_row(row)

    def publish_consent_text(self, text: str) -> ConsentText:
        text = rights.checked_consent_text(text)
        with self._tx() as conn:
            version = conn.execute("SELECT public.publish_consent_text(%s) AS v", (text,)).fetchone()["v"]
            row = conn.execute("SELECT version, text, published_at FROM consent_texts WHERE version = %s",
                               (version,)).fetchone()
        return rights.consent_text_from_row(row)

    def consent_history(self, patient_id: uuid.UUID) -> list[ConsentRecord]:
        check.a_uuid("patient_id", patient_id)
        with self._tx() as conn:
            self._require_visible(conn, "patients", patient_id, "patient")
            rows = conn.execute(
                "SELECT * FROM consent_records WHERE patient_id = %s ORDER BY recorded_at, id", (patient_id,)
            ).fetchall()
        return [rights.consent_record_from_row(row) for row in rows]

    def consent_is_current(self, patient_id: uuid.UUID) -> bool:
        check.a_uuid("patient_id", patient_id)
        with self._tx() as conn:
            self._require_visible(conn, "patients", patient_id, "patient")
            return bool(conn.execute("SELECT app.consent_is_current(%s) AS ok", (patient_id,)).fetchone()["ok"])

    def export_patient(self, patient_id: uuid.UUID) -> PatientExport:
        check.a_uuid("patient_id", patient_id)
        with self._tx() as conn:  # one transaction: the export and its audit row go together
            document = conn.execute("SELECT public.patient_export(%s) AS doc", (patient_id,)).fetchone()["doc"]
            readings: dict[uuid.UUID, list[Reading]] = {}
            for session in document["sessions"]:
                session_id, cursor, found = uuid.UUID(session["id"]), 0, []
                while True:
                    rows = conn.execute("SELECT * FROM public.readings_since(%s, %s, %s)",
                                        (session_id, cursor, rights.READINGS_PAGE)).fetchall()
                    found.extend(reading_from_row(r) for r in rows)
                    if len(rows) < rights.READINGS_PAGE:
                        break
                    cursor = rows[-1]["seq"]
                readings[session_id] = found
            self._audit(conn, "export", "patient", patient_id)
        return rights.export_from_json(document, readings)

    def erase_patient(self, patient_id: uuid.UUID, confirmation: str) -> ErasureResult:
        check.a_uuid("patient_id", patient_id)
        confirmation = rights.checked_confirmation(confirmation)
        if not (self.actor.kind == "clinician" and self.actor.role == "admin"):
            raise PermissionDenied("only admins erase patients")
        with self._tx() as conn:
            document = conn.execute("SELECT public.erase_patient(%s, %s) AS result",
                                    (patient_id, confirmation)).fetchone()["result"]
        return rights.erasure_from_json(patient_id, document)

    def apply_retention(self, keep: timedelta, dry_run: bool = True) -> list[RetentionItem]:
        require_system(self.actor, "apply the retention period")
        keep = rights.checked_keep(keep)
        with self._tx() as conn:
            rows = conn.execute("SELECT * FROM public.apply_retention(%s, %s)", (keep, bool(dry_run))).fetchall()
        return [rights.retention_item_from_row(row) for row in rows]
    # --- clinician preferences (issue 12) ------------------------------------------------------------------------------
    def get_time_zone(self) -> str | None:
        require_clinician(self.actor, "read their preferences")
        with self._tx() as conn:
            row = conn.execute("SELECT time_zone FROM clinician_preferences WHERE clinician_id = %s", (self.actor.id,)).fetchone()
        return row["time_zone"] if row else None

    def set_time_zone(self, time_zone: str | None) -> None:
        require_clinician(self.actor, "set their time zone")
        time_zone = checked_time_zone(time_zone)
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO clinician_preferences (clinician_id, time_zone) VALUES (%s, %s) "
                "ON CONFLICT (clinician_id) DO UPDATE SET time_zone = EXCLUDED.time_zone, updated_at = now()",
                (self.actor.id, time_zone),
            )
            self._audit(conn, "update", "clinician_preferences", self.actor.id)

    # --- remote join links (issue 12) ----------------------------------------------------------------------------------
    def rotate_join_token(self, session_id: uuid.UUID) -> RemoteJoin:
        require_clinician(self.actor, "renew join links")
        check.a_uuid("session_id", session_id)
        token = new_secret()
        with self._tx() as conn:
            row = conn.execute(
                f"UPDATE sessions SET join_token_hash = %s WHERE id = %s AND mode = 'remote' AND status = 'live' "
                f"RETURNING {SESSION_COLUMNS}",
                (hash_secret(token), session_id),
            ).fetchone()
            if row is None:
                raise InvalidInput("Only a live remote session of yours gets a new join link.")
            self._audit(conn, "rotate_join_link", "session", session_id)
        return RemoteJoin(Session(**row), token)

    def save_join_link(self, session_id: uuid.UUID, ciphertext: str) -> None:
        require_clinician(self.actor, "keep join links")
        check.a_uuid("session_id", session_id)
        if not isinstance(ciphertext, str) or not 1 <= len(ciphertext) <= 2000:
            raise InvalidInput("the join link ciphertext must be 1-2000 characters")
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO remote_join_links (session_id, clinician_id, ciphertext) VALUES (%s, %s, %s) "
                "ON CONFLICT (session_id) DO UPDATE SET ciphertext = EXCLUDED.ciphertext, updated_at = now()",
                (session_id, self.actor.id, ciphertext),
            )

    def get_join_link(self, session_id: uuid.UUID) -> str | None:
        require_clinician(self.actor, "read join links")
        check.a_uuid("session_id", session_id)
        with self._tx() as conn:
            row = conn.execute("SELECT ciphertext FROM remote_join_links WHERE session_id = %s", (session_id,)).fetchone()
        return row["ciphertext"] if row else None

    # --- recorded videos keep their own clock (issue 12) -------------------------------------------------------------
    def retime_recorded_session(self, session_id: uuid.UUID, started_at: datetime, ended_at: datetime | None = None) -> Session:
        require_clinician(self.actor, "date recorded sessions")
        check.a_uuid("session_id", session_id)
        checked_recording_times(started_at, ended_at)
        with self._tx() as conn:
            row = conn.execute(
                f"UPDATE sessions SET started_at = %s, ended_at = coalesce(%s, ended_at) "
                f"WHERE id = %s AND mode = 'recorded_video' RETURNING {SESSION_COLUMNS}",
                (started_at, ended_at, session_id),
            ).fetchone()
            if row is None:
                raise InvalidInput("Only a recorded-video session of yours takes the recording's times.")
            self._audit(conn, "retime", "session", session_id)
        return Session(**row)


def _checked_patient_fields(values: dict[str, object]) -> dict[str, object]:
    checked: dict[str, object] = {}
    for name, value in values.items():
        if name in PATIENT_TEXT_FIELDS:
            checked[name] = check.text(PATIENT_TEXT_FIELDS[name], value)
        else:
            checked[name] = check.optional_date(name, value)
    return checked


def _check_token(token: object) -> None:
    from store.errors import InvalidToken

    if not isinstance(token, str) or not 16 <= len(token) <= 200 or "\x00" in token or check.has_lone_surrogate(token):
        raise InvalidToken("the join link is unknown, expired, or its session has ended")


def reading_from_row(row: dict) -> Reading:
    box = None if row["box_x"] is None else (row["box_x"], row["box_y"], row["box_w"], row["box_h"])
    return Reading(
        session_id=uuid.UUID(str(row["session_id"])),
        captured_at=row["captured_at"],
        probabilities=tuple(float(row[label]) for label in LABELS),
        source=row["source"],
        box=box,
        faces=int(row["faces"]),
        id=uuid.UUID(str(row["id"])),
    )


def aggregate_from_row(session_id: uuid.UUID, row: dict) -> SessionAggregate:
    counts = row["dominant_counts"] or {}
    return SessionAggregate(
        session_id=session_id,
        readings=int(row["readings"]),
        first_at=row["first_at"],
        last_at=row["last_at"],
        mean_probabilities=tuple(float(row[f"mean_{label}"]) for label in LABELS),
        dominant_counts={label: int(counts.get(label, 0)) for label in LABELS},
    )


def _address(address: str | None) -> str | None:
    return None if address is None else check.text("client_address", address)


def _encodable(text: str) -> bool:
    """False for strings UTF-8 cannot carry (lone surrogates): the driver would raise instead of the store."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
