"""Streamlit sections of the clinical analyses (issue 15) that pages call in one line: expressivity on the Progress page."""

from __future__ import annotations

import streamlit as st

from app import expressivity
from store.api import Store
from store.models import Patient


def expressivity_section(store: Store, patient: Patient) -> None:
    st.markdown("**Expressivity per session** (dashed: the mean of the patient's first sessions)")
    result = expressivity.patient_course(store, patient.id)
    if result.frame.empty:
        st.caption(f"Needs sessions with at least {expressivity.MIN_READINGS} readings.")
        return
    st.plotly_chart(expressivity.course_figure(result), key="expressivity_figure")
    st.caption("Observations of the face as the model sees it, not a diagnosis: camera angle, lighting, medication, "
               "culture and the session's topic change these numbers too. Definitions: docs/app.md, \"Expressivity\".")


def reaction_windows(settings) -> tuple[float, float]:
    """The reaction windows (before, after) in seconds the review shows now: the clinician's choice, else the settings."""
    return (float(st.session_state.get("reaction_before", settings.reaction_before_s)),
            float(st.session_state.get("reaction_after", settings.reaction_after_s)))


def export_buttons(store: Store, review, patient: Patient, clinician, settings, tz: str | None = None) -> None:
    """The review's issue-15 exports (generated and audited only when clicked); `tz`: the clinician's time zone."""
    from app import clinical_exports, exports

    before_s, after_s = reaction_windows(settings)
    name = lambda suffix, extension: exports.export_file_name(patient, review.session, extension).replace(  # noqa: E731
        f".{extension}", f"{suffix}.{extension}")
    columns = st.columns(4)
    columns[0].download_button("Report (PDF)", data=lambda: clinical_exports.pdf_report(store, review, patient, clinician, before_s, after_s, tz),
                               file_name=name("", "pdf"), mime="application/pdf", icon=":material/picture_as_pdf:",
                               key="download_pdf", on_click="ignore")
    columns[1].download_button("FHIR R4 bundle (JSON)", data=lambda: clinical_exports.fhir_bundle(store, review, patient, clinician, before_s, after_s),
                               file_name=name("-fhir", "json"), mime="application/fhir+json", icon=":material/health_and_safety:",
                               key="download_fhir", on_click="ignore")
    columns[2].download_button("Readings with face box, flags, markers (CSV)", data=lambda: clinical_exports.readings_detail_csv(store, review),
                               file_name=name("-detail", "csv"), mime="text/csv", icon=":material/table:",
                               key="download_csv_detail", on_click="ignore")
    columns[3].download_button("Markers (CSV)", data=lambda: clinical_exports.markers_csv(store, review),
                               file_name=name("-markers", "csv"), mime="text/csv", icon=":material/flag:",
                               key="download_markers", on_click="ignore")
