"""The patient's page for a remote session (no login): /join?token=...

Checks the token, asks for consent, then streams the camera with streamlit-webrtc. Frames are analysed on the server
(app/webrtc_session.py, app/remote.py); the patient sees their own video and a connection status, not the emotions
unless `settings.show_emotions_to_patient`.
"""

from __future__ import annotations

import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from app import remote, webrtc_session
from app.webrtc_context import get_analyze, get_settings, get_store
from fer.errors import FerError

CONSENT_TEXT = """
**Before you start**

- Your camera picture is sent to your clinician's server, where a program estimates facial expressions of emotion
  (for example *happy*, *sad*, *neutral*) a few times per second.
- Only these estimates and their times are stored, in your clinical record. **No video or picture of you is recorded.**
- The estimates support your clinician's work; they are not a diagnosis.
- You can stop the camera at any moment with the *Stop* button, or by closing this page.
"""

CONSENT_LABEL = "I have read the above and agree to facial analysis during this session."

settings = get_settings()
store = get_store()
token = str(st.query_params.get("token", ""))
# One stream per browser session and link; it must survive reruns because its callback is registered with the WebRTC
# worker. Keyed by the token itself, so a second link opened in the same tab gets its own stream.
stream_key = f"join_stream:{token}"
stream: webrtc_session.PatientStream | None = st.session_state.get(stream_key)

st.title("Remote session")
check = remote.check_join_token(store, token)
if check.ok:
    assert check.session is not None
    session_id = check.session.id
elif check.retry_later and stream is not None and stream.streaming:
    # The database blinked during a rerun: the link was valid when the camera started, and the writer keeps every
    # reading until it can store it, so keep streaming rather than cutting the patient off.
    session_id = stream.session_id
    st.warning("The connection to the clinic's server is unstable. Your session continues; nothing is lost.")
else:
    if stream is not None and not check.retry_later:  # the session ended while this page was open: stop at once
        stream.stop()
        st.info("This session has ended. Thank you; you can close this page.")
    else:
        st.error(check.message)
    st.stop()

st.markdown(CONSENT_TEXT)
agreed = st.checkbox(CONSENT_LABEL, key=f"join_consent:{token}")
if not agreed:
    if stream is not None:
        stream.stop()  # consent withdrawn: no more analysis (the camera component is gone with this rerun)
    st.info("Tick the box above to turn on your camera.")
    st.stop()

if stream is None:
    try:
        analyze = get_analyze()
    except FerError as error:  # no model exported yet, or a corrupt one: say so instead of a traceback
        st.error("The analysis service is not ready, so the camera cannot be started. Please tell your clinician.")
        st.caption(f"Details for the clinic: {error}")
        st.stop()
    stream = webrtc_session.PatientStream.for_token(store, token, session_id, settings, analyze)
    st.session_state[stream_key] = stream

ended = bool(stream.closed_reason)
video_column, status_column = st.columns([3, 2], gap="large")
with video_column:
    ctx = webrtc_streamer(
        key=f"patient-{session_id}",
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=webrtc_session.rtc_configuration(settings),
        media_stream_constraints=webrtc_session.PATIENT_MEDIA_CONSTRAINTS,
        video_frame_callback=stream.video_frame_callback,
        on_video_ended=stream.on_video_ended,
        async_processing=True,
        translations=webrtc_session.PATIENT_TRANSLATIONS,
        video_html_attrs=webrtc_session.PATIENT_VIDEO_ATTRS,
        desired_playing_state=False if ended else None,
    )
if ctx.state.playing:
    stream.output_video_track = ctx.output_video_track


@st.fragment(run_every=1.0)
def show_status() -> None:
    if stream.closed_reason and not ended:
        st.rerun()  # full rerun: the token check then ends the page (and the camera component with it)
    for line in webrtc_session.patient_status_lines(stream, settings.show_emotions_to_patient):
        if line.kind == "metric":
            st.metric(line.label, line.text)
        else:
            getattr(st, line.kind)(line.text)


with status_column:
    show_status()
