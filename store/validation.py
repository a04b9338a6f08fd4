"""Input checks shared by every backend, so bad input fails the same way (InvalidInput naming the field) everywhere.

The SQL schema enforces the same rules again (CHECK constraints): this layer exists for clear messages and to reject a
whole batch before anything is sent.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from numbers import Real

from fer.labels import LABELS
from store.errors import InvalidInput
from store.models import READING_SOURCES, RECORD_KINDS, ROLES, SESSION_MODES, SESSION_STATUSES, Reading

PROBABILITY_SUM_TOLERANCE = 1e-3

# Late readings (supabase/migrations/20261125100000_late_readings.sql and 20261203010000_device_clock.sql have the same
# values, app.late_reading_tolerance() and app.late_reading_grace(); tests check they agree). Stop means stop: an ended
# session takes no reading captured after its end (LATE_READING_TOLERANCE is zero: device clocks are measured and
# corrected, pi_agent/clock.py and app/browser_analysis.py, instead of being absorbed by a tolerance), but it still takes
# readings captured by its end for LATE_READING_GRACE after it (agents spool through outages and send the last batches
# of a session after the clinician has ended it).
LATE_READING_TOLERANCE = timedelta(0)
LATE_READING_GRACE = timedelta(hours=24)
# Bounded reading times (20261202010100_reading_time_bounds.sql): a reading is captured no earlier than the session's start
# and no later than now, each give or take READING_CLOCK_SKEW. Clocks are corrected now, so this is a sanity bound, not a
# tolerance: it still covers what the correction cannot (a Pi recording with --session before its first heartbeat
# succeeded, offset 0; a clock stepped between two heartbeats; the app server's own clock); a recorded video's readings lie
# within RECORDED_VIDEO_MAX_LENGTH of its session's start. A join link lives at most JOIN_LINK_MAX_LIFETIME
# (20261202010200_session_rules.sql). The database enforces these; a test checks the two agree.
READING_CLOCK_SKEW = timedelta(minutes=5)
RECORDED_VIDEO_MAX_LENGTH = timedelta(hours=24)
JOIN_LINK_MAX_LIFETIME = timedelta(days=7)
# A device's measured clock offset (database time - device time) is stored only within this bound
# (app.device_clock_offset_limit(), 20261203010000_device_clock.sql): a clock a day off is a device to fix, not correct.
CLOCK_OFFSET_LIMIT = timedelta(hours=24)

# Longest accepted text per field (characters); the migrations carry the same limits as CHECK constraints.
TEXT_LIMITS: dict[str, int] = {
    "username": 64,
    "display_name": 200,
    "password_hash": 200,
    "full_name": 200,
    "diagnosis": 2000,
    "contact": 500,
    "notes": 20000,
    "consent_scope": 500,
    "record_text": 20000,
    "device_name": 100,
    "room": 100,
    "annotation_text": 2000,
    "audit_action": 64,
    "audit_entity": 64,
    "audit_entity_id": 200,
    "search": 200,
    "token": 200,
    "client_address": 100,
}
# Fields that may not be empty.
REQUIRED_TEXT = {"username", "display_name", "password_hash", "full_name", "record_text", "device_name",
                 "annotation_text", "audit_action", "audit_entity"}


def text(field: str, value: object) -> str:
    """A text value within its limit, with no NUL characters and no lone surrogates (PostgreSQL text cannot hold either,
    and a lone surrogate cannot even be encoded for the wire: the driver would fail with its own error)."""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text, got {type(value).__name__}")
    if "\x00" in value:
        raise InvalidInput(f"{field} contains a NUL character")
    if has_lone_surrogate(value):
        raise InvalidInput(f"{field} contains an invalid character (a lone UTF-16 surrogate)")
    limit = TEXT_LIMITS[field]
    if len(value) > limit:
        raise InvalidInput(f"{field} is {len(value)} characters long; the limit is {limit}")
    if field in REQUIRED_TEXT and not value.strip():
        raise InvalidInput(f"{field} must not be empty")
    return value


def has_lone_surrogate(value: str) -> bool:
    """True when `value` holds a code point U+D800..U+DFFF (e.g. "\\ud800" from a broken JSON client), which no UTF-8
    text can carry."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def clock_offset_ms(value: object) -> int | None:
    """A device's measured clock offset (a timedelta, or None: not measured yet) as whole milliseconds."""
    if value is None:
        return None
    if not isinstance(value, timedelta):
        raise InvalidInput(f"clock_offset must be a timedelta, got {type(value).__name__}")
    if abs(value) > CLOCK_OFFSET_LIMIT:
        raise InvalidInput(f"a clock offset of {value.total_seconds():.3f} s is more than {CLOCK_OFFSET_LIMIT} off: "
                           "set the device's clock")
    return round(value.total_seconds() * 1000)


def login_throttle(throttle: object) -> tuple[int, float, float, float, float]:
    """A store.api.LoginThrottle as the numbers public.login_attempt_begin takes (free failures, then seconds)."""
    from store.api import LoginThrottle  # store.api imports this module: look the class up when it is used

    if not isinstance(throttle, LoginThrottle):
        raise InvalidInput(f"expected a store.api.LoginThrottle, got {type(throttle).__name__}")
    if isinstance(throttle.free_failures, bool) or not isinstance(throttle.free_failures, int) or throttle.free_failures < 0:
        raise InvalidInput(f"free_failures must be a non-negative integer, got {throttle.free_failures!r}")
    spans = (throttle.first_delay, throttle.account_max_delay, throttle.address_max_delay, throttle.memory)
    if not all(isinstance(span, timedelta) and span >= timedelta(0) for span in spans):
        raise InvalidInput("login delays must be non-negative timedeltas")
    return (throttle.free_failures, *(span.total_seconds() for span in spans))  # type: ignore[return-value]


def session_lifetimes(idle: object, lifetime: object) -> tuple[float, float]:
    """Idle and absolute login-session lifetimes, in seconds."""
    if not all(isinstance(span, timedelta) and span > timedelta(0) for span in (idle, lifetime)):
        raise InvalidInput("session lifetimes must be positive timedeltas")
    return idle.total_seconds(), lifetime.total_seconds()  # type: ignore[union-attr]


def choice(field: str, value: object, allowed: Iterable[str]) -> str:
    allowed = tuple(allowed)
    if value not in allowed:
        raise InvalidInput(f"{field} must be one of {', '.join(allowed)}; got {value!r}")
    return value  # type: ignore[return-value]


def role(value: object) -> str:
    return choice("role", value, ROLES)


def session_mode(value: object) -> str:
    return choice("mode", value, SESSION_MODES)


def session_status(value: object) -> str:
    return choice("status", value, SESSION_STATUSES)


def record_kind(value: object) -> str:
    return choice("kind", value, RECORD_KINDS)


def optional_date(field: str, value: object) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime) or not isinstance(value, date):
        raise InvalidInput(f"{field} must be a date, got {type(value).__name__}")
    return value


def aware_datetime(field: str, value: object) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidInput(f"{field} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(f"{field} must be timezone-aware (e.g. datetime.now(timezone.utc))")
    return value


def a_uuid(field: str, value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        raise InvalidInput(f"{field} must be a UUID, got {value!r}") from None


def probabilities(values: object) -> tuple[float, ...]:
    """7 finite numbers in [0, 1], in fer.labels.LABELS order, summing to 1 within PROBABILITY_SUM_TOLERANCE."""
    try:
        items = list(values)  # type: ignore[arg-type]
    except TypeError:
        raise InvalidInput(f"probabilities must be a sequence of {len(LABELS)} numbers") from None
    if len(items) != len(LABELS):
        raise InvalidInput(f"probabilities must have {len(LABELS)} values ({', '.join(LABELS)}), got {len(items)}")
    result: list[float] = []
    for label, item in zip(LABELS, items):
        if isinstance(item, bool) or not isinstance(item, Real):
            raise InvalidInput(f"probability of {label} must be a number, got {item!r}")
        number = float(item)
        if not math.isfinite(number):
            raise InvalidInput(f"probability of {label} is {number}")
        if number < 0 or number > 1:
            raise InvalidInput(f"probability of {label} is {number}, outside [0, 1]")
        result.append(number)
    total = math.fsum(result)
    if abs(total - 1.0) > PROBABILITY_SUM_TOLERANCE:
        raise InvalidInput(f"probabilities sum to {total:.6f}, not 1 (tolerance {PROBABILITY_SUM_TOLERANCE})")
    return tuple(result)


def reading(item: object) -> Reading:
    if not isinstance(item, Reading):
        raise InvalidInput(f"expected a store.models.Reading, got {type(item).__name__}")
    a_uuid("reading id", item.id)
    a_uuid("session_id", item.session_id)
    aware_datetime("captured_at", item.captured_at)
    probabilities(item.probabilities)
    choice("source", item.source, READING_SOURCES)
    if isinstance(item.faces, bool) or not isinstance(item.faces, int) or not 0 <= item.faces <= 100:
        raise InvalidInput(f"faces must be an integer in [0, 100], got {item.faces!r}")
    if item.box is not None:
        box = tuple(item.box)
        if len(box) != 4 or any(isinstance(v, bool) or not isinstance(v, int) for v in box):
            raise InvalidInput(f"box must be 4 integers (x, y, w, h), got {item.box!r}")
        if box[2] <= 0 or box[3] <= 0:
            raise InvalidInput(f"box width and height must be positive, got {item.box!r}")
        if any(abs(v) > 2**31 - 1 for v in box):
            raise InvalidInput(f"box values out of range: {item.box!r}")
    return item


def readings(items: Sequence[Reading]) -> list[Reading]:
    """Check a whole batch before anything is written (all or nothing)."""
    if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
        raise InvalidInput("readings must be a sequence of Reading")
    checked = []
    for index, item in enumerate(items):
        try:
            checked.append(reading(item))
        except InvalidInput as error:
            raise InvalidInput(f"reading {index}: {error}") from None
    return checked


def reading_row(item: Reading) -> dict[str, object]:
    """The JSON object the SQL functions insert_readings / insert_remote_readings take for one reading."""
    row: dict[str, object] = {
        "id": str(item.id),
        "session_id": str(item.session_id),
        "captured_at": item.captured_at.isoformat(),
        "faces": item.faces,
        "source": item.source,
    }
    row.update({label: float(p) for label, p in zip(LABELS, item.probabilities)})
    # every row has every key (PostgREST bulk inserts take their columns from the rows)
    box = (None, None, None, None) if item.box is None else tuple(int(v) for v in item.box)
    row.update(zip(("box_x", "box_y", "box_w", "box_h"), box))
    return row


def late_readings_refusal(session_id: object, status: str, ended_at: datetime | None, latest_captured_at: datetime,
                          now: datetime) -> str | None:
    """Why a session refuses new readings whose latest capture time is `latest_captured_at` (None: it takes them).

    The rule of the readings_insert policy and public.insert_readings: a live session takes readings; an ended one takes
    those captured by ended_at (+ LATE_READING_TOLERANCE, zero), until ended_at + LATE_READING_GRACE; a scheduled one
    none.
    """
    if status == "live":
        return None
    if status != "ended" or ended_at is None:
        return f"session {session_id} is {status}"
    if now > ended_at + LATE_READING_GRACE:
        return (f"session {session_id} ended at {ended_at.isoformat()}, more than {LATE_READING_GRACE} ago; readings "
                f"captured before the end are accepted for {LATE_READING_GRACE} after it")
    if latest_captured_at > ended_at + LATE_READING_TOLERANCE:
        return (f"session {session_id} ended at {ended_at.isoformat()}; a reading captured at "
                f"{latest_captured_at.isoformat()} is after the end")
    return None
