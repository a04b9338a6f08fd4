"""One settings object for the whole product, read from environment variables, then `.streamlit/secrets.toml`.

Environment variables win over secrets.toml; both use the same UPPER_CASE names. Nothing else in the code reads os.environ
for configuration: pass a `Settings` down instead.
"""

from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent
DEFAULT_SECRETS_FILE = PROJECT_ROOT / ".streamlit" / "secrets.toml"


@dataclass(frozen=True)
class Settings:
    # Storage: DATABASE_URL wins, then SUPABASE_URL + SUPABASE_KEY, else the embedded PostgreSQL under data_dir.
    database_url: str | None = None
    supabase_url: str | None = None
    supabase_key: str | None = None
    data_dir: Path = PROJECT_ROOT / "var"
    # Vision
    model_path: Path | None = None  # None: the model shipped in fer/models/
    # Web app
    cookie_key: str | None = None  # signs the login cookie; generated and kept under data_dir when unset
    public_base_url: str = "http://localhost:8501"  # used to build remote join links
    ice_servers: list[dict] = field(default_factory=list)  # WebRTC STUN/TURN list; empty works on loopback and LAN
    remote_analysis_fps: float = 4.0
    show_emotions_to_patient: bool = False
    max_login_failures: int = 5
    lockout_minutes: int = 15
    # Issue 12 (trust): the time zone for clinicians who have not chosen one; low-quality readings out of statistics;
    # live sessions with no reading and no clinician activity for this long are ended automatically.
    default_time_zone: str = "UTC"
    exclude_low_quality: bool = True
    idle_session_minutes: int = 30

    @property
    def backend(self) -> str:
        if self.database_url:
            return "postgres"
        if self.supabase_url and self.supabase_key:
            return "supabase"
        return "embedded"

    @classmethod
    def load(cls, environ: dict[str, str] | None = None, secrets_file: Path | None = None) -> "Settings":
        values = _read_secrets(secrets_file or Path(os.environ.get("PSYA_SECRETS_FILE", DEFAULT_SECRETS_FILE)))
        values.update({k: v for k, v in (os.environ if environ is None else environ).items() if v != ""})

        def get(name: str) -> str | None:
            value = values.get(name)
            return None if value is None else str(value)

        return cls(
            database_url=get("DATABASE_URL"),
            supabase_url=get("SUPABASE_URL"),
            supabase_key=get("SUPABASE_KEY"),
            data_dir=Path(get("PSYA_DATA_DIR") or cls.data_dir),
            model_path=Path(p) if (p := get("FER_MODEL_PATH")) else None,
            cookie_key=get("COOKIE_KEY"),
            public_base_url=(get("PUBLIC_BASE_URL") or cls.public_base_url).rstrip("/"),
            ice_servers=_parse_ice_servers(values.get("ICE_SERVERS")),
            remote_analysis_fps=float(get("REMOTE_ANALYSIS_FPS") or cls.remote_analysis_fps),
            show_emotions_to_patient=(get("SHOW_EMOTIONS_TO_PATIENT") or "false").lower() in ("1", "true", "yes"),
            max_login_failures=int(get("MAX_LOGIN_FAILURES") or cls.max_login_failures),
            lockout_minutes=int(get("LOCKOUT_MINUTES") or cls.lockout_minutes),
            default_time_zone=get("DEFAULT_TIME_ZONE") or cls.default_time_zone,
            exclude_low_quality=(get("EXCLUDE_LOW_QUALITY") or "true").lower() in ("1", "true", "yes"),
            idle_session_minutes=int(get("IDLE_SESSION_MINUTES") or cls.idle_session_minutes),
        )


def _read_secrets(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        return {k.upper(): v for k, v in tomllib.load(handle).items()}


def _parse_ice_servers(raw: object) -> list[dict]:
    """ICE_SERVERS is a JSON list (env) or a TOML array of tables, e.g. [{"urls": ["stun:stun.example.org:3478"]}]."""
    if raw is None or raw == "":
        return []
    servers = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s for s in servers):
        raise ValueError(f"ICE_SERVERS must be a list of objects with 'urls', got {raw!r}")
    return servers
