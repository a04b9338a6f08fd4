"""Streamlit widgets for event markers: the live marker bar (one click or a digit key per type, free text), the clinician's
marker-type editor, and the review's add / edit / remove at a chosen session time. Pages call these in one line each."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pandas as pd
import streamlit as st

from app import markers as marker_service
from app import ui
from store.api import Store
from store.errors import StoreError
from store.markers import Marker
from store.models import Session

OTHER = "Other (free text)…"


def is_own_session(store: Store, session: Session) -> bool:
    return store.actor.kind == "clinician" and store.actor.id == session.clinician_id


def live_marker_bar(store: Store, session: Session, on_added: Callable[[], None] = lambda: None) -> None:
    """Buttons for the clinician's marker types (each with its digit key as shortcut) and a free-text marker."""
    if session.status != "live" or not is_own_session(store, session):
        return
    st.markdown("**Mark an event**")
    try:
        types = marker_service.marker_types(store)
    except StoreError as error:
        st.warning(f"Marker types are unavailable: {error}")
        return
    columns = st.columns(max(len(types), 1) + 1)
    for column, kind in zip(columns, types):
        label = f"{kind.label}"
        if column.button(label, key=f"mark_{kind.id}", shortcut=kind.shortcut or None, icon=":material/flag:",
                         help=f"Mark '{kind.label}' now" + (f" (key {kind.shortcut})" if kind.shortcut else "")):
            _mark(store, session, kind.label, on_added)
    with columns[-1].popover("Other…", icon=":material/edit:"):
        with st.form("free_marker", clear_on_submit=True, border=False):
            text = st.text_input("Event", placeholder="e.g. mentions the accident", key="free_marker_kind")
            if st.form_submit_button("Mark now"):
                _mark(store, session, text, on_added)
    with st.expander("My marker types"):
        types_editor(store)


def _mark(store: Store, session: Session, kind: str, on_added: Callable[[], None]) -> None:
    try:
        marker = marker_service.mark_now(store, session, kind)
    except StoreError as error:
        ui.show_error(error)
        return
    on_added()
    st.toast(f"Marked '{marker.kind}'", icon=":material/flag:")


def types_editor(store: Store) -> None:
    types = marker_service.marker_types(store)
    for kind in types:
        label_col, key_col, remove_col = st.columns([4, 1, 1])
        label_col.write(kind.label)
        key_col.write(f"key {kind.shortcut}" if kind.shortcut else "—")
        if remove_col.button("Remove", key=f"remove_type_{kind.id}", type="tertiary"):
            saved = {t.label: t for t in marker_service.editable_marker_types(store)}  # defaults are saved first
            store.remove_marker_type(saved[kind.label].id)
            st.rerun()
    with st.form("add_marker_type", clear_on_submit=True):
        label_col, key_col = st.columns([4, 1])
        label = label_col.text_input("New marker type", placeholder="e.g. topic: school")
        free = [""] + [k for k in "123456789" if k not in {t.shortcut for t in types}]
        shortcut = key_col.selectbox("Key", free, index=1 if len(free) > 1 else 0, format_func=lambda k: k or "none")
        if st.form_submit_button("Add type"):
            try:
                marker_service.editable_marker_types(store)  # defaults are saved first
                store.add_marker_type(label, shortcut, position=len(types))
            except StoreError as error:
                ui.show_error(error)
            else:
                st.rerun()


def review_marker_editor(store: Store, session: Session, origin: datetime, markers: list[Marker], duration_s: float,
                         frame: pd.DataFrame | None = None) -> None:
    """The markers of an ended (or live) session: a table, then add at a chosen time, edit or remove one."""
    if not is_own_session(store, session):
        st.caption("Markers are shown to the session's own clinician only.")
        return
    st.dataframe(
        pd.DataFrame([{"At": ui.format_duration(marker_service.offset_s(m, origin)), "Type": m.kind, "Text": m.text}
                      for m in markers], columns=["At", "Type", "Text"]),
        hide_index=True,
    )
    types = [t.label for t in marker_service.marker_types(store)]
    add_col, edit_col = st.columns(2)
    with add_col.form("review_add_marker", clear_on_submit=True):
        st.markdown("Add a marker")
        seconds = st.number_input("At (seconds since start)", min_value=0.0, max_value=max(float(duration_s), 0.0),
                                  value=0.0, step=1.0)
        kind = st.selectbox("Type", [*types, OTHER])
        other = st.text_input("Free-text type (for Other)")
        text = st.text_input("Text (optional)")
        if st.form_submit_button("Add marker", icon=":material/flag:"):
            try:
                marker_service.mark_at(store, session, origin, seconds, other if kind == OTHER else kind, text, frame)
            except StoreError as error:
                ui.show_error(error)
            else:
                st.rerun()
    if not markers:
        return
    with edit_col:
        by_id = {m.id: m for m in markers}
        chosen = st.selectbox("Edit a marker", list(by_id), key="review_marker_choice",
                              format_func=lambda i: f"{ui.format_duration(marker_service.offset_s(by_id[i], origin))} "
                                                    f"{marker_service.describe(by_id[i])}")
        marker = by_id[chosen]
        with st.form(f"review_edit_marker_{marker.id}"):
            seconds = st.number_input("At (seconds since start)", min_value=0.0,
                                      value=max(0.0, float(marker_service.offset_s(marker, origin))), step=1.0)
            kind = st.text_input("Type", value=marker.kind)
            text = st.text_input("Text", value=marker.text)
            save_col, remove_col = st.columns(2)
            save = save_col.form_submit_button("Save", icon=":material/save:")
            remove = remove_col.form_submit_button("Remove", icon=":material/delete:")
        if save or remove:
            try:
                if remove:
                    store.remove_marker(marker.id)
                else:
                    marker_service.move_marker(store, session, marker, origin, seconds, kind, text, frame)
            except StoreError as error:
                ui.show_error(error)
            else:
                st.rerun()


def _format_change(reaction) -> str:
    if reaction.change is None:
        return "—"
    if reaction.ci_low is None:
        return f"{reaction.change:+.3f}"
    return f"{reaction.change:+.3f} [{reaction.ci_low:+.3f}, {reaction.ci_high:+.3f}]"


def reaction_groups(store: Store, session: Session, review, scope: str, before_s: float, after_s: float
                    ) -> dict[str, list]:
    """group name -> its Reactions, for one scope: "marker", "type" (this session) or "patient" (every session of the
    patient with markers)."""
    from app import reactions, sessions as session_service

    origin = marker_service.timeline_origin(session, review.frame)
    groups: dict[str, list] = {}
    if scope == "marker":
        for m in review.markers:
            name = f"{ui.format_duration(marker_service.offset_s(m, origin))} {marker_service.describe(m)}"
            groups[name] = reactions.marker_reactions(review.frame, marker_service.offset_s(m, origin), before_s, after_s, name)
        return groups
    if scope == "type":
        sources = [(review.frame, review.markers, origin)]
    else:
        sources = []
        for other in store.list_sessions(session.patient_id):
            found = review.markers if other.id == session.id else marker_service.visible_markers(store, other)
            if found:
                frame = review.frame if other.id == session.id else session_service.session_frame(store, other)
                sources.append((frame, found, marker_service.timeline_origin(other, frame)))
    kinds = sorted({m.kind for _, found, _ in sources for m in found})
    for kind in kinds:
        per_session = [(frame, [marker_service.offset_s(m, o) for m in found if m.kind == kind]) for frame, found, o in sources]
        groups[kind] = reactions.pooled_reactions(per_session, before_s, after_s, kind)
    return groups


def review_reactions(store: Store, session: Session, review, settings) -> None:
    """The review's "Reactions to events": a small table (one row per marker or type) and a chart for one of them."""
    from app import reactions

    st.markdown("**Reactions to events**")
    if not is_own_session(store, session):
        return
    if not review.markers:
        st.caption("Add markers to see how the face changed after each event.")
        return
    before_col, after_col, scope_col = st.columns(3)
    before_s = before_col.number_input("Window before (s)", 1.0, 600.0, float(settings.reaction_before_s), 5.0, key="reaction_before")
    after_s = after_col.number_input("Window after (s)", 1.0, 600.0, float(settings.reaction_after_s), 5.0, key="reaction_after")
    scope = scope_col.radio("For", ["marker", "type", "patient"], key="reaction_scope",
                            format_func={"marker": "each marker", "type": "each type, this session",
                                         "patient": "each type, all sessions of this patient"}.get)
    groups = reaction_groups(store, session, review, scope, before_s, after_s)
    rows = []
    for name, found in groups.items():
        by = {r.measure: r for r in found}
        rows.append({"Event": name, "Markers": by["valence"].events, "Readings before": by["valence"].n_before,
                     "Readings after": by["valence"].n_after, "Δ valence [95% CI]": _format_change(by["valence"]),
                     "Δ arousal [95% CI]": _format_change(by["arousal"]),
                     **{f"Δ {label}": _format_change(by[label]) for label in reactions.MEASURES[:7]}})
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="reactions_table")
    st.caption("Change = mean in the window after the event − mean in the window before. 95 % Welch interval; readings "
               "close in time are not independent, so treat the interval as a lower bound on the uncertainty.")
    chosen = st.selectbox("Chart for", list(groups), key="reaction_chart_group")
    if chosen is not None:
        st.plotly_chart(reactions.reaction_figure(groups[chosen]), key="reaction_chart")


def review_section(store: Store, session: Session, review, settings) -> None:
    """Everything issue 15 adds to the review page, in one call: markers (edit at a chosen time) and reactions."""
    st.markdown("**Event markers**")
    origin = marker_service.timeline_origin(session, review.frame)
    end = marker_service.session_end(session, review.frame)
    review_marker_editor(store, session, origin, review.markers, max((end - origin).total_seconds(), 0.0), review.frame)
    if review.summary.readings:
        review_reactions(store, session, review, settings)
