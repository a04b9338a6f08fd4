"""The patient's page for a remote session (no login): /join?token=...

Checks the token, asks for consent, then streams the camera with streamlit-webrtc. Frames are analysed on the server
(app/webrtc_session.py, app/remote.py); the patient sees their own video and a connection status, not the emotions
unless `settings.show_emotions_to_patient`.
"""

from __future__ import annotations

import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from app import remote, webrtc_session
from fer.errors import FerError
from app.webrtc_context import get_analyze, get_settings, get_store

CONSENT_TEXT = """
**Before you start**

- Your camera picture is sent to your clinician's server, where a program estimates facial expressions of emotion
  (for example *happy*, *sad*, *neutral*) a few times per second.
- Only these estimates and their times are stored, in your clinical record. **No video or picture of you is recorded.**
- The estimates support your clinician's work; they are not a diagnosis.
- You can stop the camera at any moment with the *Stop* button, or by closing this page.
"""

settings = get_settings()
store = get_store()
token = st.query_params.get("token", "")

st.title("Remote session")
check = remote.check_join_token(store, token)
if not check.ok:
    stale = st.session_state.get("join_stream")
    if stale is not None and not check.retry_later:  # the session ended while this page was open: stop analysing at once
        stale.stop()
        st.info("This session has ended. Thank you; you can close this page.")
    else:
        st.error(check.message)
    st.stop()
session = check.session
assert session is not None

st.markdown(CONSENT_TEXT)
agreed = st.checkbox("I have read the above and agree to facial analysis during this session.", key="join_consent")
if not agreed:
    st.info("Tick the box above to turn on your camera.")
    st.stop()

# One stream per browser session and token; it must survive reruns because its callback is registered with the
# WebRTC worker.
stream_key = f"join_stream:{session.id}"
stream: webrtc_session.PatientStream | None = st.session_state.get(stream_key)
if stream is None:
    try:
        analyze = get_analyze()
    except FerError as error:  # no model exported yet, or a corrupt one: say so instead of a traceback
        st.error("The analysis service is not ready, so the camera cannot be started. Please tell your clinician.")
        st.caption(f"Details for the clinic: {error}")
        st.stop()
    stream = webrtc_session.PatientStream.for_token(store, token, session.id, settings, analyze)
    st.session_state[stream_key] = stream
    st.session_state["join_stream"] = stream

ended = bool(stream.closed_reason)
ctx = webrtc_streamer(
    key=f"patient-{session.id}",
    mode=WebRtcMode.SENDRECV,
    rtc_configuration=webrtc_session.rtc_configuration(settings),
    media_stream_constraints=webrtc_session.PATIENT_MEDIA_CONSTRAINTS,
    video_frame_callback=stream.video_frame_callback,
    on_video_ended=stream.on_video_ended,
    async_processing=True,
    translations=webrtc_session.PATIENT_TRANSLATIONS,
    desired_playing_state=False if ended else None,
)
if ctx.state.playing:
    stream.output_video_track = ctx.output_video_track


@st.fragment(run_every=1.0)
def show_status() -> None:
    if stream.closed_reason:
        st.warning("Your clinician has ended this session. You can close this page.")
        if not ended:
            st.rerun()  # full rerun: stops the camera component
        return
    status = stream.status()
    if not stream.streaming:
        st.caption("Camera off. Press **Start camera** when you are ready.")
        return
    analysed = status.frames_analysed if status else 0
    if analysed == 0:
        st.info("Connected. Starting analysis…")
    else:
        st.success(f"Connected: {analysed} frames analysed.")
    if status and status.frames_analysed and status.frames_without_face == status.frames_analysed:
        st.caption("No face is visible yet: please sit facing the camera.")
    if status and status.writer.last_error:
        st.caption("Saving is delayed (connection to the server); nothing is lost, it will retry.")
    if settings.show_emotions_to_patient and status and status.last_dominant:
        st.metric("Current expression", status.last_dominant)


show_status()
