"""The one store interface the app and the agents use. Backends: `store.postgres` (embedded or DATABASE_URL) and
`store.supabase_rest` (supabase-py over PostgREST). Open one with `store.open_store(settings)`.

Every request runs as an `Actor`. Over a direct Postgres connection the backend switches to that actor's database role and
JWT claims for the transaction (the way PostgREST does), so row-level security guards the data even if app code errs.
`store.as_actor(actor)` returns a view of the same store bound to another actor; the unbound store acts as `Actor.system()`
(service role: only bootstrap, login and device authentication should use it).
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal

from store.markers import MarkerStore
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

ActorKind = Literal["system", "clinician", "device", "remote"]


@dataclass(frozen=True)
class LoginThrottle:
    """Growing delays after failed logins (settings MAX_LOGIN_FAILURES, LOGIN_DELAY_SECONDS, ACCOUNT_DELAY_MAX_SECONDS,
    LOCKOUT_MINUTES): `free_failures` in a row cost nothing, then each attempt waits `first_delay`, doubling, up to the
    cap of its key. Counts are forgotten after a correct password or `memory` without attempts."""

    free_failures: int
    first_delay: timedelta
    account_max_delay: timedelta
    address_max_delay: timedelta
    memory: timedelta = timedelta(hours=24)


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    id: uuid.UUID | None = None
    role: Role | None = None  # clinicians only

    @classmethod
    def system(cls) -> "Actor":
        return cls("system")

    @classmethod
    def for_clinician(cls, clinician: Clinician) -> "Actor":
        return cls("clinician", clinician.id, clinician.role)

    @classmethod
    def for_device(cls, device_id: uuid.UUID) -> "Actor":
        return cls("device", device_id)

    @property
    def label(self) -> str:
        """How the audit log names this actor, e.g. "clinician:<uuid>"."""
        return self.kind if self.id is None else f"{self.kind}:{self.id}"


class Store(MarkerStore, ABC):
    """All reads and writes of clinical data. Methods raise `store.errors` types only. Event markers: `store.markers`."""

    actor: Actor

    @abstractmethod
    def as_actor(self, actor: Actor) -> "Store":
        """The same store, acting as `actor` (shares the connection pool)."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable when the database cannot be reached."""

    # --- clinicians and login (system actor) -------------------------------------------------------------
    @abstractmethod
    def count_clinicians(self) -> int: ...

    @abstractmethod
    def create_clinician(self, username: str, display_name: str, password_hash: str, role: Role) -> Clinician: ...

    @abstractmethod
    def get_clinician_by_username(self, username: str) -> Clinician | None: ...

    @abstractmethod
    def list_clinicians(self) -> list[Clinician]: ...

    @abstractmethod
    def record_login_result(self, username: str, success: bool, address: str | None = None) -> None:
        """Audited. Success also forgets the throttle counts of the account and of `address` (the failure itself was
        counted by `begin_login_attempt`)."""

    # --- login throttle, login sessions and account care (system actor) ---------------------------------------------
    @abstractmethod
    def begin_login_attempt(self, username: str, address: str | None, throttle: "LoginThrottle") -> timedelta:
        """Atomically in the database: zero when the password may be checked now (the attempt is counted as a failure
        until `record_login_result(..., True)`), else how long this account or address must still wait (nothing is
        counted). Unknown usernames are throttled like real ones."""

    @abstractmethod
    def reset_login_throttle(self, username: str) -> None:
        """An admin's unlock: forget the account's failure count and delay."""

    @abstractmethod
    def open_login_session(self, clinician_id: uuid.UUID, token: str, address: str | None = None) -> None:
        """Store a new login session for `token` (only its hash is kept). PermissionDenied for a deactivated account."""

    @abstractmethod
    def resume_login_session(self, token: str, idle: timedelta, lifetime: timedelta) -> Clinician | None:
        """The account `token` signs in (and its idle clock restarts), or None: unknown, ended, idle longer than `idle`,
        older than `lifetime`, or the account is deactivated."""

    @abstractmethod
    def end_login_session(self, token: str) -> None:
        """Logout: the token signs nobody in again, in any app process."""

    @abstractmethod
    def revoke_login_sessions(self, clinician_id: uuid.UUID, keep_token: str | None = None) -> int:
        """End every open session of the account except `keep_token`'s. Returns how many were ended."""

    @abstractmethod
    def set_password_hash(self, clinician_id: uuid.UUID, password_hash: str) -> None:
        """Replace the account's bcrypt hash. Audited; the caller revokes sessions as the case needs."""

    @abstractmethod
    def set_clinician_active(self, clinician_id: uuid.UUID, active: bool) -> None:
        """Deactivate (every session ends, no login works) or reactivate an account. Audited."""

    # --- patients and medical records (clinician actor; admins see all) ----------------------------------
    @abstractmethod
    def create_patient(self, patient: NewPatient) -> Patient:
        """Owned by the acting clinician."""

    @abstractmethod
    def update_patient(self, patient_id: uuid.UUID, **changes: object) -> Patient:
        """Changes any NewPatient field. Audited."""

    @abstractmethod
    def archive_patient(self, patient_id: uuid.UUID, archived: bool = True) -> Patient: ...

    @abstractmethod
    def record_consent(self, patient_id: uuid.UUID, given: bool, on: date, scope: str) -> Patient:
        """Consent to facial analysis; no session can start without it. Audited. Every call appends to the consent
        history (consent_history) with the current consent text; a withdrawal (given=False) also ends the patient's
        live sessions in the same transaction."""

    @abstractmethod
    def get_patient(self, patient_id: uuid.UUID) -> Patient:
        """NotFound when missing or not visible to the actor. Audited as a view."""

    @abstractmethod
    def list_patients(self, search: str = "", include_archived: bool = False) -> list[Patient]: ...

    @abstractmethod
    def add_record_entry(self, patient_id: uuid.UUID, entry_date: date, kind: RecordKind, text: str) -> RecordEntry: ...

    @abstractmethod
    def list_record_entries(self, patient_id: uuid.UUID) -> list[RecordEntry]:
        """Newest entry_date first."""

    # --- devices (Pi agents) ------------------------------------------------------------------------------
    @abstractmethod
    def register_device(self, name: str, room: str) -> DeviceRegistration:
        """Clinician/admin actor (or the system actor: `python -m store.devices provision`). The returned key is shown
        once; only its hash is stored. Over a direct connection it also creates the device's own database login
        (`registration.login`, password = the key), which can only do what a device does (docs/security.md)."""

    @abstractmethod
    def revoke_device(self, device_id: uuid.UUID) -> None:
        """Admins: a lost or stolen Pi. Its own database login is dropped (open connections ended) and the database no
        longer recognises it (device JWTs included); its sessions and readings stay. Audited."""

    @abstractmethod
    def list_devices(self) -> list[Device]: ...

    @abstractmethod
    def authenticate_device(self, device_id: uuid.UUID, key: str) -> Device:
        """System or device actor, also over a device's own credentials. PermissionDenied on a wrong id or key."""

    @abstractmethod
    def heartbeat(self, clock_offset: timedelta | None = None) -> datetime:
        """Device actor: stamp last_heartbeat = now, store `clock_offset` (the device's last measured offset, database
        time - device time; None keeps the stored one) and return the database's clock at the moment of the call, which
        the agent measures its offset against (pi_agent/clock.py). InvalidInput for an offset beyond
        validation.CLOCK_OFFSET_LIMIT."""

    @abstractmethod
    def live_session_for_device(self) -> Session | None:
        """Device actor: the live session assigned to this device, if any."""

    # --- sessions -------------------------------------------------------------------------------------------
    @abstractmethod
    def start_session(self, patient_id: uuid.UUID, mode: SessionMode, device_id: uuid.UUID | None = None) -> Session:
        """Clinician actor; status becomes live. PermissionDenied without the patient's consent.
        For mode in_person a device_id is required; for remote use `start_remote_session`."""

    @abstractmethod
    def start_remote_session(self, patient_id: uuid.UUID, ttl: timedelta = timedelta(hours=2)) -> RemoteJoin:
        """Clinician actor. A live remote session and a fresh unguessable join token (only its hash is stored)."""

    @abstractmethod
    def end_session(self, session_id: uuid.UUID) -> Session: ...

    @abstractmethod
    def get_session(self, session_id: uuid.UUID) -> Session: ...

    @abstractmethod
    def list_sessions(self, patient_id: uuid.UUID | None = None, status: str | None = None) -> list[Session]:
        """Newest first."""

    @abstractmethod
    def session_for_token(self, token: str) -> Session:
        """Any actor (the patient's browser has no login). InvalidToken when unknown, expired or ended."""

    # --- readings -------------------------------------------------------------------------------------------
    @abstractmethod
    def insert_readings(self, readings: Sequence[Reading]) -> int:
        """Batch insert, all or nothing, idempotent on Reading.id (duplicates are skipped, not doubled).
        Returns how many were new. Validates probabilities (7 finite values >= 0 summing to 1 +- 1e-3).
        Device actor: only for the session assigned to it (clinicians: their own sessions), while it is live or, for
        readings captured by its end (in database time: validation.LATE_READING_TOLERANCE is zero; agents correct their
        clocks), up to validation.LATE_READING_GRACE after
        it ended. SessionNotLive for a scheduled session, a reading captured after the end, or a session ended longer
        ago than the grace period (readings already stored are never refused: retries stay idempotent)."""

    @abstractmethod
    def insert_remote_readings(self, token: str, readings: Sequence[Reading]) -> int:
        """For the patient's browser: same rules, checked against the join token of that session. The token's writing
        window closes when the session ends or the link expires, whichever is first; readings captured by then
        (in the server's clock: app.browser_analysis corrects the browser's) are still taken for the grace period after it. InvalidToken for an unknown token, one closed
        longer ago than the grace period, or a late reading after an expired link; SessionNotLive for a reading
        captured after the session ended."""

    @abstractmethod
    def readings_since(self, session_id: uuid.UUID, cursor: int = 0, limit: int = 10_000) -> ReadingPage:
        """Readings inserted after `cursor`, oldest first (for polling dashboards)."""

    @abstractmethod
    def session_aggregate(self, session_id: uuid.UUID) -> SessionAggregate: ...

    # --- annotations and audit --------------------------------------------------------------------------------
    @abstractmethod
    def add_annotation(self, session_id: uuid.UUID, at: datetime, text: str) -> Annotation: ...

    @abstractmethod
    def list_annotations(self, session_id: uuid.UUID) -> list[Annotation]: ...

    @abstractmethod
    def audit(self, action: str, entity: str, entity_id: str) -> None:
        """Append an audit event as the acting actor (e.g. exports and views the store cannot see)."""

    @abstractmethod
    def list_audit(self, limit: int = 500) -> list[AuditEvent]:
        """Admins only; newest first."""

    @abstractmethod
    def audit_chain(self, after: int = 0, limit: int = 10_000) -> list[AuditEvent]:
        """Admins only: audit rows with chain_pos > `after` in chain order, hashes included (store.audit.verify_chain)."""
    # --- patients' data rights (docs/privacy.md) ----------------------------------------------------------------------
    # Withdrawal is record_consent(given=False): the database ends the patient's live sessions in the same transaction.
    @abstractmethod
    def current_consent_text(self) -> ConsentText:
        """The consent wording patients must have agreed to for a session to start (clinician actors and system)."""

    @abstractmethod
    def publish_consent_text(self, text: str) -> ConsentText:
        """Admins: a new version of the wording. Every patient then needs new consent before their next session. Audited."""

    @abstractmethod
    def consent_history(self, patient_id: uuid.UUID) -> list[ConsentRecord]:
        """Oldest first; every consent and withdrawal with the wording current at the time. NotFound like get_patient."""

    @abstractmethod
    def consent_is_current(self, patient_id: uuid.UUID) -> bool:
        """Consent given, and given to the current wording (what starting a session requires)."""

    @abstractmethod
    def export_patient(self, patient_id: uuid.UUID) -> PatientExport:
        """Everything held about the patient that the actor may see (row-level security applies). Audited as "export"."""

    @abstractmethod
    def erase_patient(self, patient_id: uuid.UUID, confirmation: str) -> ErasureResult:
        """Admins only; `confirmation` must be the patient's full name exactly. Deletes the patient and every row about
        them in one transaction and appends an audit tombstone ("erase", "patient", id). InvalidInput while a session
        of theirs is live (withdraw consent first) or when the confirmation differs."""

    @abstractmethod
    def apply_retention(self, keep: timedelta, dry_run: bool = True) -> list[RetentionItem]:
        """System actor: readings of sessions ended more than `keep` ago (keep >= validation.LATE_READING_GRACE).
        A dry run only lists them; otherwise they are deleted (each session audited as "retention_delete")."""
    # --- clinician preferences (issue 12; table clinician_preferences) -------------------------------------------------
    @abstractmethod
    def get_time_zone(self) -> str | None:
        """The acting clinician's time zone (IANA name), None when they have not chosen one."""

    @abstractmethod
    def set_time_zone(self, time_zone: str | None) -> None:
        """Set (None: clear) the acting clinician's time zone; InvalidInput for a name the IANA database lacks."""

    # --- remote join links that can be shown again (issue 12; table remote_join_links) -------------------------------
    @abstractmethod
    def rotate_join_token(self, session_id: uuid.UUID) -> RemoteJoin:
        """Clinician of a live remote session: a fresh token replaces the old one (whose link stops working at once)."""

    @abstractmethod
    def save_join_link(self, session_id: uuid.UUID, ciphertext: str) -> None:
        """Keep the app-encrypted join link of the clinician's remote session (replacing an older one)."""

    @abstractmethod
    def get_join_link(self, session_id: uuid.UUID) -> str | None:
        """The ciphertext saved for the session, None when none (another clinician's session: None too)."""

    # --- recorded videos keep their own clock (issue 12) --------------------------------------------------------------
    @abstractmethod
    def retime_recorded_session(self, session_id: uuid.UUID, started_at: datetime, ended_at: datetime | None = None) -> Session:
        """A recorded_video session's times: when the recording began (and ended), not when it was uploaded."""
