"""Errors the store raises. Callers catch these, never a driver's own exception types."""


class StoreError(Exception):
    """Base class of every store error."""


class StoreUnavailable(StoreError):
    """The database cannot be reached. Nothing was written; the caller may retry later."""


class NotFound(StoreError):
    """The row does not exist, or the acting user may not see it (the two are deliberately indistinguishable)."""


class PermissionDenied(StoreError):
    """The acting user may not do this (row-level security or a role check refused it)."""


class InvalidInput(StoreError, ValueError):
    """Rejected input: bad probabilities, overlong text, unknown enum value... The message says which field and why."""


class SessionNotLive(StoreError):
    """Readings were sent to a session that is scheduled, or ended before they were captured (stop means stop: in
    database time, no tolerance), or ended longer ago than the late-reading grace period (store.validation.LATE_READING_GRACE)."""


class InvalidToken(StoreError):
    """A remote join token that is unknown, expired, or whose session has ended."""
