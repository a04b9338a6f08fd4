"""The audit log for the Audit page: readable names instead of raw ids, repeated views collapsed, and the hash chain's
state (store.audit.verify_chain)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from store.api import Store
from store.audit import ChainReport, verify_chain
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
    return verify_chain(store)
