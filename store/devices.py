"""Registering a Pi and writing its agent env file: `python -m store.devices provision --database-url ADMIN_URL --name NAME
--room ROOM` (or the Devices page, which shows the same text once).

The env file gives the Pi its own database login (created by `Store.register_device`), never the app's: that login can
heartbeat, ask whether a session is live for it, and add readings to that session, and nothing else (docs/security.md,
"Stolen Raspberry Pi"). With Supabase over REST instead (`--supabase`), the Pi gets the project's anon key plus a device
JWT (role psya_device), signed here with the project's JWT secret; never the service key.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from urllib.parse import quote, urlencode

import psycopg

from store.common import DEVICE_ROLE
from store.errors import StoreError
from store.models import DeviceRegistration

ENV_FILE_PATH = "/etc/psychopathology-assistant/agent.env"
DEVICE_TOKEN_DAYS = 365  # a device JWT's lifetime; re-register the device (new key, new token) before it runs out
_URL_KEYS = ("host", "port", "dbname", "user", "password")


def device_database_url(admin_url: str, login: str, key: str, host: str | None = None, port: int | None = None) -> str:
    """The app's database URL with the device's own login and key in place of the admin's. Keeps the database, the
    connection options (sslmode...) and, for Supabase's pooler, the `.<project ref>` suffix of the user name."""
    try:
        parts = psycopg.conninfo.conninfo_to_dict(admin_url)
    except psycopg.ProgrammingError as error:
        raise StoreError(f"cannot read the database URL: {error}") from error
    user = str(parts.get("user") or "")
    suffix = user[user.index("."):] if "." in user else ""  # Supabase pooler: postgres.<project ref>
    netloc_host = host or str(parts.get("host") or "127.0.0.1")
    netloc_port = port or parts.get("port") or 5432
    options = {k: str(v) for k, v in parts.items() if k not in _URL_KEYS}
    query = f"?{urlencode(options)}" if options else ""
    return (f"postgresql://{quote(login + suffix, safe='')}:{quote(key, safe='')}@{netloc_host}:{netloc_port}/"
            f"{quote(str(parts.get('dbname') or 'postgres'), safe='')}{query}")


def _header(registration: DeviceRegistration) -> list[str]:
    device = registration.device
    return [
        f"# Psychopathology Assistant Pi agent: device {device.name!r}, room {device.room!r}",
        f"# registered {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Copy to {ENV_FILE_PATH} (mode 0600).",
        "# These credentials can only heartbeat, learn whether a session is live for this device and add readings",
        "# to it; they read nothing. A lost Pi: revoke the device on the Devices page (admins).",
    ]


def agent_env_text(registration: DeviceRegistration, admin_url: str, host: str | None = None,
                   port: int | None = None) -> str:
    """The complete agent env file for a device registered over a direct connection."""
    if not registration.login:
        raise StoreError("this device has no database login of its own; register it over a direct database connection")
    url = device_database_url(admin_url, registration.login, registration.key, host, port)
    return "\n".join([*_header(registration), f"DATABASE_URL={url}", f"PSYA_DEVICE_ID={registration.device.id}",
                      f"PSYA_DEVICE_KEY={registration.key}", ""])


def device_jwt(device_id: object, jwt_secret: str, days: int = DEVICE_TOKEN_DAYS) -> str:
    """A Supabase JWT for one device (HS256 with the project's JWT secret): PostgREST runs its requests as psya_device,
    and the device functions read the device from `sub`. Requires `GRANT psya_device TO authenticator` (the device role
    migration does it on Supabase)."""
    import jwt

    now = int(time.time())
    claims = {"role": DEVICE_ROLE, "actor": "device", "sub": str(device_id), "aud": "authenticated", "iat": now,
              "exp": now + days * 86400}
    return jwt.encode(claims, jwt_secret, algorithm="HS256")


def agent_env_text_supabase(registration: DeviceRegistration, supabase_url: str, anon_key: str, jwt_secret: str) -> str:
    """The agent env file for Supabase over REST: the anon key (public by design) plus the device's JWT."""
    return "\n".join([*_header(registration), f"SUPABASE_URL={supabase_url}", f"SUPABASE_KEY={anon_key}",
                      f"PSYA_DEVICE_TOKEN={device_jwt(registration.device.id, jwt_secret)}",
                      f"PSYA_DEVICE_ID={registration.device.id}", f"PSYA_DEVICE_KEY={registration.key}", ""])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m store.devices", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    provision = commands.add_parser("provision", help="register a device and print its agent env file")
    provision.add_argument("--database-url", required=True, help="the admin (owner) URL, e.g. the app's DATABASE_URL")
    provision.add_argument("--name", required=True)
    provision.add_argument("--room", default="")
    provision.add_argument("--host", help="host the Pi reaches the database at, if not the admin URL's")
    provision.add_argument("--port", type=int, help="port the Pi reaches the database at, if not the admin URL's")
    args = parser.parse_args(argv)

    from store.postgres import PostgresStore

    try:
        store = PostgresStore.connect(args.database_url, max_size=1)
        try:
            registration = store.register_device(args.name.strip(), args.room.strip())
        finally:
            store.close()
        text = agent_env_text(registration, args.database_url, args.host, args.port)
    except StoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(text)
    print(f"registered device {registration.device.id} with database login {registration.login}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
