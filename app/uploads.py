"""What an upload error says to the clinician: what is wrong with the file in their terms, never a server path, a
command line or a traceback (the full error goes to the server log)."""

from __future__ import annotations

import logging
import re

from store.errors import StoreError

log = logging.getLogger(__name__)

_PATH = re.compile(r"(?:[A-Za-z]:)?(?:/[^\s:'\"]+)+")
_CUT_SHORT = re.compile(r"(?:cut short|truncated|ends?) (?:after|at) (\d+(?:\.\d+)?) ?s", re.I)


def video_error_message(error: BaseException) -> str:
    log.warning("video upload failed: %r", error)
    text = str(error)
    if isinstance(error, StoreError):
        return "The database could not be reached, so nothing was saved. Try again in a moment."
    if isinstance(error, (FileNotFoundError,)) or "model" in text.lower() and ("not found" in text.lower() or "missing" in text.lower()):
        return "The emotion model is not installed on this server: ask the administrator."
    if match := _CUT_SHORT.search(text):
        return f"The video is cut short after {float(match.group(1)):g} s: the rest of the file is damaged or missing. Upload the complete file."
    if "no decodable frames" in text or "not a video" in text or "cannot read" in text:
        return "This file is not a video this server can read (or it is damaged). Upload an MP4, MOV, AVI, MKV or WebM recording."
    if isinstance(error, MemoryError):
        return "The video is too large to analyse on this server: upload a shorter recording."
    cleaned = _PATH.sub("the file", text).strip()
    return f"The video could not be analysed: {cleaned}" if cleaned else "The video could not be analysed."


def recording_started_at(path) -> "datetime | None":
    """When the recording began, from the file's own metadata (MP4/MOV `creation_time`), or None when it has none."""
    from datetime import datetime, timezone

    try:
        import av

        with av.open(str(path)) as container:
            tags = dict(container.metadata)
            for stream in container.streams:
                tags = {**dict(stream.metadata), **tags}
    except Exception:  # not readable here: the clinician types the time
        return None
    raw = tags.get("creation_time") or tags.get("com.apple.quicktime.creationdate")
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return None if moment.year < 1990 else moment  # 1904/1970 defaults of cameras that never set their clock
