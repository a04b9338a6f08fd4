"""Pieces both backends share: actor -> database role and JWT claims, secrets hashing, SQL error mapping."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from datetime import date, datetime

from store.api import Actor
from store.errors import InvalidInput, InvalidToken, NotFound, PermissionDenied, SessionNotLive, StoreError

PATIENT_FIELDS = ("full_name", "date_of_birth", "diagnosis", "in_treatment_since", "contact", "notes")
# column -> validation field name for text columns of patients
PATIENT_TEXT_FIELDS = {"full_name": "full_name", "diagnosis": "diagnosis", "contact": "contact", "notes": "notes"}


DEVICE_ROLE = "psya_device"  # the group role of every device login (20261202010000_device_role.sql)
SCRAM_ITERATIONS = 4096  # PostgreSQL's own default for scram-sha-256


def role_and_claims(actor: Actor) -> tuple[str, dict[str, str]]:
    """The database role and JWT claims PostgREST would set for this actor (see the RLS migration's header)."""
    if actor.kind == "system":
        return "service_role", {"role": "service_role"}
    if actor.kind == "clinician":
        if actor.id is None or actor.role is None:
            raise PermissionDenied("a clinician actor needs an id and a role")
        return "authenticated", {"role": "authenticated", "actor": "clinician", "sub": str(actor.id),
                                 "app_role": actor.role}
    if actor.kind == "device":
        if actor.id is None:
            raise PermissionDenied("a device actor needs an id")
        # devices have a role of their own with no table privileges, only the device functions (device role migration)
        return DEVICE_ROLE, {"role": DEVICE_ROLE, "actor": "device", "sub": str(actor.id)}
    if actor.kind == "remote":
        return "anon", {"role": "anon"}
    raise PermissionDenied(f"unknown actor kind {actor.kind!r}")


def new_secret() -> str:
    """An unguessable device key or join token (256 bits)."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """sha256 hex: enough for 256-bit random secrets (no dictionary to attack), and computable in SQL for lookups."""
    # surrogatepass: a key or token with a lone surrogate (no real one has any) hashes to something that matches nothing,
    # instead of raising UnicodeEncodeError out of the store
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def scram_verifier(password: str, iterations: int = SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802/7677, PostgreSQL's format), computed here so
    a device's key never reaches the server in plain text. Keys from new_secret() are ASCII, so SASLprep is the identity."""
    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)


def error_from_database_message(message: str) -> StoreError | None:
    """Map the prefixes our SQL functions raise (see the reading functions migration) to store errors."""
    text = message.strip()
    if text.startswith("invalid_token"):
        return InvalidToken("the join link is unknown, expired, or its session has ended")
    if text.startswith("session_not_live:"):
        return SessionNotLive(text.partition(":")[2].strip())
    if text.startswith("not_found:"):
        return NotFound(text.partition(":")[2].strip())
    if text.startswith("invalid_input:"):
        return InvalidInput(text.partition(":")[2].strip())
    if text.startswith("permission_denied:"):
        return PermissionDenied(text.partition(":")[2].strip())
    return None


def require_clinician(actor: Actor, what: str) -> None:
    if actor.kind != "clinician" or actor.id is None:
        raise PermissionDenied(f"only a clinician may {what} (acting as {actor.label})")


def require_device(actor: Actor, what: str) -> None:
    if actor.kind != "device" or actor.id is None:
        raise PermissionDenied(f"only a device may {what} (acting as {actor.label})")


def require_system(actor: Actor, what: str) -> None:
    if actor.kind != "system":
        raise PermissionDenied(f"only the system actor may {what} (acting as {actor.label})")


def escape_like(term: str) -> str:
    return term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def iso(value: date | datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def checked_time_zone(time_zone: str | None) -> str | None:
    """An IANA time zone name (e.g. "Europe/Madrid"), or None; InvalidInput otherwise (issue 12)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from store.errors import InvalidInput

    if time_zone is None:
        return None
    if not isinstance(time_zone, str) or not 1 <= len(time_zone) <= 64:
        raise InvalidInput("A time zone is a name such as Europe/Madrid.")
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(f"“{time_zone}” is not a known time zone (use a name such as Europe/Madrid).") from None
    return time_zone


def checked_recording_times(started_at: datetime, ended_at: datetime | None) -> None:
    """A recording's start (and end) for store.retime_recorded_session: timezone-aware, not in the future, end >= start."""
    from datetime import datetime as _datetime, timedelta as _timedelta, timezone as _timezone

    from store.errors import InvalidInput

    for name, value in (("started_at", started_at), ("ended_at", ended_at)):
        if value is None and name == "ended_at":
            continue
        if not isinstance(value, _datetime) or value.tzinfo is None:
            raise InvalidInput(f"{name} must be a timezone-aware datetime")
    if started_at > _datetime.now(_timezone.utc) + _timedelta(minutes=5):
        raise InvalidInput("The recording cannot have started in the future.")
    if ended_at is not None and ended_at < started_at:
        raise InvalidInput("The recording cannot end before it starts.")
