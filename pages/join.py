"""The patient's page for a remote session (no login): /join?token=...

Checks the token and asks for consent. Then, in browser mode (REMOTE_ANALYSIS=browser, the default), the analysis runs
in the patient's browser (app/browser_component.py, app/browser_analysis.py) and only the estimates reach the server;
in server mode, or when this browser cannot run the model (after a second, explicit consent), the camera is streamed
with streamlit-webrtc and analysed on the server (app/webrtc_session.py, app/remote.py). The patient sees their own
video and a status, not the emotions unless `settings.show_emotions_to_patient`.
"""

from __future__ import annotations

import streamlit as st
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from app import browser_analysis, browser_component, remote, webrtc_session
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

CONSENT_TEXT_BROWSER = """
**Before you start**

- **Your video stays on your device.** This page looks at your camera picture inside your own browser, and a program
  estimates facial expressions of emotion (for example *happy*, *sad*, *neutral*) a few times per second.
- Only these estimates (numbers), their times and where your face was in the picture are sent to your clinician's
  server and stored in your clinical record. **No video or picture of you is recorded** or sent anywhere.
- The estimates support your clinician's work; they are not a diagnosis.
- You can stop the camera at any moment with the *Stop* button, or by closing this page.
"""

RELAYED_LINE = ("- **Your clinician sees your video** live on their screen, passed on by the clinic's server for this "
                "session only (it is not recorded).\n")
NOT_RELAYED_LINE = ("- Your video is **not shown to your clinician** through this page: the server only analyses it "
                    "(your clinician may see you in a separate video call).\n")

BROWSER_PANEL_RECHECK_S = 2.0
SESSION_ENDED_MESSAGE = "This session has ended. Thank you; you can close this page."
CONSENT_LABEL = "I have read the above and agree to facial analysis during this session."
SERVER_FALLBACK_LABEL = "I agree that my camera video is sent to the clinic's server for this analysis (it is not recorded)."

settings = get_settings()
store = get_store()
token = str(st.query_params.get("token", ""))
# One stream per browser session and link; it must survive reruns because its callback is registered with the WebRTC
# worker. Keyed by the token itself, so a second link opened in the same tab gets its own stream.
stream_key = f"join_stream:{token}"
stream: webrtc_session.PatientStream | None = st.session_state.get(stream_key)
browser_patient_before: browser_component.BrowserPatient | None = st.session_state.get(f"browser_patient:{token}")

st.title("Remote session")
check = remote.check_join_token(store, token)
if check.ok:
    assert check.session is not None
    session_id = check.session.id
elif check.retry_later and browser_patient_before is not None:
    # The database blinked during a rerun: browser readings wait in the writer (and in the browser) until it is back.
    session_id = browser_patient_before.session_id
    st.warning("The connection to the clinic's server is unstable. Your session continues; nothing is lost.")
elif check.retry_later and stream is not None and stream.streaming:
    # The database blinked during a rerun: the link was valid when the camera started, and the writer keeps every
    # reading until it can store it, so keep streaming rather than cutting the patient off.
    session_id = stream.session_id
    st.warning("The connection to the clinic's server is unstable. Your session continues; nothing is lost.")
else:
    joined = stream is not None or browser_patient_before is not None
    if joined and not check.retry_later:  # the session ended while this page was open: stop at once
        if stream is not None:
            stream.stop()
        if browser_patient_before is not None:
            browser_patient_before.stop()  # the camera stops with the component, which this rerun no longer renders
        st.info(SESSION_ENDED_MESSAGE)
    else:
        st.error(check.message)
    st.stop()

# Browser mode unless configured otherwise or this server cannot offer it (bundle not built, model not ready).
fallback_reason = browser_component.server_fallback_reason(settings) if settings.remote_analysis == "browser" else ""
browser_patient = None
if settings.remote_analysis == "browser" and not fallback_reason:
    browser_patient = browser_component.patient_state(st.session_state, store, token, session_id)
    if browser_patient.unsupported_reason:
        fallback_reason = f"this browser cannot run the analysis itself ({browser_patient.unsupported_reason})"
in_browser = browser_patient is not None and not fallback_reason

# Told before consenting, and true: the dashboard relays the video only for a session the clinician started with the
# relay (app.remote.video_relayed), and this page hands its track to the relay only then.
relayed = remote.video_relayed(settings, session_id)
st.markdown(CONSENT_TEXT_BROWSER if in_browser else CONSENT_TEXT + (RELAYED_LINE if relayed else NOT_RELAYED_LINE))
agreed = st.checkbox(CONSENT_LABEL, key=f"join_consent:{token}")
if not agreed:
    if stream is not None:
        stream.stop()  # consent withdrawn: no more analysis (the camera component is gone with this rerun)
    st.info("Tick the box above to turn on your camera.")
    st.stop()

if in_browser:
    assert browser_patient is not None
    if browser_patient.intake.closed_reason:
        st.info(SESSION_ENDED_MESSAGE)
        st.stop()

    # The session's end is shown *inside* the fragment, never by asking for a full rerun from it: a full rerun that
    # stops before the fragment races with the fragment's own timer ticks (a tick for a fragment that is no longer on
    # the page), which on a busy server left the patient's page blank instead of saying the session had ended. The
    # timer matters too: once told the session ended, the component stops the camera and sends nothing more, so the
    # timer's token check is what ends a page whose browser has gone quiet.
    @st.fragment(run_every=BROWSER_PANEL_RECHECK_S)
    def browser_analysis_panel() -> None:
        """The component in a fragment: each batch from the browser (about once a second) reruns only this, not the
        whole page (measured in `make bench`, section browser)."""
        over = browser_session_over()
        if not over:
            browser_component.show_component(browser_patient, settings, token, st.session_state)
            over = bool(browser_patient.intake.closed_reason)  # this very batch may have been refused
        if browser_patient.unsupported_reason:
            st.rerun(scope="app")  # show the server-mode choice (the camera stops with the component)
        if over:
            browser_patient.stop()  # the component leaves the page on this run or the next, and the camera with it
            st.info(SESSION_ENDED_MESSAGE)
            return
        if not browser_patient.ready:
            # A browser too old to even start the component never reports back: let the patient choose the server.
            st.caption("If the camera button above stays unavailable for more than a minute, your browser may be too "
                       "old for the analysis to run on your device.")
            if st.button("Use the clinic's server for the analysis instead"):
                browser_patient.unsupported_reason = "the patient chose server analysis (the page did not start)"
                st.rerun(scope="app")

    def browser_session_over() -> bool:
        """Ended or expired: the writer was refused (the browser's batch arrived after the end), or the link no longer
        checks out (no batch on its way). A database blink is not an end: readings wait in the writer."""
        if browser_patient.intake.closed_reason:
            return True
        recheck = remote.check_join_token(store, token)
        return not recheck.ok and not recheck.retry_later

    browser_analysis_panel()
    st.stop()

if fallback_reason:
    browser_analysis.report_mode(session_id, "server", fallback_reason)
    st.warning(f"The analysis cannot run in your browser here: {fallback_reason}. It can run on the clinic's server "
               "instead; your camera video is then sent to that server (it is not recorded)"
               + (" and shown to your clinician." if relayed else ", and not shown to your clinician."))
    if not st.checkbox(SERVER_FALLBACK_LABEL, key=f"join_server_consent:{token}"):
        st.stop()
else:
    browser_analysis.report_mode(session_id, "server")

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
if ctx.state.playing and relayed:
    stream.output_video_track = ctx.output_video_track  # what the clinician's relay subscribes to


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
