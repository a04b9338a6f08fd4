"""Remote sessions analysed in the patient's browser: the video never leaves their device.

The join page embeds a Streamlit custom component (built from `frontend/` into `frontend/build` by `make`) that runs the
shipped FER model and BlazeFace through LiteRT.js on the patient's own camera, and hands back only readings (capture time,
7 probabilities, face box, face count, quality), batched about once a second. This module is the server's half, without
Streamlit (pages/join.py renders):

    browser batch {seq, sent_at, readings[]} --parse_batch (checks every field: nothing trusts the client; capture times
                                                moved onto the server's clock, BrowserClock)-->
    BrowserReadingIntake (drops ids it already has) --ReadingBatchWriter (app/remote.py: retry, back-off)-->
    store.insert_remote_readings(token, batch)          ack = seq  --> the browser forgets those readings

The model the browser runs is the configured one (settings.model_path, else fer/models/fer_edge_int8.tflite) with its
sidecar read at run time: `model_assets` copies the model files, named by content hash, into the component's static
folder (a replaced model is served at once, never a stale cached one) and describes them with the sidecar JSON and the
tensor types and quantisation Python's own interpreter reports.

Which mode a session runs in is kept per process (`session_modes`) for the clinician's dashboard: "browser", or "server"
when REMOTE_ANALYSIS=server or when the patient's browser could not run the model (the reason is shown). So is when the
patient's page last sent a batch (`last_batch_at`): the page sends one about once a second while it is open, an empty one
when no face is seen, so batches that stop mean the patient is gone (tab closed, network lost) and batches without
readings mean no face (app/presence.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import threading
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Literal

from app.remote import ReadingBatchWriter, WriterStatus
from settings import PROJECT_ROOT, Settings
from store.models import Reading

log = logging.getLogger(__name__)

FRONTEND_DIR = PROJECT_ROOT / "frontend"
BUILD_DIR = FRONTEND_DIR / "build"
BUILD_COMMAND = "make frontend"
REQUIRED_BUILD_FILES = ("index.html", "bundle.js", "wasm/litert_wasm_internal.wasm", "wasm/litert_wasm_compat_internal.wasm")

AnalysisMode = Literal["browser", "server"]
LABEL_COUNT = 7
MAX_READINGS_PER_BATCH = 500
MAX_FACE_COUNT = 50
MAX_BOX_SIDE = 20_000  # pixels: far beyond any camera, small enough to catch garbage
# Capture times, once moved onto the server's clock (BrowserClock): the store enforces the session window; this only
# refuses the absurd.
MAX_CLOCK_SKEW = timedelta(minutes=10)
MAX_READING_AGE = timedelta(hours=24)
# A reading is captured before the batch that carries it is sent; this much later is a clock read twice, not a reading.
CAPTURED_AFTER_SENT_SLACK = timedelta(seconds=1)
BROWSER_CLOCK_SAMPLES = 10  # batches are about a second apart: the best of the last ~10 s
LARGE_BROWSER_OFFSET = timedelta(seconds=2)  # worth a line in the log
SEEN_IDS_KEPT = 20_000  # reading ids remembered per stream to drop re-sent readings before they reach the store


class BrowserAnalysisUnavailable(RuntimeError):
    """The server cannot offer browser analysis (bundle not built, model missing): server mode is used instead."""


# --- the component's files -------------------------------------------------------------------------------------------


def build_problem(build_dir: Path | None = None) -> str:
    """Empty when the built component is complete, else what is missing (and the command that builds it)."""
    build_dir = build_dir or BUILD_DIR
    missing = [name for name in REQUIRED_BUILD_FILES if not (build_dir / name).is_file()]
    if missing:
        return f"the browser analysis bundle is not built ({', '.join(missing)} missing in {build_dir}; run `{BUILD_COMMAND}`)"
    return ""


def _tensor_spec(detail: Mapping[str, Any], *, batch_one: bool = True) -> dict[str, Any]:
    import numpy as np

    shape = [int(v) for v in detail["shape"]]
    if batch_one and shape:
        shape[0] = 1  # one face per call: LiteRT.js failed with batches > 1 (issue 14)
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return {"dtype": np.dtype(detail["dtype"]).name, "shape": shape, "scale": float(scale or 0.0), "zero_point": int(zero_point or 0)}


def _copy_by_content(source: Path, folder: Path) -> str:
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    name = f"{source.stem}-{digest}{source.suffix}"
    target = folder / name
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{name}.partial"
        shutil.copyfile(source, partial)
        partial.replace(target)  # atomic: a browser never fetches half a model
    return f"./models/{name}"


_assets_lock = threading.Lock()
_assets_cache: dict[tuple, dict[str, Any]] = {}


def model_assets(settings: Settings, build_dir: Path | None = None) -> dict[str, Any]:
    """What the component loads: {"classifier": {url, spec}, "detector": {url, spec}}, from the configured model.

    The classifier's spec carries the sidecar JSON as read now (validated by fer's own parser, so a model fer refuses
    is refused here too) and its input/output tensor types and quantisation; cached per file version (path, size, mtime)."""
    from fer.classifier import DEFAULT_MODEL_PATH, EmotionClassifier
    from fer.detection import BLAZEFACE_MODEL_PATH
    from fer.metadata import sidecar_path
    from fer.runtime import default_runtime

    build_dir = build_dir or BUILD_DIR
    model_path = Path(settings.model_path) if settings.model_path else DEFAULT_MODEL_PATH
    sidecar = sidecar_path(model_path)
    files = (model_path, sidecar, BLAZEFACE_MODEL_PATH)
    try:
        key = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files) + (str(build_dir),)
    except OSError as error:
        raise BrowserAnalysisUnavailable(f"model file missing: {error}") from error
    with _assets_lock:
        if key in _assets_cache:
            return _assets_cache[key]
        EmotionClassifier.load(model_path)  # fer's checks: header, sidecar fields, tensor shapes (raises FerError)
        runtime = default_runtime()
        classifier = runtime.make_interpreter(str(model_path), 1)
        classifier.allocate_tensors()
        detector = runtime.make_interpreter(str(BLAZEFACE_MODEL_PATH), 1)
        detector.allocate_tensors()
        models = build_dir / "models"
        assets = {
            "classifier": {
                "url": _copy_by_content(model_path, models),
                "spec": {
                    "sidecar": json.loads(sidecar.read_text()),
                    "input": _tensor_spec(classifier.get_input_details()[0]),
                    "output": _tensor_spec(classifier.get_output_details()[0]),
                },
            },
            "detector": {
                "url": _copy_by_content(BLAZEFACE_MODEL_PATH, models),
                "spec": {
                    "inputs": [_tensor_spec(d) for d in detector.get_input_details()],
                    "outputs": [_tensor_spec(d) for d in detector.get_output_details()],
                },
            },
        }
        _assets_cache.clear()
        _assets_cache[key] = assets
        return assets


# --- batches from the browser ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedBatch:
    seq: int
    readings: list[Reading]
    rejected: list[str]  # one line per refused reading: what was wrong
    stats: dict[str, float]
    clock_offset: timedelta = timedelta(0)  # server time - browser time applied to its capture times (BrowserClock)


class InvalidBatch(ValueError):
    """The component value is not a readings batch at all (refused whole; nothing from it is stored)."""


def _browser_time(millis: float) -> datetime:
    """Milliseconds since 1970 on some clock -> an aware datetime; ValueError when no datetime can hold it."""
    try:
        return datetime.fromtimestamp(millis / 1000, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise ValueError(f"{millis!r} ms since 1970 is not a time") from None


class BrowserClock:
    """The patient's browser clock against this server's, measured on the batches themselves, so the readings are
    stored in the session's clock (the one Stop is stamped in) however the patient's computer clock is set.

    Each batch carries `sent_at`, the browser's clock when it sent the batch; the server notes when it received it.
    received - sent = offset + delay, with delay >= 0 (websocket, a Streamlit rerun that had to wait), so the smallest
    difference of the last few batches is the best estimate of the offset: one batch that sat in a busy rerun does not
    move it. A capture time is then browser time + offset. What error remains is the smallest delay seen (tens of ms),
    always in one direction: a reading is filed at most that much later than it was captured, never earlier, so nothing
    captured after Stop is ever filed before it. The first batch counts at once; a batch without `sent_at` (a cached
    old bundle) adds nothing, and until one arrives the offset is 0 (the store's bounds still apply).

    Nothing here trusts the client beyond that: the corrected times go through the same bounds as before (MAX_CLOCK_SKEW
    against the server's clock here, the session's window in the database), and a reading "captured" after its batch
    was sent is refused."""

    def __init__(self, samples_kept: int = BROWSER_CLOCK_SAMPLES) -> None:
        self._differences: deque[timedelta] = deque(maxlen=samples_kept)
        self._last_seq = 0
        self._lock = threading.Lock()

    def observe(self, seq: int, sent_at: datetime, received_at: datetime) -> timedelta:
        """Note batch `seq` (the first time it is seen; a value seen again on another rerun adds nothing)."""
        with self._lock:
            if seq > self._last_seq:
                self._last_seq = seq
                self._differences.append(received_at - sent_at)
            return self._offset()

    @property
    def offset(self) -> timedelta:
        """Server time - browser time; 0 until a batch with `sent_at` arrived."""
        with self._lock:
            return self._offset()

    def _offset(self) -> timedelta:
        return min(self._differences) if self._differences else timedelta(0)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def parse_reading(raw: Any, session_id: uuid.UUID, now: datetime, clock_offset: timedelta = timedelta(0),
                  sent_at: datetime | None = None) -> Reading:
    """One reading from the browser, checked field by field; ValueError says what is wrong. Its capture time is moved
    onto the server's clock by `clock_offset` (BrowserClock) before any bound is checked."""
    if not isinstance(raw, Mapping):
        raise ValueError("not an object")
    try:
        reading_id = uuid.UUID(str(raw.get("id")))
    except ValueError:
        raise ValueError(f"id {raw.get('id')!r} is not a UUID") from None
    millis = _number(raw.get("t"))
    if millis is None:
        raise ValueError("t (capture time, ms since 1970) missing or not a number")
    browser_time = _browser_time(millis)
    if sent_at is not None and browser_time > sent_at + CAPTURED_AFTER_SENT_SLACK:
        raise ValueError(f"capture time {browser_time.isoformat()} is after its batch was sent ({sent_at.isoformat()})")
    try:
        captured_at = browser_time + clock_offset
    except OverflowError:
        raise ValueError(f"capture time {browser_time.isoformat()} is too far from the server's clock") from None
    if captured_at > now + MAX_CLOCK_SKEW or captured_at < now - MAX_READING_AGE:
        raise ValueError(f"capture time {captured_at.isoformat()} is too far from the server's clock")
    probabilities = raw.get("p")
    if not isinstance(probabilities, Sequence) or isinstance(probabilities, (str, bytes)) or len(probabilities) != LABEL_COUNT:
        raise ValueError(f"p must be {LABEL_COUNT} probabilities")
    values = [_number(v) for v in probabilities]
    if any(v is None or v < 0 or v > 1 for v in values):
        raise ValueError("p holds a value that is not a probability")
    total = sum(values)  # type: ignore[arg-type]
    if not 0.98 <= total <= 1.02:
        raise ValueError(f"p sums to {total:.4f}, not 1")
    box = raw.get("box")
    if not isinstance(box, Sequence) or isinstance(box, (str, bytes)) or len(box) != 4:
        raise ValueError("box must be [x, y, w, h]")
    sides = [_number(v) for v in box]
    if any(v is None or v != int(v) for v in sides):
        raise ValueError("box values must be whole pixels")
    x, y, w, h = (int(v) for v in sides)  # type: ignore[arg-type]
    if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > MAX_BOX_SIDE or y + h > MAX_BOX_SIDE:
        raise ValueError(f"box {[x, y, w, h]} is not a face in a camera frame")
    faces = raw.get("faces")
    if isinstance(faces, bool) or not isinstance(faces, int) or not 1 <= faces <= MAX_FACE_COUNT:
        raise ValueError(f"faces must be a whole number 1..{MAX_FACE_COUNT}")
    quality = raw.get("quality", {})
    if not isinstance(quality, Mapping) or any(_number(v) is None for v in quality.values()):
        raise ValueError("quality must be an object of numbers")
    return Reading(
        session_id=session_id,
        captured_at=captured_at,
        probabilities=tuple(float(v) / total for v in values),  # type: ignore[operator]
        source="remote",
        box=(x, y, w, h),
        faces=faces,
        id=reading_id,
    )


def parse_batch(value: Any, session_id: uuid.UUID, now: datetime | None = None,
                clock: BrowserClock | None = None) -> ParsedBatch:
    """A `{"kind": "readings", "seq", "sent_at", "readings", "stats"}` value; bad readings are refused one by one
    (listed). `now` is when the server received it; with `clock` (the stream's BrowserClock) the batch's `sent_at` is
    measured and every capture time moved onto the server's clock."""
    now = now or datetime.now(timezone.utc)
    if not isinstance(value, Mapping) or value.get("kind") != "readings":
        raise InvalidBatch("not a readings batch")
    seq = value.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 1:
        raise InvalidBatch(f"seq must be a positive whole number, got {seq!r}")
    raw_readings = value.get("readings")
    if not isinstance(raw_readings, list):
        raise InvalidBatch("readings must be a list")
    if len(raw_readings) > MAX_READINGS_PER_BATCH:
        raise InvalidBatch(f"{len(raw_readings)} readings in one batch (at most {MAX_READINGS_PER_BATCH})")
    sent_at = None
    if value.get("sent_at") is not None:
        sent_millis = _number(value.get("sent_at"))
        try:
            sent_at = _browser_time(sent_millis) if sent_millis is not None else None
        except ValueError:
            sent_at = None
        if sent_at is None:
            raise InvalidBatch(f"sent_at must be the browser's clock in ms since 1970, got {value.get('sent_at')!r}")
    offset = timedelta(0)
    if clock is not None:
        offset = clock.observe(seq, sent_at, now) if sent_at is not None else clock.offset
    readings, rejected = [], []
    for index, raw in enumerate(raw_readings):
        try:
            readings.append(parse_reading(raw, session_id, now, offset, sent_at))
        except ValueError as error:
            rejected.append(f"reading {index}: {error}")
    raw_stats = value.get("stats") if isinstance(value.get("stats"), Mapping) else {}
    stats = {str(k): v for k, v in ((k, _number(v)) for k, v in raw_stats.items()) if v is not None}
    return ParsedBatch(seq, readings, rejected, stats, offset)


# --- one patient's browser stream -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IntakeStatus:
    batches: int
    readings_received: int  # readings that arrived, re-sent ones included
    readings_accepted: int  # new readings handed to the writer
    duplicates: int  # re-sent readings dropped (already accepted)
    rejected: int  # readings refused as invalid
    acked_seq: int
    frames_analysed: int  # as the browser reports it (for the patient's status line)
    frames_without_face: int
    mean_analysis_ms: float  # the browser's own analysis time per frame
    writer: WriterStatus
    last_rejection: str = ""
    clock_offset: timedelta = timedelta(0)  # server time - the patient's browser time, applied to capture times


class BrowserReadingIntake:
    """Readings from one patient's browser into the store: dedup by reading id, then the same batch writer as server
    mode (`ReadingBatchWriter`: batched writes, retry with back-off, nothing lost or doubled, closing when the session
    ends).

    `accept` returns the sequence number to acknowledge. A batch is acknowledged once its readings are in the writer's
    queue: from there the writer retries until the store has them (a database outage costs nothing); the browser
    re-sends whatever was not acknowledged (a lost websocket message costs nothing either)."""

    def __init__(self, session_id: uuid.UUID, write: Callable[[Sequence[Reading]], int], write_interval_s: float = 1.0,
                 on_closed: Callable[[str], None] | None = None) -> None:
        self.session_id = session_id
        self.writer = ReadingBatchWriter(write, interval_s=write_interval_s, name=f"browser-writer-{session_id}",
                                         on_closed=on_closed)
        self._lock = threading.Lock()
        self._seen: OrderedDict[uuid.UUID, None] = OrderedDict()
        self._acked = 0
        self._batches = self._received = self._accepted = self._duplicates = self._rejected = 0
        self._stats: dict[str, float] = {}
        self._last_rejection = ""
        self.clock = BrowserClock()  # the patient's browser clock against the server's, for parse_batch
        self._clock_offset = timedelta(0)
        self._offset_logged = False

    def accept(self, batch: ParsedBatch) -> int:
        with self._lock:
            if batch.seq <= self._acked:
                return self._acked  # the same component value seen on another rerun: already handled
            note_batch(self.session_id)  # a new batch, readings or not: the patient's page is there
            self._batches += 1
            self._received += len(batch.readings) + len(batch.rejected)
            self._rejected += len(batch.rejected)
            if batch.rejected:
                self._last_rejection = batch.rejected[-1]
                log.warning("browser readings refused for session %s: %s", self.session_id, "; ".join(batch.rejected[:5]))
            self._stats = batch.stats
            self._clock_offset = batch.clock_offset
            if abs(batch.clock_offset) > LARGE_BROWSER_OFFSET and not self._offset_logged:
                self._offset_logged = True
                log.info("the patient's browser clock for session %s is %.1f s %s the server's; readings are corrected",
                         self.session_id, abs(batch.clock_offset.total_seconds()),
                         "behind" if batch.clock_offset > timedelta(0) else "ahead of")
            fresh = [r for r in batch.readings if r.id not in self._seen]
            self._duplicates += len(batch.readings) - len(fresh)
            for reading in fresh:
                if not self.writer.add(reading):
                    break  # the session no longer takes readings (writer closed): nothing more to store
                self._accepted += 1
                self._seen[reading.id] = None
                if len(self._seen) > SEEN_IDS_KEPT:
                    self._seen.popitem(last=False)
            self._acked = batch.seq
            return self._acked

    def status(self) -> IntakeStatus:
        with self._lock:
            stats = dict(self._stats)
            return IntakeStatus(
                batches=self._batches, readings_received=self._received, readings_accepted=self._accepted,
                duplicates=self._duplicates, rejected=self._rejected, acked_seq=self._acked,
                frames_analysed=int(stats.get("frames_analysed", 0)),
                frames_without_face=int(stats.get("frames_without_face", 0)),
                mean_analysis_ms=float(stats.get("mean_analysis_ms", 0.0)),
                writer=self.writer.status(), last_rejection=self._last_rejection, clock_offset=self._clock_offset,
            )

    @property
    def closed_reason(self) -> str:
        return self.writer.status().closed_reason

    def stop(self, flush_timeout: float = 5.0) -> WriterStatus:
        return self.writer.stop(flush_timeout)


# --- which mode each session runs in (process-wide, for the clinician's dashboard) -----------------------------------


@dataclass(frozen=True)
class ModeReport:
    mode: AnalysisMode
    reason: str = ""  # why server mode (empty in browser mode or when configured)
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))


_modes: dict[uuid.UUID, ModeReport] = {}
_modes_lock = threading.Lock()


def report_mode(session_id: uuid.UUID, mode: AnalysisMode, reason: str = "") -> None:
    with _modes_lock:
        current = _modes.get(session_id)
        if current is None or (current.mode, current.reason) != (mode, reason):
            _modes[session_id] = ModeReport(mode, reason)
            log.info("remote session %s analysed in %s mode%s", session_id, mode, f" ({reason})" if reason else "")


_last_batches: dict[uuid.UUID, datetime] = {}


def note_batch(session_id: uuid.UUID, at: datetime | None = None) -> None:
    """A new batch (with readings or without: the page's heartbeat) arrived from this session's patient page."""
    with _modes_lock:
        _last_batches[session_id] = at or datetime.now(timezone.utc)


def last_batch_at(session_id: uuid.UUID) -> datetime | None:
    """When the patient's page last sent a batch to this server process (None: never, or before a restart)."""
    with _modes_lock:
        return _last_batches.get(session_id)


def session_mode(session_id: uuid.UUID) -> ModeReport | None:
    """The mode the patient's page chose for this session in this server process (None until the patient joins)."""
    with _modes_lock:
        return _modes.get(session_id)


def configured_mode(settings: Settings) -> AnalysisMode:
    return settings.remote_analysis  # type: ignore[return-value]


def mode_caption(settings: Settings, session_id: uuid.UUID, video_frames_received: int, relayed: bool = False) -> str:
    """The clinician's line about where this session's analysis runs and, in server mode, whether the patient's video
    is relayed to the dashboard (`relayed`: app.remote.video_relayed)."""
    report = session_mode(session_id)
    if report is None:
        where = "in the patient's browser" if configured_mode(settings) == "browser" else "on this server"
        return (f":material/hourglass_empty: Analysis mode: waiting for the patient (configured: {where}; "
                "a browser that cannot run the model falls back to the server).")
    if report.mode == "browser":
        return (":material/devices: Analysis mode: **in the patient's browser**. Their video stays on their device; "
                f"video frames received by this server for this session: {video_frames_received}. "
                "Run your usual video call beside this dashboard.")
    because = f" because {report.reason}" if report.reason else " (REMOTE_ANALYSIS=server)"
    if relayed:
        shown = "and relayed to this dashboard (you chose the relay when starting; the patient was told)."
    else:
        shown = ("for analysis only: **no video is relayed to this dashboard**. Run your usual video call beside it "
                 "(the relay is an option when starting a server-mode session, with REMOTE_VIDEO_RELAY=on).")
    return f":material/dns: Analysis mode: **on this server**{because}. The patient's video is streamed to this server {shown}"
