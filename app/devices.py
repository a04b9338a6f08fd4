"""Pi devices for the Devices page: register one and produce its agent env file (shown once), list and revoke them.

The env file carries the device's own credentials only (docs/security.md, "Stolen Raspberry Pi"): its own database login
over a direct connection (embedded or DATABASE_URL), or for Supabase the anon key and a device JWT. Same text as
`python -m store.devices provision`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from settings import Settings
from store.api import Store
from store.devices import agent_env_text, agent_env_text_supabase
from store.errors import InvalidInput, StoreError
from store.models import Device, DeviceRegistration


@dataclass(frozen=True)
class ProvisionedDevice:
    registration: DeviceRegistration
    env_text: str  # the complete agent env file; shown once, never stored


def _database_url(settings: Settings) -> str:
    if settings.backend == "postgres":
        assert settings.database_url is not None
        return settings.database_url
    from store.embedded import EmbeddedPostgres

    return EmbeddedPostgres(settings.data_dir).url()


def _check_can_write_env(settings: Settings) -> None:
    if settings.backend == "supabase" and not (settings.supabase_anon_key and settings.supabase_jwt_secret):
        raise StoreError("set SUPABASE_ANON_KEY and SUPABASE_JWT_SECRET on the app server to give a Pi its own "
                         "credentials (the service key never goes onto a Pi)")


def agent_env(settings: Settings, registration: DeviceRegistration) -> str:
    _check_can_write_env(settings)
    if settings.backend == "supabase":
        assert settings.supabase_url and settings.supabase_anon_key and settings.supabase_jwt_secret
        return agent_env_text_supabase(registration, settings.supabase_url, settings.supabase_anon_key,
                                       settings.supabase_jwt_secret)
    return agent_env_text(registration, _database_url(settings))


def register_device(store: Store, settings: Settings, name: str, room: str) -> ProvisionedDevice:
    """Register a device as the acting clinician and build its env file. InvalidInput for a blank name."""
    if not name.strip():
        raise InvalidInput("Give the device a name.")
    _check_can_write_env(settings)  # before registering: a key nobody sees is a device nobody can use
    registration = store.register_device(name.strip(), room.strip())
    return ProvisionedDevice(registration, agent_env(settings, registration))


def revoke_device(store: Store, device_id: uuid.UUID) -> None:
    """Admins: a lost or stolen Pi; its credentials stop working at once."""
    store.revoke_device(device_id)


def device_status(device: Device, online: bool) -> str:
    if device.revoked_at is not None:
        return "revoked"
    return "online" if online else "offline"


# Above this, the Devices page warns: the readings are corrected (pi_agent/clock.py), but a clock this far off is worth
# fixing (NTP on the Pi), and it is the first thing to check when a device's readings look shifted.
CLOCK_OFFSET_WARNING = timedelta(seconds=2)


@dataclass(frozen=True)
class ClockStatus:
    text: str  # for the devices table: "3.4 s ahead", "in sync", "not measured yet"
    warning: str  # empty when nothing is worth a warning


def clock_status(device: Device) -> ClockStatus:
    """The device clock as its agent measured it last (Device.clock_offset_ms: database time - device time)."""
    if device.clock_offset_ms is None:
        return ClockStatus("not measured yet", "")
    ahead = -device.clock_offset_ms / 1000  # a negative offset: the device's clock shows a later time than the database
    if abs(ahead) < 0.05:
        return ClockStatus("in sync", "")
    text = f"{abs(ahead):.1f} s {'ahead' if ahead > 0 else 'behind'}"
    if abs(ahead) <= CLOCK_OFFSET_WARNING.total_seconds():
        return ClockStatus(text, "")
    return ClockStatus(text, f"{device.name}: this device's clock is {text}; readings are corrected. Set its clock "
                             "(NTP) to keep its local logs in step.")
