"""Retention of ended sessions' readings: `python -m store.retention apply [--dry-run] [--days N]`.

Deletes the readings of sessions that ended more than READINGS_RETENTION_DAYS days ago (the setting; --days overrides it
for one run). Sessions, annotations and the medical record stay; only the readings expire. Unset (the default) keeps
readings forever and the command does nothing. Run it with --dry-run first: it lists what would be deleted and deletes
nothing. Cron-able: one line per session, a total line, exit 0 on success, 1 when the database cannot be reached,
2 for a bad setting. E.g. daily at 03:15:  15 3 * * *  cd /opt/psya && .venv/bin/python -m store.retention apply
Works on every backend (public.apply_retention, supabase/migrations/20261202050100_patient_rights_functions.sql).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import timedelta

from store.errors import InvalidInput, StoreError, StoreUnavailable
from store.models import RetentionItem
from store.validation import LATE_READING_GRACE


def describe(items: Sequence[RetentionItem], dry_run: bool, days: int) -> list[str]:
    verb = "would delete" if dry_run else "deleted"
    lines = [f"session {i.session_id} (patient {i.patient_id}, ended {i.ended_at:%Y-%m-%d %H:%M} UTC): {verb} "
             f"{i.readings} readings" for i in items]
    total = sum(i.readings for i in items)
    lines.append(f"{'dry run: ' if dry_run else ''}{verb} {total} readings of {len(items)} sessions ended more than "
                 f"{days} days ago")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m store.retention", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    apply = commands.add_parser("apply", help="delete the readings past the retention period")
    apply.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
    apply.add_argument("--days", type=int, help="retention in days for this run (default: READINGS_RETENTION_DAYS)")
    args = parser.parse_args(argv)

    from settings import Settings
    from store import open_store

    try:
        settings = Settings.load()
    except ValueError as error:
        print(f"bad setting: {error}", file=sys.stderr)
        return 2
    days = args.days if args.days is not None else settings.readings_retention_days
    if days is None:
        print("READINGS_RETENTION_DAYS is not set: readings are kept; nothing to do")
        return 0
    minimum = -(-LATE_READING_GRACE // timedelta(days=1))  # whole days, rounded up
    if days < minimum:
        print(f"the retention must be at least {minimum} day(s) (late readings are accepted for {LATE_READING_GRACE} "
              f"after a session ends), got {days}", file=sys.stderr)
        return 2
    try:
        store = open_store(settings)
        try:
            items = store.apply_retention(timedelta(days=days), dry_run=args.dry_run)
        finally:
            store.close()
    except StoreUnavailable as error:
        print(f"database unreachable: {error}", file=sys.stderr)
        return 1
    except InvalidInput as error:
        print(str(error), file=sys.stderr)
        return 2
    except StoreError as error:
        print(f"retention failed: {error}", file=sys.stderr)
        return 1
    print("\n".join(describe(items, args.dry_run, days)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
