"""Server-side reports on a known synthetic session: the PDF opens (text extractable with pypdf, every page rendered to a
PNG by pdftoppm or pypdfium2), and the printable HTML is small, script-free and escapes what came from the database."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest

from app import report_pdf
from fer.labels import LABELS
from store.markers import Marker
from store.models import Annotation, Clinician, Patient, Session

START = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)
CLINICIAN = Clinician(uuid.uuid4(), "drvidal", "Dr Rosa Vidal", "clinician", "")
PATIENT = Patient(uuid.uuid4(), CLINICIAN.id, "Íñigo Martínez", date_of_birth=date(1988, 3, 4))
SESSION = Session(uuid.uuid4(), PATIENT.id, CLINICIAN.id, "in_person", "ended", uuid.uuid4(), START,
                  START + timedelta(minutes=2))


def one_hot(label: str) -> dict[str, float]:
    return {name: 0.85 if name == label else 0.025 for name in LABELS}


def synthetic_content(**overrides) -> report_pdf.ReportContent:
    labels = ["neutral"] * 60 + ["sad"] * 60
    frame = pd.DataFrame([{"captured_at": pd.Timestamp(START + timedelta(seconds=i)), "t": float(i), **one_hot(l)}
                          for i, l in enumerate(labels)])
    frame["dominant"] = labels
    markers = [Marker(uuid.uuid4(), SESSION.id, START + timedelta(seconds=60), "distress", "<b>the loss</b> cost $5",
                      CLINICIAN.id)]
    notes = [Annotation(uuid.uuid4(), SESSION.id, START + timedelta(seconds=10), "calm start", CLINICIAN.id)]
    values = dict(patient=PATIENT, session=SESSION, clinician=CLINICIAN, frame=frame, annotations=notes,
                  markers=markers, origin=START)
    values.update(overrides)
    return report_pdf.ReportContent(**values)


def render_pages(pdf: bytes, out: Path) -> list[Path]:
    """Every page as a PNG: poppler's pdftoppm when installed, else pypdfium2; skip when neither is here."""
    source = out / "report.pdf"
    source.write_bytes(pdf)
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-png", "-r", "60", str(source), str(out / "page")], check=True, timeout=120)
        return sorted(out.glob("page*.png"))
    pdfium = pytest.importorskip("pypdfium2", reason="neither pdftoppm (poppler-utils) nor pypdfium2 is installed")
    document = pdfium.PdfDocument(str(source))
    pages = []
    for index in range(len(document)):
        path = out / f"page-{index + 1}.png"
        document[index].render(scale=60 / 72).to_pil().save(path)
        pages.append(path)
    return pages


def test_the_pdf_report_opens_with_its_text_and_renders_every_page(tmp_path):
    pypdf = pytest.importorskip("pypdf")
    pdf = report_pdf.session_report_pdf(synthetic_content())
    assert pdf.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    for expected in ("Session report", "Íñigo Martínez", "Dr Rosa Vidal", "Readings", "120 over 1:59", "distress",
                     "<b>the loss</b> cost $5", "calm start", "Reactions to events", "Decision support, not a diagnosis"):
        assert expected in text, expected
    assert "valence" in text and "Welch" in text
    assert len(reader.pages[0].images) >= 1  # the charts are images in the PDF
    pages = render_pages(pdf, tmp_path)
    assert len(pages) == len(reader.pages) >= 1
    from PIL import Image

    for page in pages:
        with Image.open(page) as image:
            assert image.width > 300 and image.height > 400
            extrema = image.convert("L").getextrema()
            assert extrema[0] < 100 < extrema[1]  # dark ink on a light page: something was drawn


def test_the_reaction_in_the_report_is_the_hand_computed_one():
    content = synthetic_content()
    [valence, arousal] = content.reaction_rows()
    from app import affect

    # 30 s before the marker at 60 s: neutral readings; 30 s after: sad readings. Valence per reading by the mapping.
    neutral = sum(one_hot("neutral")[l] * affect.AFFECT_COORDINATES[l][0] for l in LABELS)
    sad = sum(one_hot("sad")[l] * affect.AFFECT_COORDINATES[l][0] for l in LABELS)
    assert (valence.measure, valence.n_before, valence.n_after) == ("valence", 30, 30)
    assert valence.change == pytest.approx(sad - neutral)
    assert arousal.measure == "arousal"


def test_an_empty_session_still_gives_a_report():
    content = synthetic_content(frame=synthetic_content().frame.iloc[0:0], markers=[], annotations=[])
    pdf = report_pdf.session_report_pdf(content)
    import pypdf

    text = pypdf.PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert "No markers." in text or "No markers" in "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def test_the_printable_html_is_small_script_free_and_escaped():
    page = report_pdf.session_report_html(synthetic_content())
    assert len(page.encode()) < 300_000  # was ~4.9 MB with plotly.js embedded
    lowered = page.lower()
    assert "<script" not in lowered and "<link" not in lowered and "<img" not in lowered  # nothing to fetch or run
    assert 'src="http' not in lowered and "href=\"http" not in lowered and "url(http" not in lowered
    assert page.count("<svg") == 2
    assert "&lt;b&gt;the loss&lt;/b&gt;" in page and "<b>the loss</b>" not in page
    assert "Íñigo Martínez" in page and "calm start" in page and "Decision support, not a diagnosis" in page


def test_the_printable_html_of_a_one_hour_session_stays_small_and_keeps_every_table_row():
    """An hour at 2 readings/s (7,200 readings), varied, with 40 markers and 20 notes: the charts draw at most
    report_pdf.CHART_POINTS points per line, the tables keep every marker and note."""
    import numpy as np

    rng = np.random.default_rng(15)
    count = 7200
    probabilities = rng.dirichlet(np.ones(len(LABELS)), count)
    frame = pd.DataFrame({"captured_at": [pd.Timestamp(START + timedelta(seconds=i / 2)) for i in range(count)],
                          "t": np.arange(count) / 2})
    for index, label in enumerate(LABELS):
        frame[label] = probabilities[:, index]
    frame["dominant"] = [LABELS[i] for i in probabilities.argmax(axis=1)]
    session = Session(SESSION.id, PATIENT.id, CLINICIAN.id, "in_person", "ended", SESSION.device_id, START,
                      START + timedelta(hours=1))
    markers = [Marker(uuid.uuid4(), SESSION.id, START + timedelta(seconds=90 * i), "topic: family", f"marker {i}",
                      CLINICIAN.id) for i in range(40)]
    notes = [Annotation(uuid.uuid4(), SESSION.id, START + timedelta(seconds=170 * i), f"note {i}", CLINICIAN.id)
             for i in range(20)]
    page = report_pdf.session_report_html(synthetic_content(frame=frame, session=session, markers=markers,
                                                            annotations=notes, tz="Europe/Madrid"))
    assert len(page.encode()) < 300_000, len(page.encode())
    assert "<script" not in page.lower() and page.count("<svg") == 2
    assert all(f"marker {i}<" in page for i in range(40)) and all(f"note {i}<" in page for i in range(20))
    assert "7200 over 59:60" not in page and "7200 over 1:00:00" in page and "2026-12-02 11:00:00-12:00:00 CET" in page  # the clinician's zone


def test_hostile_text_from_the_database_is_escaped_everywhere_in_the_html_including_the_charts():
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>&"
    patient = Patient(PATIENT.id, CLINICIAN.id, hostile, diagnosis=hostile)
    clinician = Clinician(CLINICIAN.id, "drx", hostile, "clinician", "")
    markers = [Marker(uuid.uuid4(), SESSION.id, START + timedelta(seconds=30), hostile, hostile, CLINICIAN.id)]
    notes = [Annotation(uuid.uuid4(), SESSION.id, START + timedelta(seconds=5), hostile, CLINICIAN.id)]
    page = report_pdf.session_report_html(synthetic_content(patient=patient, clinician=clinician, markers=markers,
                                                            annotations=notes))
    lowered = page.lower()
    assert "<script" not in lowered and "<img" not in lowered
    assert re.search(r"<[^>]*onerror", page) is None  # no tag carries the handler: it is only ever escaped text
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&amp;"
    # name, diagnosis, clinician, marker type and text, note; and the marker type drawn on the timeline (SVG text)
    assert page.count(escaped) >= 6
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert "&lt;script&gt;" in svg
