"""Glue between `streamlit-webrtc` and the remote-session services in `app/remote.py`.

`PatientStream` is what `pages/join.py` hands to `webrtc_streamer`: its `video_frame_callback` runs on a WebRTC worker
thread for every camera frame, returns the frame untouched at once (the patient sees their own video), and passes at most
`settings.remote_analysis_fps` frames a second to a `RemoteAnalyzer`. No Streamlit call may happen on those threads.

Process-wide state lives here, not in a page: one analysis gate shared by every patient (caps concurrent model runs at
about one per CPU core) and a registry of live patient streams by session id (for the clinician-side video relay).
"""

from __future__ import annotations

import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

import av

from app.remote import AnalyzeFn, RemoteAnalyzer, RemoteStatus, default_analysis_gate, remote_writer
from settings import Settings
from store.api import Store
from store.models import Reading

log = logging.getLogger(__name__)

ANALYSIS_GATE: threading.Semaphore = default_analysis_gate()

# Camera request: video only (no microphone: the analysis never uses sound, so the browser should not ask for it), at a
# modest size and rate. The server decodes every frame it receives and re-encodes it for the patient's own view (that is
# how streamlit-webrtc shows video), which costs more CPU per patient than the analysis at 4 fps: 640x480 is what the
# face detector needs, and 15 fps is smooth enough for a self-view while halving that cost against a 30 fps camera.
PATIENT_MEDIA_CONSTRAINTS: dict[str, Any] = {
    "video": {"width": {"ideal": 640}, "height": {"ideal": 480}, "frameRate": {"ideal": 15, "max": 15}},
    "audio": False,
}

# The patient's own picture: muted (there is no audio anyway), no player controls, not wider than a laptop camera.
PATIENT_VIDEO_ATTRS: dict[str, Any] = {"autoPlay": True, "muted": True, "playsInline": True, "controls": False,
                                       "style": {"width": "100%", "maxWidth": "640px"}}

# After this many analysed frames in a row without a face (2 s at the default 4 fps) the page asks the patient to face
# the camera.
NO_FACE_HINT_FRAMES = 8

PATIENT_TRANSLATIONS: dict[str, str] = {
    "start": "Start camera",
    "stop": "Stop",
    "select_device": "Choose camera",
    "device_ask_permission": "Please allow this page to use your camera.",
    "device_access_denied": "The camera is blocked. Allow camera access for this site in your browser, then reload.",
    "device_not_available": "No camera was found on this device.",
    "media_api_not_available": "This browser cannot share a camera here (a secure https link is needed).",
}


def rtc_configuration(settings: Settings) -> dict[str, Any]:
    """Always an explicit list (empty offline): streamlit-webrtc would otherwise try to fetch public STUN servers."""
    return {"iceServers": list(settings.ice_servers)}


class PatientStream:
    """One patient browser's stream. Created once per Streamlit session and token; survives reruns.

    A `RemoteAnalyzer` (analysis + writer threads) is started on the first frame after START and stopped when the video
    ends (STOP, tab closed, page left), which writes whatever is still pending. Pressing START again starts a new one.
    """

    def __init__(
        self,
        session_id: uuid.UUID,
        write: Callable[[Sequence[Reading]], int],
        analyze: AnalyzeFn,
        analysis_fps: float,
        analysis_gate: threading.Semaphore | None = ANALYSIS_GATE,
        write_interval_s: float = 1.0,
    ) -> None:
        self.session_id = session_id
        self._write = write
        self._analyze = analyze
        self._analysis_fps = analysis_fps
        self._gate = analysis_gate
        self._write_interval_s = write_interval_s
        self._lock = threading.Lock()
        self._analyzer: RemoteAnalyzer | None = None
        self._last_status: RemoteStatus | None = None
        self._closed_reason = ""
        self._superseded = False
        self.connected_at: datetime | None = None
        self.output_video_track: Any = None  # set by the page once playing, for the clinician relay

    @classmethod
    def for_token(cls, store: Store, token: str, session_id: uuid.UUID, settings: Settings, analyze: AnalyzeFn) -> "PatientStream":
        return cls(session_id, remote_writer(store, token), analyze, settings.remote_analysis_fps)

    # --- WebRTC worker threads ------------------------------------------------------------------------------------------
    def video_frame_callback(self, frame: av.VideoFrame) -> av.VideoFrame:
        analyzer = self._current_analyzer()
        if analyzer is not None and analyzer.wants_frame():
            # Convert only the frames that will be analysed: to_ndarray copies the whole picture.
            analyzer.submit(frame.to_ndarray(format="bgr24"), datetime.now(timezone.utc))
        return frame

    def on_video_ended(self) -> None:
        """Called by streamlit-webrtc when the track ends, possibly on the event loop that carries every patient's
        WebRTC traffic: never block here. Stopping (which writes the pending readings, retrying for a few seconds) runs
        on its own thread."""
        with self._lock:
            analyzer, self._analyzer = self._analyzer, None
        _unregister(self)
        if analyzer is not None:
            threading.Thread(target=self._finish, args=(analyzer,), name=f"remote-finish-{self.session_id}", daemon=True).start()

    def _finish(self, analyzer: RemoteAnalyzer) -> None:
        status = analyzer.stop()
        with self._lock:
            if self._analyzer is None:  # a new START may already have begun a fresh analyzer: keep its status
                self._last_status = status
        log.info("remote stream for session %s ended: %s", self.session_id, status)

    # --- page thread ----------------------------------------------------------------------------------------------------
    def status(self) -> RemoteStatus | None:
        with self._lock:
            analyzer = self._analyzer
        return analyzer.status() if analyzer is not None else self._last_status

    @property
    def streaming(self) -> bool:
        with self._lock:
            return self._analyzer is not None

    @property
    def closed_reason(self) -> str:
        """Non-empty once the store refused the token (session ended or link expired): stop the camera."""
        return self._closed_reason

    @property
    def superseded(self) -> bool:
        """True once the same link started streaming from another window or device: only one stream feeds a session,
        so two cameras never interleave their readings."""
        return self._superseded

    def stop(self) -> None:
        self.on_video_ended()

    def supersede(self) -> None:
        with self._lock:
            self._superseded = True
        self.on_video_ended()

    def _current_analyzer(self) -> RemoteAnalyzer | None:
        with self._lock:
            if self._closed_reason or self._superseded:
                return None
            if self._analyzer is not None:
                return self._analyzer
            analyzer = self._analyzer = RemoteAnalyzer(
                self.session_id,
                analyze=self._analyze,
                write=self._write,
                analysis_fps=self._analysis_fps,
                analysis_gate=self._gate,
                write_interval_s=self._write_interval_s,
                on_closed=self._on_closed,
            )
            self.connected_at = datetime.now(timezone.utc)
        _register(self)  # outside our lock: it may stop another stream, which takes that stream's lock
        return analyzer

    def _on_closed(self, reason: str) -> None:
        self._closed_reason = reason


# --- what the patient's page says -------------------------------------------------------------------------------------

StatusKind = Literal["success", "info", "warning", "caption", "metric"]


@dataclass(frozen=True)
class StatusLine:
    kind: StatusKind  # which Streamlit element shows it
    text: str
    label: str = ""  # metrics only


def patient_status_lines(stream: PatientStream, show_emotions: bool) -> list[StatusLine]:
    """The patient's status panel: connection and progress, hints, never the emotions unless the setting allows it."""
    if stream.closed_reason:
        return [StatusLine("warning", "Your clinician has ended this session. You can close this page.")]
    if stream.superseded:
        return [StatusLine("warning", "This session continues in another window or device; this one no longer sends anything.")]
    status = stream.status()
    if not stream.streaming or status is None:
        return [StatusLine("caption", "Camera off. Press **Start camera** when you are ready.")]
    lines = [StatusLine("success", f"Connected: {status.frames_analysed} frames analysed.") if status.frames_analysed
             else StatusLine("info", "Connected. Starting analysis…")]
    if status.frames_since_face >= NO_FACE_HINT_FRAMES:
        lines.append(StatusLine("caption", "No face is visible: please sit facing the camera, in good light."))
    if status.writer.last_error:
        lines.append(StatusLine("caption", "Saving is delayed (connection to the server); nothing is lost, it will retry."))
    if show_emotions and status.last_dominant:
        lines.append(StatusLine("metric", status.last_dominant, label="Current expression"))
    return lines


# --- registry of live patient streams (process-wide) -------------------------------------------------------------------

_streams: "weakref.WeakValueDictionary[uuid.UUID, PatientStream]" = weakref.WeakValueDictionary()
_streams_lock = threading.Lock()


def _register(stream: PatientStream) -> None:
    """The newest stream of a session wins (the patient reopened the link on another device, or in a new tab); the
    older one stops analysing and its page says so."""
    with _streams_lock:
        previous = _streams.get(stream.session_id)
        _streams[stream.session_id] = stream
    if previous is not None and previous is not stream:
        previous.supersede()


def _unregister(stream: PatientStream) -> None:
    with _streams_lock:
        if _streams.get(stream.session_id) is stream:
            del _streams[stream.session_id]


def live_stream(session_id: uuid.UUID) -> PatientStream | None:
    """The patient stream currently sending frames for `session_id` in this server process, if any."""
    with _streams_lock:
        return _streams.get(session_id)


def live_stream_count() -> int:
    with _streams_lock:
        return len(_streams)


# --- the clinician's view of the patient's camera (relay) ------------------------------------------------------------

RELAY_REFRESH_S = 2.0


def patient_video_track(session_id: uuid.UUID) -> Any:
    """The live video track of the patient streaming `session_id` into this server process, or None."""
    stream = live_stream(session_id)
    track = stream.output_video_track if stream is not None else None
    if track is None or getattr(track, "readyState", "ended") != "live":
        return None
    return track


def show_patient_video(session_id: uuid.UUID, settings: Settings) -> None:
    """On the clinician's live page, for a session started with the relay (REMOTE_VIDEO_RELAY=on and ticked; see
    app.remote.video_relayed): the patient's camera, relayed server-side (streamlit-webrtc's MediaRelay) from the
    patient's own WebRTC connection, beside the emotion chart.

    Nothing is recorded. Re-checks every couple of seconds, so the video appears when the patient presses Start and
    follows them if they stop and start again (a new track gets a new player). Works when the patient and clinician
    reach the same server process (one Streamlit server, as `make run` starts).
    """
    import streamlit as st
    from streamlit_webrtc import WebRtcMode, webrtc_streamer

    @st.fragment(run_every=RELAY_REFRESH_S)
    def relay() -> None:
        track = patient_video_track(session_id)
        if track is None:
            st.caption(":material/videocam_off: The patient's video appears here once they start their camera.")
            return
        webrtc_streamer(
            key=f"relay-{session_id}-{id(track)}",
            mode=WebRtcMode.RECVONLY,
            rtc_configuration=rtc_configuration(settings),
            source_video_track=track,  # streamlit-webrtc subscribes to it through its global MediaRelay
            media_stream_constraints={"video": True, "audio": False},
            desired_playing_state=True,
            video_html_attrs={"autoPlay": True, "muted": True, "playsInline": True, "controls": False,
                              "style": {"width": "100%", "maxWidth": "480px"}},
            translations={"start": "Show patient video", "stop": "Hide"},
        )

    relay()
