"""Store over Supabase's REST API (PostgREST): table operations plus `rpc` for the SQL functions.

Every request runs under the acting user's own JWT, so the database's row-level security, grants and triggers decide
what it may do, exactly as over a direct connection (docs/security.md, "Supabase REST"):
  * a clinician: a short-lived JWT {"role": "authenticated", "actor": "clinician", "sub", "app_role"} signed here with
    the project's JWT secret (SUPABASE_JWT_SECRET; the app server only);
  * a device: its device JWT {"role": "psya_device", "sub"} (PSYA_DEVICE_TOKEN in a Pi's env file, printed at
    registration), or one signed here on the server; a Pi holds only the anon key and that token, never the service key;
  * the patient's browser (remote): an anon JWT (or the anon key);
  * the system actor (bootstrap, login bookkeeping): the key itself, i.e. the service key on the app server.
The `apikey` header always carries the configured key (Supabase's gateway wants one); the `Authorization` header
carries the actor's token, and it is what PostgREST switches roles by. No Python filter re-applies ownership: the
database does.

Differences from the direct-Postgres backend, inherent to HTTP: each call is its own transaction (an audit row is a
separate request after the change it records), session start and join expiry come from this machine's clock (the database
refuses them beyond its clock-skew bound), and a device has no database login of its own (its JWT is its credential).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any

import httpx
from postgrest.exceptions import APIError

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
    iso,
    new_secret,
    require_clinician,
    require_device,
    require_system,
    role_and_claims,
)
from store.errors import (
    InvalidInput,
    InvalidToken,
    NotFound,
    PermissionDenied,
    StoreError,
    StoreUnavailable,
)
from store.supabase_markers import SupabaseMarkers
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

CLINICIAN_COLUMNS = "id,username,display_name,role,failed_logins,locked_until,created_at,active"
PATIENT_COLUMNS = ("id,clinician_id,full_name,date_of_birth,diagnosis,in_treatment_since,contact,notes,"
                   "consent_facial_analysis,consent_date,consent_scope,archived,created_at")
RECORD_COLUMNS = "id,patient_id,entry_date,kind,text,author_id,created_at"
DEVICE_COLUMNS = "id,name,room,last_heartbeat,created_at,revoked_at,clock_offset_ms,clock_measured_at"
SESSION_COLUMNS = "id,patient_id,clinician_id,mode,status,device_id,started_at,ended_at,join_expires_at,created_at"
ANNOTATION_COLUMNS = "id,session_id,at,text,author_id"

UUID_FIELDS = {"id", "clinician_id", "patient_id", "author_id", "device_id", "session_id"}
DATE_FIELDS = {"date_of_birth", "in_treatment_since", "consent_date", "entry_date"}
AUDIT_COLUMNS = "id,actor,action,entity,entity_id,at,chain_pos,prev_hash,row_hash"
DATETIME_FIELDS = {"revoked_at", "clock_measured_at", "locked_until", "created_at", "last_heartbeat", "started_at", "ended_at", "join_expires_at", "at",
                   "captured_at", "first_at", "last_at"}
UNAVAILABLE_CODES = {"PGRST000", "PGRST001", "PGRST002", "PGRST003"}  # PostgREST: cannot reach / use the database
REQUEST_TIMEOUT_S = 15
TOKEN_LIFETIME_S = 3600  # JWTs minted here for clinicians and devices; re-minted 5 minutes before they run out
MAX_CLIENTS = 256  # PostgREST clients kept, one per bearer token


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


class StoreConfigError(StoreError):
    """The REST backend lacks what this actor's requests need (e.g. SUPABASE_JWT_SECRET for clinicians)."""


class _Tokens:
    """Bearer tokens per actor and one PostgREST client per token, shared by every view of one store."""

    def __init__(self, url: str, key: str, jwt_secret: str | None, device_token: str | None,
                 anon_key: str | None) -> None:
        self.url, self.key, self.jwt_secret = url.rstrip("/"), key, jwt_secret
        self.device_token, self.anon_key = device_token, anon_key
        self._minted: dict[tuple, tuple[str, float]] = {}
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _mint(self, claims: dict[str, str]) -> str:
        import jwt

        if not self.jwt_secret:
            raise StoreConfigError(
                f"acting as {claims.get('actor') or claims['role']} over Supabase REST needs SUPABASE_JWT_SECRET (the "
                "project's JWT secret) on the app server, so requests run under that user's own JWT")
        cache_key = tuple(sorted(claims.items()))
        now = time.time()
        with self._lock:
            token, expires = self._minted.get(cache_key, ("", 0.0))
            if expires - now > 300:
                return token
            token = jwt.encode({**claims, "aud": "authenticated", "iat": int(now), "exp": int(now) + TOKEN_LIFETIME_S},
                               self.jwt_secret, algorithm="HS256")
            self._minted[cache_key] = (token, now + TOKEN_LIFETIME_S)
            return token

    def token_for(self, actor: Actor) -> str:
        role, claims = role_and_claims(actor)
        if actor.kind == "system":
            return self.key
        if actor.kind == "device" and self.device_token:
            return self.device_token  # a Pi: its own token, printed at registration
        if actor.kind == "remote" and not self.jwt_secret:
            return self.anon_key or self.key
        return self._mint(claims)

    def client(self, token: str) -> Any:
        from postgrest import SyncPostgrestClient

        with self._lock:
            client = self._clients.get(token)
            if client is None:
                if len(self._clients) >= MAX_CLIENTS:
                    self._clients.pop(next(iter(self._clients))).session.close()
                client = SyncPostgrestClient(
                    f"{self.url}/rest/v1",
                    headers={"apikey": self.key, "Authorization": f"Bearer {token}", "Accept": "application/json",
                             "Content-Type": "application/json"},
                    timeout=REQUEST_TIMEOUT_S,
                    # our callers retry (spool, batch writer); hidden sleeps inside a Streamlit rerun help nobody
                    retry_enabled=False,
                )
                self._clients[token] = client
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.session.close()
            self._clients.clear()


class SupabaseRestStore(SupabaseMarkers, Store):
    def __init__(self, tokens: _Tokens, actor: Actor | None = None) -> None:
        self._tokens = tokens
        self.actor = actor or Actor.system()

    @classmethod
    def connect(cls, supabase_url: str, supabase_key: str, jwt_secret: str | None = None,
                device_token: str | None = None, anon_key: str | None = None) -> "SupabaseRestStore":
        """`supabase_key`: the service key on the app server, the anon key on a Pi (with `device_token`)."""
        return cls(_Tokens(supabase_url, supabase_key, jwt_secret, device_token, anon_key))

    def as_actor(self, actor: Actor) -> "SupabaseRestStore":
        role_and_claims(actor)  # validate early
        return SupabaseRestStore(self._tokens, actor)

    def close(self) -> None:
        self._tokens.close()

    # --- plumbing ---------------------------------------------------------------------------------------------------
    def _client(self, actor: Actor | None = None) -> Any:
        return self._tokens.client(self._tokens.token_for(actor or self.actor))

    def _execute(self, builder: Any) -> Any:
        try:
            return builder.execute().data
        except APIError as error:
            raise map_api_error(error) from error
        except httpx.HTTPError as error:
            raise StoreUnavailable(f"cannot reach Supabase: {error!r}") from error

    def _table(self, name: str, actor: Actor | None = None) -> Any:
        return self._client(actor).from_(name)

    def _rpc(self, function: str, params: dict[str, Any], actor: Actor | None = None) -> Any:
        return self._execute(self._client(actor).rpc(function, params))

    def _audit_row(self, action: str, entity: str, entity_id: object) -> None:
        self._execute(self._table("audit_log").insert(
            {"actor": self.actor.label, "action": action, "entity": entity, "entity_id": str(entity_id)},
            returning="minimal",
        ))

    def _visible_patient(self, patient_id: uuid.UUID, columns: str = PATIENT_COLUMNS) -> dict[str, Any]:
        rows = self._execute(self._table("patients").select(columns).eq("id", str(patient_id)))
        if not rows:
            raise NotFound(f"patient {patient_id}")
        return rows[0]

    def _visible_session(self, session_id: uuid.UUID) -> dict[str, Any]:
        rows = self._execute(self._table("sessions").select(SESSION_COLUMNS).eq("id", str(session_id)))
        if not rows:
            raise NotFound(f"session {session_id}")
        return rows[0]

    def ping(self) -> None:
        self._execute(self._table("clinicians").select("id").limit(1))

    # --- clinicians -------------------------------------------------------------------------------------------------
    def _clinician(self, row: dict[str, Any]) -> Clinician:
        values = _parse(row)
        values.setdefault("password_hash", "")
        if self.actor.kind != "system":
            values["password_hash"] = ""
        return Clinician(**values)

    def count_clinicians(self) -> int:
        return len(self._execute(self._table("clinicians").select("id")))

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
        # only the service role may read password hashes (column privileges refuse them to everyone else)
        columns = f"{CLINICIAN_COLUMNS},password_hash" if self.actor.kind == "system" else CLINICIAN_COLUMNS
        return self._table("clinicians").select(columns)

    def get_clinician_by_username(self, username: str) -> Clinician | None:
        check.text("username", username)
        rows = self._execute(self._clinician_query().eq("username", username))
        return self._clinician(rows[0]) if rows else None

    def list_clinicians(self) -> list[Clinician]:
        return [self._clinician(row) for row in self._execute(self._clinician_query().order("username"))]

    def record_login_result(self, username: str, success: bool, address: str | None = None) -> None:
        require_system(self.actor, "record login results")
        check.text("username", username)
        if success:
            self._rpc("login_throttle_reset", {"p_username": username, "p_address": _address(address)})
        rows = self._execute(self._table("clinicians").select("id").eq("username", username))
        self._audit_row("login" if success else "login_failed", "clinician", rows[0]["id"] if rows else username)

    # --- login throttle, login sessions and account care (system actor; the SQL functions of the 20261202020*
    # migrations, so both backends decide the same way and atomically) ------------------------------------------------
    def begin_login_attempt(self, username: str, address: str | None, throttle: LoginThrottle) -> timedelta:
        require_system(self.actor, "throttle logins")
        check.text("username", username)
        free, first, account_max, address_max, memory = check.login_throttle(throttle)
        wait_s = self._rpc("login_attempt_begin", {
            "p_username": username, "p_address": _address(address), "p_free_failures": free, "p_first_delay_s": first,
            "p_account_max_delay_s": account_max, "p_address_max_delay_s": address_max, "p_memory_s": memory})
        return timedelta(seconds=float(wait_s))

    def reset_login_throttle(self, username: str) -> None:
        require_system(self.actor, "unlock logins")
        check.text("username", username)
        self._rpc("login_throttle_reset", {"p_username": username, "p_address": None})
        self._audit_row("unlock", "clinician", username)

    def open_login_session(self, clinician_id: uuid.UUID, token: str, address: str | None = None) -> None:
        require_system(self.actor, "open login sessions")
        check.a_uuid("clinician_id", clinician_id)
        opened = self._rpc("login_session_open", {"p_clinician": str(clinician_id),
                                                  "p_token_hash": hash_secret(check.text("token", token)),
                                                  "p_address": _address(address)})
        if not opened:
            raise PermissionDenied(f"clinician {clinician_id} is deactivated or does not exist")

    def resume_login_session(self, token: str, idle: timedelta, lifetime: timedelta) -> Clinician | None:
        require_system(self.actor, "resume login sessions")
        idle_s, lifetime_s = check.session_lifetimes(idle, lifetime)
        rows = self._rpc("login_session_resume", {"p_token_hash": hash_secret(check.text("token", token)),
                                                  "p_idle_s": idle_s, "p_lifetime_s": lifetime_s})
        if not rows:
            return None
        known = set(CLINICIAN_COLUMNS.split(",")) | {"password_hash"}
        return self._clinician({k: v for k, v in rows[0].items() if k in known})

    def end_login_session(self, token: str) -> None:
        require_system(self.actor, "end login sessions")
        self._rpc("login_session_end", {"p_token_hash": hash_secret(check.text("token", token))})

    def revoke_login_sessions(self, clinician_id: uuid.UUID, keep_token: str | None = None) -> int:
        require_system(self.actor, "revoke login sessions")
        check.a_uuid("clinician_id", clinician_id)
        keep = None if keep_token is None else hash_secret(check.text("token", keep_token))
        ended = self._rpc("login_sessions_revoke", {"p_clinician": str(clinician_id), "p_keep_token_hash": keep})
        self._audit_row("revoke_sessions", "clinician", clinician_id)
        return int(ended or 0)

    def set_password_hash(self, clinician_id: uuid.UUID, password_hash: str) -> None:
        require_system(self.actor, "change passwords")
        check.a_uuid("clinician_id", clinician_id)
        check.text("password_hash", password_hash)
        rows = self._execute(self._table("clinicians").update({"password_hash": password_hash}).eq("id", str(clinician_id)))
        if not rows:
            raise NotFound(f"clinician {clinician_id}")
        self._audit_row("password_change", "clinician", clinician_id)

    def set_clinician_active(self, clinician_id: uuid.UUID, active: bool) -> None:
        require_system(self.actor, "deactivate accounts")
        check.a_uuid("clinician_id", clinician_id)
        rows = self._execute(self._table("clinicians").update({"active": bool(active)}).eq("id", str(clinician_id)))
        if not rows:
            raise NotFound(f"clinician {clinician_id}")
        if not active:
            self._rpc("login_sessions_revoke", {"p_clinician": str(clinician_id), "p_keep_token_hash": None})
        self._audit_row("activate" if active else "deactivate", "clinician", clinician_id)

    # --- patients ---------------------------------------------------------------------------------------------------
    def create_patient(self, patient: NewPatient) -> Patient:
        require_clinician(self.actor, "create patients")
        values = _checked_patient_fields({name: getattr(patient, name) for name in PATIENT_FIELDS})
        rows = self._execute(self._table("patients").insert({"clinician_id": str(self.actor.id), **values}))
        self._audit_row("create", "patient", rows[0]["id"])
        return Patient(**_parse(_only(rows[0], PATIENT_COLUMNS)))

    def _update_patient(self, patient_id: uuid.UUID, values: dict[str, Any], action: str) -> Patient:
        check.a_uuid("patient_id", patient_id)
        rows = self._execute(self._table("patients").update(values).eq("id", str(patient_id)))
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
        try:
            row = self._visible_patient(patient_id)
        except NotFound:
            if self.actor.kind == "clinician":
                self._audit_row("view_denied", "patient", patient_id)
            raise
        self._audit_row("view", "patient", patient_id)
        return Patient(**_parse(row))

    def list_patients(self, search: str = "", include_archived: bool = False) -> list[Patient]:
        check.text("search", search)
        query = self._table("patients").select(PATIENT_COLUMNS)
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
        if self.actor.kind != "system":
            require_clinician(self.actor, "register devices")
        check.text("device_name", name)
        check.text("room", room)
        key = new_secret()
        device_id = uuid.uuid4()
        # return=minimal, then a select of the public columns: `authenticated` may not read key_hash back
        self._execute(self._table("devices").insert(
            {"id": str(device_id), "name": name, "room": room, "key_hash": hash_secret(key),
             "created_by": None if self.actor.id is None else str(self.actor.id)}, returning="minimal"))
        rows = self._execute(self._table("devices").select(DEVICE_COLUMNS).eq("id", str(device_id)))
        self._audit_row("create", "device", device_id)
        # no database login over REST: the device's credential is its JWT (store.devices.agent_env_text_supabase)
        return DeviceRegistration(Device(**_parse(rows[0])), key, None)

    def revoke_device(self, device_id: uuid.UUID) -> None:
        device_id = check.a_uuid("device_id", device_id)
        self._rpc("revoke_device", {"p_device_id": str(device_id)})
        if self.actor.kind == "clinician":
            self._audit_row("revoke", "device", device_id)

    def list_devices(self) -> list[Device]:
        return [Device(**_parse(row)) for row in self._execute(self._table("devices").select(DEVICE_COLUMNS).order("name"))]

    def authenticate_device(self, device_id: uuid.UUID, key: str) -> Device:
        if self.actor.kind != "system":
            require_device(self.actor, "authenticate itself")
        device_id = check.a_uuid("device_id", device_id)
        if self.actor.kind == "device" and self.actor.id != device_id:
            raise PermissionDenied("wrong device id or key")
        if not isinstance(key, str) or not key or len(key) > 200:
            raise PermissionDenied("wrong device id or key")
        rows = self._rpc("device_authenticate", {"p_device_id": str(device_id), "p_key": key},
                         actor=Actor.for_device(device_id))
        return Device(**_parse(rows[0]))

    def heartbeat(self, clock_offset: timedelta | None = None) -> datetime:
        require_device(self.actor, "send heartbeats")
        offset_ms = check.clock_offset_ms(clock_offset)
        # PostgREST answers a scalar function with the bare JSON value: the timestamptz as an ISO 8601 string
        answer = self._rpc("device_heartbeat", {"p_clock_offset_ms": offset_ms})
        if not isinstance(answer, str):
            raise StoreError(f"device_heartbeat answered {answer!r}, not the database's clock")
        return datetime.fromisoformat(answer.replace("Z", "+00:00"))

    def live_session_for_device(self) -> Session | None:
        require_device(self.actor, "ask for its live session")
        rows = self._rpc("device_live_session", {})
        return Session(**_parse(rows[0])) if rows else None

    # --- sessions ---------------------------------------------------------------------------------------------------
    def _check_patient_can_start(self, patient_id: uuid.UUID) -> None:
        row = self._visible_patient(patient_id, "id,consent_facial_analysis,archived")
        if row["archived"]:
            raise PermissionDenied("the patient is archived")
        if not row["consent_facial_analysis"]:
            raise PermissionDenied("the patient has not consented to facial analysis; record consent first")

    def _insert_session(self, values: dict[str, Any]) -> Session:
        session_id = uuid.uuid4()
        # return=minimal, then a select: `authenticated` may not read join_token_hash back
        self._execute(self._table("sessions").insert(
            {"id": str(session_id), "clinician_id": str(self.actor.id), "status": "live", "started_at": iso(_now()),
             **values}, returning="minimal"))
        row = self._visible_session(session_id)
        self._audit_row("start", "session", session_id)
        return Session(**_parse(row))

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
            # another clinician's live session on it is invisible here; the database's unique index refuses that one
            if self._execute(self._table("sessions").select("id").eq("device_id", str(device_id)).eq("status", "live")):
                raise InvalidInput("the device is already in a live session; end that one first")
        return self._insert_session({"patient_id": str(patient_id), "mode": mode,
                                     "device_id": None if device_id is None else str(device_id)})

    def start_remote_session(self, patient_id: uuid.UUID, ttl: timedelta = timedelta(hours=2)) -> RemoteJoin:
        require_clinician(self.actor, "start sessions")
        check.a_uuid("patient_id", patient_id)
        if not isinstance(ttl, timedelta) or ttl <= timedelta(0) or ttl > check.JOIN_LINK_MAX_LIFETIME:
            raise InvalidInput("ttl must be a positive timedelta of at most 7 days (the database refuses longer links)")
        self._check_patient_can_start(patient_id)
        token = new_secret()
        session = self._insert_session({"patient_id": str(patient_id), "mode": "remote",
                                        "join_token_hash": hash_secret(token), "join_expires_at": iso(_now() + ttl)})
        return RemoteJoin(session, token)

    def end_session(self, session_id: uuid.UUID) -> Session:
        check.a_uuid("session_id", session_id)
        current = self._visible_session(session_id)
        if current["status"] != "ended":
            # the database stamps ended_at with its own clock (sessions_guard_rules)
            self._execute(self._table("sessions").update({"status": "ended"}, returning="minimal")
                          .eq("id", str(session_id)))
            current = self._visible_session(session_id)
        self._audit_row("end", "session", session_id)
        return Session(**_parse(current))

    def get_session(self, session_id: uuid.UUID) -> Session:
        check.a_uuid("session_id", session_id)
        try:
            return Session(**_parse(self._visible_session(session_id)))
        except NotFound:
            if self.actor.kind == "clinician":
                self._audit_row("view_denied", "session", session_id)
            raise

    def list_sessions(self, patient_id: uuid.UUID | None = None, status: str | None = None) -> list[Session]:
        query = self._table("sessions").select(SESSION_COLUMNS)
        if patient_id is not None:
            query = query.eq("patient_id", str(check.a_uuid("patient_id", patient_id)))
        if status is not None:
            query = query.eq("status", check.session_status(status))
        rows = self._execute(query.order("created_at", desc=True))
        return [Session(**_parse(row)) for row in rows]

    def session_for_token(self, token: str) -> Session:
        _check_token(token)
        # always as anon: the token, not a login, is what authorises the patient's browser
        rows = self._rpc("session_for_token", {"p_token": token}, actor=Actor("remote"))
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
        batch.sort(key=lambda r: str(r.session_id))
        # the same SQL functions as the direct backend: the database applies the late-reading rule, the time bounds,
        # and (for devices) "only the live session assigned to me"
        function = "device_insert_readings" if self.actor.kind == "device" else "insert_readings"
        return int(self._rpc(function, {"p_readings": [check.reading_row(r) for r in batch]}))

    def insert_remote_readings(self, token: str, readings: Sequence[Reading]) -> int:
        _check_token(token)
        batch = check.readings(readings)
        if not batch:
            self.session_for_token(token)
            return 0
        return int(self._rpc("insert_remote_readings",
                             {"p_token": token, "p_readings": [check.reading_row(r) for r in batch]},
                             actor=Actor("remote")))

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

    def _is_admin(self) -> bool:
        return self.actor.kind == "clinician" and self.actor.role == "admin"

    def _require_audit_reader(self) -> None:
        if not (self.actor.kind == "system" or (self.actor.kind == "clinician" and self.actor.role == "admin")):
            raise PermissionDenied("only admins read the audit log")

    def list_audit(self, limit: int = 500) -> list[AuditEvent]:
        self._require_audit_reader()
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
            raise InvalidInput(f"limit must be an integer in [1, 100000], got {limit!r}")
        rows = self._execute(self._table("audit_log").select(AUDIT_COLUMNS).order("chain_pos", desc=True).limit(limit))
        return [AuditEvent(**_parse(row)) for row in rows]

    def audit_chain(self, after: int = 0, limit: int = 10_000) -> list[AuditEvent]:
        self._require_audit_reader()
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise InvalidInput(f"after must be a non-negative integer, got {after!r}")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100_000:
            raise InvalidInput(f"limit must be an integer in [1, 100000], got {limit!r}")
        rows = self._execute(self._table("audit_log").select(AUDIT_COLUMNS).gt("chain_pos", after)
                             .order("chain_pos").limit(limit))
        return [AuditEvent(**_parse(row)) for row in rows]


    # --- patients' data rights (SQL in supabase/migrations/20261202050000_* and 20261202050100_*) ----------------------
    # Under the actor's own JWT like everything else: patient_export is SECURITY INVOKER (RLS decides what it returns);
    # publish_consent_text and erase_patient check app.is_admin() from that JWT themselves (p_actor only counts for
    # the service role). The checks here only refuse early, before the network.
    def _is_admin(self) -> bool:
        return self.actor.kind == "system" or (self.actor.kind == "clinician" and self.actor.role == "admin")

    def current_consent_text(self) -> ConsentText:
        if self.actor.kind not in ("clinician", "system"):
            raise NotFound("consent text (only clinicians read it)")
        rows = self._execute(self._table("consent_texts").select("version,text,published_at")
                             .order("version", desc=True).limit(1))
        if not rows:
            raise NotFound("consent text")
        return rights.consent_text_from_row(rows[0])

    def publish_consent_text(self, text: str) -> ConsentText:
        text = rights.checked_consent_text(text)
        if not self._is_admin():
            raise PermissionDenied("only admins publish consent texts")
        version = self._rpc("publish_consent_text", {"p_text": text, "p_actor": self.actor.label})
        rows = self._execute(self._table("consent_texts").select("version,text,published_at").eq("version", version))
        return rights.consent_text_from_row(rows[0])

    def consent_history(self, patient_id: uuid.UUID) -> list[ConsentRecord]:
        check.a_uuid("patient_id", patient_id)
        self._visible_patient(patient_id, "id")
        rows = self._execute(self._table("consent_records").select("*").eq("patient_id", str(patient_id))
                             .order("recorded_at").order("id"))
        return [rights.consent_record_from_row(row) for row in rows]

    def consent_is_current(self, patient_id: uuid.UUID) -> bool:
        # app.consent_is_current is not in the exposed schema: the same rule from the rows it reads
        check.a_uuid("patient_id", patient_id)
        patient = self._visible_patient(patient_id, "id,consent_facial_analysis")
        history = self.consent_history(patient_id)
        return bool(patient["consent_facial_analysis"] and history and history[-1].given
                    and history[-1].text_version == self.current_consent_text().version)

    def export_patient(self, patient_id: uuid.UUID) -> PatientExport:
        check.a_uuid("patient_id", patient_id)
        self._visible_patient(patient_id, "id")
        document = self._rpc("patient_export", {"p_patient": str(patient_id)})
        if not self._is_admin():  # sessions_select already applied in the function; kept as a second guard
            mine = {s["id"] for s in document["sessions"] if s["clinician_id"] == str(self.actor.id)}
            document["sessions"] = [s for s in document["sessions"] if s["id"] in mine]
            document["annotations"] = [a for a in document["annotations"] if a["session_id"] in mine]
        readings: dict[uuid.UUID, list[Reading]] = {}
        for session in document["sessions"]:
            session_id, cursor, found = uuid.UUID(session["id"]), 0, []
            while True:
                rows = self._rpc("readings_since", {"p_session": str(session_id), "p_cursor": cursor,
                                                    "p_limit": rights.READINGS_PAGE})
                found.extend(_reading(row) for row in rows)
                if len(rows) < rights.READINGS_PAGE:
                    break
                cursor = int(rows[-1]["seq"])
            readings[session_id] = found
        self._audit_row("export", "patient", patient_id)
        return rights.export_from_json(document, readings)

    def erase_patient(self, patient_id: uuid.UUID, confirmation: str) -> ErasureResult:
        check.a_uuid("patient_id", patient_id)
        confirmation = rights.checked_confirmation(confirmation)
        if not (self.actor.kind == "clinician" and self.actor.role == "admin"):
            raise PermissionDenied("only admins erase patients")
        # one rpc = one transaction: the deletions and the audit tombstone (named after this admin) commit together
        document = self._rpc("erase_patient", {"p_patient": str(patient_id), "p_confirmation": confirmation,
                                               "p_actor": self.actor.label})
        return rights.erasure_from_json(patient_id, document)

    def apply_retention(self, keep: timedelta, dry_run: bool = True) -> list[RetentionItem]:
        require_system(self.actor, "apply the retention period")
        keep = rights.checked_keep(keep)
        rows = self._rpc("apply_retention", {"p_keep": rights.interval_literal(keep), "p_dry_run": bool(dry_run)})
        return [rights.retention_item_from_row(row) for row in rows]
    # --- clinician preferences (issue 12) ------------------------------------------------------------------------------
    def get_time_zone(self) -> str | None:
        require_clinician(self.actor, "read their preferences")
        # the clinician_preferences_select policy shows only the acting clinician's own row
        rows = self._execute(self._table("clinician_preferences").select("time_zone"))
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
        # sessions_update (row-level security) limits the update to the clinician's own sessions
        rows = self._execute(self._table("sessions").update({"join_token_hash": hash_secret(token)})
                             .eq("id", str(session_id)).eq("mode", "remote").eq("status", "live"))
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
        rows = self._execute(self._table("sessions").update(values)
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


def _address(address: str | None) -> str | None:
    return None if address is None else check.text("client_address", address)


def _check_token(token: object) -> None:
    if not isinstance(token, str) or not 16 <= len(token) <= 200 or "\x00" in token or check.has_lone_surrogate(token):
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
