"""Start a session (in person with a Pi camera, remote with a join link, or from a recorded video) and list sessions."""

from datetime import datetime, timedelta, timezone

import streamlit as st

from app import clock, context, lifecycle, links, sessions, ui, uploads
from store.errors import InvalidInput, PermissionDenied, StoreError

ctx = context.require_clinician()
tz = clock.clinician_time_zone(ctx.store, ctx.settings.default_time_zone)  # times in the clinician's zone
st.title("Sessions")
ui.show_flash()
ui.disclaimer()

# Kept for this browser session, not shown once: the page reruns right after it loads (the login cookie component), and
# a notice shown only in the run that ended the session would be gone before anyone read it.
auto_ended: dict = st.session_state.setdefault("auto_ended_notices", {})
for auto in lifecycle.end_idle_sessions(ctx.store, ctx.settings.idle_session_minutes):
    auto_ended[str(auto.session.id)] = (f"Ended automatically: a live session idle since {clock.format_moment(auto.idle_since, tz)} "
                                        f"(no reading, no note for {ctx.settings.idle_session_minutes:g} min).")
for notice in auto_ended.values():
    st.info(notice)

eligible = [p for p in ctx.store.list_patients() if p.consent_facial_analysis and not p.archived]
names = {p.id: p.full_name for p in ctx.store.list_patients(include_archived=True)}
wanted = ui.query_uuid("patient")

st.subheader("Start a session")
if not eligible:
    st.info("No patient has consented to facial analysis yet: record consent on the patient's page first.")
else:
    ids = [p.id for p in eligible]
    by_id = {p.id: p for p in eligible}
    patient_id = st.selectbox("Patient", ids, index=ids.index(wanted) if wanted in ids else 0, format_func=lambda i: ui.patient_label(by_id[i]), key="start_patient")
    patient = by_id[patient_id]
    already = lifecycle.live_session_for_patient(ctx.store, patient.id)
    mode = st.radio("Mode", list(ui.MODE_LABELS), format_func=ui.MODE_LABELS.get, horizontal=True, key="start_mode")

    if already is not None and mode != "recorded_video":  # one live session per patient: return to it or end it
        st.warning(f"{ui.literal(patient.full_name)} already has a live session ({clock.session_label(already, tz)}).")
        back_col, end_col = st.columns(2)
        back_col.page_link("pages/live.py", label="Return to the live session", icon=":material/arrow_forward:", query_params={"session": str(already.id)})
        if end_col.button("End it", key="end_existing", icon=":material/stop_circle:"):
            sessions.stop(ctx.store, already.id)
            ui.flash(f"Ended the live session of {patient.full_name}: you can start a new one.")
            st.rerun()
    elif mode == "in_person":
        devices = ctx.store.list_devices()
        if not devices:
            st.warning("No Pi device is registered: add the room's camera on the Devices page.")
            st.page_link("pages/devices.py", label="Devices", icon=":material/memory:")
        else:
            device_ids = [d.id for d in devices]
            device_by_id = {d.id: d for d in devices}
            device_id = st.selectbox("Room camera (Pi device)", device_ids, format_func=lambda i: sessions.device_label(device_by_id[i]), key="start_device")
            if not sessions.device_online(device_by_id[device_id]):
                st.caption("This device has sent no heartbeat in the last 2 minutes: check that its agent is running.")
            if st.button("Start in-person session", type="primary", icon=":material/play_arrow:"):
                try:
                    session = sessions.start_in_person(ctx.store, patient, device_id)
                except (InvalidInput, PermissionDenied, StoreError) as error:
                    ui.show_error(error)
                else:
                    ui.flash(f"Session started for {patient.full_name}: the camera starts recording within a few seconds.")
                    st.switch_page("pages/live.py", query_params={"session": str(session.id)})

    elif mode == "remote":
        hours = st.select_slider("The link expires after", options=[1, 2, 4, 8, 24], value=2, format_func=lambda h: f"{h} h")
        relay_video = False
        if ctx.settings.remote_video_relay:  # REMOTE_VIDEO_RELAY=on: an explicit, unticked choice per session
            relay_video = st.checkbox(links.RELAY_CHOICE_LABEL, value=False, key="start_relay_video")
            st.caption(links.RELAY_CHOICE_HELP)
        else:
            st.caption(links.NO_RELAY_CAPTION)
        if st.button("Start remote session", type="primary", icon=":material/videocam:"):
            try:
                started = links.start_remote(ctx.store, ctx.settings, patient, ttl=timedelta(hours=hours),
                                             relay_video=relay_video)
            except (InvalidInput, PermissionDenied, StoreError) as error:
                ui.show_error(error)
            else:
                # The plain token exists only now: keep the link in this browser session to show it on the dashboard.
                st.session_state.setdefault("join_links", {})[str(started.session.id)] = started.link
                ui.flash(f"Remote session started for {patient.full_name}. Send the patient the join link below.")
                st.switch_page("pages/live.py", query_params={"session": str(started.session.id)})

    else:
        st.caption("The video is analysed on this server with the same code as `python -m pi_agent analyze`; only the "
                   "emotion readings are kept, the video file is deleted afterwards.")
        upload = st.file_uploader("Session video", type=["mp4", "avi", "mov", "mkv", "webm", "m4v"], key="video_upload")
        fps = st.slider("Analysed frames per second of video", 1.0, 10.0, 4.0, 1.0)
        recorded_at = None
        if upload is not None:
            # When was it recorded? The file's own metadata when present, else now; in the clinician's time zone.
            cache = st.session_state.setdefault("upload_recorded_at", {})
            key = f"{upload.name}:{upload.size}"
            if key not in cache:
                with sessions.saved_upload(upload.getbuffer(), upload.name) as probe_path:  # the private upload folder
                    cache[key] = uploads.recording_started_at(probe_path)
            found = cache[key]
            local = (found or datetime.now(timezone.utc)).astimezone(clock.zone(tz))
            day_col, time_col = st.columns(2)
            day = day_col.date_input("Recorded on", value=local.date(), max_value="today", key="recorded_day")
            moment = time_col.time_input("Recording started at", value=local.time().replace(second=0, microsecond=0), step=60, key="recorded_time")
            st.caption(("Taken from the file's metadata. " if found else "The file carries no recording time: set it. ") + f"Time zone: {tz}.")
            recorded_at = datetime.combine(day, moment, tzinfo=clock.zone(tz))
            if found is not None and (day, moment) == (local.date(), local.time().replace(second=0, microsecond=0)):
                recorded_at = found  # untouched: keep the metadata's seconds
        if upload is not None and st.button("Analyse video", type="primary", icon=":material/movie:"):
            bar = st.progress(0.0, text="Loading the model…")
            with sessions.saved_upload(upload.getbuffer(), upload.name) as video_path:
                try:
                    analyzer = sessions.default_video_analyzer(ctx.settings)
                    result = sessions.import_video(ctx.store, patient, video_path, analyzer, fps=fps, display_name=upload.name,
                                                   on_progress=lambda f, m: bar.progress(f, text=m), recorded_at=recorded_at)
                except (ValueError, RuntimeError, OSError, MemoryError, StoreError) as error:  # bad file, model missing, database down
                    bar.empty()
                    ui.show_error(uploads.video_error_message(error))  # the user's terms; the details go to the server log
                else:
                    bar.progress(1.0, text="Done")
                    ui.flash(f"Analysed {ui.format_duration(result.duration_s)} of video: {result.readings} readings saved.")
                    st.switch_page("pages/review.py", query_params={"session": str(result.session.id)})

st.subheader("Live now")
live = ctx.store.list_sessions(status="live")
if not live:
    st.caption("No live session.")
for session in live:
    link_col, stop_col = st.columns([5, 1])
    link_col.page_link("pages/live.py", label=ui.session_link_label(session, names.get(session.patient_id), tz), query_params={"session": str(session.id)})
    if stop_col.button("Stop", key=f"stop_{session.id}", icon=":material/stop_circle:"):
        sessions.stop(ctx.store, session.id)
        ui.flash(f"Stopped the session of {ui.literal(names.get(session.patient_id, 'the patient'))}.")
        st.rerun()

st.subheader("Recent sessions")
ended = ctx.store.list_sessions(status="ended")[:20]
if not ended:
    st.caption("No finished session yet.")
for session in ended:
    st.page_link("pages/review.py", label=ui.session_link_label(session, names.get(session.patient_id), tz), query_params={"session": str(session.id)})

with st.expander("Your time zone"):
    st.caption("Session times, notes and reports are shown in this zone (default for everyone: the DEFAULT_TIME_ZONE setting).")
    choices = clock.time_zone_choices()
    chosen = st.selectbox("Time zone", choices, index=choices.index(tz) if tz in choices else choices.index("UTC"), key="time_zone")
    if st.button("Save time zone", key="save_time_zone"):
        try:
            ctx.store.set_time_zone(chosen)
        except (InvalidInput, StoreError) as error:
            ui.show_error(error)
        else:
            ui.flash(f"Times are now shown in {chosen}.")
            st.rerun()
