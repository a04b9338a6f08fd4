"""Small Streamlit pieces every page shares: the decision-support notice, user text shown literally, query-parameter ids,
formatting."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import date, datetime, timezone

import streamlit as st

from store.api import Store
from store.errors import NotFound
from store.models import Patient, Session

DISCLAIMER = (
    "Decision support, not a diagnosis: emotion estimates come from an automatic facial-expression model, can be wrong, "
    "and must be interpreted by the clinician together with everything else they know about the patient."
)

EARLIEST_BIRTH = date(1900, 1, 1)
MODE_LABELS = {"in_person": "In person (Pi camera)", "remote": "Remote (patient's browser)", "recorded_video": "Recorded video"}
STATUS_WORDS = {"scheduled": "scheduled", "live": "LIVE", "ended": "ended"}  # words, not emoji: clinic PCs may lack emoji fonts


_FLASH_KEY = "_psya_flash"
# Every ASCII punctuation character can be backslash-escaped in CommonMark, which then shows it literally; that also
# covers Streamlit's own syntax (":material/x:", ":red[...]", emoji shortcodes, "$math$") and raw HTML ("<img ...>").
_MARKDOWN_SPECIAL = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


# Escapes are not enough for the renderer's text-node plugins, which run after escapes are resolved: GitHub-style bare
# links ("http://…", "www.…", "name@host"), emoji shortcodes (":smile:") and material icons (":material/home:"). An
# invisible WORD JOINER after each "www", before each (escaped) "@" and after each ":"
# keeps their patterns from matching. It is zero-width, so the text still reads exactly as typed.
WORD_JOINER = "\u2060"
_AUTOLINK_LIKE = re.compile(r"(?i:www)(?=\\\.)|(?=\\@)|\\:")


def literal(text: object) -> str:
    """User text (names, notes, record entries, device names, error messages quoting input) as Markdown that renders
    exactly as typed: no links, images, HTML, headings, lists, colours or icons. Use it wherever user text goes into a
    Streamlit element that renders Markdown (st.markdown, st.write, titles, headers, captions, alerts, labels, flash).
    Line breaks are kept; leading spaces become no-break spaces so they cannot start a code block."""
    lines = []
    for line in str(text).replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        stripped = line.lstrip(" \t")
        indent = "\u00a0" * (len(line) - len(stripped))
        escaped = "".join("\\" + ch if ch in _MARKDOWN_SPECIAL else ch for ch in stripped)
        lines.append(indent + _AUTOLINK_LIKE.sub(lambda m: m.group(0) + WORD_JOINER, escaped))
    return "  \n".join(lines)


def plain_text(text: object) -> None:
    """Render user text as a paragraph that shows exactly what was typed (see `literal`)."""
    st.markdown(literal(text))


def show_error(error: object, icon: str | None = None) -> None:
    """An error for the user (a store or input error, often quoting what they typed), shown literally (see `literal`)."""
    st.error(literal(str(error)), icon=icon)


def flash(message: str) -> None:
    """A success message shown once on the next page rendered (survives st.rerun / st.switch_page)."""
    st.session_state[_FLASH_KEY] = message


def show_flash() -> None:
    if message := st.session_state.pop(_FLASH_KEY, None):
        st.success(literal(message))  # flash messages often quote user text (a patient's or device's name)


def disclaimer() -> None:
    st.caption(f":material/info: {DISCLAIMER}")


def query_uuid(name: str) -> uuid.UUID | None:
    """A UUID from the page's query string (`?patient=...`), or None when absent or malformed."""
    raw = st.query_params.get(name)
    if not raw:
        return None
    try:
        return uuid.UUID(str(raw))
    except ValueError:
        return None


def format_time(moment: datetime | None) -> str:
    if moment is None:
        return "—"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def format_date(day: date | None) -> str:
    return day.isoformat() if day else "—"


def format_duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def patient_picker(store: Store, key: str) -> Patient:
    """The patient chooser of the per-patient analysis pages (Progress, Compare): every patient the clinician may see,
    archived ones included, preselected from `?patient=` and written back to it (so the page can be linked and
    reloaded). Stops the page with a message when there is no patient or the chosen one is not visible."""
    patients = store.list_patients(include_archived=True)
    if not patients:
        st.info("No patients yet.")
        st.stop()
    ids = [p.id for p in patients]
    by_id = {p.id: p for p in patients}
    wanted = query_uuid("patient")
    patient_id = st.selectbox("Patient", ids, index=ids.index(wanted) if wanted in ids else 0,
                              format_func=lambda i: patient_label(by_id[i]), key=key)
    st.query_params["patient"] = str(patient_id)
    try:
        return store.get_patient(patient_id)
    except NotFound:
        st.error("This patient does not exist or is not one of yours.")
        st.stop()


def patient_label(patient: Patient) -> str:
    born = f" (born {patient.date_of_birth.isoformat()})" if patient.date_of_birth else ""
    archived = " [archived]" if patient.archived else ""
    return f"{patient.full_name}{born}{archived}"


def patient_link_label(patient: Patient) -> str:
    """`patient_label` for elements that render Markdown (page links, headings): the name shown literally."""
    return patient_label(replace(patient, full_name=literal(patient.full_name)))


def session_link_label(session: Session, patient_name: str | None = None, tz: str | None = None) -> str:
    """`session_label` for elements that render Markdown: the patient's name shown literally. With `tz` (the
    clinician's time zone, app.clock) the times are shown in that zone with seconds (clock.session_label)."""
    name = literal(patient_name) if patient_name else None
    if tz is None:
        return session_label(session, name)
    from app import clock

    return clock.session_label(session, tz, name)


def session_label(session: Session, patient_name: str | None = None) -> str:
    who = f"{patient_name} · " if patient_name else ""
    return f"{who}{MODE_LABELS.get(session.mode, session.mode)} · {format_time(session.started_at or session.created_at)} · {STATUS_WORDS.get(session.status, session.status)}"
