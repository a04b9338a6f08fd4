"""Offline analysis of a recorded session video: `python -m pi_agent analyze`. The analysis itself is `fer.video`
(shared with the web app's recorded-video import); this module adds what is the agent's: the CSV file and readings for
the store.

Each analysed frame with the patient's face becomes one row: `t` (seconds into the video), the 7 probabilities in
`fer.LABELS` order, the dominant label and the face box in the video's own pixels. Nothing of the video itself is kept.
"""

from __future__ import annotations

import csv
import tempfile
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path

from fer.labels import LABELS
from fer.video import (VideoAnalysis, VideoError, VideoFaceRow, VideoIncompleteError, analyze_video, check_fps,
                       reading_id)
from store.models import Reading

__all__ = ["CSV_COLUMNS", "VideoAnalysis", "VideoError", "VideoFaceRow", "VideoIncompleteError", "analyze_video",
           "check_csv_target", "check_fps", "readings_for_session", "write_csv"]

CSV_COLUMNS: tuple[str, ...] = ("t", *LABELS, "dominant", "x", "y", "w", "h")


def check_csv_target(out: Path | str) -> Path:
    """Refuse an output CSV that cannot be written before minutes of analysis, not after: raises VideoError.

    Tried for real (a temporary file in the folder that will hold it, or opening the existing file for appending):
    permission bits say nothing for root or on a read-only mount."""
    out = Path(out)
    if out.is_dir():
        raise VideoError(f"cannot write the CSV {out}: it is a folder")
    existing = out.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(f"{existing} is not a folder")
        if out.exists():
            with out.open("a"):
                pass
        else:
            with tempfile.NamedTemporaryFile(dir=existing, prefix=".psya-csv-check-"):
                pass
    except OSError as error:
        raise VideoError(f"cannot write the CSV {out}: {error.strerror or error}") from None
    return out


def write_csv(rows: Iterable[VideoFaceRow], out: Path | str) -> int:
    """Write the rows with the stable column set `CSV_COLUMNS`; returns how many rows were written."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with out.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for row in rows:
            writer.writerow(row.csv_row())
            count += 1
    return count


def readings_for_session(analysis: VideoAnalysis, session_id: uuid.UUID, video_started_at: datetime) -> list[Reading]:
    """The rows as readings (source "video"), stamped `video_started_at + t`, with ids stable across re-runs."""
    return [
        Reading(
            id=reading_id(session_id, analysis, n),
            session_id=session_id,
            captured_at=video_started_at + timedelta(seconds=row.t),
            probabilities=row.probabilities,
            source="video",
            box=row.box,
            faces=row.faces_in_frame,
        )
        for n, row in enumerate(analysis.rows)
    ]
