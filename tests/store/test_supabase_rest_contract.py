"""CONTRACT TEST of the Supabase REST backend (store.supabase_rest) against PostgREST's documented HTTP protocol.

No PostgREST runs on this machine, so a local HTTP server stands in for https://<project>.supabase.co/rest/v1: it checks
that supabase-py sends exactly what PostgREST expects (method, path, filters as query parameters, `on_conflict`, `Prefer`
headers, the `apikey`/`Authorization` pair, RPC arguments as a JSON object) and answers the way PostgREST documents
(https://docs.postgrest.org: tables and RPC, `Prefer: resolution=ignore-duplicates`, errors as {code, message, details,
hint} with the documented HTTP status). What this cannot prove: that a real project accepts them. That is the manual check
in docs/storage.md ("Manual check against a real Supabase project").

Scope: every request runs under the acting user's own JWT (clinician, device, anon), signed with the project's JWT secret,
so row-level security applies; only the system actor sends the service key. `test_every_method_runs_under_its_actors_jwt`
checks that for every Store method.
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

import jwt
import pytest

from store.api import Actor, LoginThrottle
from store.errors import InvalidInput, InvalidToken, NotFound, PermissionDenied, SessionNotLive, StoreError, StoreUnavailable
from store.models import Clinician, NewPatient, Reading
from store.supabase_rest import SupabaseRestStore
from store.validation import LATE_READING_GRACE

SERVICE_KEY = "test-service-role-key.eyJyb2xlIjoic2VydmljZV9yb2xlIn0.signature"
JWT_SECRET = "test-project-jwt-secret-with-at-least-32-characters"
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
    default: Callable[[RecordedRequest], Reply] | None = None  # answers what no scripted reply covers

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
            if not queue and fake.default is not None:
                reply = fake.default(request)
            elif not queue:
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
    return SupabaseRestStore.connect(fake.url, SERVICE_KEY, jwt_secret=JWT_SECRET)


def bearer_claims(request: RecordedRequest) -> dict[str, Any] | str:
    """The claims of the request's bearer JWT (verified with the project secret), or "service key"."""
    token = request.headers["authorization"].removeprefix("Bearer ")
    if token == SERVICE_KEY:
        return "service key"
    return jwt.decode(token, JWT_SECRET, algorithms=["HS256"], audience="authenticated")


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


# --- readings: through the same SQL functions as the direct backend ---------------------------------------------------------------
def test_a_device_inserts_readings_through_its_function_under_its_own_jwt(fake, store):
    device = store.as_actor(Actor.for_device(DEVICE_ID))
    batch = readings(3)
    fake.reply("POST", "/rest/v1/rpc/device_insert_readings", Reply(200, 2))  # one was already stored
    assert device.insert_readings(batch) == 2
    call = fake.only("POST", "/rest/v1/rpc/device_insert_readings")
    assert bearer_claims(call).items() >= {"role": "psya_device", "sub": str(DEVICE_ID)}.items()
    assert call.headers["apikey"] == SERVICE_KEY  # the gateway's key; the role comes from the bearer JWT
    rows = call.body["p_readings"]
    assert [row["id"] for row in rows] == [str(r.id) for r in batch]
    assert rows[0]["captured_at"] == "2026-11-25T09:00:00+00:00"
    assert rows[1]["captured_at"] == "2026-11-25T09:00:00.250000+00:00"  # milliseconds survive the trip
    assert [rows[0][label] for label in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")] == list(HAPPY)
    assert (rows[0]["box_x"], rows[0]["box_y"], rows[0]["box_w"], rows[0]["box_h"], rows[0]["faces"],
            rows[0]["source"]) == (10, 20, 30, 40, 1, "pi")
    assert "seq" not in rows[0]  # the cursor is assigned by the database, never by a client
    assert [r.path for r in fake.requests] == ["/rest/v1/rpc/device_insert_readings"]  # no table read first


def test_a_clinician_inserts_readings_through_insert_readings_under_their_jwt(fake, store):
    fake.reply("POST", "/rest/v1/rpc/insert_readings", Reply(200, 1))
    batch = [Reading(SESSION_ID, datetime.now(timezone.utc), HAPPY, "video")]
    assert store.as_actor(Actor.for_clinician(CLINICIAN)).insert_readings(batch) == 1
    call = fake.only("POST", "/rest/v1/rpc/insert_readings")
    assert bearer_claims(call).items() >= {"role": "authenticated", "actor": "clinician",
                                           "sub": str(CLINICIAN.id)}.items()


@pytest.mark.parametrize("message, raised", [
    (f"session_not_live: session {SESSION_ID} ended at ...; a reading captured at ... is after the end", SessionNotLive),
    (f"not_found: session {SESSION_ID}", NotFound),
    ("invalid_input: a reading of session ... captured at 1971-01-01 ... is refused", InvalidInput),
    ("permission_denied: not a registered device", PermissionDenied),
])
def test_refusals_of_the_database_become_store_errors(fake, store, message, raised):
    fake.reply("POST", "/rest/v1/rpc/device_insert_readings", error(400, "P0001", message))
    with pytest.raises(raised):
        store.as_actor(Actor.for_device(DEVICE_ID)).insert_readings(readings(1))


def test_a_pi_uses_its_device_token_and_the_anon_key_only(fake):
    anon_key = "test-anon-key"
    token = jwt.encode({"role": "psya_device", "sub": str(DEVICE_ID), "aud": "authenticated"}, JWT_SECRET)
    pi = SupabaseRestStore.connect(fake.url, anon_key, device_token=token)
    fake.reply("POST", "/rest/v1/rpc/device_authenticate", Reply(200, [{"id": str(DEVICE_ID), "name": "pi", "room": "",
                                                                        "last_heartbeat": None, "created_at": None}]))
    # a scalar function: PostgREST answers the bare JSON value, here the database's clock_timestamp()
    fake.reply("POST", "/rest/v1/rpc/device_heartbeat", Reply(200, "2026-12-03T09:00:00.123456+00:00"),
               Reply(200, "2026-12-03T09:00:30+00:00"))
    fake.reply("POST", "/rest/v1/rpc/device_live_session", Reply(200, []))
    assert pi.authenticate_device(DEVICE_ID, "the-key").id == DEVICE_ID
    device = pi.as_actor(Actor.for_device(DEVICE_ID))
    assert device.heartbeat() == datetime(2026, 12, 3, 9, 0, 0, 123456, tzinfo=timezone.utc)
    device.heartbeat(timedelta(seconds=-3.4))
    assert device.live_session_for_device() is None
    assert {r.headers["authorization"] for r in fake.requests} == {f"Bearer {token}"}
    assert {r.headers["apikey"] for r in fake.requests} == {anon_key}
    assert fake.requests[0].body == {"p_device_id": str(DEVICE_ID), "p_key": "the-key"}
    # the offset the device measured last, in whole ms (database time - device time); null until it has measured one
    heartbeats = [r.body for r in fake.requests if r.path == "/rest/v1/rpc/device_heartbeat"]
    assert heartbeats == [{"p_clock_offset_ms": None}, {"p_clock_offset_ms": -3400}]


def test_a_heartbeat_answer_that_is_not_a_clock_is_an_error(fake, store):
    fake.reply("POST", "/rest/v1/rpc/device_heartbeat", Reply(204))  # a database without 20261203010000_device_clock
    with pytest.raises(StoreError, match="not the database's clock"):
        store.as_actor(Actor.for_device(DEVICE_ID)).heartbeat()


def test_an_absurd_clock_offset_is_refused_before_anything_is_sent(fake, store):
    with pytest.raises(InvalidInput, match="set the device's clock"):
        store.as_actor(Actor.for_device(DEVICE_ID)).heartbeat(timedelta(days=2))
    assert fake.requests == []


def test_devices_are_listed_with_their_measured_clock_offset(fake, store):
    fake.reply("GET", "/rest/v1/devices", Reply(200, [{**DEVICE_ROW, "clock_offset_ms": -3400,
                                                        "clock_measured_at": "2026-12-03T09:00:00+00:00"}]))
    [device] = store.as_actor(AS_CLINICIAN).list_devices()
    assert device.clock_offset_ms == -3400
    assert device.clock_measured_at == datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc)
    assert "clock_offset_ms" in fake.requests[0].param("select") and "clock_measured_at" in fake.requests[0].param("select")


def test_without_the_jwt_secret_a_clinician_request_is_refused_before_the_network(fake):
    from store.supabase_rest import StoreConfigError

    store = SupabaseRestStore.connect(fake.url, SERVICE_KEY)
    with pytest.raises(StoreConfigError, match="SUPABASE_JWT_SECRET"):
        store.as_actor(Actor.for_clinician(CLINICIAN)).list_patients()
    assert fake.requests == []


def test_bad_probabilities_never_reach_the_network(fake, store):
    bad = Reading(SESSION_ID, datetime.now(timezone.utc), (0.5,) * 7, "pi")
    with pytest.raises(InvalidInput):
        store.insert_readings([bad])
    assert fake.requests == []


def test_a_row_level_security_refusal_is_permission_denied(fake, store):
    fake.reply("POST", "/rest/v1/rpc/insert_readings",
               error(403, "42501", 'new row violates row-level security policy for table "readings"'))
    with pytest.raises(PermissionDenied, match="row-level security"):
        store.as_actor(Actor.for_clinician(CLINICIAN)).insert_readings(readings(1))


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
    assert visible.param("clinician_id") is None  # no Python owner filter: the clinician's JWT makes RLS apply
    assert bearer_claims(visible)["sub"] == str(CLINICIAN.id)
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
    assert request.param("clinician_id") is None and bearer_claims(request)["sub"] == str(CLINICIAN.id)
    assert request.param("archived") == "eq.false"
    assert request.param("full_name") == "ilike.%Ana%"
    assert request.param("order") == "full_name.asc"
    assert patients[0].date_of_birth == date(1990, 4, 1) and patients[0].id == PATIENT_ID


def test_an_admin_list_has_no_owner_filter(fake, store):
    fake.reply("GET", "/rest/v1/patients", Reply(200, []))
    store.as_actor(Actor.for_clinician(ADMIN)).list_patients(include_archived=True)
    request = fake.only("GET", "/rest/v1/patients")
    assert request.param("clinician_id") is None and request.param("archived") is None
    assert bearer_claims(request)["app_role"] == "admin"


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
    assert patch.param("id") == f"eq.{PATIENT_ID}" and patch.param("clinician_id") is None
    assert bearer_claims(patch)["sub"] == str(CLINICIAN.id)
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


def test_device_registration_sends_only_the_key_hash_and_reads_back_public_columns(fake, store):
    device_row = {"id": str(DEVICE_ID), "name": "pi-1", "room": "Room 1", "last_heartbeat": None,
                  "created_at": "2026-11-25T09:00:00+00:00", "revoked_at": None}
    fake.reply("POST", "/rest/v1/devices", Reply(201))
    fake.reply("GET", "/rest/v1/devices", Reply(200, [device_row]))
    fake.reply("POST", "/rest/v1/audit_log", Reply(201))
    registration = store.as_actor(Actor.for_clinician(CLINICIAN)).register_device("pi-1", "Room 1")
    insert = fake.only("POST", "/rest/v1/devices")
    import hashlib

    assert insert.body["key_hash"] == hashlib.sha256(registration.key.encode()).hexdigest()
    assert registration.key not in json.dumps(insert.body)  # only the hash travels
    assert "return=minimal" in insert.prefer  # `authenticated` may not read key_hash back
    assert "key_hash" not in fake.only("GET", "/rest/v1/devices").param("select")
    assert registration.login is None  # over REST the device's credential is its JWT


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
    from tests.ports import unused_port

    port = unused_port()
    store = SupabaseRestStore.connect(f"http://127.0.0.1:{port}", SERVICE_KEY)
    with pytest.raises(StoreUnavailable):
        store.ping()


# --- scope: every method, under whose token ------------------------------------------------------------------------------------
def session_row() -> dict[str, Any]:
    return {"id": str(SESSION_ID), "patient_id": str(PATIENT_ID), "clinician_id": str(CLINICIAN.id), "mode": "in_person",
            "status": "live", "device_id": str(DEVICE_ID), "started_at": "2026-11-25T09:00:00+00:00", "ended_at": None,
            "join_expires_at": None, "created_at": "2026-11-25T09:00:00+00:00"}


DEVICE_ROW = {"id": str(DEVICE_ID), "name": "pi", "room": "", "last_heartbeat": None, "created_at": None, "revoked_at": None,
              "clock_offset_ms": None, "clock_measured_at": None}
AGGREGATE_ROW = {"readings": 0, "first_at": None, "last_at": None, **{f"mean_{label}": 0 for label in
                 ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")}, "dominant_counts": {}}


def plausible_postgrest(request: RecordedRequest) -> Reply:
    """Answers any request the way PostgREST would for one visible row of each kind."""
    table = request.path.removeprefix("/rest/v1/")
    rows = {"patients": [patient_row()], "sessions": [session_row()], "devices": [DEVICE_ROW],
            "clinicians": [{"id": str(CLINICIAN.id), "username": "drgrey", "display_name": "Dr Grey", "role": "clinician",
                            "failed_logins": 0, "locked_until": None, "created_at": None}],
            "record_entries": [{"id": str(uuid.uuid4()), "patient_id": str(PATIENT_ID), "entry_date": "2026-11-25",
                                "kind": "other", "text": "x", "author_id": str(CLINICIAN.id), "created_at": None}],
            "annotations": [{"id": str(uuid.uuid4()), "session_id": str(SESSION_ID), "at": "2026-11-25T09:00:00+00:00",
                             "text": "x", "author_id": str(CLINICIAN.id)}],
            "audit_log": [], "rpc/readings_since": [], "rpc/session_aggregate": [AGGREGATE_ROW],
            "rpc/session_for_token": [session_row()], "rpc/device_live_session": [session_row()],
            "rpc/device_authenticate": [DEVICE_ROW],
            "consent_texts": [{"version": int((request.param("version") or "eq.1").removeprefix("eq.")),
                               "text": "I agree to facial analysis.", "published_at": "2026-11-25T09:00:00+00:00"}],
            "marker_types": [{"id": str(uuid.uuid4()), "clinician_id": str(CLINICIAN.id), "label": "topic: family",
                              "shortcut": "1", "position": 0, "created_at": "2026-11-25T09:00:00+00:00"}],
            "session_markers": [{"id": str(uuid.uuid4()), "session_id": str(SESSION_ID), "at": "2026-11-25T09:00:00+00:00",
                                 "kind": "distress", "text": "", "author_id": str(CLINICIAN.id),
                                 "created_at": "2026-11-25T09:00:00+00:00", "updated_at": "2026-11-25T09:00:00+00:00"}]}
    # functions returning a scalar or a jsonb document: PostgREST answers the bare value, not a list of rows
    scalars = {"rpc/login_attempt_begin": 0.0, "rpc/login_session_open": str(uuid.uuid4()),
               "rpc/publish_consent_text": 2, "rpc/device_heartbeat": "2026-12-03T09:00:00+00:00",
               "rpc/patient_export": {"patient": patient_row(), "record_entries": [], "consents": [],
                                      "sessions": [session_row()], "annotations": [],
                                      "reading_counts": {str(SESSION_ID): 0}},
               "rpc/erase_patient": {"readings": 0, "annotations": 0, "sessions": 1, "record_entries": 0,
                                     "consent_records": 1}}
    if table in scalars:
        return Reply(200, scalars[table])
    if table in ("rpc/insert_readings", "rpc/device_insert_readings", "rpc/insert_remote_readings"):
        return Reply(200, 1)
    if table == "rpc/revoke_device":
        return Reply(204)
    if request.method == "POST" and "return=minimal" in request.prefer:
        return Reply(201)
    return Reply(200 if request.method != "POST" else 201, rows.get(table, []))


SYSTEM, AS_CLINICIAN, AS_ADMIN, AS_DEVICE = Actor.system(), Actor.for_clinician(CLINICIAN), Actor.for_clinician(ADMIN), \
    Actor.for_device(DEVICE_ID)
TOKEN = "w" * 43
THROTTLE = LoginThrottle(free_failures=3, first_delay=timedelta(seconds=1), account_max_delay=timedelta(minutes=15),
                         address_max_delay=timedelta(minutes=5))
NOW = datetime.now(timezone.utc)
METHODS: list[tuple[str, Actor, Callable[[Any], object]]] = [
    ("ping", SYSTEM, lambda s: s.ping()),
    ("count_clinicians", SYSTEM, lambda s: s.count_clinicians()),
    ("create_clinician", SYSTEM, lambda s: s.create_clinician("drgrey", "Dr Grey", "$2b$04$hash", "clinician")),
    ("get_clinician_by_username", SYSTEM, lambda s: s.get_clinician_by_username("drgrey")),
    ("record_login_result", SYSTEM, lambda s: s.record_login_result("drgrey", False)),
    ("list_clinicians", AS_ADMIN, lambda s: s.list_clinicians()),
    ("create_patient", AS_CLINICIAN, lambda s: s.create_patient(NewPatient(full_name="Ana"))),
    ("update_patient", AS_CLINICIAN, lambda s: s.update_patient(PATIENT_ID, notes="n")),
    ("archive_patient", AS_CLINICIAN, lambda s: s.archive_patient(PATIENT_ID)),
    ("record_consent", AS_CLINICIAN, lambda s: s.record_consent(PATIENT_ID, True, date(2026, 1, 5), "sessions")),
    ("get_patient", AS_CLINICIAN, lambda s: s.get_patient(PATIENT_ID)),
    ("list_patients", AS_CLINICIAN, lambda s: s.list_patients()),
    ("add_record_entry", AS_CLINICIAN, lambda s: s.add_record_entry(PATIENT_ID, date(2026, 11, 25), "other", "x")),
    ("list_record_entries", AS_CLINICIAN, lambda s: s.list_record_entries(PATIENT_ID)),
    ("register_device", AS_CLINICIAN, lambda s: s.register_device("pi", "Room")),
    ("revoke_device", AS_ADMIN, lambda s: s.revoke_device(DEVICE_ID)),
    ("list_devices", AS_CLINICIAN, lambda s: s.list_devices()),
    ("authenticate_device", AS_DEVICE, lambda s: s.authenticate_device(DEVICE_ID, "key")),
    ("heartbeat", AS_DEVICE, lambda s: s.heartbeat()),
    ("live_session_for_device", AS_DEVICE, lambda s: s.live_session_for_device()),
    ("start_session", AS_CLINICIAN, lambda s: s.start_session(PATIENT_ID, "recorded_video")),
    ("start_remote_session", AS_CLINICIAN, lambda s: s.start_remote_session(PATIENT_ID)),
    ("end_session", AS_CLINICIAN, lambda s: s.end_session(SESSION_ID)),
    ("get_session", AS_CLINICIAN, lambda s: s.get_session(SESSION_ID)),
    ("list_sessions", AS_CLINICIAN, lambda s: s.list_sessions()),
    ("insert_readings as device", AS_DEVICE, lambda s: s.insert_readings(readings(2))),
    ("insert_readings as clinician", AS_CLINICIAN, lambda s: s.insert_readings(readings(2))),
    ("readings_since", AS_CLINICIAN, lambda s: s.readings_since(SESSION_ID)),
    ("session_aggregate", AS_CLINICIAN, lambda s: s.session_aggregate(SESSION_ID)),
    ("add_annotation", AS_CLINICIAN, lambda s: s.add_annotation(SESSION_ID, NOW, "note")),
    ("list_annotations", AS_CLINICIAN, lambda s: s.list_annotations(SESSION_ID)),
    ("audit", AS_CLINICIAN, lambda s: s.audit("export", "session", str(SESSION_ID))),
    ("list_audit", AS_ADMIN, lambda s: s.list_audit()),
    ("audit_chain", AS_ADMIN, lambda s: s.audit_chain()),
    ("get_time_zone", AS_CLINICIAN, lambda s: s.get_time_zone()),
    ("set_time_zone", AS_CLINICIAN, lambda s: s.set_time_zone("Europe/Madrid")),
    ("rotate_join_token", AS_CLINICIAN, lambda s: s.rotate_join_token(SESSION_ID)),
    ("save_join_link", AS_CLINICIAN, lambda s: s.save_join_link(SESSION_ID, "ciphertext")),
    ("get_join_link", AS_CLINICIAN, lambda s: s.get_join_link(SESSION_ID)),
    ("retime_recorded_session", AS_CLINICIAN, lambda s: s.retime_recorded_session(
        SESSION_ID, datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc))),
    # login throttle and stored login sessions (system operations: the service key)
    ("begin_login_attempt", SYSTEM, lambda s: s.begin_login_attempt("doc", "10.0.0.1", THROTTLE)),
    ("reset_login_throttle", SYSTEM, lambda s: s.reset_login_throttle("doc")),
    ("open_login_session", SYSTEM, lambda s: s.open_login_session(CLINICIAN.id, "t" * 43, "10.0.0.1")),
    ("resume_login_session", SYSTEM, lambda s: s.resume_login_session("t" * 43, timedelta(hours=2),
                                                                      timedelta(hours=12))),
    ("end_login_session", SYSTEM, lambda s: s.end_login_session("t" * 43)),
    ("revoke_login_sessions", SYSTEM, lambda s: s.revoke_login_sessions(CLINICIAN.id)),
    ("set_password_hash", SYSTEM, lambda s: s.set_password_hash(CLINICIAN.id, "$2b$04$" + "x" * 53)),
    ("set_clinician_active", SYSTEM, lambda s: s.set_clinician_active(CLINICIAN.id, False)),
    # patients' data rights
    ("current_consent_text", AS_CLINICIAN, lambda s: s.current_consent_text()),
    ("publish_consent_text", AS_ADMIN, lambda s: s.publish_consent_text("I agree to facial analysis.")),
    ("consent_history", AS_CLINICIAN, lambda s: s.consent_history(PATIENT_ID)),
    ("consent_is_current", AS_CLINICIAN, lambda s: s.consent_is_current(PATIENT_ID)),
    ("export_patient", AS_CLINICIAN, lambda s: s.export_patient(PATIENT_ID)),
    ("erase_patient", AS_ADMIN, lambda s: s.erase_patient(PATIENT_ID, "ERASE")),
    ("apply_retention", SYSTEM, lambda s: s.apply_retention(timedelta(days=30))),
    # event markers
    ("list_marker_types", AS_CLINICIAN, lambda s: s.list_marker_types()),
    ("add_marker_type", AS_CLINICIAN, lambda s: s.add_marker_type("topic: family", "1")),
    ("remove_marker_type", AS_CLINICIAN, lambda s: s.remove_marker_type(SESSION_ID)),
    ("add_marker", AS_CLINICIAN, lambda s: s.add_marker(SESSION_ID, NOW, "distress")),
    ("update_marker", AS_CLINICIAN, lambda s: s.update_marker(SESSION_ID, text="calmer")),
    ("remove_marker", AS_CLINICIAN, lambda s: s.remove_marker(SESSION_ID)),
    ("list_markers", AS_CLINICIAN, lambda s: s.list_markers(SESSION_ID)),
]
TOKEN_METHODS: list[tuple[str, Callable[[Any], object]]] = [
    ("session_for_token", lambda s: s.session_for_token(TOKEN)),
    ("insert_remote_readings", lambda s: s.insert_remote_readings(
        TOKEN, [Reading(SESSION_ID, NOW, HAPPY, "remote")])),
]


def expected_claims(actor: Actor) -> dict[str, str] | str:
    if actor.kind == "system":
        return "service key"
    if actor.kind == "device":
        return {"role": "psya_device", "actor": "device", "sub": str(actor.id)}
    return {"role": "authenticated", "actor": "clinician", "sub": str(actor.id), "app_role": actor.role}


def test_every_store_method_is_in_the_scope_table():
    from store.api import Store

    covered = {name.split(" ")[0] for name, _, _ in METHODS} | {name for name, _ in TOKEN_METHODS}
    assert covered | {"as_actor", "close"} == set(Store.__abstractmethods__)


@pytest.mark.parametrize("name, actor, call", METHODS, ids=[m[0] for m in METHODS])
def test_every_method_runs_under_its_actors_jwt(fake, store, name, actor, call):
    fake.default = plausible_postgrest
    call(store.as_actor(actor))
    assert fake.requests, f"{name} sent nothing"
    expected = expected_claims(actor)
    for request in fake.requests:
        claims = bearer_claims(request)
        if expected == "service key":
            assert claims == "service key", f"{name}: {request.method} {request.path}"
        else:
            assert isinstance(claims, dict) and claims.items() >= expected.items(), f"{name}: {request.method} {request.path}"
        # no ownership filter in the request: the JWT makes the database apply row-level security
        assert request.param("clinician_id") is None and request.param("device_id") is None, name


@pytest.mark.parametrize("actor", [SYSTEM, AS_CLINICIAN, Actor("remote")], ids=["system", "clinician", "remote"])
@pytest.mark.parametrize("name, call", TOKEN_METHODS, ids=[m[0] for m in TOKEN_METHODS])
def test_join_token_methods_always_run_as_anon(fake, store, actor, name, call):
    fake.default = plausible_postgrest
    call(store.as_actor(actor))
    for request in fake.requests:
        claims = bearer_claims(request)
        assert isinstance(claims, dict) and claims["role"] == "anon", name


def test_a_refused_view_is_audited_under_the_clinicians_jwt(fake, store):
    fake.reply("GET", "/rest/v1/patients", Reply(200, []))  # RLS hides another clinician's patient
    fake.reply("POST", "/rest/v1/audit_log", Reply(201))
    with pytest.raises(NotFound):
        store.as_actor(AS_CLINICIAN).get_patient(PATIENT_ID)
    audit = fake.only("POST", "/rest/v1/audit_log")
    assert audit.body["action"] == "view_denied" and bearer_claims(audit)["sub"] == str(CLINICIAN.id)
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
    # no ownership filter: the clinician_preferences_select policy shows only the clinician's own row
    assert fake.only("GET", "/rest/v1/clinician_preferences").param("clinician_id") is None
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
        f"eq.{SESSION_ID}", "eq.remote", "eq.live", None)  # sessions_update (RLS) limits it to the clinician's own
    assert set(patch.body) == {"join_token_hash"} and len(patch.body["join_token_hash"]) == 64
    assert rotated.token and rotated.session.id == SESSION_ID
    fake.reply("POST", "/rest/v1/remote_join_links", Reply(201, None))
    clinician.save_join_link(SESSION_ID, "ciphertext")
    upsert = fake.only("POST", "/rest/v1/remote_join_links")
    assert upsert.param("on_conflict") == "session_id" and upsert.body["ciphertext"] == "ciphertext"
