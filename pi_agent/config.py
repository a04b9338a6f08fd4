"""Agent configuration: one frozen dataclass read from an env file, then environment variables, then command-line flags.

The env file (default `/etc/psychopathology-assistant/agent.env`, `KEY=VALUE` lines, `#` comments) is what a clinic edits on
the Pi; cron and systemd start the agent with nothing else. Environment variables win over the file and flags win over
both. Database settings (`DATABASE_URL`, `SUPABASE_URL`, `SUPABASE_KEY`, `PSYA_DATA_DIR`, `FER_MODEL_PATH`) come from the same
merged mapping through the project's one `Settings.load()`.

Credentials (docs/security.md, "Stolen Raspberry Pi"): a Pi holds only what `python -m store.devices provision` (or the
Devices page) printed for it: its own database login in DATABASE_URL, or for Supabase the anon key plus its device JWT
(`PSYA_DEVICE_TOKEN`). A service key is refused; a DATABASE_URL that is not a device login gets a warning.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import shlex
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from settings import Settings

log = logging.getLogger("pi_agent.config")

DEFAULT_ENV_FILE = Path("/etc/psychopathology-assistant/agent.env")
DEVICE_LOGIN_PREFIX = "psya_dev_"  # the database logins store.devices creates
DETECTORS: tuple[str, ...] = ("default", "blazeface", "haar")  # "default": fer's own default (BlazeFace)


class ConfigError(ValueError):
    """The agent's configuration is missing or malformed; the message names the setting."""


@dataclass(frozen=True)
class AgentConfig:
    settings: Settings = field(default_factory=Settings)
    device_id: uuid.UUID | None = None
    device_key: str | None = None
    session_id: uuid.UUID | None = None  # manual use: record into this session, do not wait for the app to assign one
    source: str = "auto"  # "auto" (Picamera2 if installed, else camera 0), "picamera", a camera index, a file, a URL
    fps: float = 4.0  # analysed frames per second; 0 = as fast as possible
    frame_width: int = 640  # frames are resized to this width before detection (seed: 640x360)
    frame_height: int = 0  # 0 keeps the aspect ratio
    detector: str = "default"
    min_face: int = 48  # pixels, in the resized frame
    largest_face_only: bool = True
    num_threads: int = 1
    preview: bool = False
    verbose: bool = False
    dry_run: bool = False  # analyse and print, write nothing (installation check)
    batch_seconds: float = 1.0
    heartbeat_seconds: float = 30.0
    session_poll_seconds: float = 3.0
    retry_max_seconds: float = 30.0  # back-off cap for the database and the camera
    spool_path: Path | None = None  # default: <data_dir>/agent_spool.sqlite3
    log_file: Path | None = None  # default: <data_dir>/logs/pi_agent.log
    log_max_bytes: int = 1_000_000
    log_backups: int = 5

    @property
    def model_path(self) -> Path | None:
        return self.settings.model_path

    @property
    def resolved_spool_path(self) -> Path:
        return self.spool_path or self.settings.data_dir / "agent_spool.sqlite3"

    @property
    def resolved_log_file(self) -> Path:
        return self.log_file or self.settings.data_dir / "logs" / "pi_agent.log"

    def with_overrides(self, **changes: object) -> "AgentConfig":
        """Apply command-line flags; `None` means "flag not given"."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def validate_for_recording(self) -> None:
        if self.dry_run:
            return
        if self.device_id is None or not self.device_key:
            raise ConfigError(
                "PSYA_DEVICE_ID and PSYA_DEVICE_KEY are required (register the device in the app, then put both in the env "
                "file, or pass --device-id and set PSYA_DEVICE_KEY); use --dry-run to test the camera without a database"
            )
        if self.fps < 0:
            raise ConfigError(f"--fps must be >= 0, got {self.fps}")
        self.validate_credentials()

    def validate_credentials(self) -> None:
        """Refuse credentials a Pi must never hold; warn about a database login that is more than a device's."""
        settings = self.settings
        if settings.backend == "supabase":
            if _jwt_role(settings.supabase_key) == "service_role" or (settings.supabase_key or "").startswith("sb_secret_"):
                raise ConfigError(
                    "SUPABASE_KEY is the project's service key, which bypasses every access rule: never put it on a Pi. "
                    "Use the anon key and the PSYA_DEVICE_TOKEN printed when the device was registered")
            if not settings.supabase_device_token:
                raise ConfigError("PSYA_DEVICE_TOKEN is required with SUPABASE_URL (the device JWT printed when the "
                                  "device was registered on the Devices page)")
            if _jwt_role(settings.supabase_device_token) != "psya_device":
                raise ConfigError("PSYA_DEVICE_TOKEN is not a device token (its role must be psya_device)")
        elif settings.backend == "postgres":
            user = _database_user(settings.database_url or "")
            if not user.startswith(DEVICE_LOGIN_PREFIX):
                log.warning("DATABASE_URL logs in as %r, not as this device's own login (%s...): whoever holds this Pi "
                            "holds that login. Register the device with `python -m store.devices provision` and use the "
                            "env file it prints.", user, DEVICE_LOGIN_PREFIX)

    @classmethod
    def load(cls, env_file: Path | None = None, environ: Mapping[str, str] | None = None) -> "AgentConfig":
        """Merge the env file (missing is fine unless named explicitly) with `environ` (default: os.environ)."""
        values: dict[str, str] = {}
        path = env_file if env_file is not None else Path(os.environ.get("PSYA_AGENT_ENV_FILE", DEFAULT_ENV_FILE))
        if path.is_file():
            values.update(read_env_file(path))
        elif env_file is not None:
            raise ConfigError(f"env file not found: {env_file}")
        values.update({k: v for k, v in (os.environ if environ is None else environ).items() if v != ""})
        settings = Settings.load(environ=values)

        def get(name: str) -> str | None:
            value = values.get(name)
            return value if value not in (None, "") else None

        return cls(
            settings=settings,
            device_id=_uuid(get("PSYA_DEVICE_ID"), "PSYA_DEVICE_ID"),
            device_key=get("PSYA_DEVICE_KEY"),
            session_id=_uuid(get("PSYA_SESSION_ID"), "PSYA_SESSION_ID"),
            source=get("PSYA_SOURCE") or cls.source,
            fps=_number(get("PSYA_FPS"), cls.fps, "PSYA_FPS"),
            frame_width=int(_number(get("PSYA_FRAME_WIDTH"), cls.frame_width, "PSYA_FRAME_WIDTH")),
            frame_height=int(_number(get("PSYA_FRAME_HEIGHT"), cls.frame_height, "PSYA_FRAME_HEIGHT")),
            detector=get("PSYA_DETECTOR") or cls.detector,
            min_face=int(_number(get("PSYA_MIN_FACE"), cls.min_face, "PSYA_MIN_FACE")),
            largest_face_only=_flag(get("PSYA_LARGEST_FACE_ONLY"), cls.largest_face_only),
            num_threads=int(_number(get("PSYA_NUM_THREADS"), cls.num_threads, "PSYA_NUM_THREADS")),
            heartbeat_seconds=_number(get("PSYA_HEARTBEAT_SECONDS"), cls.heartbeat_seconds, "PSYA_HEARTBEAT_SECONDS"),
            session_poll_seconds=_number(get("PSYA_SESSION_POLL_SECONDS"), cls.session_poll_seconds, "PSYA_SESSION_POLL_SECONDS"),
            batch_seconds=_number(get("PSYA_BATCH_SECONDS"), cls.batch_seconds, "PSYA_BATCH_SECONDS"),
            retry_max_seconds=_number(get("PSYA_RETRY_MAX_SECONDS"), cls.retry_max_seconds, "PSYA_RETRY_MAX_SECONDS"),
            spool_path=Path(p) if (p := get("PSYA_SPOOL_PATH")) else None,
            log_file=Path(p) if (p := get("PSYA_AGENT_LOG_FILE")) else None,
        )


def read_env_file(path: Path) -> dict[str, str]:
    """`KEY=VALUE` lines as systemd's EnvironmentFile reads them: blank lines and `#` comments skipped, optional
    `export `, values optionally quoted."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, value = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE, got {raw!r}")
        value = value.strip()
        if value[:1] in ("'", '"'):
            parts = shlex.split(value)
            value = parts[0] if parts else ""
        values[key.strip()] = value
    return values


def _jwt_role(token: str | None) -> str | None:
    """The `role` claim of a JWT, read without verifying it (only to recognise what kind of key this is)."""
    try:
        payload = (token or "").split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))).get("role")
    except (IndexError, ValueError, AttributeError):
        return None


def _database_user(url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict

    try:
        return str(conninfo_to_dict(url).get("user") or "")
    except Exception:  # a malformed URL is reported by the store when it connects
        return ""


def _uuid(value: str | None, name: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ConfigError(f"{name} must be a UUID, got {value!r}") from None


def _number(value: str | None, default: float, name: str) -> float:
    if value is None:
        return float(default)
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None


def _flag(value: str | None, default: bool) -> bool:
    return default if value is None else value.strip().lower() in ("1", "true", "yes", "on")
