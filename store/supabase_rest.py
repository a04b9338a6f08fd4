"""Store over Supabase's REST API (PostgREST) through supabase-py: table operations plus `rpc()` for the SQL functions.

Key: use the project's service_role key on the server (Streamlit app, Pi agents' sync service), never in a browser. The
service role bypasses row-level security, so this backend applies the acting clinician's or device's scope itself, with the
same rules as the policies in supabase/migrations (owner filters on patients and sessions, parent checks for records,
readings and annotations). RLS still guards every other way in (the anon key, the patient's join token functions).

Differences from the direct-Postgres backend, both inherent to HTTP: each call is its own transaction (an audit row is a
separate request after the change it records), and timestamps the store sets (heartbeat, session start/end, join expiry)
come from this machine's clock instead of the database's.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx
from postgrest.exceptions import APIError

from fer.labels import LABELS
from store import validation as check
from store.api import Actor, Store
from store.common import (
    checked_recording_times,
    checked_time_zone,
    PATIENT_FIELDS,
    PATIENT_TEXT_FIELDS,
    error_from_database_message,
    escape_like,
    hash_secret,
    iso,
    new_secret,
    require_clinician,
    require_device,
    require_system,
    role_and_claims,
    secret_matches,
)
from store.errors import (
    InvalidInput,
    InvalidToken,
    NotFound,
    PermissionDenied,
    SessionNotLive,
    StoreError,
    StoreUnavailable,
)
from store.models import (
    Annotation,
    AuditEvent,
    Clinician,
    Device,
    DeviceRegistration,
    NewPatient,
    Patient,
    Reading,
    ReadingPage,
    RecordEntry,
    RecordKind,
    RemoteJoin,
    Role,
    Session,
    SessionAggregate,
    SessionMode,
)

CLINICIAN_COLUMNS = "id,username,display_name,role,failed_logins,locked_until,created_at"
PATIENT_COLUMNS = ("id,clinician_id,full_name,date_of_birth,diagnosis,in_treatment_since,contact,notes,"
                   "consent_facial_analysis,consent_date,consent_scope,archived,created_at")
RECORD_COLUMNS = "id,patient_id,entry_date,kind,text,author_id,created_at"
DEVICE_COLUMNS = "id,name,room,last_heartbeat,created_at"
SESSION_COLUMNS = "id,patient_id,clinician_id,mode,status,device_id,started_at,ended_at,join_expires_at,created_at"
ANNOTATION_COLUMNS = "id,session_id,at,text,author_id"

UUID_FIELDS = {"id", "clinician_id", "patient_id", "author_id", "device_id", "session_id"}
DATE_FIELDS = {"date_of_birth", "in_treatment_since", "consent_date", "entry_date"}
DATETIME_FIELDS = {"locked_until", "created_at", "last_heartbeat", "started_at", "ended_at", "join_expires_at", "at",
                   "captured_at", "first_at", "last_at"}
UNAVAILABLE_CODES = {"PGRST000", "PGRST001", "PGRST002", "PGRST003"}  # PostgREST: cannot reach / use the database
REQUEST_TIMEOUT_S = 15
STORED_ID_CHUNK = 100  # reading ids per `id=in.(...)` filter: keeps the query string well under proxies' URL limits


def map_api_error(error: APIError) -> StoreError:
    """PostgREST error JSON ({code, message, details, hint}) -> store errors."""
    code = str(error.code or "")
    message = error.message or ""
    if code in UNAVAILABLE_CODES or code.startswith("08") or code in {"57P01", "57P03", "53300"} or \
            (code.isdigit() and len(code) == 3 and code.startswith("5")):
        return StoreUnavailable(f"database unavailable: {code} {message}".strip())
    if code == "P0001":
        mapped = error_from_database_message(message)
        if mapped is not None:
            return mapped
    if code == "42501":
        return PermissionDenied(message)
    if code == "PGRST116":
        return NotFound(message)
    if code == "23503":
        return NotFound(str(error.details or message))
    if code == "23505":
        return InvalidInput(f"already exists: {error.details or message}")
    if code.startswith("22") or code.startswith("23"):
        return InvalidInput(message)
    if code in {"PGRST202", "PGRST205", "42P01", "42883"}:
        return StoreError(f"the database schema is missing or old; run `make migrate DATABASE_URL=...`: {message}")
    if code in {"401", "403", "PGRST301", "PGRST302"}:
        return PermissionDenied(f"the API key was refused: {message}")
    return StoreError(f"{code} {message}".strip())


def _parse(row: dict[str, Any]) -> dict[str, Any]:
    """PostgREST JSON (uuids, dates and timestamps as strings) -> Python values for the model dataclasses."""
    parsed: dict[str, Any] = {}
    for key, value in row.items():
        if value is None or not isinstance(value, str):
            parsed[key] = value
        elif key in UUID_FIELDS:
            parsed[key] = uuid.UUID(value)
        elif key in DATETIME_FIELDS:
            parsed[key] = datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif key in DATE_FIELDS:
            parsed[key] = date.fromisoformat(value)
        else:
            parsed[key] = value
    return parsed


def _now() -> datetime:
    return datetime.now(timezone.utc)


class SupabaseRestStore(Store):
    def __init__(self, client: Any, actor: Actor | None = None) -> None:
        self._client = client
        self.actor = actor or Actor.system()

    @classmethod
    def connect(cls, supabase_url: str, supabase_key: str) -> "SupabaseRestStore":
        from supabase import ClientOptions, create_client

        options = ClientOptions(
            postgrest_client_timeout=REQUEST_TIMEOUT_S,
            # our callers retry (spool, batch writer); hidden sleeps of up to 7 s inside a Streamlit rerun help nobody
            postgrest_client_retry=False,
            auto_refresh_token=False,
            persist_session=False,
        )
        return cls(create_client(supabase_url, supabase_key, options=options))

    def as_actor(self, actor: Actor) -> "SupabaseRestStore":
        role_and_claims(actor)  # validate early
        return SupabaseRestStore(self._client, actor)

    def close(self) -> None:
        pass  # supabase-py's HTTP client needs no explicit close

    # --- plumbing ---------------------------------------------------------------------------------------------------
    def _execute(self, builder: Any) -> Any:
        try:
            return builder.execute().data
        except APIError as error:
            raise map_api_error(error) from error
        except httpx.HTTPError as error:
            raise StoreUnavailable(f"cannot reach Supabase: {error!r}") from error

    def _table(self, name: str) -> Any:
        return self._client.table(name)

    def _rpc(self, function: str, params: dict[str, Any]) -> Any:
        try:
            return self._client.rpc(function, params).execute().data
        except APIError as error:
            raise map_api_error(error) from error
        except httpx.HTTPError as error:
            raise StoreUnavailable(f"cannot reach Supabase: {error!r}") from error

    def _is_admin(self) -> bool:
        return self.actor.kind == "system" or (self.actor.kind == "clinician" and self.actor.role == "admin")

    def _audit_row(self, action: str, entity: str, entity_id: object) -> None:
        self._execute(self._table("audit_log").insert(
            {"actor": self.actor.label, "action": action, "entity": entity, "entity_id": str(entity_id)},
            returning="minimal",
        ))

    def _scope_patients(self, query: Any) -> Any:
        """The patients_select policy, applied in the request (the service key bypasses RLS)."""
        if self._is_admin():
            return query
        if self.actor.kind == "clinician":
            return query.eq("clinician_id", str(self.actor.id))
        return query.eq("id", str(uuid.UUID(int=0)))  # devices and remote patients see no patients

    def _scope_sessions(self, query: Any) -> Any:
        """The sessions_select policy."""
        if self._is_admin():
            return query
        if self.actor.kind == "clinician":
            return query.eq("clinician_id", str(self.actor.id))
        if self.actor.kind == "device":
            return query.eq("device_id", str(self.actor.id))
        return query.eq("id", str(uuid.UUID(int=0)))

    def _visible_patient(self, patient_id: uuid.UUID, columns: str = PATIENT_COLUMNS) -> dict[str, Any]:
        rows = self._execute(self._scope_patients(self._table("patients").select(columns).eq("id", str(patient_id))))
        if not rows:
            raise NotFound(f"patient {patient_id}")
        return rows[0]

    def _visible_session(self, session_id: uuid.UUID) -> dict[str, Any]:
        rows = self._execute(self._scope_sessions(
            self._table("sessions").select(SESSION_COLUMNS).eq("id", str(session_id))))
        if not rows:
            raise NotFound(f"session {session_id}")
        return rows[0]

    def ping(self) -> None:
        self._execute(self._table("clinicians").select("id").limit(1))

    # --- clinicians -------------------------------------------------------------------------------------------------
    def _clinician(self, row: dict[str, Any]) -> Clinician:
        values = _parse(row)
        if self.actor.kind != "system":
            values["password_hash"] = ""
        return Clinician(**values)

    def count_clinicians(self) -> int:
        query = self._table("clinicians").select("id")
        if not self._is_admin():
            query = query.eq("id", str(self.actor.id if self.actor.kind == "clinician" else uuid.UUID(int=0)))
        return len(self._execute(query))

    def create_clinician(self, username: str, display_name: str, password_hash: str, role: Role) -> Clinician:
        require_system(self.actor, "create clinician accounts")
        check.text("username", username)
        check.text("display_name", display_name)
        check.text("password_hash", password_hash)
        check.role(role)
        rows = self._execute(self._table("clinicians").insert(
            {"username": username, "display_name": display_name, "password_hash": password_hash, "role": role}))
        self._audit_row("create", "clinician", rows[0]["id"])
        return self._clinician(rows[0])

    def _clinician_query(self) -> Any:
        query = self._table("clinicians").select(f"{CLINICIAN_COLUMNS},password_hash")
        if not self._is_admin():
            query = query.eq("id", str(self.actor.id if self.actor.kind == "clinician" else uuid.UUID(int=0)))
        return query

    def get_clinician_by_username(self, username: str) -> Clinician | None:
        check.text("username", username)
        rows = self._execute(self._clinician_query().eq("username", username))
        return self._clinician(rows[0]) if rows else None

    def list_clinicians(self) -> list[Clinician]:
        return [self._clinician(row) for row in self._execute(self._clinician_query().order("username"))]

    def record_login_result(self, username: str, success: bool, locked_until: datetime | None = None) -> None:
        require_system(self.actor, "record login results")
        check.text("username", username)
        if locked_until is not None:
            check.aware_datetime("locked_until", locked_until)
        rows = self._execute(self._table("clinicians").select("id,failed_logins,locked_until").eq("username", username))
        if rows:
            row = rows[0]
            changes = {"failed_logins": 0, "locked_until": None} if success else {
                "failed_logins": int(row["failed_logins"]) + 1,
                "locked_until": iso(locked_until) if locked_until else row["locked_until"],
            }
            self._execute(self._table("clinicians").update(changes, returning="minimal").eq("id", row["id"]))
        self._audit_row("login" if success else "login_failed", "clinician", rows[0]["id"] if rows else username)

    # --- patients ---------------------------------------------------------------------------------------------------
    def create_patient(self, patient: NewPatient) -> Patient:
        require_clinician(self.actor, "create patients")
        values = _checked_patient_fields({name: getattr(patient, name) for name in PATIENT_FIELDS})
        rows = self._execute(self._table("patients").insert({"clinician_id": str(self.actor.id), **values}))
        self._audit_row("create", "patient", rows[0]["id"])
        return Patient(**_parse(_only(rows[0], PATIENT_COLUMNS)))

    def _update_patient(self, patient_id: uuid.UUID, values: dict[str, Any], action: str) -> Patient:
        check.a_uuid("patient_id", patient_id)
        if self.actor.kind not in ("clinician", "system"):
            raise NotFound(f"patient {patient_id}")
        rows = self._execute(self._scope_patients(
            self._table("patients").update(values).eq("id", str(patient_id))))
        if not rows:
            raise NotFound(f"patient {patient_id}")
        self._audit_row(action, "patient", patient_id)
        return Patient(**_parse(_only(rows[0], PATIENT_COLUMNS)))

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
        if check.optional_date("consent_date", on) is None:
            raise InvalidInput("consent_date is required")
        check.text("consent_scope", scope)
        values = {"consent_facial_analysis": bool(given), "consent_date": on.isoformat(), "consent_scope": scope}
        return self._update_patient(patient_id, values, "consent_given" if given else "consent_withdrawn")

    def get_patient(self, patient_id: uuid.UUID) -> Patient:
        check.a_uuid("patient_id", patient_id)
        row = self._visible_patient(patient_id)
        self._audit_row("view", "patient", patient_id)
        return Patient(**_parse(row))

    def list_patients(self, search: str = "", include_archived: bool = False) -> list[Patient]:
        check.text("search", search)
        query = self._scope_patients(self._table("patients").select(PATIENT_COLUMNS))
        if search.strip():
            query = query.ilike("full_name", f"%{escape_like(search.strip())}%")
        if not include_archived:
            query = query.eq("archived", False)
        rows = self._execute(query.order("full_name"))
        return sorted((Patient(**_parse(row)) for row in rows), key=lambda p: (p.full_name.lower(), str(p.id)))

    def add_record_entry(self, patient_id: uuid.UUID, entry_date: date, kind: RecordKind, text: str) -> RecordEntry:
        require_clinician(self.actor, "write medical records")
        check.a_uuid("patient_id", patient_id)
        if check.optional_date("entry_date", entry_date) is None:
            raise InvalidInput("entry_date is required")
        check.record_kind(kind)
        check.text("record_text", text)
        self._visible_patient(patient_id, "id")
        rows = self._execute(self._table("record_entries").insert({
            "patient_id": str(patient_id), "entry_date": entry_date.isoformat(), "kind": kind, "text": text,
            "author_id": str(self.actor.id)}))
        self._audit_row("create", "record_entry", rows[0]["id"])
        return RecordEntry(**_parse(_only(rows[0], RECORD_COLUMNS)))

    def list_record_entries(self, patient_id: uuid.UUID) -> list[RecordEntry]:
        check.a_uuid("patient_id", patient_id)
        self._visible_patient(patient_id, "id")
        rows = self._execute(self._table("record_entries").select(RECORD_COLUMNS).eq("patient_id", str(patient_id))
                             .order("entry_date", desc=True).order("created_at", desc=True))
        return [RecordEntry(**_parse(row)) for row in rows]

    # --- devices ----------------------------------------------------------------------------------------------------
    def register_device(self, name: str, room: str) -> DeviceRegistration:
        require_clinician(self.actor, "register devices")
        check.text("device_name", name)
        check.text("room", room)
        key = new_secret()
        rows = self._execute(self._table("devices").insert(
            {"name": name, "room": room, "key_hash": hash_secret(key), "created_by": str(self.actor.id)}))
        self._audit_row("create", "device", rows[0]["id"])
        return DeviceRegistration(Device(**_parse(_only(rows[0], DEVICE_COLUMNS))), key)

    def list_devices(self) -> list[Device]:
        query = self._table("devices").select(DEVICE_COLUMNS)
        if self.actor.kind == "device":
            query = query.eq("id", str(self.actor.id))
        elif self.actor.kind == "remote":
            return []
        return [Device(**_parse(row)) for row in self._execute(query.order("name"))]

    def authenticate_device(self, device_id: uuid.UUID, key: str) -> Device:
        require_system(self.actor, "authenticate devices")
        device_id = check.a_uuid("device_id", device_id)
        if not isinstance(key, str) or not key or len(key) > 200:
            raise PermissionDenied("wrong device id or key")
        rows = self._execute(self._table("devices").select(f"{DEVICE_COLUMNS},key_hash").eq("id", str(device_id)))
        if not rows or not secret_matches(key, rows[0]["key_hash"]):
            raise PermissionDenied("wrong device id or key")
        return Device(**_parse(_only(rows[0], DEVICE_COLUMNS)))

    def heartbeat(self) -> None:
        require_device(self.actor, "send heartbeats")
        rows = self._execute(self._table("devices").update({"last_heartbeat": iso(_now())}).eq("id", str(self.actor.id)))
        if not rows:
            raise NotFound(f"device {self.actor.id}")

    def live_session_for_device(self) -> Session | None:
        require_device(self.actor, "ask for its live session")
        rows = self._execute(self._table("sessions").select(SESSION_COLUMNS).eq("device_id", str(self.actor.id))
                             .eq("status", "live").order("started_at", desc=True).limit(1))
        return Session(**_parse(rows[0])) if rows else None

    # --- sessions ---------------------------------------------------------------------------------------------------
    def _check_patient_can_start(self, patient_id: uuid.UUID) -> None:
        row = self._visible_patient(patient_id, "id,consent_facial_analysis,archived")
        if row["archived"]:
            raise PermissionDenied("the patient is archived")
        if not row["consent_facial_analysis"]:
            raise PermissionDenied("the patient has not consented to facial analysis; record consent first")

    def _insert_session(self, values: dict[str, Any]) -> Session:
        rows = self._execute(self._table("sessions").insert(
            {"clinician_id": str(self.actor.id), "status": "live", "started_at": iso(_now()), **values}))
        self._audit_row("start", "session", rows[0]["id"])
        return Session(**_parse(_only(rows[0], SESSION_COLUMNS)))

    def start_session(self, patient_id: uuid.UUID, mode: SessionMode, device_id: uuid.UUID | None = None) -> Session:
        require_clinician(self.actor, "start sessions")
        check.a_uuid("patient_id", patient_id)
        check.session_mode(mode)
        if mode == "remote":
            raise InvalidInput("remote sessions need a join token: use start_remote_session")
        if mode == "in_person" and device_id is None:
            raise InvalidInput("an in_person session needs a device_id")
        self._check_patient_can_start(patient_id)
        if device_id is not None:
            device_id = check.a_uuid("device_id", device_id)
            if not self._execute(self._table("devices").select("id").eq("id", str(device_id))):
                raise NotFound(f"device {device_id}")
            if self._execute(self._table("sessions").select("id").eq("device_id", str(device_id)).eq("status", "live")):
                raise InvalidInput("the device is already in a live session; end that one first")
        return self._insert_session({"patient_id": str(patient_id), "mode": mode,
                                     "device_id": None if device_id is None else str(device_id)})

    def start_remote_session(self, patient_id: uuid.UUID, ttl: timedelta = timedelta(hours=2)) -> RemoteJoin:
        require_clinician(self.actor, "start sessions")
        check.a_uuid("patient_id", patient_id)
        if not isinstance(ttl, timedelta) or ttl <= timedelta(0) or ttl > timedelta(days=7):
            raise InvalidInput("ttl must be a positive timedelta of at most 7 days")
        self._check_patient_can_start(patient_id)
        token = new_secret()
        session = self._insert_session({"patient_id": str(patient_id), "mode": "remote",
                                        "join_token_hash": hash_secret(token), "join_expires_at": iso(_now() + ttl)})
        return RemoteJoin(session, token)

    def end_session(self, session_id: uuid.UUID) -> Session:
        check.a_uuid("session_id", session_id)
        if self.actor.kind not in ("clinician", "system"):
            raise NotFound(f"session {session_id}")
        current = self._visible_session(session_id)
        rows = self._execute(self._scope_sessions(self._table("sessions").update(
            {"status": "ended", "ended_at": current["ended_at"] or iso(_now())}).eq("id", str(session_id))))
        if not rows:
            raise NotFound(f"session {session_id}")
        self._audit_row("end", "session", session_id)
        return Session(**_parse(_only(rows[0], SESSION_COLUMNS)))

    def get_session(self, session_id: uuid.UUID) -> Session:
        check.a_uuid("session_id", session_id)
        return Session(**_parse(self._visible_session(session_id)))

    def list_sessions(self, patient_id: uuid.UUID | None = None, status: str | None = None) -> list[Session]:
        query = self._scope_sessions(self._table("sessions").select(SESSION_COLUMNS))
        if patient_id is not None:
            query = query.eq("patient_id", str(check.a_uuid("patient_id", patient_id)))
        if status is not None:
            query = query.eq("status", check.session_status(status))
        rows = self._execute(query.order("created_at", desc=True))
        return [Session(**_parse(row)) for row in rows]

    def session_for_token(self, token: str) -> Session:
        _check_token(token)
        rows = self._rpc("session_for_token", {"p_token": token})
        if not rows:
            raise InvalidToken("the join link is unknown, expired, or its session has ended")
        return Session(**_parse(rows[0]))

    # --- readings ---------------------------------------------------------------------------------------------------
    def insert_readings(self, readings: Sequence[Reading]) -> int:
        batch = check.readings(readings)
        if not batch:
            return 0
        if self.actor.kind == "remote":
            raise PermissionDenied("remote patients insert through insert_remote_readings")
        session_ids = sorted({str(r.session_id) for r in batch})
        # the readings_insert policy: the sessions must be visible to the actor, and live or (for readings captured
        # before the end) ended less than LATE_READING_GRACE ago
        sessions = {row["id"]: row for row in self._execute(self._scope_sessions(
            self._table("sessions").select("id,status,ended_at").in_("id", session_ids)))}
        now = _now()
        for session_id in session_ids:
            if session_id not in sessions:
                raise NotFound(f"session {session_id}")
            in_session = [r for r in batch if str(r.session_id) == session_id]
            refusal = self._late_readings_refusal(sessions[session_id], in_session, now)
            if refusal:
                raise SessionNotLive(refusal)
        batch.sort(key=lambda r: str(r.session_id))
        rows = self._execute(self._table("readings").upsert(
            [check.reading_row(r) for r in batch], on_conflict="id", ignore_duplicates=True, returning="representation"))
        return len(rows)

    def _late_readings_refusal(self, session: dict[str, Any], readings: list[Reading], now: datetime) -> str | None:
        """public.insert_readings' check for one session: None when it takes `readings`. Readings already stored in it
        are retries and never refused (asked only when the session refuses the batch, so the live path costs nothing)."""
        status, ended_at = session["status"], _parse({"ended_at": session.get("ended_at")})["ended_at"]
        refusal = check.late_readings_refusal(session["id"], status, ended_at, max(r.captured_at for r in readings), now)
        if refusal is None:
            return None
        stored = self._stored_reading_ids(session["id"], [r.id for r in readings])
        unstored = [r for r in readings if str(r.id) not in stored]
        if not unstored:
            return None
        return check.late_readings_refusal(session["id"], status, ended_at, max(r.captured_at for r in unstored), now)

    def _stored_reading_ids(self, session_id: str, reading_ids: list[uuid.UUID]) -> set[str]:
        stored: set[str] = set()
        for start in range(0, len(reading_ids), STORED_ID_CHUNK):
            chunk = [str(i) for i in reading_ids[start:start + STORED_ID_CHUNK]]
            rows = self._execute(self._table("readings").select("id").eq("session_id", session_id).in_("id", chunk))
            stored.update(row["id"] for row in rows)
        return stored

    def insert_remote_readings(self, token: str, readings: Sequence[Reading]) -> int:
        _check_token(token)
        batch = check.readings(readings)
        if not batch:
            self.session_for_token(token)
            return 0
        return int(self._rpc("insert_remote_readings",
                             {"p_token": token, "p_readings": [check.reading_row(r) for r in batch]}))

    def readings_since(self, session_id: uuid.UUID, cursor: int = 0, limit: int = 10_000) -> ReadingPage:
        check.a_uuid("session_id", session_id)
        if isinstance(cursor, bool) or not isinstance(cursor, int) or cursor < 0:
            raise InvalidInput(f"cursor must be a non-negative integer, got {cursor!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
            raise InvalidInput(f"limit must be an integer in [1, 100000], got {limit!r}")
        self._visible_session(session_id)
        rows = self._rpc("readings_since", {"p_session": str(session_id), "p_cursor": cursor, "p_limit": limit})
        return ReadingPage([_reading(row) for row in rows], int(rows[-1]["seq"]) if rows else cursor)

    def session_aggregate(self, session_id: uuid.UUID) -> SessionAggregate:
        check.a_uuid("session_id", session_id)
        self._visible_session(session_id)
        rows = self._rpc("session_aggregate", {"p_session": str(session_id)})
        row = _parse(rows[0])
        counts = row.get("dominant_counts") or {}
        return SessionAggregate(
            session_id=session_id,
            readings=int(row["readings"]),
            first_at=row["first_at"],
            last_at=row["last_at"],
            mean_probabilities=tuple(float(row[f"mean_{label}"]) for label in LABELS),
            dominant_counts={label: int(counts.get(label, 0)) for label in LABELS},
        )

    # --- annotations and audit ----------------------------------------------------------------------------------------
    def add_annotation(self, session_id: uuid.UUID, at: datetime, text: str) -> Annotation:
        require_clinician(self.actor, "annotate sessions")
        check.a_uuid("session_id", session_id)
        check.aware_datetime("at", at)
        check.text("annotation_text", text)
        self._visible_session(session_id)
        rows = self._execute(self._table("annotations").insert(
            {"session_id": str(session_id), "at": at.isoformat(), "text": text, "author_id": str(self.actor.id)}))
        return Annotation(**_parse(_only(rows[0], ANNOTATION_COLUMNS)))

    def list_annotations(self, session_id: uuid.UUID) -> list[Annotation]:
        check.a_uuid("session_id", session_id)
        self._visible_session(session_id)
        rows = self._execute(self._table("annotations").select(ANNOTATION_COLUMNS).eq("session_id", str(session_id))
                             .order("at"))
        return [Annotation(**_parse(row)) for row in rows]

    def audit(self, action: str, entity: str, entity_id: str) -> None:
        check.text("audit_action", action)
        check.text("audit_entity", entity)
        check.text("audit_entity_id", str(entity_id))
        if self.actor.kind == "remote":
            raise PermissionDenied("remote patients do not write the audit log")
        self._audit_row(action, entity, entity_id)

    def list_audit(self, limit: int = 500) -> list[AuditEvent]:
        if not self._is_admin():
            raise PermissionDenied("only admins read the audit log")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
            raise InvalidInput(f"limit must be an integer in [1, 100000], got {limit!r}")
        rows = self._execute(self._table("audit_log").select("id,actor,action,entity,entity_id,at")
                             .order("id", desc=True).limit(limit))
        return [AuditEvent(**_parse(row)) for row in rows]

    # --- clinician preferences (issue 12) ------------------------------------------------------------------------------
    def get_time_zone(self) -> str | None:
        require_clinician(self.actor, "read their preferences")
        rows = self._execute(self._table("clinician_preferences").select("time_zone").eq("clinician_id", str(self.actor.id)))
        return rows[0]["time_zone"] if rows else None

    def set_time_zone(self, time_zone: str | None) -> None:
        require_clinician(self.actor, "set their time zone")
        time_zone = checked_time_zone(time_zone)
        self._execute(self._table("clinician_preferences").upsert(
            {"clinician_id": str(self.actor.id), "time_zone": time_zone}, on_conflict="clinician_id", returning="minimal"))
        self._audit_row("update", "clinician_preferences", self.actor.id)

    # --- remote join links (issue 12) ----------------------------------------------------------------------------------
    def rotate_join_token(self, session_id: uuid.UUID) -> RemoteJoin:
        require_clinician(self.actor, "renew join links")
        check.a_uuid("session_id", session_id)
        token = new_secret()
        rows = self._execute(self._scope_sessions(self._table("sessions").update({"join_token_hash": hash_secret(token)})
                             .eq("id", str(session_id)).eq("mode", "remote").eq("status", "live")))
        if not rows:
            raise InvalidInput("Only a live remote session of yours gets a new join link.")
        self._audit_row("rotate_join_link", "session", session_id)
        return RemoteJoin(Session(**_parse(_only(rows[0], SESSION_COLUMNS))), token)

    def save_join_link(self, session_id: uuid.UUID, ciphertext: str) -> None:
        require_clinician(self.actor, "keep join links")
        check.a_uuid("session_id", session_id)
        if not isinstance(ciphertext, str) or not 1 <= len(ciphertext) <= 2000:
            raise InvalidInput("the join link ciphertext must be 1-2000 characters")
        self._execute(self._table("remote_join_links").upsert(
            {"session_id": str(session_id), "clinician_id": str(self.actor.id), "ciphertext": ciphertext},
            on_conflict="session_id", returning="minimal"))

    def get_join_link(self, session_id: uuid.UUID) -> str | None:
        require_clinician(self.actor, "read join links")
        check.a_uuid("session_id", session_id)
        rows = self._execute(self._table("remote_join_links").select("ciphertext").eq("session_id", str(session_id)))
        return rows[0]["ciphertext"] if rows else None

    # --- recorded videos keep their own clock (issue 12) -------------------------------------------------------------
    def retime_recorded_session(self, session_id: uuid.UUID, started_at: datetime, ended_at: datetime | None = None) -> Session:
        require_clinician(self.actor, "date recorded sessions")
        check.a_uuid("session_id", session_id)
        checked_recording_times(started_at, ended_at)
        values = {"started_at": iso(started_at)} | ({"ended_at": iso(ended_at)} if ended_at is not None else {})
        rows = self._execute(self._scope_sessions(self._table("sessions").update(values))
                             .eq("id", str(session_id)).eq("mode", "recorded_video"))
        if not rows:
            raise InvalidInput("Only a recorded-video session of yours takes the recording's times.")
        self._audit_row("retime", "session", session_id)
        return Session(**_parse(_only(rows[0], SESSION_COLUMNS)))


def _only(row: dict[str, Any], columns: str) -> dict[str, Any]:
    """Keep the public columns (an insert with the service key returns every column, secrets included)."""
    return {name: row.get(name) for name in columns.split(",")}


def _checked_patient_fields(values: dict[str, object]) -> dict[str, object]:
    checked: dict[str, object] = {}
    for name, value in values.items():
        if name in PATIENT_TEXT_FIELDS:
            checked[name] = check.text(PATIENT_TEXT_FIELDS[name], value)
        else:
            checked[name] = iso(check.optional_date(name, value))
    return checked


def _check_token(token: object) -> None:
    if not isinstance(token, str) or not 16 <= len(token) <= 200 or "\x00" in token:
        raise InvalidToken("the join link is unknown, expired, or its session has ended")


def _reading(row: dict[str, Any]) -> Reading:
    box = None if row.get("box_x") is None else (int(row["box_x"]), int(row["box_y"]), int(row["box_w"]),
                                                 int(row["box_h"]))
    return Reading(
        session_id=uuid.UUID(row["session_id"]),
        captured_at=datetime.fromisoformat(row["captured_at"].replace("Z", "+00:00")),
        probabilities=tuple(float(row[label]) for label in LABELS),
        source=row["source"],
        box=box,
        faces=int(row["faces"]),
        id=uuid.UUID(row["id"]),
    )
