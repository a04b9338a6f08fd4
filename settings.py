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
    supabase_key: str | None = None  # the service key on the app server; the anon key on a Pi (docs/security.md)
    supabase_jwt_secret: str | None = None  # app server: signs each clinician's / device's JWT so RLS applies over REST
    supabase_anon_key: str | None = None  # app server: written into a Pi's env file at registration (Supabase)
    supabase_device_token: str | None = None  # a Pi on Supabase: its device JWT (PSYA_DEVICE_TOKEN), printed at registration
    data_dir: Path = PROJECT_ROOT / "var"
    # Vision
    model_path: Path | None = None  # None: the model shipped in fer/models/
    # Web app
    cookie_key: str | None = None  # signs the login cookie; generated and kept under data_dir when unset
    public_base_url: str = "http://localhost:8501"  # used to build remote join links
    ice_servers: list[dict] = field(default_factory=list)  # WebRTC STUN/TURN list; empty works on loopback and LAN
    remote_analysis_fps: float = 4.0
    # Where a remote patient's video is analysed: "browser" (the model runs in their browser; no video reaches the
    # server) or "server" (camera streamed over WebRTC). Browser mode falls back to server mode, per patient, when their
    # browser cannot run the model.
    remote_analysis: str = "browser"
    # Whether the clinician may have a server-mode patient's camera relayed to their live dashboard (REMOTE_VIDEO_RELAY=
    # off|on, default off). On: the Sessions page offers the relay as an unticked per-session choice; the patient's join
    # page says whether their video is shown. Off (and always in browser mode): no video on the dashboard; the clinician
    # runs their usual video call beside it.
    remote_video_relay: bool = False
    show_emotions_to_patient: bool = False
    # Login throttle (growing delays, never a hard lock): MAX_LOGIN_FAILURES wrong passwords in a row cost nothing, then
    # each attempt waits LOGIN_DELAY_SECONDS, doubling, up to ACCOUNT_DELAY_MAX_SECONDS per username and
    # LOCKOUT_MINUTES per client address.
    max_login_failures: int = 5
    login_delay_seconds: float = 2.0
    account_delay_max_seconds: float = 60.0
    lockout_minutes: float = 15.0
    # Login sessions (stored in the database): signed out after SESSION_IDLE_MINUTES without a page run, and
    # SESSION_MAX_HOURS after logging in whatever happens.
    session_idle_minutes: float = 120.0
    session_max_hours: float = 12.0
    # Behind a reverse proxy: the request header that carries the client's address (e.g. X-Forwarded-For; its last
    # entry, the one the proxy appended, is used). Empty: the address of the connection itself.
    client_address_header: str = ""
    # Privacy: days the readings of ended sessions are kept (`python -m store.retention apply`); None keeps them forever
    readings_retention_days: int | None = None
    # Reactions to event markers (app/reactions.py): seconds of readings before and after each marker
    reaction_before_s: float = 30.0
    reaction_after_s: float = 30.0
    # Issue 12 (trust): the time zone for clinicians who have not chosen one; low-quality readings out of statistics;
    # live sessions with no reading and no clinician activity for this long are ended automatically.
    default_time_zone: str = "UTC"
    exclude_low_quality: bool = True
    idle_session_minutes: float = 30.0  # fractions allowed (0.05: 3 s, for the browser tests)

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
            supabase_jwt_secret=get("SUPABASE_JWT_SECRET"),
            supabase_anon_key=get("SUPABASE_ANON_KEY"),
            supabase_device_token=get("PSYA_DEVICE_TOKEN"),
            data_dir=Path(get("PSYA_DATA_DIR") or cls.data_dir),
            model_path=Path(p) if (p := get("FER_MODEL_PATH")) else None,
            cookie_key=get("COOKIE_KEY"),
            public_base_url=(get("PUBLIC_BASE_URL") or cls.public_base_url).rstrip("/"),
            ice_servers=_parse_ice_servers(values.get("ICE_SERVERS")),
            remote_analysis_fps=float(get("REMOTE_ANALYSIS_FPS") or cls.remote_analysis_fps),
            remote_analysis=_parse_remote_analysis(get("REMOTE_ANALYSIS")),
            remote_video_relay=_parse_switch("REMOTE_VIDEO_RELAY", get("REMOTE_VIDEO_RELAY"), cls.remote_video_relay),
            show_emotions_to_patient=(get("SHOW_EMOTIONS_TO_PATIENT") or "false").lower() in ("1", "true", "yes"),
            max_login_failures=int(get("MAX_LOGIN_FAILURES") or cls.max_login_failures),
            login_delay_seconds=float(get("LOGIN_DELAY_SECONDS") or cls.login_delay_seconds),
            account_delay_max_seconds=float(get("ACCOUNT_DELAY_MAX_SECONDS") or cls.account_delay_max_seconds),
            lockout_minutes=float(get("LOCKOUT_MINUTES") or cls.lockout_minutes),
            session_idle_minutes=float(get("SESSION_IDLE_MINUTES") or cls.session_idle_minutes),
            session_max_hours=float(get("SESSION_MAX_HOURS") or cls.session_max_hours),
            client_address_header=get("CLIENT_ADDRESS_HEADER") or cls.client_address_header,
            readings_retention_days=int(d) if (d := get("READINGS_RETENTION_DAYS")) else None,
            reaction_before_s=_positive_seconds("REACTION_BEFORE_S", get("REACTION_BEFORE_S"), cls.reaction_before_s),
            reaction_after_s=_positive_seconds("REACTION_AFTER_S", get("REACTION_AFTER_S"), cls.reaction_after_s),
            default_time_zone=get("DEFAULT_TIME_ZONE") or cls.default_time_zone,
            exclude_low_quality=(get("EXCLUDE_LOW_QUALITY") or "true").lower() in ("1", "true", "yes"),
            idle_session_minutes=float(get("IDLE_SESSION_MINUTES") or cls.idle_session_minutes),
        )


def _read_secrets(path: Path) -> dict[str, object]:
    if not path.is_file():
        return {}
    with path.open("rb") as handle:
        return {k.upper(): v for k, v in tomllib.load(handle).items()}


REMOTE_ANALYSIS_MODES = ("browser", "server")


def _parse_remote_analysis(raw: str | None) -> str:
    mode = (raw or "browser").strip().lower()
    if mode not in REMOTE_ANALYSIS_MODES:
        raise ValueError(f"REMOTE_ANALYSIS must be one of {', '.join(REMOTE_ANALYSIS_MODES)}, got {raw!r}")
    return mode


_SWITCH_WORDS = {"on": True, "true": True, "yes": True, "1": True, "off": False, "false": False, "no": False, "0": False}


def _parse_switch(name: str, raw: str | None, default: bool) -> bool:
    """on|off (also true/false, yes/no, 1/0); anything else is refused rather than read as off."""
    if raw is None:
        return default
    word = raw.strip().lower()
    if word not in _SWITCH_WORDS:
        raise ValueError(f"{name} must be on or off, got {raw!r}")
    return _SWITCH_WORDS[word]


def _parse_ice_servers(raw: object) -> list[dict]:
    """ICE_SERVERS is a JSON list (env) or a TOML array of tables, e.g. [{"urls": ["stun:stun.example.org:3478"]}]."""
    if raw is None or raw == "":
        return []
    servers = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(servers, list) or not all(isinstance(s, dict) and "urls" in s for s in servers):
        raise ValueError(f"ICE_SERVERS must be a list of objects with 'urls', got {raw!r}")
    return servers


def _positive_seconds(name: str, raw: str | None, default: float) -> float:
    """A window length in seconds, in (0, 3600]."""
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not 0 < value <= 3600:
        raise ValueError(f"{name} must be in (0, 3600] seconds, got {raw!r}")
    return value
