"""Remote-session benchmark: how many patients one server can analyse, and what the rate limit costs.

Rows:
- one frame through the `fer` video pipeline (tracked: BlazeFace to acquire and every 15th frame, the short-range
  model around the patient's last box otherwise, + the model) at 640x480, single thread: the unit of server work per
  analysed frame;
- the WebRTC media work per camera frame (aiortc's VP8 decode of the patient's camera, encode of the self-view sent
  back), and from both the CPU share of one patient and how many patients the cores could serve;
- N simulated patients at once (1, 3, 6), each a camera at 30 fps feeding its own `RemoteAnalyzer` (rate limiter,
  one-frame slot, analysis thread, batch writer) for a fixed time, all sharing the process-wide analysis gate:
  analysed frames per second per patient against the target `REMOTE_ANALYSIS_FPS`, frames dropped, batches written
  and the process CPU use. The writer here counts batches instead of writing (the store's insert rate is the store
  section's number), so the rows isolate analysis capacity.

WebRTC itself (browser -> aiortc decode) is not in these rows; `tests/e2e/test_remote.py` prints the time from
"Start camera" to the first stored reading over loopback.
"""

from __future__ import annotations

import os
import resource
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.table import Section

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("FER_SHARED_DIR", PROJECT_ROOT.parent / "shared"))
TARGET_FPS = 4.0
CAMERA_FPS = 30.0  # the simulated cameras in the capacity rows (the worst case: a browser ignoring the 15 fps cap)
PATIENT_CAMERA_FPS = 15.0  # what the join page asks the browser for (app.webrtc_session.PATIENT_MEDIA_CONSTRAINTS)
SECONDS_PER_RUN = 8.0
PATIENT_COUNTS = (1, 3, 6)


def _frames() -> list[np.ndarray]:
    import cv2

    from tests.e2e.fixtures_video import compose_frame, pick_face_images

    images = pick_face_images(SHARED_DIR / "datasets" / "fer2013", per_class=2)
    return [cv2.cvtColor(compose_frame(cv2.imread(str(p), cv2.IMREAD_GRAYSCALE), (200, 120, 240, 240)), cv2.COLOR_GRAY2BGR)
            for p in images]


def _analyze_fn():
    from app.remote import make_analyze
    from settings import Settings
    from tests.e2e.fixtures_video import model_for_tests

    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-remote-model-{os.getpid()}"
    settings = Settings.load()
    model_path = settings.model_path or model_for_tests(SHARED_DIR / "anchors", folder)
    return make_analyze(Settings(model_path=model_path)), (model_path.name if model_path else "shipped model")


class _CountingWrite:
    def __init__(self) -> None:
        self.batches = 0
        self.readings = 0
        self._lock = threading.Lock()

    def __call__(self, batch: Sequence) -> int:
        with self._lock:
            self.batches += 1
            self.readings += len(batch)
        return len(batch)


def _media_ms(frames: list[np.ndarray], repeats: int = 3) -> tuple[float, float]:
    """What aiortc spends per frame on one patient's video, with its own VP8 codecs: decode what the browser sent,
    encode the self-view sent back (SENDRECV)."""
    import fractions

    import av
    from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder
    from aiortc.jitterbuffer import JitterFrame

    encoder, decoder = Vp8Encoder(), Vp8Decoder()
    source = [av.VideoFrame.from_ndarray(f, format="bgr24").reformat(format="yuv420p") for f in frames]
    encode_s = decode_s = 0.0
    count = 0
    for i, frame in enumerate(source * repeats * 5):
        frame.pts, frame.time_base = i * 6000, fractions.Fraction(1, 90000)
        started = time.thread_time()
        payloads, _ = encoder.encode(frame)
        encode_s += time.thread_time() - started
        data = b"".join(decoder_payload(p) for p in payloads)
        started = time.thread_time()
        decoder.decode(JitterFrame(data=data, timestamp=i * 6000))
        decode_s += time.thread_time() - started
        count += 1
    return decode_s / count * 1000, encode_s / count * 1000


def decoder_payload(packet: bytes) -> bytes:
    """Strip aiortc's VP8 RTP payload descriptor so the decoder gets the raw bitstream."""
    from aiortc.codecs.vpx import VpxPayloadDescriptor

    _, data = VpxPayloadDescriptor.parse(packet)
    return data


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _run_patients(count: int, analyze, frames: list[np.ndarray], gate: threading.Semaphore) -> dict[str, float]:
    from app.remote import RemoteAnalyzer

    writes = [_CountingWrite() for _ in range(count)]
    analyzers = [RemoteAnalyzer(uuid.uuid4(), analyze, w, analysis_fps=TARGET_FPS, analysis_gate=gate) for w in writes]
    stop = threading.Event()

    def camera(analyzer: RemoteAnalyzer, offset: int) -> None:
        n = offset
        next_at = time.monotonic()
        while not stop.is_set():
            analyzer.offer(frames[n % len(frames)])
            n += 1
            next_at += 1 / CAMERA_FPS
            time.sleep(max(0.0, next_at - time.monotonic()))

    cameras = [threading.Thread(target=camera, args=(a, i), daemon=True) for i, a in enumerate(analyzers)]
    cpu_before, started = _cpu_seconds(), time.monotonic()
    for t in cameras:
        t.start()
    time.sleep(SECONDS_PER_RUN)
    stop.set()
    for t in cameras:
        t.join()
    elapsed = time.monotonic() - started
    statuses = [a.stop() for a in analyzers]
    cpu = _cpu_seconds() - cpu_before
    received = sum(s.frames_received for s in statuses)
    analysed = [s.frames_analysed / elapsed for s in statuses]
    return {
        "patients": count,
        "analysed_fps_min": min(analysed),
        "analysed_fps_mean": float(np.mean(analysed)),
        "dropped_pct": 100.0 * (received - sum(s.frames_analysed for s in statuses)) / max(1, received),
        "batches_per_s": sum(w.batches for w in writes) / elapsed,
        "cpu_pct": 100.0 * cpu / elapsed,
    }


def run() -> Section:
    section = Section(
        "Remote sessions: server-side analysis capacity",
        ["measure", "patients", "value", "unit"],
    )
    if not (SHARED_DIR / "datasets" / "fer2013").is_dir():
        section.skipped = f"FER2013 not found under {SHARED_DIR}"
        return section
    from app.remote import default_analysis_gate

    frames = _frames()
    analyze, model_name = _analyze_fn()
    analyze(frames[0])  # load the thread's model before timing
    wall, cpu = [], []
    for i in range(40):
        t, c = time.perf_counter(), time.thread_time()
        analyze(frames[i % len(frames)])
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.thread_time() - c) * 1000)
    per_frame_ms = float(np.median(cpu))  # CPU time: on a shared machine wall time also counts waiting for a core
    section.add("analysis per frame (tracked pipeline: detect or track + classify, 640x480), median CPU time", 1,
                per_frame_ms, "ms (goal <= 4)")
    section.add("analysis per frame, mean CPU time (whole-frame detection every 15th frame included)", 1,
                float(np.mean(cpu)), "ms")
    section.add("analysis per frame, median wall time (this machine, now)", 1, float(np.median(wall)), "ms")
    cores = os.cpu_count() or 1
    capacity = cores * 1000.0 / per_frame_ms / TARGET_FPS
    section.add(f"patients at {TARGET_FPS:g} fps the CPU could analyse (all {cores} cores, analysis only)", "-", capacity, "patients")

    decode_ms, encode_ms = _media_ms(frames)
    section.add("WebRTC media per camera frame: VP8 decode (640x480), CPU time", 1, decode_ms, "ms")
    section.add("WebRTC media per camera frame: VP8 encode of the self-view, CPU time", 1, encode_ms, "ms")
    media_pct = (decode_ms + encode_ms) * PATIENT_CAMERA_FPS / 10.0
    analysis_pct = per_frame_ms * TARGET_FPS / 10.0
    section.add(f"CPU per patient: media at {PATIENT_CAMERA_FPS:g} fps + analysis at {TARGET_FPS:g} fps", 1,
                media_pct + analysis_pct, f"% of one core ({media_pct:.0f} media + {analysis_pct:.0f} analysis)")
    section.add(f"patients the CPU could serve (media + analysis, all {cores} cores, nothing else running)", "-",
                cores * 100.0 / (media_pct + analysis_pct), "patients")

    gate = default_analysis_gate()
    for count in PATIENT_COUNTS:
        result = _run_patients(count, analyze, frames, gate)
        section.add("analysed frames per second per patient (mean)", count, result["analysed_fps_mean"], f"fps (target {TARGET_FPS:g})")
        section.add("analysed frames per second, slowest patient", count, result["analysed_fps_min"], "fps")
        section.add("camera frames dropped (rate limit + busy)", count, result["dropped_pct"], "%")
        section.add("store writes (batches) per second, all patients", count, result["batches_per_s"], "batches/s")
        section.add("process CPU", count, result["cpu_pct"], "% of one core")
    section.notes.append("media rows use the test clip (a face on a flat background), which VP8 codes cheaply: a real "
                         "camera picture costs more; WebRTC's own work (ICE, DTLS, RTP) is not included")
    section.notes.append(f"model: {model_name}; cameras at {CAMERA_FPS:g} fps; {SECONDS_PER_RUN:g} s per row; "
                         f"analysis gate = {cores} concurrent analyses; machine shared with other work (e.g. training)")
    return section


if __name__ == "__main__":
    print(run().render())
