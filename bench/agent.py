"""Agent benchmark: the tracked video pipeline (`fer.video`, what the agent, `pi_agent analyze`, the app's video import
and remote sessions run) next to a seed-style loop (Haar at 640x360 + the seed's EDNN, raw 0-255 input, every frame), on
the same real face clip, in one run.

The clip (`make_patient_clip`) is composed from the real photos in ../shared/datasets/photos: one patient, with cuts to
another person framed where the patient was, a moment where the patient leaves and comes back elsewhere. Every frame
is labelled, so the rows count frames where the patient's face was found and frames where someone else was scored.

Rows: frames per second over the whole clip, every frame analysed, decoding included (the pipeline decodes on a reader
thread; the seed loop decoded inline), then per-stage cost of the pipeline, then CPU % and RSS of `python -m pi_agent run`
and of the seed-style loop as separate processes at the agent's default rate (4 analysed frames per second), reading the
clip at its own frame rate like a camera. `python -m bench.agent seed --source CLIP --fps 4` is the seed-style loop as a
process (used by the CPU/RSS rows).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.table import Section

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("FER_SHARED_DIR", PROJECT_ROOT.parent / "shared"))
CLIP_FPS = 15
CLIP_SECONDS = 20
AGENT_DEFAULT_FPS = 4.0  # pi_agent.config.AgentConfig.fps
ROUNDS = 2  # the seed loop and the pipeline alternate, best of ROUNDS each: a busy machine slows both alike
LOAD_SECONDS = 20.0
LOAD_WARMUP_SECONDS = 4.0
FRAME_SIZE = (640, 480)


# --- the clip --------------------------------------------------------------------------------------------------------
def make_face_clip(fer2013_dir: Path, out: Path, seconds: float = CLIP_SECONDS, fps: int = CLIP_FPS,
                   classes: tuple[str, ...] = ("happy", "neutral", "surprise", "sad", "angry", "fear"),
                   seconds_per_face: float = 1.0, face_side: int = 240, split: str = "val") -> list[Path]:
    """Write a 640x480 BGR video (mp4v) showing FER2013 faces, one per `seconds_per_face`, each upscaled to `face_side`
    px on a plain background and drifting slowly (a detector must find it again every frame). Returns the images used."""
    import cv2

    per_class = int(np.ceil(seconds / seconds_per_face / len(classes)))
    groups = [sorted((fer2013_dir / split / c).glob("*.jpg"))[:per_class] for c in classes]
    images = [g[i] for i in range(per_class) for g in groups if i < len(g)]
    if not images:
        raise FileNotFoundError(f"no FER2013 images under {fer2013_dir / split}")
    width, height = FRAME_SIZE
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {out}")
    frames = int(seconds * fps)
    per_face = max(1, int(seconds_per_face * fps))
    try:
        for n in range(frames):
            face = cv2.imread(str(images[(n // per_face) % len(images)]), cv2.IMREAD_GRAYSCALE)
            frame = np.full((height, width), 110, np.uint8)
            x = (width - face_side) // 2 + int(20 * np.sin(n / fps))
            y = (height - face_side) // 2
            frame[y : y + face_side, x : x + face_side] = cv2.resize(face, (face_side, face_side), interpolation=cv2.INTER_CUBIC)
            writer.write(cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR))
    finally:
        writer.release()
    return images


# (seconds, who is in the picture): the patient's shots, cuts to another person, the patient away.
PATIENT_SCRIPT: tuple[tuple[float, str, dict], ...] = (
    (6.0, "patient", {}),
    (2.0, "other", {}),
    (4.0, "patient", {"height": 300, "left": 190, "top": 30}),
    (2.0, "none", {}),
    (4.0, "patient", {"left": 20}),
    (2.0, "other", {}),
    (4.0, "patient", {}),
)


def make_patient_clip(photos_dir: Path, out: Path, fps: int = CLIP_FPS) -> list[str]:
    """Write a 640x360 mp4v clip following PATIENT_SCRIPT; returns who is in each frame ("patient", "other", "none")."""
    from tests.fer.scenes_video import OTHER_PERSON, PATIENT, drifting_shot, empty_frames, photo, write_clip

    patient, other = photo(photos_dir, PATIENT), photo(photos_dir, OTHER_PERSON)
    frames: list[np.ndarray] = []
    truth: list[str] = []
    for seconds, who, framing in PATIENT_SCRIPT:
        count = int(seconds * fps)
        if who == "patient":
            shot = drifting_shot(patient, count, start=len(frames), **framing)
        elif who == "other":  # a cut to another person, framed where the patient was
            shot = drifting_shot(other, count, height=165, left=212, top=8, background=(120, 110, 100), start=len(frames))
        else:
            shot = empty_frames(count)
        frames += shot
        truth += [who] * count
    write_clip(frames, out, fps)
    return truth


# --- the seed-style loop ----------------------------------------------------------------------------------------------
class SeedLoop:
    """What the seed's rpi/main.py did per frame: resize to 640x360, Haar (scale 1.3, 5 neighbours), the seed crop
    (y:y+17h/16, x-w/32:x+33w/32), 48x48, raw 0-255 float input, one interpreter call per face."""

    def __init__(self, model_path: Path) -> None:
        import cv2

        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        self._interpreter = _interpreter(model_path)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]

    def analyze(self, frame: np.ndarray) -> int:
        import cv2

        frame = cv2.resize(frame, (640, 360))
        gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        results = 0
        for x, y, w, h in self._cascade.detectMultiScale(gray, 1.3, 5):
            crop = gray[y : y + 17 * h // 16, max(0, x - w // 32) : x + 33 * w // 32]
            face = cv2.resize(crop, (48, 48)).astype(np.float32)[None, :, :, None]
            self._interpreter.set_tensor(self._input, face)
            self._interpreter.invoke()
            self._interpreter.get_tensor(self._output)
            results += 1
        return results


def _interpreter(model_path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # the same fallback order as fer
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            from tensorflow.lite import Interpreter
    interpreter = Interpreter(model_path=str(model_path), num_threads=1)
    interpreter.allocate_tensors()
    return interpreter


def run_seed_loop(source: Path, model_path: Path, fps: float, seconds: float) -> int:
    """The seed-style loop as a process for the CPU/RSS rows: reads the clip at its own frame rate (like a camera,
    looping), analyses the newest frame `fps` times a second (every frame when fps is 0). Returns frames analysed."""
    import cv2

    loop = SeedLoop(model_path)
    capture = cv2.VideoCapture(str(source))
    frame_interval = 1.0 / (capture.get(cv2.CAP_PROP_FPS) or CLIP_FPS)
    analyse_every = 1.0 / fps if fps > 0 else 0.0
    started = next_frame = next_analysis = time.monotonic()
    analysed = 0
    while time.monotonic() - started < seconds:
        ok, frame = capture.read()
        if not ok:
            capture.release()
            capture = cv2.VideoCapture(str(source))
            continue
        now = time.monotonic()
        if now >= next_analysis:
            loop.analyze(frame)
            analysed += 1
            next_analysis = max(next_analysis + analyse_every, now) if analyse_every else now
        next_frame += frame_interval
        time.sleep(max(0.0, next_frame - time.monotonic()))
    return analysed


# --- measurements -------------------------------------------------------------------------------------------------------
@dataclass
class ClipRun:
    seconds: float  # wall time over the whole clip, decoding included
    cpu_seconds: float  # this process's CPU time over it (all threads)
    frames: int
    scored: set[int]  # frame indices where a face was scored (the seed: any face; the pipeline: the patient)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds else 0.0


def seed_clip_run(clip: Path, seed: "SeedLoop") -> ClipRun:
    """The seed-style loop over every frame of the clip: decode, Haar, classify each face, inline as the seed did."""
    import cv2

    capture = cv2.VideoCapture(str(clip))
    scored: set[int] = set()
    started, cpu = time.perf_counter(), time.process_time()
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if seed.analyze(frame):
            scored.add(index)
        index += 1
    capture.release()
    return ClipRun(time.perf_counter() - started, time.process_time() - cpu, index, scored)


def pipeline_clip_run(clip: Path, pipeline) -> tuple[ClipRun, dict[str, float]]:
    """`fer.analyze_video` over every frame (fps 0); returns the run and mean ms per frame of each stage."""
    from fer.video import analyze_video

    started, cpu = time.perf_counter(), time.process_time()
    analysis = analyze_video(clip, pipeline, fps=0)
    run = ClipRun(time.perf_counter() - started, time.process_time() - cpu, analysis.frames_read,
                  {row.frame_index for row in analysis.rows})
    stages = {k: (v / max(1, analysis.frames_analysed), analysis.stage_frames[k]) for k, v in analysis.stage_ms.items()}
    return run, stages


def untracked_clip_run(clip: Path, classifier) -> ClipRun:
    """The agent before the tracker: whole-frame BlazeFace on every frame, the largest face classified."""
    import cv2

    import fer

    detector = fer.BlazeFaceDetector()
    capture = cv2.VideoCapture(str(clip))
    scored: set[int] = set()
    started, cpu = time.perf_counter(), time.process_time()
    index = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        if fer.analyze(frame, classifier=classifier, detector=detector, largest_only=True):
            scored.add(index)
        index += 1
    capture.release()
    return ClipRun(time.perf_counter() - started, time.process_time() - cpu, index, scored)


def unlimited_fps(clip: Path, analyze: Callable[[np.ndarray], object], limit: int = 300) -> float:
    """Analysed frames per second over the clip's frames, timing analysis only (decoding is the camera's job)."""
    import cv2

    capture = cv2.VideoCapture(str(clip))
    spent = 0.0
    count = 0
    while count < limit:
        ok, frame = capture.read()
        if not ok:
            break
        if count == 0:
            analyze(frame)  # warm-up: first interpreter call allocates
        started = time.perf_counter()
        analyze(frame)
        spent += time.perf_counter() - started
        count += 1
    capture.release()
    return count / spent if spent else 0.0


def process_load(command: list[str], env: dict[str, str], seconds: float = LOAD_SECONDS,
                 warmup: float = LOAD_WARMUP_SECONDS) -> tuple[float, float]:
    """Mean CPU % (100 = one core) and peak RSS (MiB) of a process over `seconds`, after `warmup` seconds."""
    import signal

    import psutil

    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(warmup)
        if process.poll() is not None:
            raise RuntimeError(f"{' '.join(command)} exited early with {process.returncode}")
        watched = psutil.Process(process.pid)
        watched.cpu_percent(None)
        peak_rss = 0
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(1.0)
            peak_rss = max(peak_rss, watched.memory_info().rss)
        cpu = watched.cpu_percent(None)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    return cpu, peak_rss / 2**20


@dataclass
class _Clinic:
    env: dict[str, str]
    server: object


def _agent_database(folder: Path) -> _Clinic:
    """A real PostgreSQL with a device and a live in-person session, so the agent at 5 fps does all its work."""
    from datetime import date

    from store.api import Actor
    from store.embedded import EmbeddedPostgres
    from store.models import NewPatient
    from store.postgres import PostgresStore

    server = EmbeddedPostgres(folder / "pg")
    url = server.ensure_running(migrate=True)
    store = PostgresStore.connect(url)
    try:
        doctor = store.create_clinician("bench_doctor", "Bench Doctor", "not-a-hash", "clinician")
        clinician = store.as_actor(Actor.for_clinician(doctor))
        patient = clinician.create_patient(NewPatient(full_name="Bench Patient"))
        clinician.record_consent(patient.id, True, date.today(), "benchmark")
        device = clinician.register_device("bench-pi", "bench")
        clinician.start_session(patient.id, "in_person", device_id=device.device.id)
    finally:
        store.close()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PSYA_", "DATABASE_URL", "SUPABASE_"))},
        "PYTHONPATH": str(PROJECT_ROOT), "DATABASE_URL": url, "PSYA_DEVICE_ID": str(device.device.id),
        "PSYA_DEVICE_KEY": device.key, "PSYA_DATA_DIR": str(folder / "agent-data"),
        "PSYA_AGENT_ENV_FILE": str(folder / "none.env"), "PSYA_SECRETS_FILE": str(folder / "none.toml"),
    }
    return _Clinic(env, server)


def _agent_model(folder: Path) -> tuple[Path, str]:
    shipped = PROJECT_ROOT / "fer" / "models" / "fer_edge_int8.tflite"
    if shipped.is_file() and shipped.with_suffix(".json").is_file():
        return shipped, "fer_edge_int8 (shipped)"
    anchor = SHARED_DIR / "anchors" / "fer_mini_xception_int8.tflite"
    linked = folder / "mini_xception.tflite"
    linked.symlink_to(anchor)
    linked.with_suffix(".json").write_text(json.dumps({
        "name": "fer_mini_xception_int8", "input_size": [64, 64], "normalization": {"scale": 1 / 127.5, "offset": -1.0},
        "labels": ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"], "metrics": {},
    }))
    return linked, "mini-Xception anchor (shipped model not exported yet)"


def run() -> Section:
    section = Section("Tracked video pipeline (fer.video) vs seed-style loop (same real face clip, one run)",
                      ["loop", "fps (every frame, decode incl.)", "frames with the patient's face",
                       "frames scoring someone else", f"CPU % @{AGENT_DEFAULT_FPS:g} fps", f"RSS MiB @{AGENT_DEFAULT_FPS:g} fps"])
    photos = SHARED_DIR / "datasets" / "photos"
    seed_model = SHARED_DIR / "anchors" / "seed_ednn.tflite"
    if not photos.is_dir() or not seed_model.is_file():
        section.skipped = f"needs {photos} and {seed_model}"
        return section
    import fer

    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp:
        folder = Path(tmp)
        clip = folder / "patient.mp4"
        truth = make_patient_clip(photos, clip)
        model, model_name = _agent_model(folder)
        pipeline = fer.VideoPipeline.load(model)
        seed = SeedLoop(seed_model)
        seed_clip_run(clip, seed)  # warm-up: first interpreter calls allocate, the file is in the page cache
        seed_runs, pipeline_runs = [], []
        for _ in range(ROUNDS):
            seed_runs.append(seed_clip_run(clip, seed))
            pipeline_runs.append(pipeline_clip_run(clip, pipeline))
        untracked = untracked_clip_run(clip, pipeline.classifier)
        seed_best = max(seed_runs, key=lambda r: r.fps)
        tracked, stages = max(pipeline_runs, key=lambda pair: pair[0].fps)

        clinic = _agent_database(folder)
        try:
            agent_cpu, agent_rss = process_load(
                [sys.executable, "-m", "pi_agent", "run", "--source", str(clip), "--fps", str(AGENT_DEFAULT_FPS),
                 "--model", str(model)],
                clinic.env,
            )
        finally:
            clinic.server.stop()
        seed_cpu, seed_rss = process_load(
            [sys.executable, "-m", "bench.agent", "seed", "--source", str(clip), "--fps", str(AGENT_DEFAULT_FPS),
             "--model", str(seed_model), "--seconds", str(LOAD_SECONDS + LOAD_WARMUP_SECONDS + 10)],
            clinic.env,
        )
    patient_frames = {i for i, who in enumerate(truth) if who == "patient"}
    other_frames = {i for i, who in enumerate(truth) if who == "other"}

    def found(run: ClipRun) -> str:
        return f"{len(run.scored & patient_frames)} / {len(patient_frames)}"

    section.add("tracked pipeline (fer.video: BlazeFace acquire, short-range track)", tracked.fps, found(tracked),
                len(tracked.scored & other_frames), agent_cpu, agent_rss)
    section.add("untracked: whole-frame BlazeFace every frame, largest face (agent before)", untracked.fps, found(untracked),
                len(untracked.scored & other_frames), "-", "-")
    section.add("seed-style loop: Haar 640x360 (1.3, 5) + seed EDNN", seed_best.fps, found(seed_best),
                len(seed_best.scored & other_frames), seed_cpu, seed_rss)
    what = {"decode_ms": "decode (reader thread)", "detect_ms": "detect (whole-frame BlazeFace)",
            "track_ms": "track (short-range search, cut check)", "classify_ms": "classify (crop + model)",
            "other_ms": "other (downscale, bookkeeping)"}
    for stage, label in what.items():
        mean_ms, frames = stages[stage]
        section.add(f"  pipeline stage: {label}", f"{mean_ms:.2f} ms/frame (wall)", f"ran in {frames} frames", "", "", "")
    section.add("  pipeline CPU per frame, all threads (mean ms)", f"{tracked.cpu_seconds / tracked.frames * 1000:.2f} ms",
                "", "", "", "")
    section.add("  seed loop CPU per frame (mean ms)", f"{seed_best.cpu_seconds / seed_best.frames * 1000:.2f} ms",
                "", "", "", "")
    seconds = sum(s for s, _, _ in PATIENT_SCRIPT)
    section.notes += [
        f"clip: {seconds:g} s of 640x360 at {CLIP_FPS} fps ({len(truth)} frames) from the reference photos: the patient "
        f"({len(patient_frames)} frames), two cuts to another person framed where the patient was ({len(other_frames)} "
        "frames), the patient away 2 s and back elsewhere; model: " + model_name,
        f"fps: every frame analysed, decoding included, best of {ROUNDS} alternating rounds; 1 inference thread; the "
        "pipeline decodes on a reader thread (bounded queue of 8 frames), so its CPU can exceed its wall time",
        "stage rows: wall time per frame averaged over all frames (a busy machine inflates wall time: compare with the "
        "CPU rows); decode overlaps the other stages on its own thread",
        f"@{AGENT_DEFAULT_FPS:g} fps: separate processes reading the clip at its own rate for {LOAD_SECONDS:.0f} s after "
        f"{LOAD_WARMUP_SECONDS:.0f} s warm-up; CPU 100% = one core; the agent also spools and writes to a real "
        "PostgreSQL (device, live session); the seed loop writes nothing (it pushed to Firebase)",
        f"ratios pipeline/seed: fps {tracked.fps / max(seed_best.fps, 1e-9):.2f}x, CPU per frame "
        f"{tracked.cpu_seconds / tracked.frames / max(seed_best.cpu_seconds / seed_best.frames, 1e-9):.2f}x, "
        f"CPU @{AGENT_DEFAULT_FPS:g} fps {agent_cpu / max(seed_cpu, 1e-9):.2f}x, RSS {agent_rss / max(seed_rss, 1e-9):.2f}x; "
        f"untracked/seed fps {untracked.fps / max(seed_best.fps, 1e-9):.2f}x",
        f"this machine: {os.cpu_count()} cores, shared with whatever else runs (e.g. training): absolute numbers are "
        "noisy, compare the ratios within one run",
    ]
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="agent benchmark; `seed` runs the seed-style loop as a process")
    sub = parser.add_subparsers(dest="command")
    seed = sub.add_parser("seed")
    seed.add_argument("--source", type=Path, required=True)
    seed.add_argument("--model", type=Path, default=SHARED_DIR / "anchors" / "seed_ednn.tflite")
    seed.add_argument("--fps", type=float, default=AGENT_DEFAULT_FPS)
    seed.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.command == "seed":
        print(f"{run_seed_loop(args.source, args.model, args.fps, args.seconds)} frames analysed")
        return 0
    print(run().render())
    return 0


if __name__ == "__main__":
    sys.exit(main())
