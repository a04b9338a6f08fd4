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

ActorKind = Literal["system", "clinician", "device", "remote"]


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


class Store(ABC):
    """All reads and writes of clinical data. Methods raise `store.errors` types only."""

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
    def record_login_result(self, username: str, success: bool, locked_until: datetime | None = None) -> None:
        """Success resets the failure counter; failure increments it and may set `locked_until`. Audited."""

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
        """Consent to facial analysis; no session can start without it. Audited."""

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
        """Clinician/admin actor. The returned key is shown once; only its hash is stored."""

    @abstractmethod
    def list_devices(self) -> list[Device]: ...

    @abstractmethod
    def authenticate_device(self, device_id: uuid.UUID, key: str) -> Device:
        """System actor. PermissionDenied on a wrong key."""

    @abstractmethod
    def heartbeat(self) -> None:
        """Device actor: stamp last_heartbeat = now."""

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
        readings captured by its end (+ validation.LATE_READING_TOLERANCE), up to validation.LATE_READING_GRACE after
        it ended. SessionNotLive for a scheduled session, a reading captured after the end, or a session ended longer
        ago than the grace period (readings already stored are never refused: retries stay idempotent)."""

    @abstractmethod
    def insert_remote_readings(self, token: str, readings: Sequence[Reading]) -> int:
        """For the patient's browser: same rules, checked against the join token of that session. The token's writing
        window closes when the session ends or the link expires, whichever is first; readings captured by then
        (+ tolerance) are still taken for the grace period after it. InvalidToken for an unknown token, one closed
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
