"""Live dashboard of one session (/live?session=...): current emotion, last-minute distribution, whole-session chart,
refreshed about once a second with only the readings inserted since the last refresh; annotations; stop."""

from datetime import datetime, timedelta, timezone

import streamlit as st

from app import analytics, browser_component, charts, clock, context, lifecycle, links, marker_ui, presence, quality, sessions, ui
from app import markers as event_markers
from store.errors import InvalidInput, NotFound, StoreError

REFRESH = timedelta(seconds=1)

ctx = context.require_clinician()
tz = clock.clinician_time_zone(ctx.store, ctx.settings.default_time_zone)  # times in the clinician's zone
session_id = ui.query_uuid("session")
if session_id is None:
    live = ctx.store.list_sessions(status="live")
    st.title("Live dashboard")
    if not live:
        st.info("No session is live. Start one on the Sessions page.")
        st.page_link("pages/sessions.py", label="Sessions", icon=":material/play_circle:")
        st.stop()
    names = {p.id: p.full_name for p in ctx.store.list_patients(include_archived=True)}
    for session in live:
        st.page_link("pages/live.py", label=ui.session_link_label(session, names.get(session.patient_id), tz), query_params={"session": str(session.id)})
    st.stop()

try:
    session = ctx.store.get_session(session_id)
    patient = ctx.store.get_patient(session.patient_id)
except NotFound:
    st.error("This session does not exist or is not one of yours.")
    st.stop()

st.title(f"{ui.literal(patient.full_name)} · {ui.MODE_LABELS[session.mode]}")
ui.show_flash()
ui.disclaimer()

if session.status == "live":
    for auto in lifecycle.end_idle_sessions(ctx.store, ctx.settings.idle_session_minutes):
        if auto.session.id == session.id:
            session = auto.session
            st.info(f"This session was ended automatically: no reading and no note since {clock.format_moment(auto.idle_since, tz)}.")


def render_join_link() -> None:
    """The patient's join link: shown again after a reload (kept encrypted, app.links); "New link" replaces it."""
    link = st.session_state.get("join_links", {}).get(str(session.id)) or links.recall(ctx.store, ctx.settings, session.id)
    if link:
        st.write(f"Send this link to the patient (it expires {clock.format_moment(session.join_expires_at, tz)}):")
        st.code(link, language=None)  # the code block has a copy button
        if st.toggle("Show QR code", key="show_qr"):
            st.image(sessions.qr_png(link), width=220)
    else:
        st.caption("This link cannot be shown again (the app's key changed since it was made): make a new one.")
    # Beside the link rather than a one-run flash: this page reruns every second and right after it loads.
    renewed = st.session_state.setdefault("join_link_renewed", {})
    if str(session.id) in renewed:
        st.caption(f"New link made {clock.format_moment(renewed[str(session.id)], tz)}: the old one no longer works.")
    if st.button("New link", icon=":material/autorenew:", help="Replaces the link: the old one stops working at once."):
        st.session_state.setdefault("join_links", {})[str(session.id)] = links.new_link(ctx.store, ctx.settings, session)
        renewed[str(session.id)] = datetime.now(timezone.utc)
        st.rerun()


if session.mode == "remote" and session.status == "live":
    render_join_link()
    browser_component.show_clinician_view(session.id, ctx.settings)  # analysis mode; relayed video only when chosen (server mode)

feeds: dict = st.session_state.setdefault("live_feeds", {})
keep = quality.is_usable if ctx.settings.exclude_low_quality else None  # the review and the CSV leave out the same
feed: sessions.LiveFeed = feeds.setdefault(str(session.id), sessions.LiveFeed(session.id, session.started_at, keep=keep))
feed.stopped(session)  # an ended session shows only what was captured before Stop (as the review and the CSV do)


def source_connected() -> bool | None:
    """The source's own signal that it is still there (see app.presence)."""
    if session.mode == "remote":
        # browser mode: no stream reaches the server; the page's batches (empty ones when no face is seen) tell
        if browser_component.analysed_in_browser(session.id):
            return presence.browser_connected(session.id)
        return presence.remote_connected(session.id)
    if session.mode == "in_person":
        return presence.device_connected(next((d for d in ctx.store.list_devices() if d.id == session.device_id), None))
    return None


def render_presence() -> presence.Presence:
    """Presence line and data quality: says within seconds when the patient or their face is gone."""
    now_present = presence.assess(session, feed.last_captured_at, source_connected() if session.status == "live" else None)
    if now_present.state != "ended":  # an ended session says so below
        box = {"present": st.success, "waiting": st.info, "no_face": st.warning, "disconnected": st.error}[now_present.state]
        box(now_present.message, icon={"present": ":material/person:", "no_face": ":material/face_retouching_off:", "disconnected": ":material/link_off:"}.get(now_present.state))
    if feed.seen:
        analysed = presence.remote_analysed_frames(session.id) if session.mode == "remote" else None
        share = quality.QualitySummary(feed.seen, feed.usable, analysed).usable_share
        low = feed.seen - feed.usable
        left_out = (f" ({low} low-quality readings left out)" if feed.keep is not None else f" ({low} low-quality readings included)") if low else ""
        st.caption(f"Usable face in {share:.0%} of {'analysed frames' if analysed else 'readings'}{left_out}.")
    return now_present


def render_panel() -> None:
    try:
        arrived = feed.poll(ctx.store)
    except StoreError as error:
        st.warning(f"Waiting for the database: {error}")
        return
    now_present = render_presence()
    frame = feed.frame
    latest = feed.latest
    current, count, last = st.columns(3)
    if latest is None:
        current.metric("Current emotion", "—")
        count.metric("Readings", 0)
        last.metric("Last reading", "—")
        if session.status != "live":
            st.info("This session has no readings.")
        return
    # Only a fresh reading is "current": an old one would keep saying "fear" long after the patient left.
    current.metric("Current emotion", str(latest["dominant"]) if now_present.current or session.status != "live" else "—",
                   help=f"probability {latest[latest['dominant']]:.0%} in the latest reading")
    count.metric("Readings", len(frame))
    age = now_present.last_reading_age_s
    last.metric("Last reading", f"{ui.format_duration(latest['t'])} into the session" if age is None or session.status != "live" else f"{age:.0f} s ago",
                help=f"session time {ui.format_duration(latest['t'])}")
    if arrived or feed.figures is None:
        # Rebuilt only when readings arrived: an unchanged figure is an identical message, which Streamlit does not
        # resend, so a quiet second costs neither the server nor the browser a redraw.
        minute = analytics.last_window(frame, 60)
        feed.figures = (event_markers.add_to_figure(charts.live_figure(frame, str(session.id)), event_markers.visible_markers(ctx.store, session), event_markers.timeline_origin(session, frame)), charts.distribution_figure(analytics.dominant_distribution(minute), height=300))
    chart_col, distribution_col = st.columns([3, 1])
    with chart_col:
        st.plotly_chart(feed.figures[0], key=charts.LIVE_CHART_KEY)
    with distribution_col:
        st.caption("Last minute")
        st.plotly_chart(feed.figures[1], key="live_minute")


if session.status == "live":
    st.fragment(render_panel, run_every=REFRESH)()
else:
    render_panel()
    st.success(f"This session ended {clock.format_moment(session.ended_at, tz)}.")
    st.page_link("pages/review.py", label="Review the session", icon=":material/insights:", query_params={"session": str(session.id)})

marker_ui.live_marker_bar(ctx.store, session, on_added=lambda: setattr(feed, "figures", None))  # issue 15: the next refresh redraws with it

st.subheader("Notes")
if session.status == "live":
    with st.form("annotation", clear_on_submit=True):
        text = st.text_input("Note at this moment", placeholder="e.g. talked about the accident")
        add = st.form_submit_button("Add note", icon=":material/edit_note:")
    if add:
        try:
            sessions.annotate(ctx.store, session, text)
        except (InvalidInput, StoreError) as error:
            ui.show_error(error)
else:
    st.caption("The session has ended: notes are added in the review, at the session time they refer to.")
for note in ctx.store.list_annotations(session.id):
    st.text(f"{clock.format_offset(clock.session_offset_s(session, note.at))}  {note.text}")

if session.status == "live":
    if st.button("Stop session", type="primary", icon=":material/stop_circle:"):
        sessions.stop(ctx.store, session.id)
        ui.flash("Session stopped.")
        st.rerun()
