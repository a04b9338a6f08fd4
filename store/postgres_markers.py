"""Markers over a direct PostgreSQL connection: a mixin of `store.postgres.PostgresStore` (uses its `_tx` and `_audit`).
Row-level security does the scoping (only the session's clinician); the code adds clear NotFound errors."""

from __future__ import annotations

import uuid
from datetime import datetime

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

MARKER_TYPE_COLUMNS = "id, clinician_id, label, shortcut, position, created_at"
MARKER_COLUMNS = "id, session_id, at, kind, text, author_id, created_at, updated_at"


class PostgresMarkers(MarkerStore):
    def list_marker_types(self) -> list[MarkerType]:
        require_clinician(self.actor, "keep marker types")
        with self._tx() as conn:
            rows = conn.execute(
                f"SELECT {MARKER_TYPE_COLUMNS} FROM marker_types WHERE clinician_id = %s ORDER BY position, label",
                (self.actor.id,),
            ).fetchall()
        return [MarkerType(**row) for row in rows]

    def add_marker_type(self, label: str, shortcut: str = "", position: int = 0) -> MarkerType:
        require_clinician(self.actor, "keep marker types")
        values = (self.actor.id, checked_kind(label), checked_shortcut(shortcut), checked_position(position))
        with self._tx() as conn:
            row = conn.execute(
                f"INSERT INTO marker_types (clinician_id, label, shortcut, position) VALUES (%s, %s, %s, %s) "
                f"RETURNING {MARKER_TYPE_COLUMNS}",
                values,
            ).fetchone()
            self._audit(conn, "create", "marker_type", row["id"])
        return MarkerType(**row)

    def remove_marker_type(self, type_id: uuid.UUID) -> None:
        require_clinician(self.actor, "keep marker types")
        check.a_uuid("type_id", type_id)
        with self._tx() as conn:
            if conn.execute("DELETE FROM marker_types WHERE id = %s RETURNING id", (type_id,)).fetchone() is None:
                raise NotFound(f"marker type {type_id}")
            self._audit(conn, "delete", "marker_type", type_id)

    def add_marker(self, session_id: uuid.UUID, at: datetime, kind: str, text: str = "") -> Marker:
        require_clinician(self.actor, "mark sessions")
        check.a_uuid("session_id", session_id)
        values = (session_id, checked_at(at), checked_kind(kind), checked_text(text), self.actor.id)
        with self._tx() as conn:
            self._require_own_session(conn, session_id)
            row = conn.execute(
                f"INSERT INTO session_markers (session_id, at, kind, text, author_id) VALUES (%s, %s, %s, %s, %s) "
                f"RETURNING {MARKER_COLUMNS}",
                values,
            ).fetchone()
            self._audit(conn, "create", "marker", row["id"])
        return Marker(**row)

    def update_marker(self, marker_id: uuid.UUID, at: object = UNCHANGED, kind: object = UNCHANGED,
                      text: object = UNCHANGED) -> Marker:
        require_clinician(self.actor, "mark sessions")
        check.a_uuid("marker_id", marker_id)
        changes = marker_changes(at, kind, text)
        assignments = ", ".join([f"{column} = %s" for column in changes] + ["updated_at = now()"])
        with self._tx() as conn:
            row = conn.execute(
                f"UPDATE session_markers SET {assignments} WHERE id = %s RETURNING {MARKER_COLUMNS}",
                (*changes.values(), marker_id),
            ).fetchone()
            if row is None:
                raise NotFound(f"marker {marker_id}")
            self._audit(conn, "update", "marker", marker_id)
        return Marker(**row)

    def remove_marker(self, marker_id: uuid.UUID) -> None:
        require_clinician(self.actor, "mark sessions")
        check.a_uuid("marker_id", marker_id)
        with self._tx() as conn:
            if conn.execute("DELETE FROM session_markers WHERE id = %s RETURNING id", (marker_id,)).fetchone() is None:
                raise NotFound(f"marker {marker_id}")
            self._audit(conn, "delete", "marker", marker_id)

    def list_markers(self, session_id: uuid.UUID) -> list[Marker]:
        require_clinician(self.actor, "read markers")
        check.a_uuid("session_id", session_id)
        with self._tx() as conn:
            self._require_own_session(conn, session_id)
            rows = conn.execute(
                f"SELECT {MARKER_COLUMNS} FROM session_markers WHERE session_id = %s ORDER BY at, created_at",
                (session_id,),
            ).fetchall()
        return [Marker(**row) for row in rows]

    def _require_own_session(self, conn, session_id: uuid.UUID) -> None:
        # admins see every session, but markers are only for the session's own clinician
        found = conn.execute("SELECT 1 FROM sessions WHERE id = %s AND clinician_id = %s",
                             (session_id, self.actor.id)).fetchone()
        if found is None:
            raise NotFound(f"session {session_id}")
