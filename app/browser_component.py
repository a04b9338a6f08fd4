"""Streamlit glue for browser analysis (app/browser_analysis.py): the custom component on the patient's join page.

The component is `frontend/build` (built by `make`), declared once per process. Its value is the browser's latest
message: {"kind": "ready"}, {"kind": "unsupported", "reason"} or a readings batch. The page handles that value *before*
rendering the component, so the acknowledgement (args.ack) goes back in the same rerun and the browser re-sends nothing
that was already taken.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from app import browser_analysis
from app.browser_analysis import BrowserReadingIntake, InvalidBatch
from app.remote import remote_writer
from app.webrtc_session import PATIENT_MEDIA_CONSTRAINTS
from settings import Settings
from store.api import Store

log = logging.getLogger(__name__)

COMPONENT_NAME = "psya_browser_analysis"
_component: Any = None


def _declared() -> Any:
    global _component
    if _component is None:
        import streamlit.components.v1 as components

        _component = components.declare_component(COMPONENT_NAME, path=str(browser_analysis.BUILD_DIR))
    return _component


@dataclass
class BrowserPatient:
    """One patient page's browser-analysis state (kept in st.session_state across reruns)."""

    session_id: uuid.UUID
    intake: BrowserReadingIntake
    ready: bool = False
    unsupported_reason: str = ""
    ack: int = 0

    def handle(self, value: Any) -> None:
        if not isinstance(value, dict):
            return
        kind = value.get("kind")
        if kind == "ready":
            self.ready = True
            browser_analysis.report_mode(self.session_id, "browser")
        elif kind == "unsupported":
            self.unsupported_reason = str(value.get("reason", "unknown reason"))[:300]
            browser_analysis.report_mode(self.session_id, "server", f"the patient's browser cannot run the model ({self.unsupported_reason})")
        elif kind == "readings":
            try:
                batch = browser_analysis.parse_batch(value, self.session_id, clock=self.intake.clock)
            except InvalidBatch as error:
                log.warning("refused a browser batch for session %s: %s", self.session_id, error)
                return
            self.ready = True
            browser_analysis.report_mode(self.session_id, "browser")
            self.ack = self.intake.accept(batch)

    def stop(self) -> None:
        self.intake.stop(flush_timeout=1.0)  # the session is over: whatever is still refused will stay refused


def server_fallback_reason(settings: Settings) -> str:
    """Why this server cannot offer browser analysis at all (empty when it can)."""
    problem = browser_analysis.build_problem()
    if problem:
        return problem
    try:
        browser_analysis.model_assets(settings)
    except Exception as error:  # noqa: BLE001 - BrowserAnalysisUnavailable, FerError, OSError...: use the server
        return f"the model cannot be prepared for the browser ({error})"
    return ""


def patient_state(session_state: Any, store: Store, token: str, session_id: uuid.UUID) -> BrowserPatient:
    key = f"browser_patient:{token}"
    patient = session_state.get(key)
    if patient is None or patient.session_id != session_id:
        patient = BrowserPatient(session_id, BrowserReadingIntake(session_id, remote_writer(store, token)))
        session_state[key] = patient
    return patient


def show_component(patient: BrowserPatient, settings: Settings, token: str, session_state: Any) -> None:
    """Handle the browser's latest message, then render the component with the acknowledgement."""
    value_key = f"browser_component:{token}"
    patient.handle(session_state.get(value_key))
    value = _declared()(
        models=browser_analysis.model_assets(settings),
        fps=float(settings.remote_analysis_fps),
        batch_interval_ms=1000,
        media_constraints=PATIENT_MEDIA_CONSTRAINTS["video"],
        show_emotions=bool(settings.show_emotions_to_patient),
        ack=patient.ack,
        ended=bool(patient.intake.closed_reason),
        key=value_key,
        default=None,
    )
    patient.handle(value)  # a no-op when the value was handled above (same seq)


# --- the clinician's dashboard ---------------------------------------------------------------------------------------

MODE_REFRESH_S = 2.0


def _relay_wanted(settings: Settings, session_id: uuid.UUID) -> bool:
    """Only in server mode, and only when the clinician chose the relay for this session (REMOTE_VIDEO_RELAY=on)."""
    from app import remote

    report = browser_analysis.session_mode(session_id)
    mode = report.mode if report is not None else settings.remote_analysis
    return mode == "server" and remote.video_relayed(settings, session_id)


def analysed_in_browser(session_id: uuid.UUID) -> bool:
    """Whether the patient's page reported browser mode for this session (in this server process): then no video
    stream reaches the server, and whether the patient is there comes from the page's batches (app.presence)."""
    report = browser_analysis.session_mode(session_id)
    return report is not None and report.mode == "browser"


def show_clinician_view(session_id: uuid.UUID, settings: Settings) -> None:
    """Which mode the session runs in (re-checked every 2 s) and, in server mode with the relay chosen for this session,
    the relayed patient video.

    In browser mode no video reaches the server, so there is nothing to relay; in server mode without the relay the
    server analyses the video and shows none. Either way the clinician runs their usual video call beside the dashboard.
    When the mode changes (the patient's browser fell back to server mode), the page reruns so the relay appears."""
    import streamlit as st

    from app import remote, webrtc_session

    relay = _relay_wanted(settings, session_id)

    @st.fragment(run_every=MODE_REFRESH_S)
    def mode_line() -> None:
        st.caption(browser_analysis.mode_caption(settings, session_id, remote.video_frames_received(session_id),
                                                 remote.video_relayed(settings, session_id)))
        if _relay_wanted(settings, session_id) != relay:
            st.rerun(scope="app")

    mode_line()
    if relay:
        webrtc_session.show_patient_video(session_id, settings)  # the patient's camera, relayed (issue 7)
