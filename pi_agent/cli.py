"""`python -m pi_agent [run|analyze|install-cron|print-systemd] ...`; `run` is the default command."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
import uuid
from datetime import datetime, timezone
from pathlib import Path

from pi_agent.config import DETECTORS, AgentConfig, ConfigError

COMMANDS = ("run", "analyze", "install-cron", "print-systemd")
# The seed's -fs/--framesize choices, kept for people who used its rpi/main.py.
SEED_FRAME_SIZES = {1: (640, 360), 2: (320, 180), -1: (160, 90)}

log = logging.getLogger("pi_agent")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pi_agent", description="Psychopathology Assistant Raspberry Pi agent.")
    commands = parser.add_subparsers(dest="command")

    run = commands.add_parser("run", help="record emotions while a session is live for this device (default)")
    _common(run)
    run.add_argument("--source", help='"auto" (Pi camera if Picamera2 is installed, else camera 0), "picamera", a camera '
                     "index, a video file, or an rtsp:// / http:// URL")
    run.add_argument("--fps", type=float, help="analysed frames per second (default 4; 0 = as fast as possible)")
    run.add_argument("--device-id", type=uuid.UUID, help="this device's id (the key comes from PSYA_DEVICE_KEY)")
    run.add_argument("--session", type=uuid.UUID, help="record into this live session now (manual use)")
    run.add_argument("-fs", "--framesize", type=int, choices=sorted(SEED_FRAME_SIZES),
                     help="seed-compatible frame size: 1 = 640x360, 2 = 320x180, -1 = 160x90")
    run.add_argument("--frame-width", type=int, help="resize frames to this width before detection (default 640)")
    run.add_argument("--frame-height", type=int, help="camera frame height to request (default: keep aspect)")
    run.add_argument("--preview", action="store_true", default=None, help="show a window with the boxes (needs a desktop)")
    run.add_argument("-v", "--verbose", action="store_true", default=None,
                     help="print per frame: detection ms, prediction ms, PID, memory %%, CPU %%, emotion")
    run.add_argument("--dry-run", action="store_true", default=None,
                     help="analyse and print but write nothing (camera and model check; no database needed)")
    run.add_argument("--spool", type=Path, help="SQLite spool file (default <data_dir>/agent_spool.sqlite3)")
    run.add_argument("--log-file", type=Path, help="rotating log file (default <data_dir>/logs/pi_agent.log)")

    analyze = commands.add_parser("analyze", help="analyse a recorded video into a CSV (and optionally a session)")
    _common(analyze)
    analyze.add_argument("video", type=Path)
    analyze.add_argument("--csv", type=Path, required=True, help="output CSV: t,angry,...,neutral,dominant,x,y,w,h")
    analyze.add_argument("--session", type=uuid.UUID, help="also write the readings (source video) to this session")
    analyze.add_argument("--fps", type=float, default=4.0,
                         help="analysed frames per second of video, 0.1 to 60 (0 = every frame; default 4)")
    analyze.add_argument("--allow-incomplete", action="store_true",
                         help="keep the readings of a video that is cut short (default: refuse it and write nothing)")
    analyze.add_argument("--started-at", type=datetime.fromisoformat,
                         help="wall-clock time of the video's first frame (default: the session's start, else now)")
    analyze.add_argument("--no-progress", action="store_true", help="no progress bar")

    cron = commands.add_parser("install-cron", help="add an idempotent @reboot line to the crontab")
    cron.add_argument("--env-file", type=Path, help="env file the agent reads at boot")
    cron.add_argument("--crontab-file", type=Path, help="edit this file instead of calling `crontab`")
    cron.add_argument("--python", help="interpreter to run (default: this one)")
    cron.add_argument("--delay", type=int, default=15, help="seconds to wait after boot (default 15)")

    systemd = commands.add_parser("print-systemd", help="print a systemd unit (restarts on failure, clean SIGTERM)")
    systemd.add_argument("--env-file", type=Path)
    systemd.add_argument("--user", help="user to run as (default: the current one)")
    systemd.add_argument("--python", help="interpreter to run (default: this one)")
    return parser


def _common(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--env-file", type=Path, help="KEY=VALUE settings (default /etc/psychopathology-assistant/agent.env)")
    sub.add_argument("-m", "--model", type=Path, help="TFLite model with its JSON sidecar (default: the shipped model)")
    sub.add_argument("--detector", choices=DETECTORS, help="face detector: default (fer's BlazeFace), blazeface or haar")
    sub.add_argument("--min-face", type=int, help="smallest face side in pixels (default 48)")
    sub.add_argument("--all-faces", action="store_true", help="analyse every face, not only the largest one")
    sub.add_argument("--threads", type=int, help="inference threads (default 1)")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*COMMANDS, "-h", "--help"):
        argv.insert(0, "run")
    args = build_parser().parse_args(argv)
    try:
        if args.command == "install-cron":
            return _install_cron(args)
        if args.command == "print-systemd":
            return _print_systemd(args)
        config = _config(args)
        if args.command == "analyze":
            return _analyze(args, config)
        return _run(config)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2


def _config(args: argparse.Namespace) -> AgentConfig:
    from dataclasses import replace

    config = AgentConfig.load(env_file=args.env_file)
    if args.model is not None:
        config = replace(config, settings=replace(config.settings, model_path=args.model))
    width = height = None
    if getattr(args, "framesize", None) is not None:
        width, height = SEED_FRAME_SIZES[args.framesize]
    return config.with_overrides(
        detector=args.detector,
        min_face=args.min_face,
        largest_face_only=False if args.all_faces else None,
        num_threads=args.threads,
        source=getattr(args, "source", None),
        fps=getattr(args, "fps", None) if args.command == "run" else None,
        device_id=getattr(args, "device_id", None),
        session_id=getattr(args, "session", None) if args.command == "run" else None,
        frame_width=getattr(args, "frame_width", None) or width,
        frame_height=getattr(args, "frame_height", None) or height,
        preview=getattr(args, "preview", None),
        verbose=getattr(args, "verbose", None),
        dry_run=getattr(args, "dry_run", None),
        spool_path=getattr(args, "spool", None),
        log_file=getattr(args, "log_file", None),
    )


def setup_logging(log_file: Path | None, max_bytes: int = 1_000_000, backups: int = 5) -> None:
    """Log lines to stderr and to a rotating file (a Pi left alone for months must not fill its SD card)."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The pool logs every failed reconnect (several a second, multi-line); the agent logs outages itself, once.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(formatter)
    root.addHandler(console)
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            rotating = logging.handlers.RotatingFileHandler(log_file, maxBytes=max_bytes, backupCount=backups)
        except OSError as error:
            log.warning("cannot write the log file %s (%s); logging to stderr only", log_file, error)
        else:
            rotating.setFormatter(formatter)
            root.addHandler(rotating)


def _run(config: AgentConfig) -> int:
    from pi_agent.agent import build_agent
    from pi_agent.vision import FrameAnalyzer, VisionError

    setup_logging(config.resolved_log_file, config.log_max_bytes, config.log_backups)
    config.validate_for_recording()
    try:
        analyzer = FrameAnalyzer.from_config(config)
    except VisionError as error:
        log.error("%s", error)
        return 2
    from pi_agent.spool import AgentAlreadyRunning, single_instance_lock

    try:
        # Two agents on one Pi (cron and systemd both set up, or a manual run beside the service) would record every
        # moment twice: the second one refuses to start.
        with single_instance_lock(config.resolved_spool_path):
            agent = build_agent(config, analyzer)
            agent.install_signal_handlers()
            return agent.run()
    except AgentAlreadyRunning as error:
        log.error("%s", error)
        return 1


def _analyze(args: argparse.Namespace, config: AgentConfig) -> int:
    from pi_agent.video import VideoError, analyze_video, check_csv_target, check_fps, readings_for_session, write_csv
    from pi_agent.vision import VisionError, load_fer_analyze

    setup_logging(None)
    try:
        # Cheap checks first: a bad rate or an unwritable CSV must not cost minutes of analysis.
        fps = check_fps(args.fps)
        check_csv_target(args.csv)
        if not args.video.is_file():
            raise VideoError(f"video not found: {args.video}")
    except VideoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        pipeline = load_fer_analyze(config.model_path, config.detector, config.min_face, config.num_threads)
    except VisionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    pipeline.frame_width = config.frame_width
    if args.all_faces:
        print("note: --all-faces applies to `run`; analyze follows the patient (one row per frame with their face)",
              file=sys.stderr)
    bar = None
    progress = None
    if not args.no_progress:
        from tqdm import tqdm

        bar = tqdm(desc=f"analysing {args.video.name}", unit="frame")

        def progress(done: int, total: int | None) -> None:
            if total and bar.total != total:
                bar.total = total
            bar.update(done - bar.n)

    try:
        analysis = analyze_video(args.video, pipeline, fps=fps, on_progress=progress, display_name=str(args.video),
                                 allow_incomplete=args.allow_incomplete)
    except VideoError as error:
        if bar is not None:
            bar.close()
            bar = None
        print(f"error: {error}", file=sys.stderr)
        if getattr(error, "analysis", None) is not None:
            print("nothing written; run again with --allow-incomplete to keep the part that decodes", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()
    rows = write_csv(analysis.rows, args.csv)
    incomplete = "" if analysis.complete else f", INCOMPLETE: {analysis.frames_expected} frames expected"
    print(
        f"{args.csv}: {rows} rows from {analysis.frames_analysed} analysed frames "
        f"({analysis.frames_read} frames, {analysis.duration_s:.1f} s of video{incomplete})",
        file=sys.stderr,
    )
    if args.session is None:
        return 0
    return _write_video_readings(args, config, analysis, readings_for_session)


def _write_video_readings(args, config: AgentConfig, analysis, readings_for_session) -> int:
    from store import open_store
    from store.api import Actor
    from store.errors import StoreError

    try:
        store = open_store(config.settings)
    except StoreError as error:
        print(f"error: cannot open the database: {error}", file=sys.stderr)
        return 3
    try:
        # A device key in the env file: act as that device (the session must be assigned to it). Otherwise this is an
        # operator's tool run with the database's own credentials: the service role.
        actor_store = store
        if config.device_id and config.device_key:
            store.authenticate_device(config.device_id, config.device_key)
            actor_store = store.as_actor(Actor.for_device(config.device_id))
        session = actor_store.get_session(args.session) if actor_store is store else None
        started = args.started_at or (session.started_at if session and session.started_at else datetime.now(timezone.utc))
        if started.tzinfo is None:
            started = started.astimezone()
        readings = readings_for_session(analysis, args.session, started)
        new = 0
        for start in range(0, len(readings), 1000):
            new += actor_store.insert_readings(readings[start : start + 1000])
        print(f"session {args.session}: {new} new readings ({len(readings) - new} already there)", file=sys.stderr)
        return 0
    except StoreError as error:
        print(f"error: writing readings to session {args.session} failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 3
    finally:
        store.close()


def _install_cron(args: argparse.Namespace) -> int:
    from pi_agent.boot import CrontabError, agent_command, cron_line, install_cron
    from pi_agent.config import DEFAULT_ENV_FILE

    line = cron_line(agent_command(args.python, args.env_file or DEFAULT_ENV_FILE), delay_s=args.delay)
    try:
        install_cron(line, args.crontab_file)
    except CrontabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"installed in {args.crontab_file or 'the crontab'}:\n{line}")
    return 0


def _print_systemd(args: argparse.Namespace) -> int:
    from pi_agent.boot import systemd_unit
    from pi_agent.config import DEFAULT_ENV_FILE

    print(systemd_unit(args.python, args.env_file or DEFAULT_ENV_FILE, args.user), end="")
    return 0
