"""Browser analysis, server side (app/browser_analysis.py): what the browser sends is checked field by field, re-sent
readings are stored once, the model the browser gets is the configured one with its sidecar read at run time, and the
clinician is told which mode a session runs in. Real PostgreSQL and the real store API throughout."""

from __future__ import annotations

import json
import shutil
import time
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from app import browser_analysis, remote
from app.browser_analysis import BrowserClock, BrowserReadingIntake, InvalidBatch, parse_batch, parse_reading
from app.remote import remote_writer
from settings import Settings
from store.models import NewPatient

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=timezone.utc)
SESSION = uuid.uuid4()
PROBABILITIES = [0.05, 0.05, 0.1, 0.5, 0.1, 0.1, 0.1]


def raw_reading(**changes):
    reading = {"id": str(uuid.uuid4()), "t": NOW.timestamp() * 1000, "p": PROBABILITIES, "box": [100, 80, 200, 200],
               "faces": 1, "quality": {"detector_score": 0.93, "sharpness": 41.5}}
    reading.update(changes)
    return reading


def batch(seq, readings, **stats):
    return {"kind": "readings", "seq": seq, "readings": readings, "stats": stats}


# --- checking what the browser sends ---------------------------------------------------------------------------------


def test_a_well_formed_reading_becomes_a_remote_reading_with_the_browsers_id():
    raw = raw_reading()
    reading = parse_reading(raw, SESSION, NOW)
    assert reading.id == uuid.UUID(raw["id"])
    assert reading.session_id == SESSION and reading.source == "remote"
    assert reading.captured_at == NOW
    assert reading.box == (100, 80, 200, 200) and reading.faces == 1
    assert reading.probabilities == pytest.approx(tuple(PROBABILITIES)) and sum(reading.probabilities) == pytest.approx(1)
    assert reading.dominant == "happy"


@pytest.mark.parametrize("changes, message", [
    ({"id": "not-a-uuid"}, "not a UUID"),
    ({"t": "yesterday"}, "capture time"),
    ({"t": float("nan")}, "capture time"),
    ({"t": (NOW + timedelta(hours=1)).timestamp() * 1000}, "too far"),
    ({"t": (NOW - timedelta(days=3)).timestamp() * 1000}, "too far"),
    ({"p": PROBABILITIES[:6]}, "7 probabilities"),
    ({"p": [0.5] * 7}, "sums to"),
    ({"p": [-0.1, 0.1, 0.2, 0.4, 0.2, 0.1, 0.1]}, "not a probability"),
    ({"p": [True, 0, 0, 0, 0, 0, 0]}, "not a probability"),
    ({"box": [1, 2, 3]}, "box"),
    ({"box": [10.5, 2, 30, 30]}, "whole pixels"),
    ({"box": [-5, 2, 30, 30]}, "not a face"),
    ({"box": [0, 0, 0, 30]}, "not a face"),
    ({"faces": 0}, "faces"),
    ({"faces": 1.5}, "faces"),
    ({"quality": {"sharpness": "high"}}, "quality"),
])
def test_a_malformed_reading_is_refused_saying_what_is_wrong(changes, message):
    with pytest.raises(ValueError, match=message):
        parse_reading(raw_reading(**changes), SESSION, NOW)


def test_a_batch_keeps_its_good_readings_and_lists_the_refused_ones():
    parsed = parse_batch(batch(3, [raw_reading(), raw_reading(faces=0), raw_reading()], frames_analysed=12,
                               mean_analysis_ms=21.5, bogus="x"), SESSION, NOW)
    assert parsed.seq == 3 and len(parsed.readings) == 2
    assert len(parsed.rejected) == 1 and parsed.rejected[0].startswith("reading 1: faces")
    assert parsed.stats == {"frames_analysed": 12.0, "mean_analysis_ms": 21.5}


@pytest.mark.parametrize("value", [
    None, "readings", {"kind": "ready"}, {"kind": "readings", "seq": 0, "readings": []},
    {"kind": "readings", "seq": "1", "readings": []}, {"kind": "readings", "seq": 1, "readings": {}},
    {"kind": "readings", "seq": 1, "readings": [raw_reading()] * 501},
])
def test_what_is_not_a_readings_batch_is_refused_whole(value):
    with pytest.raises(InvalidBatch):
        parse_batch(value, SESSION, NOW)


# --- into the store: acknowledged, nothing doubled -------------------------------------------------------------------


@pytest.fixture
def remote_join(clinician_store):
    patient = clinician_store.create_patient(NewPatient(full_name=f"Browser Patient {uuid.uuid4().hex[:6]}"))
    clinician_store.record_consent(patient.id, True, date.today(), "facial analysis during sessions")
    return clinician_store.start_remote_session(patient.id)


def wait_until(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        time.sleep(0.05)
    return predicate()


def now_readings(count):
    start = datetime.now(timezone.utc)
    return [raw_reading(t=(start + timedelta(milliseconds=250 * i)).timestamp() * 1000) for i in range(count)]


def test_batches_are_stored_once_even_when_the_browser_sends_them_again(clinician_store, system_store, remote_join):
    session_id = remote_join.session.id
    intake = BrowserReadingIntake(session_id, remote_writer(system_store, remote_join.token), write_interval_s=0.2)
    try:
        first, second = now_readings(4), now_readings(3)
        assert intake.accept(parse_batch(batch(1, first), session_id)) == 1
        # The acknowledgement of batch 1 was lost: the browser sends its readings again with the new ones.
        assert intake.accept(parse_batch(batch(2, first + second), session_id)) == 2
        # The same component value seen again on an unrelated rerun changes nothing.
        assert intake.accept(parse_batch(batch(2, first + second), session_id)) == 2
        expected = {uuid.UUID(r["id"]) for r in first + second}
        assert wait_until(lambda: len(clinician_store.readings_since(session_id).readings) == 7)
        stored = clinician_store.readings_since(session_id).readings
        assert {r.id for r in stored} == expected
        status = intake.status()
        assert (status.batches, status.readings_accepted, status.duplicates, status.acked_seq) == (2, 7, 4, 2)
    finally:
        intake.stop()


def test_an_empty_batch_is_the_pages_heartbeat_acknowledged_and_noted_as_contact(clinician_store, system_store, remote_join):
    """The patient's page sends a batch about once a second even when no face is seen (no readings in it): it is
    acknowledged, stores nothing, and tells the dashboard the page is still there (app.presence.browser_connected)."""
    session_id = remote_join.session.id
    intake = BrowserReadingIntake(session_id, remote_writer(system_store, remote_join.token), write_interval_s=0.2)
    try:
        assert browser_analysis.last_batch_at(session_id) is None
        before = datetime.now(timezone.utc)
        assert intake.accept(parse_batch(batch(1, [], frames_analysed=8, frames_without_face=8), session_id)) == 1
        noted = browser_analysis.last_batch_at(session_id)
        assert noted is not None and noted >= before
        # the same value seen again on another rerun is not new contact
        assert intake.accept(parse_batch(batch(1, []), session_id)) == 1
        assert browser_analysis.last_batch_at(session_id) == noted
        status = intake.status()
        assert (status.batches, status.readings_accepted, status.frames_without_face) == (1, 0, 8)
        assert clinician_store.readings_since(session_id).readings == []
    finally:
        intake.stop()


def test_refused_readings_are_counted_and_the_rest_stored(clinician_store, system_store, remote_join):
    session_id = remote_join.session.id
    intake = BrowserReadingIntake(session_id, remote_writer(system_store, remote_join.token), write_interval_s=0.2)
    try:
        good = now_readings(2)
        bad = dict(good[0], id=str(uuid.uuid4()), p=[1, 1, 1, 1, 1, 1, 1])
        intake.accept(parse_batch(batch(1, [good[0], bad, good[1]]), session_id))
        assert wait_until(lambda: len(clinician_store.readings_since(session_id).readings) == 2)
        assert intake.status().rejected == 1 and "sums to" in intake.status().last_rejection
    finally:
        intake.stop()


def test_a_reading_for_another_session_cannot_be_smuggled_in(clinician_store, system_store, remote_join):
    """The session comes from the join token, never from the browser: an extra field naming a session is ignored."""
    session_id = remote_join.session.id
    intake = BrowserReadingIntake(session_id, remote_writer(system_store, remote_join.token), write_interval_s=0.2)
    try:
        intake.accept(parse_batch(batch(1, [dict(raw_reading(t=time.time() * 1000), session_id=str(uuid.uuid4()))]), session_id))
        assert wait_until(lambda: len(clinician_store.readings_since(session_id).readings) == 1)
    finally:
        intake.stop()


def test_ending_the_session_closes_the_intake(clinician_store, system_store, remote_join):
    session_id = remote_join.session.id
    intake = BrowserReadingIntake(session_id, remote_writer(system_store, remote_join.token), write_interval_s=0.2)
    try:
        clinician_store.end_session(session_id)
        late = (datetime.now(timezone.utc) + timedelta(seconds=30)).timestamp() * 1000
        intake.accept(parse_batch(batch(1, [raw_reading(t=late)]), session_id))
        assert wait_until(lambda: bool(intake.closed_reason))
        assert clinician_store.readings_since(session_id).readings == []
    finally:
        intake.stop()


# --- the patient's clock: measured on every batch, corrected before anything is stored --------------------------------


def ms(moment: datetime) -> float:
    return moment.timestamp() * 1000


def test_the_browser_clock_is_the_smallest_receive_minus_send_difference_of_the_last_few_batches():
    clock = BrowserClock(samples_kept=3)
    assert clock.offset == timedelta(0)  # nothing measured: the browser's times as they are
    ahead = timedelta(seconds=30)  # the patient's computer clock is 30 s fast
    for seq, delay_ms in enumerate([180, 40, 900], start=1):  # a batch that waited in a busy rerun does not count
        clock.observe(seq, NOW + ahead, NOW + timedelta(milliseconds=delay_ms))
    assert clock.offset == -ahead + timedelta(milliseconds=40)
    clock.observe(3, NOW + ahead, NOW)  # the same batch seen again on another rerun adds nothing
    assert clock.offset == -ahead + timedelta(milliseconds=40)
    for seq in (4, 5, 6):  # the best sample ages out after the last few
        clock.observe(seq, NOW + ahead, NOW + timedelta(milliseconds=100))
    assert clock.offset == -ahead + timedelta(milliseconds=100)


def test_capture_times_are_moved_onto_the_servers_clock():
    clock = BrowserClock()
    ahead = timedelta(seconds=30)
    raw = raw_reading(t=ms(NOW + ahead - timedelta(milliseconds=500)))
    parsed = parse_batch(dict(batch(1, [raw]), sent_at=ms(NOW + ahead)), SESSION, NOW + timedelta(milliseconds=20),
                         clock=clock)
    assert parsed.clock_offset == -ahead + timedelta(milliseconds=20)
    # captured half a second before it was sent, on the server's clock (20 ms late: the delay seen, never early)
    assert parsed.readings[0].captured_at == NOW - timedelta(milliseconds=480)
    # a batch without sent_at (an old cached bundle) keeps the offset measured so far
    parsed = parse_batch(batch(2, [raw_reading(t=ms(NOW + ahead))]), SESSION, NOW + timedelta(seconds=1), clock=clock)
    assert parsed.readings[0].captured_at == NOW + timedelta(milliseconds=20)


def test_a_browser_an_hour_ahead_is_corrected_not_refused():
    """Before, a reading more than MAX_CLOCK_SKEW (10 min) ahead of the server was refused as absurd; measured, it is
    just a clock set wrong."""
    ahead = timedelta(hours=1)
    parsed = parse_batch(dict(batch(1, [raw_reading(t=ms(NOW + ahead))]), sent_at=ms(NOW + ahead)), SESSION, NOW,
                         clock=BrowserClock())
    assert parsed.rejected == [] and parsed.readings[0].captured_at == NOW
    assert parse_batch(batch(1, [raw_reading(t=ms(NOW + ahead))]), SESSION, NOW).rejected  # unmeasured: refused


@pytest.mark.parametrize("sent_at", ["now", float("inf"), 1e300, True, [1]])
def test_a_sent_at_that_is_not_a_time_refuses_the_batch(sent_at):
    with pytest.raises(InvalidBatch, match="sent_at"):
        parse_batch(dict(batch(1, [raw_reading()]), sent_at=sent_at), SESSION, NOW, clock=BrowserClock())


def test_a_reading_captured_after_its_batch_was_sent_is_refused():
    parsed = parse_batch(dict(batch(1, [raw_reading(t=ms(NOW + timedelta(seconds=5))), raw_reading()]), sent_at=ms(NOW)),
                         SESSION, NOW, clock=BrowserClock())
    assert len(parsed.readings) == 1 and "after its batch was sent" in parsed.rejected[0]


def test_an_absurd_capture_time_is_refused_not_crashed_on():
    parsed = parse_batch(batch(1, [raw_reading(t=1e300)]), SESSION, NOW)
    assert parsed.readings == [] and "not a time" in parsed.rejected[0]


def test_a_browser_30_s_ahead_stores_at_server_times_and_nothing_captured_after_stop(clinician_store, system_store,
                                                                                     remote_join):
    """Stop means stop in the patient's clock too: with a browser 30 s fast, readings land at the server's times, one
    captured 1 s before Stop but arriving after it is stored, one captured 1 s after Stop is not."""
    session_id = remote_join.session.id
    intake = BrowserReadingIntake(session_id, remote_writer(system_store, remote_join.token), write_interval_s=0.2)
    ahead = timedelta(seconds=30)

    def browser_now() -> datetime:
        return datetime.now(timezone.utc) + ahead

    try:
        time.sleep(1)  # the session has been live a second: these three are from its first second
        during = [raw_reading(t=ms(browser_now() - timedelta(milliseconds=250 * (3 - i)))) for i in range(3)]
        intake.accept(parse_batch(dict(batch(1, during), sent_at=ms(browser_now())), session_id, clock=intake.clock))
        assert wait_until(lambda: len(clinician_store.readings_since(session_id).readings) == 3)
        ended = clinician_store.end_session(session_id)
        end_on_browser = ended.ended_at + ahead
        before_stop = raw_reading(t=ms(end_on_browser - timedelta(seconds=1)))
        after_stop = raw_reading(t=ms(end_on_browser + timedelta(seconds=1)))
        # sent after Stop (the browser learns of it late); the store takes the one captured in time, refuses the other
        time.sleep(1.5)  # sent 1.5 s after Stop, after both were captured
        intake.accept(parse_batch(dict(batch(2, [before_stop, after_stop]), sent_at=ms(browser_now())),
                                  session_id, clock=intake.clock))
        assert wait_until(lambda: bool(intake.closed_reason))
    finally:
        intake.stop()
    assert intake.status().rejected == 0  # nothing refused here: the store itself refused the one after Stop
    assert "after the end" in intake.closed_reason
    stored = clinician_store.readings_since(session_id).readings
    assert {r.id for r in stored} == {uuid.UUID(r["id"]) for r in during + [before_stop]}
    assert all(remote_join.session.started_at <= r.captured_at <= ended.ended_at for r in stored)
    late = next(r for r in stored if r.id == uuid.UUID(before_stop["id"]))
    assert abs(late.captured_at - (ended.ended_at - timedelta(seconds=1))) < timedelta(seconds=1)
    assert abs(intake.status().clock_offset + ahead) < timedelta(seconds=1)


# --- the model the browser gets ---------------------------------------------------------------------------------------


@pytest.fixture
def model_copy(tmp_path):
    from fer.classifier import DEFAULT_MODEL_PATH

    if not DEFAULT_MODEL_PATH.is_file():
        pytest.skip("no shipped model in fer/models")
    folder = tmp_path / "model"
    folder.mkdir()
    model = folder / "candidate.tflite"
    shutil.copyfile(DEFAULT_MODEL_PATH, model)
    shutil.copyfile(DEFAULT_MODEL_PATH.with_suffix(".json"), model.with_suffix(".json"))
    return model


def test_the_browser_gets_the_configured_model_and_its_sidecar_as_read_now(model_copy, tmp_path):
    build = tmp_path / "build"
    settings = Settings(model_path=model_copy)
    assets = browser_analysis.model_assets(settings, build_dir=build)
    classifier = assets["classifier"]
    assert classifier["spec"]["sidecar"] == json.loads(model_copy.with_suffix(".json").read_text())
    assert classifier["spec"]["input"]["dtype"] == "int8" and classifier["spec"]["input"]["shape"] == [1, 48, 48, 1]
    assert classifier["spec"]["input"]["scale"] > 0 and classifier["spec"]["output"]["shape"] == [1, 7]
    served = build / classifier["url"].removeprefix("./")
    assert served.read_bytes() == model_copy.read_bytes()
    assert [o["shape"][-1] for o in assets["detector"]["spec"]["outputs"]] == [16, 1]

    # The sidecar is replaced (say, re-measured metrics): the browser gets the new one, no restart.
    sidecar = json.loads(model_copy.with_suffix(".json").read_text())
    sidecar["metrics"]["note"] = "re-measured"
    model_copy.with_suffix(".json").write_text(json.dumps(sidecar))
    again = browser_analysis.model_assets(settings, build_dir=build)
    assert again["classifier"]["spec"]["sidecar"]["metrics"]["note"] == "re-measured"


def test_a_replaced_model_file_is_served_under_a_new_name(model_copy, tmp_path):
    build = tmp_path / "build"
    settings = Settings(model_path=model_copy)
    before = browser_analysis.model_assets(settings, build_dir=build)["classifier"]["url"]
    data = bytearray(model_copy.read_bytes())
    data[-1] ^= 0xFF  # a different file of the same contract (the last byte is padding in this flatbuffer)
    model_copy.write_bytes(bytes(data))
    after = browser_analysis.model_assets(settings, build_dir=build)["classifier"]["url"]
    assert after != before  # content-named: a browser never runs a stale cached copy


def test_a_model_fer_refuses_is_refused_for_the_browser_too(tmp_path):
    from fer.errors import FerError

    model = tmp_path / "broken.tflite"
    model.write_bytes(b"not a model")
    model.with_suffix(".json").write_text("{}")
    with pytest.raises(FerError):
        browser_analysis.model_assets(Settings(model_path=model), build_dir=tmp_path / "build")


def test_a_missing_build_is_reported_with_the_command_that_makes_it(tmp_path):
    problem = browser_analysis.build_problem(tmp_path)
    assert "not built" in problem and "make frontend" in problem


# --- settings and what the clinician sees -----------------------------------------------------------------------------


def test_remote_analysis_defaults_to_browser_and_accepts_server():
    assert Settings.load(environ={}, secrets_file=None).remote_analysis == "browser"
    assert Settings.load(environ={"REMOTE_ANALYSIS": "Server"}).remote_analysis == "server"
    with pytest.raises(ValueError, match="REMOTE_ANALYSIS must be one of browser, server"):
        Settings.load(environ={"REMOTE_ANALYSIS": "cloud"})


def test_the_video_relay_is_off_by_default_and_takes_only_on_or_off():
    assert Settings.load(environ={}, secrets_file=None).remote_video_relay is False
    assert Settings.load(environ={"REMOTE_VIDEO_RELAY": "on"}).remote_video_relay is True
    assert Settings.load(environ={"REMOTE_VIDEO_RELAY": "Off"}).remote_video_relay is False
    with pytest.raises(ValueError, match="REMOTE_VIDEO_RELAY must be on or off"):
        Settings.load(environ={"REMOTE_VIDEO_RELAY": "sometimes"})


def test_a_session_is_relayed_only_when_chosen_and_the_setting_allows_it():
    allowed, forbidden = Settings(remote_video_relay=True), Settings()
    chosen, not_chosen, refused = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    assert remote.choose_video_relay(allowed, chosen, True) is True
    assert remote.choose_video_relay(allowed, not_chosen, False) is False
    assert remote.choose_video_relay(forbidden, refused, True) is False
    assert remote.video_relayed(allowed, chosen) and not remote.video_relayed(forbidden, chosen)
    assert not remote.video_relayed(allowed, not_chosen) and not remote.video_relayed(allowed, refused)


def test_the_dashboard_says_which_mode_a_session_runs_in():
    settings = Settings()
    session_id = uuid.uuid4()
    assert "waiting for the patient" in browser_analysis.mode_caption(settings, session_id, 0)
    browser_analysis.report_mode(session_id, "browser")
    caption = browser_analysis.mode_caption(settings, session_id, 0)
    assert "in the patient's browser" in caption and "video frames received by this server for this session: 0" in caption
    browser_analysis.report_mode(session_id, "server", "the patient's browser cannot run the model (no WebAssembly)")
    caption = browser_analysis.mode_caption(settings, session_id, 0)
    assert "on this server" in caption and "no WebAssembly" in caption
    assert "no video is relayed to this dashboard" in caption and "usual video call" in caption
    assert "relayed to this dashboard (you chose" in browser_analysis.mode_caption(settings, session_id, 0, relayed=True)


def test_the_server_counts_the_video_frames_it_receives_per_session():
    session_id, other = uuid.uuid4(), uuid.uuid4()
    analyzer = remote.RemoteAnalyzer(session_id, analyze=lambda frame: [], write=lambda batch: len(batch), analysis_fps=4)
    try:
        for _ in range(5):
            analyzer.wants_frame()
    finally:
        analyzer.stop()
    assert remote.video_frames_received(session_id) == 5
    assert remote.video_frames_received(other) == 0
