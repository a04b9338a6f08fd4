"""Markers over Supabase's REST API: a mixin of `store.supabase_rest.SupabaseRestStore` (uses its `_table`, `_execute`
and `_audit_row`). The service key bypasses row-level security, so every request carries the policies' rule itself: marker
types filtered by the acting clinician, markers only of a session whose clinician is the actor (admins included in
nothing)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from store import validation as check
from store.common import require_clinician
from store.errors import NotFound
from store.markers import (
    UNCHANGED,
    Marker,
    MarkerStore,
    MarkerType,
    checked_at,
    checked_kind,
    checked_position,
    checked_shortcut,
    checked_text,
    marker_changes,
)

MARKER_TYPE_COLUMNS = "id,clinician_id,label,shortcut,position,created_at"
MARKER_COLUMNS = "id,session_id,at,kind,text,author_id,created_at,updated_at"


def _marker_type(row: dict[str, Any]) -> MarkerType:
    return MarkerType(id=uuid.UUID(row["id"]), clinician_id=uuid.UUID(row["clinician_id"]), label=row["label"],
                      shortcut=row.get("shortcut") or "", position=int(row.get("position") or 0),
                      created_at=_when(row.get("created_at")))


def _marker(row: dict[str, Any]) -> Marker:
    return Marker(id=uuid.UUID(row["id"]), session_id=uuid.UUID(row["session_id"]), at=_when(row["at"]),
                  kind=row["kind"], text=row.get("text") or "", author_id=uuid.UUID(row["author_id"]),
                  created_at=_when(row.get("created_at")), updated_at=_when(row.get("updated_at")))


def _when(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value.replace("Z", "+00:00"))


class SupabaseMarkers(MarkerStore):
    def list_marker_types(self) -> list[MarkerType]:
        require_clinician(self.actor, "keep marker types")
        # marker_types_select (row-level security, under the clinician's JWT) shows only their own types
        rows = self._execute(self._table("marker_types").select(MARKER_TYPE_COLUMNS).order("position").order("label"))
        return [_marker_type(row) for row in rows]

    def add_marker_type(self, label: str, shortcut: str = "", position: int = 0) -> MarkerType:
        require_clinician(self.actor, "keep marker types")
        row = {"clinician_id": str(self.actor.id), "label": checked_kind(label), "shortcut": checked_shortcut(shortcut),
               "position": checked_position(position)}
        created = _marker_type(self._execute(self._table("marker_types").insert(row))[0])
        self._audit_row("create", "marker_type", created.id)
        return created

    def remove_marker_type(self, type_id: uuid.UUID) -> None:
        require_clinician(self.actor, "keep marker types")
        check.a_uuid("type_id", type_id)
        rows = self._execute(self._table("marker_types").delete().eq("id", str(type_id)))  # own rows only (RLS)
        if not rows:
            raise NotFound(f"marker type {type_id}")
        self._audit_row("delete", "marker_type", type_id)

    def add_marker(self, session_id: uuid.UUID, at: datetime, kind: str, text: str = "") -> Marker:
        require_clinician(self.actor, "mark sessions")
        check.a_uuid("session_id", session_id)
        row = {"session_id": str(session_id), "at": checked_at(at).isoformat(), "kind": checked_kind(kind),
               "text": checked_text(text), "author_id": str(self.actor.id)}
        self._require_own_session(session_id)
        created = _marker(self._execute(self._table("session_markers").insert(row))[0])
        self._audit_row("create", "marker", created.id)
        return created

    def update_marker(self, marker_id: uuid.UUID, at: object = UNCHANGED, kind: object = UNCHANGED,
                      text: object = UNCHANGED) -> Marker:
        require_clinician(self.actor, "mark sessions")
        check.a_uuid("marker_id", marker_id)
        changes = marker_changes(at, kind, text)
        session_id = self._own_marker_session(marker_id)
        body = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in changes.items()}
        body["updated_at"] = datetime.now().astimezone().isoformat()
        rows = self._execute(self._table("session_markers").update(body).eq("id", str(marker_id))
                             .eq("session_id", str(session_id)))
        if not rows:
            raise NotFound(f"marker {marker_id}")
        self._audit_row("update", "marker", marker_id)
        return _marker(rows[0])

    def remove_marker(self, marker_id: uuid.UUID) -> None:
        require_clinician(self.actor, "mark sessions")
        check.a_uuid("marker_id", marker_id)
        session_id = self._own_marker_session(marker_id)
        rows = self._execute(self._table("session_markers").delete().eq("id", str(marker_id))
                             .eq("session_id", str(session_id)))
        if not rows:
            raise NotFound(f"marker {marker_id}")
        self._audit_row("delete", "marker", marker_id)

    def list_markers(self, session_id: uuid.UUID) -> list[Marker]:
        require_clinician(self.actor, "read markers")
        check.a_uuid("session_id", session_id)
        self._require_own_session(session_id)
        rows = self._execute(self._table("session_markers").select(MARKER_COLUMNS).eq("session_id", str(session_id))
                             .order("at"))
        return [_marker(row) for row in rows]

    def _require_own_session(self, session_id: uuid.UUID) -> None:
        # RLS shows admins every session; markers are for the session's own clinician (as the policies require)
        rows = self._execute(self._table("sessions").select("id,clinician_id").eq("id", str(session_id)))
        if not rows or rows[0].get("clinician_id") != str(self.actor.id):
            raise NotFound(f"session {session_id}")

    def _own_marker_session(self, marker_id: uuid.UUID) -> uuid.UUID:
        rows = self._execute(self._table("session_markers").select("session_id").eq("id", str(marker_id)))
        if not rows:
            raise NotFound(f"marker {marker_id}")
        session_id = uuid.UUID(rows[0]["session_id"])
        self._require_own_session(session_id)
        return session_id
