"""The audit log for the Audit page: readable names instead of raw ids, repeated views collapsed, and the hash chain's
state: the last verification (recorded by store.audit, by this page's *Verify now* or the nightly
`python -m store.audit verify`), so that loading the page never walks a long chain."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

from settings import Settings
from store.api import Store
from store.audit import (VERIFICATION_FILE, ChainReport, VerificationRecord, chain_id, last_verification,
                         record_verification, verify_chain)
from store.models import AuditEvent


@dataclass(frozen=True)
class AuditRow:
    """One line of the page: `count` consecutive identical events (same actor, action and target) between first_at
    and last_at."""

    last_at: datetime
    first_at: datetime
    actor: str
    action: str
    entity: str
    target: str
    count: int


@dataclass(frozen=True)
class Names:
    clinicians: dict[str, str]
    devices: dict[str, str]
    patients: dict[str, str]
    sessions: dict[str, str]

    @classmethod
    def load(cls, store: Store) -> "Names":
        """What an admin's store can name (admins see every clinician, patient, session and device)."""
        patients = {str(p.id): p.full_name for p in store.list_patients(include_archived=True)}
        sessions = {
            str(s.id): f"{s.mode.replace('_', ' ')} session of {patients.get(str(s.patient_id), 'a patient')}"
                       + (f" on {s.started_at:%Y-%m-%d}" if s.started_at else "")
            for s in store.list_sessions()
        }
        return cls(
            clinicians={str(c.id): f"{c.display_name} ({c.username})" for c in store.list_clinicians()},
            devices={str(d.id): f"device {d.name}" for d in store.list_devices()},
            patients=patients,
            sessions=sessions,
        )

    def actor(self, label: str) -> str:
        kind, _, ident = label.partition(":")
        if kind == "clinician":
            return self.clinicians.get(ident, label)
        if kind == "device":
            return self.devices.get(ident, label)
        return label

    def target(self, entity: str, entity_id: str) -> str:
        table = {"patient": self.patients, "session": self.sessions, "clinician": self.clinicians,
                 "device": self.devices}.get(entity, {})
        return table.get(entity_id, entity_id)


def collapse(events: list[AuditEvent], names: Names) -> list[AuditRow]:
    """Newest first, as the store lists them; runs of the same actor, action and target become one row."""
    rows: list[AuditRow] = []
    for event in events:
        key = (names.actor(event.actor), event.action, event.entity, names.target(event.entity, event.entity_id))
        if rows and (rows[-1].actor, rows[-1].action, rows[-1].entity, rows[-1].target) == key:
            last = rows[-1]
            rows[-1] = AuditRow(last.last_at, event.at, *key, last.count + 1)
        else:
            rows.append(AuditRow(event.at, event.at, *key, 1))
    return rows


def readable_audit(store: Store, limit: int = 500) -> list[AuditRow]:
    return collapse(store.list_audit(limit=limit), Names.load(store))


def chain_status(store: Store) -> ChainReport:
    """Walk the whole chain now (slow with a long log: the page calls it only through `verify_now`)."""
    return verify_chain(store)


@dataclass(frozen=True)
class ChainState:
    """What the page shows: the last verification of this database's chain (None: never verified), and how many rows
    were appended after the position it checked up to."""

    last: VerificationRecord | None
    rows_since: int | None


def _newest_position(store: Store) -> int | None:
    newest = store.list_audit(limit=1)
    return newest[0].chain_pos if newest else None


def chain_state(store: Store, settings: Settings) -> ChainState:
    """Cheap: the recorded result, the chain's first row and its newest row; no walk."""
    last = last_verification(settings.data_dir / VERIFICATION_FILE, chain_id(store))
    if last is None:
        return ChainState(None, None)
    newest = _newest_position(store)
    since = None if newest is None or last.head_pos is None else max(newest - last.head_pos, 0)
    return ChainState(last, since)


def verify_now(store: Store, settings: Settings, by: str) -> VerificationRecord:
    """Walk the whole chain, record the result with its time (for the next page load), return it."""
    started = time.monotonic()
    report = verify_chain(store)
    record = VerificationRecord(datetime.now(timezone.utc), by, report.rows, report.intact, report.summary,
                                report.head_pos, time.monotonic() - started)
    record_verification(settings.data_dir / VERIFICATION_FILE, chain_id(store), record)
    return record
