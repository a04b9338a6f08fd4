"""Each page's logic through the real app script (AppTest) on a real PostgreSQL: what a clinician sees and what it stores."""

from __future__ import annotations

from datetime import date, timedelta

from app import ui
from app.remote import JOIN_PAGE_PATH
from fer.labels import LABELS
from store.api import Actor
from tests.app.conftest import follow, open_page, page_text
from tests.app.helpers import consenting_patient, device_session, recorded_session, synthetic_readings


def fill(container, **values: str) -> None:
    inputs = {ti.label: ti for ti in container.text_input}
    for label, value in values.items():
        inputs[label].input(value)


def button(at, label: str):
    return next(b for b in at.button if b.label == label)


def link_labels(at) -> list[str]:
    return [link.label for link in at.get("page_link")] if at.get("page_link") else []


# --- patients ---------------------------------------------------------------------------------------------------------


def test_creating_a_patient_with_consent_opens_their_page(signed_in_app, clinician_store):
    at = signed_in_app
    fill(at, **{"Full name": "  Bruno   Díaz ", "Diagnosis": "Generalised anxiety disorder", "Contact": "555-0101"})
    next(c for c in at.checkbox if c.label.startswith("The patient consents")).check()
    button(at, "Create patient").click().run()
    assert not at.exception
    assert at.title[0].value == "Bruno Díaz"
    assert "Created Bruno Díaz." in page_text(at)
    [stored] = clinician_store.list_patients()
    assert stored.full_name == "Bruno Díaz" and stored.diagnosis == "Generalised anxiety disorder"
    assert stored.consent_facial_analysis and stored.consent_date == date.today()


def test_a_patient_needs_a_name(signed_in_app, clinician_store):
    at = signed_in_app
    button(at, "Create patient").click().run()
    assert "The patient's name is required." in page_text(at)
    assert clinician_store.list_patients() == []


def test_search_narrows_the_patient_list(signed_in_app, clinician_store):
    consenting_patient(clinician_store, "Carla Gómez", diagnosis="depression")
    consenting_patient(clinician_store, "Daniel Ruiz", diagnosis="panic disorder")
    at = signed_in_app.run()
    assert [l for l in link_labels(at) if "Carla" in l or "Daniel" in l] == ["Carla Gómez", "Daniel Ruiz"]
    at.text_input(key="patient_search").input("ruiz").run()
    assert [l for l in link_labels(at) if "Carla" in l or "Daniel" in l] == ["Daniel Ruiz"]


def test_a_clinician_never_sees_another_clinicians_patient(signed_in_app, store_factory, system_store):
    import bcrypt

    other = system_store.create_clinician("other_doc", "Dr Other", bcrypt.hashpw(b"x" * 12, bcrypt.gensalt(rounds=4)).decode(), "clinician")
    theirs = consenting_patient(store_factory(Actor.for_clinician(other)), "Secret Patient")
    at = signed_in_app
    assert "Secret Patient" not in page_text(at) + " ".join(link_labels(at))
    open_page(at, "pages/patient.py", id=theirs.id)
    assert "does not exist or is not one of yours" in at.error[0].value
    open_page(at, "pages/progress.py", patient=theirs.id)
    assert "Secret Patient" not in page_text(at)


def test_editing_archiving_and_record_entries_on_the_patient_page(signed_in_app, clinician_store, admin_store):
    patient = consenting_patient(clinician_store, "Eva Martín", diagnosis="")
    at = open_page(signed_in_app, "pages/patient.py", id=patient.id)
    assert at.title[0].value == "Eva Martín"

    diagnosis = next(t for t in at.text_input if t.label == "Diagnosis" and t.value == "")
    diagnosis.input("Major depressive disorder")
    button(at, "Save changes").click().run()
    assert "Saved." in page_text(at)
    assert clinician_store.get_patient(patient.id).diagnosis == "Major depressive disorder"

    next(t for t in at.text_area if t.label == "Entry").input("Started sertraline 50 mg")
    next(s for s in at.selectbox if s.label == "Kind").select("medication")
    button(at, "Add entry").click().run()
    assert "Entry added." in page_text(at)
    [entry] = clinician_store.list_record_entries(patient.id)
    assert entry.kind == "medication" and entry.text == "Started sertraline 50 mg"
    assert list(at.dataframe[0].value["Entry"]) == ["Started sertraline 50 mg"]

    button(at, "Archive patient").click().run()
    assert clinician_store.get_patient(patient.id).archived
    actions = {(e.action, e.entity) for e in admin_store.list_audit()}
    assert {("view", "patient"), ("update", "patient"), ("archive", "patient")} <= actions


def test_withdrawing_consent_blocks_new_sessions(signed_in_app, clinician_store):
    patient = consenting_patient(clinician_store, "Félix Soto")
    at = open_page(signed_in_app, "pages/patient.py", id=patient.id)
    next(c for c in at.checkbox if c.label == "The patient consents to facial analysis").uncheck()
    button(at, "Record consent").click().run()
    assert "Consent withdrawal recorded." in page_text(at)
    assert not clinician_store.get_patient(patient.id).consent_facial_analysis
    assert "sessions cannot be started" in page_text(at)
    open_page(at, "pages/sessions.py")
    assert "No patient has consented" in page_text(at)


# --- sessions -----------------------------------------------------------------------------------------------------------


def test_a_remote_session_shows_a_working_join_link_once(signed_in_app, clinician_store, system_store):
    patient = consenting_patient(clinician_store, "Gina Paz")
    at = open_page(signed_in_app, "pages/sessions.py", patient=patient.id)
    at.radio(key="start_mode").set_value("remote").run()
    button(at, "Start remote session").click().run()
    assert not at.exception
    [link] = [c.value for c in at.code]
    assert link.startswith(f"https://clinic.example.org/{JOIN_PAGE_PATH}?token=")
    token = link.split("token=", 1)[1]
    [live] = clinician_store.list_sessions(patient.id, status="live")
    assert live.mode == "remote" and system_store.session_for_token(token).id == live.id
    follow(at, "pages/live.py").toggle(key="show_qr").set_value(True).run()
    assert link in [c.value for c in at.code]
    assert len(at.get("image")) == 1


def test_an_in_person_session_needs_a_registered_device(signed_in_app, clinician_store):
    consenting_patient(clinician_store, "Hugo Vidal")
    at = open_page(signed_in_app, "pages/sessions.py")
    assert "No Pi device is registered" in page_text(at)
    clinician_store.register_device("pi-room-3", "Room 3")
    at.run()
    button(at, "Start in-person session").click().run()
    assert not at.exception
    [live] = clinician_store.list_sessions(status="live")
    assert live.mode == "in_person" and live.device_id is not None
    assert at.title[0].value == "Hugo Vidal · In person (Pi camera)"


def test_the_live_dashboard_shows_new_readings_notes_and_stops(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Inés Roca")
    session, device_store = device_session(clinician_store, store_factory, patient)
    at = open_page(signed_in_app, "pages/live.py", session=session.id)
    assert "Waiting for the first reading" in page_text(at)

    device_store.insert_readings(synthetic_readings(session, ["neutral"] * 5 + ["happy"] * 3))
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Readings"] == "8" and metrics["Current emotion"] == "happy"
    feed = at.session_state["live_feeds"][str(session.id)]
    cursor_after_first = feed.cursor

    device_store.insert_readings(synthetic_readings(session, ["sad"] * 2, start=session.started_at + timedelta(seconds=30)))
    at.run()
    assert {m.label: m.value for m in at.metric}["Readings"] == "10"
    assert at.session_state["live_feeds"][str(session.id)].cursor > cursor_after_first

    next(t for t in at.text_input if t.label == "Note at this moment").input("Talked about work")
    button(at, "Add note").click().run()
    assert [a.text for a in clinician_store.list_annotations(session.id)] == ["Talked about work"]

    button(at, "Stop session").click().run()
    assert clinician_store.get_session(session.id).status == "ended"
    assert "Session stopped." in page_text(at) and "This session ended" in page_text(at)


# --- review, progress, devices ---------------------------------------------------------------------------------------------


def test_the_review_page_summarises_a_session_and_offers_exports(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Julia Mora")
    session = recorded_session(clinician_store, store_factory, patient, ["neutral"] * 60 + ["happy"] * 30 + ["sad"] * 10)
    clinician_store.add_annotation(session.id, session.started_at, "calm start")
    at = open_page(signed_in_app, "pages/review.py", session=session.id)
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Readings"] == "100" and metrics["Most frequent"] == "neutral"
    # each reading's expected valence with the published weights (0.85 on the dominant emotion, 0.025 on the others)
    from app.analytics import VALENCE_WEIGHTS
    from tests.app.helpers import one_hot

    def v(label: str) -> float:
        return sum(p * VALENCE_WEIGHTS[name] for p, name in zip(one_hot(label), LABELS))

    expected = (30 * v("happy") + 10 * v("sad") + 60 * v("neutral")) / 100
    assert metrics["Valence index"] == f"{expected:+.2f}"
    assert "Arousal index" in metrics
    assert len(at.get("plotly_chart")) == 2
    assert [d.label for d in at.get("download_button")][:2] == ["Readings (CSV)", "Printable report (HTML)"]  # issue 15 adds more after these (tests/app/test_clinical_exports.py)

    at.radio(key="baseline").set_value("first_minute").run()
    assert len(at.get("plotly_chart")) == 3
    assert "Change against the baseline (first 60 s of this session)" in page_text(at)


def test_the_review_page_says_when_a_first_minute_baseline_cannot_be_computed(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Olga Prieto")
    session = recorded_session(clinician_store, store_factory, patient, ["neutral"] * 40)
    at = open_page(signed_in_app, "pages/review.py", session=session.id)
    at.radio(key="baseline").set_value("first_minute").run()
    assert not at.exception
    assert any("No first-minute baseline: the readings cover only 39 s" in w.value for w in at.warning)
    assert len(at.get("plotly_chart")) == 2  # no chart of zero change


def test_the_review_page_lists_three_happy_peaks_with_the_default_smoothing(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Pilar Quintana")
    labels = (["neutral"] * 10 + ["happy"] * 3) * 3 + ["neutral"] * 10
    session = recorded_session(clinician_store, store_factory, patient, labels)
    at = open_page(signed_in_app, "pages/review.py", session=session.id)
    assert at.slider(key="smoothing").value == 5
    peaks = at.dataframe[0].value
    assert list(peaks["Emotion"]) == ["happy"] * 3 and sorted(peaks["At"]) == ["0:10", "0:23", "0:36"]


def test_the_progress_page_shows_each_session_and_the_trend(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Karla Nieto")
    for happy in (0, 11, 20, 30):  # of 40 readings each, the rest sad: a steady change
        recorded_session(clinician_store, store_factory, patient, ["sad"] * (40 - happy) + ["happy"] * happy)
    at = open_page(signed_in_app, "pages/progress.py", patient=patient.id)
    assert not at.exception
    assert "happy rising" in page_text(at) and "sad falling" in page_text(at)
    assert len(at.get("plotly_chart")) == 3  # proportions, valence, expressivity (issue 15)
    table = at.dataframe[0].value
    assert list(table["Session"]) == [1, 2, 3, 4] and "Date" in table.columns and "started_at" not in table.columns
    assert table["Happy"].iloc[0].startswith("0.03 (")  # the mean with its 95 % interval


def test_the_progress_page_does_not_call_noise_a_trend(signed_in_app, clinician_store, store_factory):
    patient = consenting_patient(clinician_store, "Quique Ramos")
    for happy in (12, 8, 14, 9):  # of 20 readings each: up and down, no direction
        recorded_session(clinician_store, store_factory, patient, ["happy"] * happy + ["neutral"] * (20 - happy))
    at = open_page(signed_in_app, "pages/progress.py", patient=patient.id)
    assert not at.exception
    assert "No clear trend across these 4 sessions" in page_text(at)
    assert "rising" not in page_text(at) and "falling" not in page_text(at)


def test_registering_a_device_shows_its_key_once(signed_in_app, clinician_store, system_store):
    at = open_page(signed_in_app, "pages/devices.py")
    fill(at, Name="pi-room-9", Room="Room 9")
    button(at, "Register").click().run()
    [credentials] = [c.value for c in at.code]
    lines = dict(line.split("=", 1) for line in credentials.splitlines() if line and not line.startswith("#"))
    [device] = clinician_store.list_devices()
    assert lines["PSYA_DEVICE_ID"] == str(device.id)
    assert system_store.authenticate_device(device.id, lines["PSYA_DEVICE_KEY"]).id == device.id
    # the complete env file: the device's own database login, not the app's
    assert lines["DATABASE_URL"].startswith(f"postgresql://psya_dev_{device.id.hex}:{lines['PSYA_DEVICE_KEY']}@")
    at.run()
    assert not at.code  # the key is not shown again
    assert list(at.dataframe[0].value["Status"]) == ["offline"]


def test_progress_and_compare_pick_the_patient_of_the_link_with_the_same_picker(signed_in_app, clinician_store):
    at = open_page(signed_in_app, "pages/progress.py")
    assert [i.value for i in at.info] == ["No patients yet."]
    at = open_page(at, "pages/compare.py")
    assert [i.value for i in at.info] == ["No patients yet."]
    first = consenting_patient(clinician_store, "Ana Primera")
    second = consenting_patient(clinician_store, "Bea Segunda")
    for page, key in (("pages/progress.py", "progress_patient"), ("pages/compare.py", "compare_patient")):
        at = open_page(signed_in_app, page, patient=second.id)
        assert not at.exception, at.exception
        picker = at.selectbox(key=key)
        assert picker.label == "Patient" and picker.value == second.id
        assert set(picker.options) == {ui.patient_label(first), ui.patient_label(second)}
        picker.set_value(first.id).run()
        assert at.query_params["patient"] == str(first.id)  # written back: the page can be linked
