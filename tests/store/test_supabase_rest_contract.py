"""CONTRACT TEST of the Supabase REST backend (store.supabase_rest) against PostgREST's documented HTTP protocol.

No PostgREST runs on this machine, so a local HTTP server stands in for https://<project>.supabase.co/rest/v1: it checks
that supabase-py sends exactly what PostgREST expects (method, path, filters as query parameters, `on_conflict`, `Prefer`
headers, the `apikey`/`Authorization` pair, RPC arguments as a JSON object) and answers the way PostgREST documents
(https://docs.postgrest.org: tables and RPC, `Prefer: resolution=ignore-duplicates`, errors as {code, message, details,
hint} with the documented HTTP status). What this cannot prove: that a real project accepts them. That is the manual check
in docs/storage.md ("Manual check against a real Supabase project").
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from store.api import Actor
from store.errors import InvalidInput, InvalidToken, NotFound, PermissionDenied, SessionNotLive, StoreUnavailable
from store.models import Clinician, NewPatient, Reading
from store.supabase_rest import SupabaseRestStore
from store.validation import LATE_READING_GRACE

SERVICE_KEY = "test-service-role-key.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.signature"
HAPPY = (0.05, 0.01, 0.04, 0.6, 0.1, 0.1, 0.1)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lower-case names
    body: Any

    def param(self, name: str) -> str | None:
        values = [v for k, v in self.query if k == name]
        return values[0] if values else None

    def params(self, name: str) -> list[str]:
        return [v for k, v in self.query if k == name]

    @property
    def prefer(self) -> set[str]:
        return {part.strip() for part in self.headers.get("prefer", "").split(",") if part.strip()}


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class FakePostgrest:
    """Answers scripted replies per (method, path) in order and records every request it receives."""

    routes: dict[tuple[str, str], list[Reply | Callable[[RecordedRequest], Reply]]] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    url: str = ""

    def reply(self, method: str, path: str, *replies: Reply | Callable[[RecordedRequest], Reply]) -> None:
        self.routes.setdefault((method, path), []).extend(replies)

    def only(self, method: str, path: str) -> RecordedRequest:
        matching = [r for r in self.requests if (r.method, r.path) == (method, path)]
        assert len(matching) == 1, f"expected one {method} {path}, got {[(r.method, r.path) for r in self.requests]}"
        return matching[0]


def _handler_for(fake: FakePostgrest) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # keep test output clean
            pass

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            request = RecordedRequest(
                method=self.command,
                path=parts.path,
                query=parse_qsl(parts.query, keep_blank_values=True),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=json.loads(raw) if raw else None,
            )
            fake.requests.append(request)
            queue = fake.routes.get((self.command, parts.path))
            if not queue:
                reply = Reply(404, {"code": "PGRST205", "message": f"unscripted {self.command} {parts.path}",
                                    "details": None, "hint": None})
            else:
                scripted = queue.pop(0)
                reply = scripted(request) if callable(scripted) else scripted
            payload = b"" if reply.body is None else json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PATCH = do_DELETE = _handle

    return Handler


@pytest.fixture
def fake():
    fake = FakePostgrest()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(fake))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def store(fake) -> SupabaseRestStore:
    return SupabaseRestStore.connect(fake.url, SERVICE_KEY)


CLINICIAN = Clinician(uuid.UUID("11111111-1111-4111-8111-111111111111"), "drgrey", "Dr Grey", "clinician", "")
ADMIN = Clinician(uuid.UUID("22222222-2222-4222-8222-222222222222"), "admin", "Admin", "admin", "")
SESSION_ID = uuid.UUID("33333333-3333-4333-8333-333333333333")
PATIENT_ID = uuid.UUID("44444444-4444-4444-8444-444444444444")
DEVICE_ID = uuid.UUID("55555555-5555-4555-8555-555555555555")


def patient_row(**overrides: Any) -> dict[str, Any]:
    return {"id": str(PATIENT_ID), "clinician_id": str(CLINICIAN.id), "full_name": "Ana Pérez",
            "date_of_birth": "1990-04-01", "diagnosis": "", "in_treatment_since": None, "contact": "", "notes": "",
            "consent_facial_analysis": True, "consent_date": "2026-01-05", "consent_scope": "sessions",
            "archived": False, "created_at": "2026-11-25T09:00:00.123456+00:00", **overrides}


def reading_row(seq: int, reading_id: uuid.UUID, ms: int) -> dict[str, Any]:
    return {"id": str(reading_id), "seq": seq, "session_id": str(SESSION_ID),
            "captured_at": f"2026-11-25T09:00:00.{ms:03d}+00:00", "angry": 0.05, "disgust": 0.01, "fear": 0.04,
            "happy": 0.6, "sad": 0.1, "surprise": 0.1, "neutral": 0.1, "box_x": 10, "box_y": 20, "box_w": 30,
            "box_h": 40, "faces": 1, "source": "pi"}


def readings(count: int) -> list[Reading]:
    return [Reading(SESSION_ID, datetime(2026, 11, 25, 9, 0, 0, 1000 * (250 * i), tzinfo=timezone.utc), HAPPY, "pi",
                    box=(10, 20, 30, 40)) for i in range(count)]


def error(status: int, code: str, message: str, details: str | None = None) -> Reply:
    return Reply(status, {"code": code, "message": message, "details": details, "hint": None})


# --- every request carries the project key the way supabase-py sends it --------------------------------------------------------
def test_every_request_sends_the_apikey_and_bearer_authorization(fake, store):
    fake.reply("GET", "/rest/v1/clinicians", Reply(200, []))
    store.ping()
    request = fake.only("GET", "/rest/v1/clinicians")
    assert request.headers["apikey"] == SERVICE_KEY
    assert request.headers["authorization"] == f"Bearer {SERVICE_KEY}"
    assert request.param("select") == "id" and request.param("limit") == "1"


# --- readings: idempotent bulk insert ---------------------------------------------------------------------------------------------
def test_insert_readings_upserts_with_on_conflict_id_and_ignore_duplicates(fake, store):
    device = store.as_actor(Actor.for_device(DEVICE_ID))
    batch = readings(3)
    fake.reply("GET", "/rest/v1/sessions", Reply(200, [{"id": str(SESSION_ID), "status": "live"}]))
    # PostgREST returns only the rows actually inserted when duplicates are ignored: here one was already stored
    fake.reply("POST", "/rest/v1/readings",
               Reply(201, [reading_row(8, batch[1].id, 250), reading_row(9, batch[2].id, 500)]))
    assert device.insert_readings(batch) == 2

    check = fake.only("GET", "/rest/v1/sessions")
    assert check.param("id") == f"in.({SESSION_ID})"
    assert check.param("device_id") == f"eq.{DEVICE_ID}"  # the device sees only sessions assigned to it

    insert = fake.only("POST", "/rest/v1/readings")
    assert insert.param("on_conflict") == "id"
    assert {"resolution=ignore-duplicates", "return=representation"} <= insert.prefer
    assert insert.headers["content-type"].startswith("application/json")
    assert [row["id"] for row in insert.body] == [str(r.id) for r in batch]
    first = insert.body[0]
    assert first["captured_at"] == "2026-11-25T09:00:00+00:00"
    assert insert.body[1]["captured_at"] == "2026-11-25T09:00:00.250000+00:00"  # milliseconds survive the trip
    assert [first[label] for label in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")] == list(HAPPY)
    assert (first["box_x"], first["box_y"], first["box_w"], first["box_h"], first["faces"], first["source"]) == (
        10, 20, 30, 40, 1, "pi")
    assert "seq" not in first  # the cursor is assigned by the database, never by a client
    assert set(insert.params("columns")[0].replace('"', "").split(",")) == set(first)


# Late readings: an ended session still takes readings captured by its end (+ tolerance) for a grace period after it, the
# rule of the readings_insert policy (migration 20261125100000_late_readings.sql), applied here because the service key
# bypasses RLS.
def readings_at(start: datetime, count: int) -> list[Reading]:
    return [Reading(SESSION_ID, start + timedelta(milliseconds=250 * i), HAPPY, "pi") for i in range(count)]


def ended_session_row(ended_at: datetime) -> dict[str, Any]:
    return {"id": str(SESSION_ID), "status": "ended", "ended_at": ended_at.isoformat()}


def test_readings_captured_after_the_end_are_refused_before_any_insert(fake, store):
    ended_at = datetime.now(timezone.utc) - timedelta(minutes=1)
    batch = readings_at(ended_at + timedelta(seconds=6), 2)
    fake.reply("GET", "/rest/v1/sessions", Reply(200, [ended_session_row(ended_at)]))
    fake.reply("GET", "/rest/v1/readings", Reply(200, []))  # none of them is stored already
    with pytest.raises(SessionNotLive, match="after the end"):
        store.as_actor(Actor.for_device(DEVICE_ID)).insert_readings(batch)
    assert [r.method for r in fake.requests] == ["GET", "GET"]
    stored_check = fake.only("GET", "/rest/v1/readings")
    assert stored_check.param("session_id") == f"eq.{SESSION_ID}"
    assert stored_check.param("id") == f"in.({','.join(str(r.id) for r in batch)})"
    assert fake.only("GET", "/rest/v1/sessions").param("select") == "id,status,ended_at"


def test_readings_captured_before_the_end_are_upserted_after_it(fake, store):
    ended_at = datetime.now(timezone.utc) - timedelta(minutes=1)
    batch = readings_at(ended_at - timedelta(seconds=1), 2)
    fake.reply("GET", "/rest/v1/sessions", Reply(200, [ended_session_row(ended_at)]))
    fake.reply("POST", "/rest/v1/readings", Reply(201, [reading_row(1, batch[0].id, 0), reading_row(2, batch[1].id, 250)]))
    assert store.as_actor(Actor.for_device(DEVICE_ID)).insert_readings(batch) == 2
    assert [(r.method, r.path) for r in fake.requests] == [("GET", "/rest/v1/sessions"), ("POST", "/rest/v1/readings")]


def test_late_readings_after_the_grace_period_are_refused(fake, store):
    ended_at = datetime.now(timezone.utc) - LATE_READING_GRACE - timedelta(minutes=1)
    fake.reply("GET", "/rest/v1/sessions", Reply(200, [ended_session_row(ended_at)]))
    fake.reply("GET", "/rest/v1/readings", Reply(200, []))
    with pytest.raises(SessionNotLive, match="more than"):
        store.as_actor(Actor.for_device(DEVICE_ID)).insert_readings(readings_at(ended_at - timedelta(seconds=10), 1))
    assert all(r.method == "GET" for r in fake.requests)


def test_a_retry_of_stored_readings_is_not_refused_after_the_grace_period(fake, store):
    ended_at = datetime.now(timezone.utc) - 2 * LATE_READING_GRACE
    batch = readings_at(ended_at - timedelta(seconds=10), 2)
    fake.reply("GET", "/rest/v1/sessions", Reply(200, [ended_session_row(ended_at)]))
    fake.reply("GET", "/rest/v1/readings", Reply(200, [{"id": str(r.id)} for r in batch]))
    fake.reply("POST", "/rest/v1/readings", Reply(201, []))  # ignore-duplicates: nothing new
    assert store.as_actor(Actor.for_device(DEVICE_ID)).insert_readings(batch) == 0


def test_the_stored_reading_check_asks_in_chunks(fake, store):
    ended_at = datetime.now(timezone.utc) - timedelta(minutes=1)
    batch = readings_at(ended_at + timedelta(seconds=6), 250)
    fake.reply("GET", "/rest/v1/sessions", Reply(200, [ended_session_row(ended_at)]))
    fake.reply("GET", "/rest/v1/readings", Reply(200, []), Reply(200, []), Reply(200, []))
    with pytest.raises(SessionNotLive):
        store.as_actor(Actor.for_device(DEVICE_ID)).insert_readings(batch)
    checks = [r for r in fake.requests if r.path == "/rest/v1/readings"]
    assert [len(r.param("id").split(",")) for r in checks] == [100, 100, 50]


def test_a_scheduled_session_takes_no_readings(fake, store):
    fake.reply("GET", "/rest/v1/sessions", Reply(200, [{"id": str(SESSION_ID), "status": "scheduled", "ended_at": None}]))
    fake.reply("GET", "/rest/v1/readings", Reply(200, []))
    with pytest.raises(SessionNotLive, match="scheduled"):
        store.as_actor(Actor.for_device(DEVICE_ID)).insert_readings(readings(1))


def test_readings_for_a_session_the_actor_cannot_see_are_not_found(fake, store):
    fake.reply("GET", "/rest/v1/sessions", Reply(200, []))
    with pytest.raises(NotFound):
        store.as_actor(Actor.for_device(DEVICE_ID)).insert_readings(readings(1))


def test_bad_probabilities_never_reach_the_network(fake, store):
    bad = Reading(SESSION_ID, datetime.now(timezone.utc), (0.5,) * 7, "pi")
    with pytest.raises(InvalidInput):
        store.insert_readings([bad])
    assert fake.requests == []


def test_a_row_level_security_refusal_is_permission_denied(fake, store):
    fake.reply("GET", "/rest/v1/sessions", Reply(200, [{"id": str(SESSION_ID), "status": "live"}]))
    fake.reply("POST", "/rest/v1/readings",
               error(403, "42501", 'new row violates row-level security policy for table "readings"'))
    with pytest.raises(PermissionDenied, match="row-level security"):
        store.as_actor(Actor.for_device(DEVICE_ID)).insert_readings(readings(1))


# --- readings: polling and aggregates through RPC --------------------------------------------------------------------------------
def test_readings_since_calls_the_rpc_with_named_arguments_and_returns_the_last_seq(fake, store):
    clinician = store.as_actor(Actor.for_clinician(CLINICIAN))
    ids = [uuid.uuid4(), uuid.uuid4()]
    fake.reply("GET", "/rest/v1/sessions", Reply(200, [{"id": str(SESSION_ID), "patient_id": str(PATIENT_ID),
               "clinician_id": str(CLINICIAN.id), "mode": "in_person", "status": "live", "device_id": str(DEVICE_ID),
               "started_at": "2026-11-25T09:00:00+00:00", "ended_at": None, "join_expires_at": None,
               "created_at": "2026-11-25T09:00:00+00:00"}]))
    fake.reply("POST", "/rest/v1/rpc/readings_since", Reply(200, [reading_row(41, ids[0], 123),
                                                                   reading_row(42, ids[1], 373)]))
    page = clinician.readings_since(SESSION_ID, cursor=40, limit=500)
    visible = fake.only("GET", "/rest/v1/sessions")
    assert visible.param("clinician_id") == f"eq.{CLINICIAN.id}"  # the owner filter the service key would bypass
    call = fake.only("POST", "/rest/v1/rpc/readings_since")
    assert call.body == {"p_session": str(SESSION_ID), "p_cursor": 40, "p_limit": 500}
    assert page.cursor == 42
    assert [r.id for r in page.readings] == ids
    assert page.readings[1].captured_at == datetime(2026, 11, 25, 9, 0, 0, 373000, tzinfo=timezone.utc)
    assert page.readings[0].box == (10, 20, 30, 40) and page.readings[0].probabilities == HAPPY


def test_session_aggregate_reads_the_rpc_row(fake, store):
    fake.reply("GET", "/rest/v1/sessions", Reply(200, [{"id": str(SESSION_ID), "patient_id": str(PATIENT_ID),
               "clinician_id": str(CLINICIAN.id), "mode": "remote", "status": "ended", "device_id": None,
               "started_at": None, "ended_at": None, "join_expires_at": None, "created_at": None}]))
    fake.reply("POST", "/rest/v1/rpc/session_aggregate", Reply(200, [{
        "readings": 4, "first_at": "2026-11-25T09:00:00.123+00:00", "last_at": "2026-11-25T10:00:00+00:00",
        "mean_angry": 0.05, "mean_disgust": 0.02, "mean_fear": 0.055, "mean_happy": 0.4625, "mean_sad": 0.225,
        "mean_surprise": 0.0875, "mean_neutral": 0.1, "dominant_counts": {"happy": 3, "sad": 1}}]))
    aggregate = store.session_aggregate(SESSION_ID)
    assert fake.only("POST", "/rest/v1/rpc/session_aggregate").body == {"p_session": str(SESSION_ID)}
    assert aggregate.readings == 4 and aggregate.mean_probabilities[3] == 0.4625
    assert aggregate.first_at == datetime(2026, 11, 25, 9, 0, 0, 123000, tzinfo=timezone.utc)
    assert aggregate.dominant_counts["happy"] == 3 and aggregate.dominant_counts["angry"] == 0


# --- remote patients: token functions ----------------------------------------------------------------------------------------------
def test_remote_readings_go_through_the_token_rpc_which_returns_a_count(fake, store):
    fake.reply("POST", "/rest/v1/rpc/insert_remote_readings", Reply(200, 3))
    batch = [Reading(SESSION_ID, datetime.now(timezone.utc), HAPPY, "remote") for _ in range(3)]
    assert store.as_actor(Actor("remote")).insert_remote_readings("t" * 43, batch) == 3
    call = fake.only("POST", "/rest/v1/rpc/insert_remote_readings")
    assert call.body["p_token"] == "t" * 43
    assert [row["id"] for row in call.body["p_readings"]] == [str(r.id) for r in batch]


def test_an_invalid_token_raised_by_the_function_is_invalid_token(fake, store):
    fake.reply("POST", "/rest/v1/rpc/session_for_token", error(400, "P0001", "invalid_token"))
    with pytest.raises(InvalidToken):
        store.session_for_token("u" * 43)


def test_a_session_not_live_raised_by_sql_is_session_not_live(fake, store):
    fake.reply("POST", "/rest/v1/rpc/insert_remote_readings",
               error(400, "P0001", f"session_not_live: session {SESSION_ID} is ended"))
    with pytest.raises(SessionNotLive):
        store.insert_remote_readings("v" * 43, [Reading(SESSION_ID, datetime.now(timezone.utc), HAPPY, "remote")])


# --- patients: owner filters and inserts --------------------------------------------------------------------------------------------
def test_a_clinician_lists_only_their_active_patients_ordered_by_name(fake, store):
    fake.reply("GET", "/rest/v1/patients", Reply(200, [patient_row()]))
    patients = store.as_actor(Actor.for_clinician(CLINICIAN)).list_patients("Ana")
    request = fake.only("GET", "/rest/v1/patients")
    assert request.param("clinician_id") == f"eq.{CLINICIAN.id}"
    assert request.param("archived") == "eq.false"
    assert request.param("full_name") == "ilike.%Ana%"
    assert request.param("order") == "full_name.asc"
    assert patients[0].date_of_birth == date(1990, 4, 1) and patients[0].id == PATIENT_ID


def test_an_admin_list_has_no_owner_filter(fake, store):
    fake.reply("GET", "/rest/v1/patients", Reply(200, []))
    store.as_actor(Actor.for_clinician(ADMIN)).list_patients(include_archived=True)
    request = fake.only("GET", "/rest/v1/patients")
    assert request.param("clinician_id") is None and request.param("archived") is None


def test_create_patient_posts_the_owner_and_audits_it(fake, store):
    fake.reply("POST", "/rest/v1/patients", Reply(201, [patient_row(consent_facial_analysis=False,
                                                                    consent_date=None)]))
    fake.reply("POST", "/rest/v1/audit_log", Reply(201))
    patient = store.as_actor(Actor.for_clinician(CLINICIAN)).create_patient(
        NewPatient(full_name="Ana Pérez", date_of_birth=date(1990, 4, 1)))
    insert = fake.only("POST", "/rest/v1/patients")
    assert insert.body["clinician_id"] == str(CLINICIAN.id)
    assert insert.body["date_of_birth"] == "1990-04-01" and insert.body["full_name"] == "Ana Pérez"
    assert "return=representation" in insert.prefer
    audit = fake.only("POST", "/rest/v1/audit_log")
    assert audit.body == {"actor": f"clinician:{CLINICIAN.id}", "action": "create", "entity": "patient",
                          "entity_id": str(PATIENT_ID)}
    assert "return=minimal" in audit.prefer
    assert patient.id == PATIENT_ID


def test_updating_a_patient_patches_with_id_and_owner_filters(fake, store):
    fake.reply("PATCH", "/rest/v1/patients", Reply(200, [patient_row(notes="new")]))
    fake.reply("POST", "/rest/v1/audit_log", Reply(201))
    store.as_actor(Actor.for_clinician(CLINICIAN)).update_patient(PATIENT_ID, notes="new")
    patch = fake.only("PATCH", "/rest/v1/patients")
    assert patch.param("id") == f"eq.{PATIENT_ID}" and patch.param("clinician_id") == f"eq.{CLINICIAN.id}"
    assert patch.body == {"notes": "new"}


def test_an_update_that_matches_no_row_is_not_found(fake, store):
    fake.reply("PATCH", "/rest/v1/patients", Reply(200, []))
    with pytest.raises(NotFound):
        store.as_actor(Actor.for_clinician(CLINICIAN)).archive_patient(PATIENT_ID)


def test_a_uniqueness_violation_is_invalid_input(fake, store):
    fake.reply("POST", "/rest/v1/clinicians",
               error(409, "23505", 'duplicate key value violates unique constraint "clinicians_username_key"',
                     "Key (username)=(drgrey) already exists."))
    with pytest.raises(InvalidInput, match="already exists"):
        store.create_clinician("drgrey", "Dr Grey", "$2b$12$hash", "clinician")


def test_device_registration_never_returns_the_key_hash(fake, store):
    def echo_with_id(request: RecordedRequest) -> Reply:
        return Reply(201, [{**request.body, "id": str(DEVICE_ID), "last_heartbeat": None,
                            "created_at": "2026-11-25T09:00:00+00:00"}])

    fake.reply("POST", "/rest/v1/devices", echo_with_id)
    fake.reply("POST", "/rest/v1/audit_log", Reply(201))
    registration = store.as_actor(Actor.for_clinician(CLINICIAN)).register_device("pi-1", "Room 1")
    sent = fake.only("POST", "/rest/v1/devices").body
    import hashlib

    assert sent["key_hash"] == hashlib.sha256(registration.key.encode()).hexdigest()
    assert registration.key not in json.dumps(sent)  # only the hash travels
    assert not hasattr(registration.device, "key_hash")


# --- an unreachable or failing database ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("reply", [
    error(503, "PGRST001", "Database client error. Retrying the connection."),
    error(503, "PGRST002", "Could not query the database for the schema cache. Retrying."),
    Reply(502, None),  # a gateway in front of PostgREST, no PostgREST JSON
])
def test_postgrest_reporting_the_database_down_is_store_unavailable(fake, store, reply):
    fake.reply("GET", "/rest/v1/clinicians", reply)
    with pytest.raises(StoreUnavailable):
        store.ping()
    assert len(fake.requests) == 1  # no hidden retries: the caller decides when to try again


def test_a_server_that_cannot_be_reached_is_store_unavailable():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = SupabaseRestStore.connect(f"http://127.0.0.1:{port}", SERVICE_KEY)
    with pytest.raises(StoreUnavailable):
        store.ping()


# --- clinician preferences (issue 12) ------------------------------------------------------------------------------------------
def test_a_time_zone_is_upserted_on_the_clinicians_own_row(fake, store):
    clinician = store.as_actor(Actor.for_clinician(CLINICIAN))
    fake.reply("POST", "/rest/v1/clinician_preferences", Reply(201, None))
    fake.reply("POST", "/rest/v1/audit_log", Reply(201, None))
    clinician.set_time_zone("Europe/Madrid")
    upsert = fake.only("POST", "/rest/v1/clinician_preferences")
    assert upsert.param("on_conflict") == "clinician_id" and "resolution=merge-duplicates" in upsert.prefer
    assert upsert.body == {"clinician_id": str(CLINICIAN.id), "time_zone": "Europe/Madrid"}
    fake.reply("GET", "/rest/v1/clinician_preferences", Reply(200, [{"time_zone": "Europe/Madrid"}]))
    assert clinician.get_time_zone() == "Europe/Madrid"
    assert fake.only("GET", "/rest/v1/clinician_preferences").param("clinician_id") == f"eq.{CLINICIAN.id}"
    with pytest.raises(InvalidInput):
        clinician.set_time_zone("Mars/Olympus")  # refused before any request
    assert len([r for r in fake.requests if r.path == "/rest/v1/clinician_preferences"]) == 2


def test_a_new_join_token_patches_the_live_remote_session_and_the_link_is_upserted(fake, store):
    clinician = store.as_actor(Actor.for_clinician(CLINICIAN))
    row = {"id": str(SESSION_ID), "patient_id": str(PATIENT_ID), "clinician_id": str(CLINICIAN.id), "mode": "remote",
           "status": "live", "device_id": None, "started_at": "2026-11-25T09:00:00+00:00", "ended_at": None,
           "join_expires_at": "2026-11-25T11:00:00+00:00", "created_at": "2026-11-25T09:00:00+00:00"}
    fake.reply("PATCH", "/rest/v1/sessions", Reply(200, [row]))
    fake.reply("POST", "/rest/v1/audit_log", Reply(201, None))
    rotated = clinician.rotate_join_token(SESSION_ID)
    patch = fake.only("PATCH", "/rest/v1/sessions")
    assert (patch.param("id"), patch.param("mode"), patch.param("status"), patch.param("clinician_id")) == (
        f"eq.{SESSION_ID}", "eq.remote", "eq.live", f"eq.{CLINICIAN.id}")
    assert set(patch.body) == {"join_token_hash"} and len(patch.body["join_token_hash"]) == 64
    assert rotated.token and rotated.session.id == SESSION_ID
    fake.reply("POST", "/rest/v1/remote_join_links", Reply(201, None))
    clinician.save_join_link(SESSION_ID, "ciphertext")
    upsert = fake.only("POST", "/rest/v1/remote_join_links")
    assert upsert.param("on_conflict") == "session_id" and upsert.body["ciphertext"] == "ciphertext"
