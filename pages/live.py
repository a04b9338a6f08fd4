"""Live dashboard of one session (/live?session=...): current emotion, last-minute distribution, whole-session chart,
refreshed about once a second with only the readings inserted since the last refresh; annotations; stop."""

from datetime import timedelta

import streamlit as st

from app import analytics, charts, clock, context, sessions, ui, webrtc_session
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
        st.page_link("pages/live.py", label=clock.session_label(session, tz, names.get(session.patient_id)), query_params={"session": str(session.id)})
    st.stop()

try:
    session = ctx.store.get_session(session_id)
    patient = ctx.store.get_patient(session.patient_id)
except NotFound:
    st.error("This session does not exist or is not one of yours.")
    st.stop()

st.title(f"{patient.full_name} · {ui.MODE_LABELS[session.mode]}")
ui.show_flash()
ui.disclaimer()

join_link = st.session_state.get("join_links", {}).get(str(session.id))
if session.mode == "remote" and session.status == "live":
    if join_link:
        st.write("Send this link to the patient (it is shown only in this browser session; it expires "
                 f"{clock.format_moment(session.join_expires_at, tz)}):")
        st.code(join_link, language=None)  # the code block has a copy button
        if st.toggle("Show QR code", key="show_qr"):
            st.image(sessions.qr_png(join_link), width=220)
    else:
        st.caption("The join link was shown when the session started; start a new remote session for a new link.")
    webrtc_session.show_patient_video(session.id, ctx.settings)  # the patient's camera, relayed (issue 7)

feeds: dict = st.session_state.setdefault("live_feeds", {})
feed: sessions.LiveFeed = feeds.setdefault(str(session.id), sessions.LiveFeed(session.id, session.started_at))
feed.stopped(session)  # an ended session shows only what was captured before Stop (as the review and the CSV do)


def render_panel() -> None:
    try:
        arrived = feed.poll(ctx.store)
    except StoreError as error:
        st.warning(f"Waiting for the database: {error}")
        return
    frame = feed.frame
    latest = feed.latest
    current, count, last = st.columns(3)
    if latest is None:
        current.metric("Current emotion", "—")
        count.metric("Readings", 0)
        last.metric("Session time of the last reading", "—")
        st.info("Waiting for the first reading…" if session.status == "live" else "This session has no readings.")
        return
    current.metric("Current emotion", str(latest["dominant"]), help=f"probability {latest[latest['dominant']]:.0%} in the latest reading")
    count.metric("Readings", len(frame))
    last.metric("Session time of the last reading", ui.format_duration(latest["t"]))
    if arrived or feed.figures is None:
        # Rebuilt only when readings arrived: an unchanged figure is an identical message, which Streamlit does not
        # resend, so a quiet second costs neither the server nor the browser a redraw.
        minute = analytics.last_window(frame, 60)
        feed.figures = (charts.live_figure(frame, str(session.id)), charts.distribution_figure(analytics.dominant_distribution(minute), height=300))
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

st.subheader("Notes")
if session.status == "live":
    with st.form("annotation", clear_on_submit=True):
        text = st.text_input("Note at this moment", placeholder="e.g. talked about the accident")
        add = st.form_submit_button("Add note", icon=":material/edit_note:")
    if add:
        try:
            sessions.annotate(ctx.store, session, text)
        except (InvalidInput, StoreError) as error:
            st.error(str(error))
else:
    st.caption("The session has ended: notes are added in the review, at the session time they refer to.")
for note in ctx.store.list_annotations(session.id):
    st.text(f"{clock.format_offset(clock.session_offset_s(session, note.at))}  {note.text}")

if session.status == "live":
    if st.button("Stop session", type="primary", icon=":material/stop_circle:"):
        sessions.stop(ctx.store, session.id)
        ui.flash("Session stopped.")
        st.rerun()
