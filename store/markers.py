"""Typed event markers (issue 15): the records, their input checks and the store interface both backends implement.

A clinician keeps a short list of `MarkerType`s (a label and an optional one-digit keyboard shortcut). A `Marker` is one
event of one session at one instant: its `kind` is a copy of the type's label (renaming or deleting a type never rewrites
what was marked) or any free text, plus an optional note. Only the session's own clinician may see or change its markers
(row-level security in supabase/migrations/20261202060000_event_markers.sql; the REST backend applies the same rule).
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime

from store import validation as check
from store.errors import InvalidInput

KIND_MAX = 80
MARKER_TEXT_MAX = 2000
SHORTCUTS: tuple[str, ...] = tuple("123456789")
UNCHANGED = object()  # update_marker(): "leave this field as it is"


@dataclass(frozen=True)
class MarkerType:
    id: uuid.UUID
    clinician_id: uuid.UUID
    label: str
    shortcut: str = ""  # "" or one of SHORTCUTS
    position: int = 0
    created_at: datetime | None = None


@dataclass(frozen=True)
class Marker:
    id: uuid.UUID
    session_id: uuid.UUID
    at: datetime
    kind: str
    text: str
    author_id: uuid.UUID
    created_at: datetime | None = None
    updated_at: datetime | None = None


def checked_kind(value: object) -> str:
    """A marker kind / type label: 1..80 characters after trimming, no NUL."""
    if not isinstance(value, str):
        raise InvalidInput(f"marker type must be text, got {type(value).__name__}")
    kind = value.strip()
    if not kind:
        raise InvalidInput("marker type is required")
    if "\x00" in kind:
        raise InvalidInput("marker type contains a NUL character")
    if len(kind) > KIND_MAX:
        raise InvalidInput(f"marker type is too long ({len(kind)} > {KIND_MAX} characters)")
    return kind


def checked_text(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"marker text must be text, got {type(value).__name__}")
    if "\x00" in value:
        raise InvalidInput("marker text contains a NUL character")
    if len(value) > MARKER_TEXT_MAX:
        raise InvalidInput(f"marker text is too long ({len(value)} > {MARKER_TEXT_MAX} characters)")
    return value.strip()


def checked_shortcut(value: object) -> str:
    if value not in ("", *SHORTCUTS):
        raise InvalidInput(f"a marker shortcut is one digit 1-9 or none, got {value!r}")
    return str(value)


def checked_position(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 999:
        raise InvalidInput(f"position must be an integer in [0, 999], got {value!r}")
    return value


def checked_at(value: object) -> datetime:
    check.aware_datetime("at", value)
    return value  # type: ignore[return-value]


class MarkerStore(ABC):
    """The marker part of `store.api.Store` (clinician actor only; every change is audited as entity "marker" or
    "marker_type")."""

    @abstractmethod
    def list_marker_types(self) -> list[MarkerType]:
        """The acting clinician's marker types, by position then label."""

    @abstractmethod
    def add_marker_type(self, label: str, shortcut: str = "", position: int = 0) -> MarkerType:
        """InvalidInput when the label or the shortcut is already used by this clinician."""

    @abstractmethod
    def remove_marker_type(self, type_id: uuid.UUID) -> None:
        """Markers already made with it keep their kind. NotFound when not the acting clinician's."""

    @abstractmethod
    def add_marker(self, session_id: uuid.UUID, at: datetime, kind: str, text: str = "") -> Marker:
        """NotFound unless the session is the acting clinician's own."""

    @abstractmethod
    def update_marker(self, marker_id: uuid.UUID, at: object = UNCHANGED, kind: object = UNCHANGED,
                      text: object = UNCHANGED) -> Marker: ...

    @abstractmethod
    def remove_marker(self, marker_id: uuid.UUID) -> None: ...

    @abstractmethod
    def list_markers(self, session_id: uuid.UUID) -> list[Marker]:
        """Oldest first (by `at`)."""


def marker_changes(at: object, kind: object, text: object) -> dict[str, object]:
    """The checked columns an update_marker() call changes."""
    changes: dict[str, object] = {}
    if at is not UNCHANGED:
        changes["at"] = checked_at(at)
    if kind is not UNCHANGED:
        changes["kind"] = checked_kind(kind)
    if text is not UNCHANGED:
        changes["text"] = checked_text(text)
    return changes
