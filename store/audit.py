"""Checking the audit log's hash chain: `python -m store.audit verify --database-url ADMIN_URL` (nightly), or *Verify now*
on the Audit page.

Every audit row carries prev_hash (the row_hash of the row before it in the chain) and row_hash (sha256 of its own fields;
20261202010300_audit_chain.sql). This recomputes every hash here, in Python, independently of the database's functions, and
reports the first row that does not match: an edited row breaks its own hash; a deleted, inserted or reordered row breaks
the link of the row after it. Deleting rows at the very end leaves no broken link; compare the printed head (last position
and hash) with one kept elsewhere, e.g. `--expect-head POS:HASH` from an earlier run.

Each verification's result is also recorded, with its time, in `<PSYA_DATA_DIR>/audit-verification.json` (keyed by the
chain's first row hash, so results of different databases never mix): the Audit page shows the last one instead of
walking the whole chain on every load. The record is a convenience, not evidence: the chain itself is the evidence, and
a broken chain is found again by the next verification.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from store.api import Store
from store.errors import StoreError
from store.models import AuditEvent

GENESIS_HASH = "0" * 64
PAGE = 5_000


def _field(value: object) -> str:
    text = "" if value is None else str(value)
    return f"{len(text)}:{text};"


def row_hash(event: AuditEvent, prev_hash: str) -> str:
    """The SQL app.audit_row_hash, recomputed."""
    at = event.at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = "".join(_field(v) for v in (event.chain_pos, event.id, event.actor, event.action, event.entity,
                                       event.entity_id, at, prev_hash))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainReport:
    rows: int  # rows checked
    intact: bool
    broken_at: AuditEvent | None = None  # the first row whose hash or link does not match
    reason: str = ""
    head_pos: int | None = None  # the last row checked (position, hash): keep it to detect a cut-off tail later
    head_hash: str | None = None

    @property
    def summary(self) -> str:
        if self.intact:
            head = f"; head {self.head_pos}:{self.head_hash}" if self.head_pos is not None else ""
            return f"audit chain intact: {self.rows} rows{head}"
        event = self.broken_at
        assert event is not None
        return (f"audit chain BROKEN at position {event.chain_pos} (row id {event.id}, {event.action} {event.entity} "
                f"{event.entity_id} by {event.actor} at {event.at.isoformat()}): {self.reason}")


def verify_events(events: list[AuditEvent], previous_hash: str = GENESIS_HASH) -> ChainReport:
    """Check rows given in chain order (the whole chain from its start when previous_hash is the genesis hash)."""
    last: AuditEvent | None = None
    for count, event in enumerate(events):
        if event.prev_hash != previous_hash:
            reason = ("its link does not point at the row before it: a row before it was deleted, inserted or edited"
                      if count or previous_hash != GENESIS_HASH else "the first row does not start the chain")
            return ChainReport(count, False, event, reason)
        expected = row_hash(event, previous_hash)
        if event.row_hash != expected:
            return ChainReport(count, False, event, "its fields do not match its hash: the row was edited")
        previous_hash, last = event.row_hash, event
    return ChainReport(len(events), True, head_pos=last.chain_pos if last else None,
                       head_hash=last.row_hash if last else None)


def verify_chain(store: Store, expect_head: str | None = None) -> ChainReport:
    """Walk the whole chain through the store (admin or system actor), page by page."""
    previous, after, checked, last = GENESIS_HASH, 0, 0, None
    while True:
        page = store.audit_chain(after=after, limit=PAGE)
        if not page:
            break
        report = verify_events(page, previous)
        if not report.intact:
            return ChainReport(checked + report.rows, False, report.broken_at, report.reason)
        checked += report.rows
        last = page[-1]
        previous, after = last.row_hash or "", int(last.chain_pos or 0)
    report = ChainReport(checked, True, head_pos=last.chain_pos if last else None,
                         head_hash=last.row_hash if last else None)
    if expect_head:
        position, _, digest = expect_head.partition(":")
        known = {e.chain_pos: e.row_hash for e in store.audit_chain(after=max(int(position) - 1, 0), limit=1)}
        if known.get(int(position)) != digest:
            return ChainReport(checked, False, last, f"the expected head {expect_head} is no longer in the chain: "
                                                     "rows at or before it were removed or changed")
    return report


# --- the last verification, recorded for the Audit page ----------------------------------------------------------------

VERIFICATION_FILE = "audit-verification.json"


@dataclass(frozen=True)
class VerificationRecord:
    verified_at: datetime
    by: str  # "Audit page (<who>)" or "python -m store.audit verify"
    rows: int
    intact: bool
    summary: str  # ChainReport.summary
    head_pos: int | None
    seconds: float  # how long the walk took


def chain_id(store: Store) -> str:
    """Which chain this is: its first row's hash (unique per database: it covers the row's time), "empty" before any."""
    first = store.audit_chain(after=0, limit=1)
    return (first[0].row_hash or "") if first else "empty"


def record_verification(path: Path, chain: str, record: VerificationRecord) -> None:
    """Keep `record` as the last verification of `chain` in the JSON file at `path` (written atomically)."""
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
        known = known if isinstance(known, dict) else {}
    except (OSError, ValueError):
        known = {}
    known[chain] = {**asdict(record), "verified_at": record.verified_at.isoformat()}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".audit-verification-")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(known, out, indent=1)
    os.replace(temporary, path)


def last_verification(path: Path, chain: str) -> VerificationRecord | None:
    """The last recorded verification of `chain`, or None (none yet, or an unreadable file)."""
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))[chain]
        return VerificationRecord(**{**entry, "verified_at": datetime.fromisoformat(entry["verified_at"])})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m store.audit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    verify = commands.add_parser("verify", help="recompute the audit log's hash chain; exit 1 at the first broken link")
    verify.add_argument("--database-url", help="admin URL; default: the app's settings (DATABASE_URL, or embedded)")
    verify.add_argument("--expect-head", metavar="POS:HASH", help="a head printed by an earlier run, to detect a cut tail")
    verify.add_argument("--no-record", action="store_true",
                        help=f"do not record the result in <PSYA_DATA_DIR>/{VERIFICATION_FILE} (shown on the Audit page)")
    args = parser.parse_args(argv)

    from settings import Settings
    from store import open_store
    from store.postgres import PostgresStore

    settings = Settings.load()
    try:
        store = PostgresStore.connect(args.database_url, max_size=1) if args.database_url else open_store(settings)
        try:
            started = datetime.now(timezone.utc)
            report = verify_chain(store, args.expect_head)
            finished = datetime.now(timezone.utc)
            chain = chain_id(store)
        finally:
            store.close()
    except (StoreError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(report.summary)
    if not args.no_record:
        record = VerificationRecord(finished, "python -m store.audit verify", report.rows, report.intact, report.summary,
                                    report.head_pos, (finished - started).total_seconds())
        try:
            record_verification(settings.data_dir / VERIFICATION_FILE, chain, record)
        except OSError as error:  # the check itself succeeded; only the note for the Audit page failed
            print(f"warning: could not record the result for the Audit page: {error}", file=sys.stderr)
    return 0 if report.intact else 1


if __name__ == "__main__":
    sys.exit(main())
