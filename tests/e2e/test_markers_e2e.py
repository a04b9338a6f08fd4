"""Event markers end to end in Debian Chromium against the real app: during a live session the clinician presses a
marker type's digit key; the marker is stored, appears on the live chart (type on hover) and on the review timeline.
Screenshots go to artifacts/screenshots/."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.e2e import clinic_harness as ui

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def shot(page, name: str) -> None:
    ui.screenshot(page, f"markers-{name}")


def marker_texts(page, selector: str) -> list[str]:
    """The hover texts of the marker trace of the first Plotly figure under `selector` ([] when none is drawn)."""
    return page.evaluate(
        """(selector) => { const el = document.querySelector(selector);
             if (!el || !el.data) return [];
             const trace = el.data.find(t => t.name === 'markers');
             return trace ? Array.from(trace.text || []) : []; }""",
        selector,
    )


def test_a_marker_added_by_its_shortcut_shows_on_the_live_chart_and_the_review(clinic_app, clinic_user, clinic_store, browser):
    from store.api import Actor
    from tests.app.helpers import consenting_patient, synthetic_readings

    app, system, mine = clinic_app, clinic_store, clinic_user.store
    username, password = clinic_user.username, clinic_user.password
    patient = consenting_patient(mine, "Olga Pardo")
    registration = mine.register_device("pi-room-3", "Room 3")
    session = mine.start_session(patient.id, "in_person", registration.device.id)
    device = system.as_actor(Actor.for_device(registration.device.id))
    device.insert_readings(synthetic_readings(session, ["neutral"] * 10 + ["sad"] * 10,
                                              start=session.started_at + timedelta(seconds=1)))

    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    page = context.new_page()
    try:
        ui.log_in(page, app.url, username, password)
        ui.goto(page, f"{app.url}/live?session={session.id}")
        ui.wait_until(lambda: ui.chart_points(page) == 20, 60, 0.25, "20 points on the live chart")
        page.get_by_role("button", name="distress").wait_for(timeout=30_000)  # the default type on key 3
        ui.wait_for_app_idle(page)
        page.get_by_role("heading", name="Olga Pardo").click()  # focus on the page, not in a text box
        page.keyboard.press("3")
        ui.wait_until(lambda: marker_texts(page, ui.LIVE_CHART) == ["distress"], 60, 0.25, "the marker on the live chart")
        [marker] = mine.list_markers(session.id)
        assert marker.kind == "distress" and marker.session_id == session.id
        shot(page, "01-live-marked-by-key")
        # typing a digit into a text box is text, not a shortcut
        page.get_by_role("textbox", name="Note at this moment").press_sequentially("room 3")
        ui.wait_for_app_idle(page)
        assert [m.kind for m in mine.list_markers(session.id)] == ["distress"]
        page.get_by_role("textbox", name="Note at this moment").fill("")

        page.get_by_role("button", name="Stop session").click()
        page.get_by_text("This session ended").wait_for(timeout=30_000)
        ui.goto(page, f"{app.url}/review?session={session.id}")
        page.get_by_role("heading", name="Session review").wait_for(timeout=30_000)
        ui.wait_until(lambda: marker_texts(page, ".js-plotly-plot") == ["distress"], 60, 0.25,
                      "the marker on the review timeline")
        page.get_by_text("Reactions to events").wait_for(timeout=30_000)
        shot(page, "02-review-with-marker")
    except Exception:
        shot(page, "failure")
        print(app.log_tail())
        raise
    finally:
        context.close()
