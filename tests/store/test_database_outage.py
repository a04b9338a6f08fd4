"""A database that goes away: callers get StoreUnavailable (never a driver exception), nothing is half-written, and
the same store works again once the server is back, so a caller's retry is all it takes. The outage is real: the
PostgreSQL server is stopped and restarted."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import psycopg
import pytest

from settings import Settings
from store import open_store
from store.errors import StoreUnavailable
from tests.store.conftest import World, readings_for

T = TypeVar("T")


def retry_until_back(action: Callable[[], T], timeout: float = 60.0) -> T:
    """What callers (the Pi spool, the remote batch writer) do: retry on StoreUnavailable."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except StoreUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@pytest.fixture
def world(store_factory) -> World:
    return World(store_factory())


def test_while_the_server_is_down_calls_raise_store_unavailable_then_a_retry_succeeds(world, postgres_server):
    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    batch = readings_for(session.id, 50)
    with postgres_server.outage():
        with pytest.raises(StoreUnavailable):
            device_store.insert_readings(batch)
        with pytest.raises(StoreUnavailable):
            store.ping()
    assert retry_until_back(lambda: device_store.insert_readings(batch)) == 50
    assert len(store.readings_since(session.id).readings) == 50


def test_a_batch_interrupted_by_the_server_going_down_is_all_or_nothing(world, postgres_server, database_url):
    """The server stops while a batch transaction is open: after the restart either every reading is there or none."""
    import threading

    _, store = world.clinician()
    session, device_store = world.in_person_session(store)
    batch = readings_for(session.id, 200)
    errors: list[BaseException] = []

    def insert() -> None:
        try:
            device_store.insert_readings(batch)
        except BaseException as error:  # noqa: BLE001 - checked below
            errors.append(error)

    blocker = psycopg.connect(database_url, autocommit=True)
    worker = threading.Thread(target=insert)
    try:
        # Hold the session's reading lock so the store's insert waits inside its transaction...
        blocker.execute("BEGIN")
        blocker.execute("SELECT pg_advisory_xact_lock(hashtextextended('readings:' || %s::text, 0))", (str(session.id),))
        worker.start()
        # ...until PostgreSQL itself reports that backend waiting for the advisory lock: the insert is mid-batch...
        wait_for_lock_waiter(blocker)
        postgres_server.stop()  # ...then take the server down under it
        worker.join(60)
        assert not worker.is_alive(), "the insert did not return after the server went away"
    finally:
        if not postgres_server.is_running():
            postgres_server.start()
        blocker.close()
        if worker.ident is not None:
            worker.join(60)
    assert len(errors) == 1 and isinstance(errors[0], StoreUnavailable), errors
    assert retry_until_back(lambda: len(store.readings_since(session.id).readings)) == 0
    assert retry_until_back(lambda: device_store.insert_readings(batch)) == 200


def wait_for_lock_waiter(admin: psycopg.Connection, timeout: float = 60.0) -> None:
    """Until another backend of this database waits on an advisory lock (pg_stat_activity says so)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        waiting = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND wait_event_type = 'Lock' AND wait_event = 'advisory'").fetchone()[0]
        if waiting:
            return
        time.sleep(0.05)
    raise AssertionError(f"no backend waited on the reading lock within {timeout} s")


def test_a_store_opened_during_an_outage_works_once_the_server_is_back(database_url, postgres_server):
    with postgres_server.outage():
        store = open_store(Settings(database_url=database_url))
        with pytest.raises(StoreUnavailable):
            store.count_clinicians()
    try:
        assert retry_until_back(store.count_clinicians) == 0
    finally:
        store.close()


def test_connections_dropped_by_the_server_are_replaced_without_an_error(world, database_url):
    """E.g. a Supabase pooler restart or an idle timeout: the pool checks connections before handing them out."""
    _, store = world.clinician()
    world.patient(store)
    with psycopg.connect(database_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()) t").fetchone()[0]
    assert killed >= 1
    assert len(store.list_patients()) == 1


def test_an_unreachable_database_url_is_store_unavailable():
    store = open_store(Settings(database_url="postgresql://nobody:nothing@127.0.0.1:1/none"))
    try:
        with pytest.raises(StoreUnavailable):
            store.ping()
    finally:
        store.close()
