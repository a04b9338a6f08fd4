"""Polish users notice: friendly upload errors, full patient names, `make run` without the file watcher, no stack
traces in the browser."""

from __future__ import annotations

import tomllib
from pathlib import Path

from app import uploads
from store.errors import StoreUnavailable
from tests.app.conftest import page_text
from tests.app.helpers import consenting_patient

ROOT = Path(__file__).resolve().parents[2]


def test_upload_errors_say_what_is_wrong_without_paths_or_command_lines():
    from pi_agent.video import VideoError

    not_video = uploads.video_error_message(VideoError("cannot read /tmp/tmpab12.mp4: not a video file OpenCV can decode"))
    assert not_video.startswith("This file is not a video") and "/tmp" not in not_video and "OpenCV" not in not_video
    cut = uploads.video_error_message(ValueError("stream truncated after 4.5 s (ffmpeg -i /tmp/x.mp4)"))
    assert cut.startswith("The video is cut short after 4.5 s") and "ffmpeg" not in cut
    assert "nothing was saved" in uploads.video_error_message(StoreUnavailable("connection refused to 10.0.0.3:5432"))
    other = uploads.video_error_message(RuntimeError("odd failure reading /srv/app/var/upload.bin"))
    assert "/srv" not in other and other.startswith("The video could not be analysed")


def test_make_run_starts_streamlit_without_the_file_watcher_and_browsers_see_no_stack_traces():
    run = next(line for line in (ROOT / "Makefile").read_text().splitlines() if "streamlit run" in line)
    assert "--server.fileWatcherType none" in run
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "none"


def test_the_patients_list_shows_whole_names(signed_in_app, clinician_store):
    from datetime import date

    long_name = "María de los Ángeles Fernández-Villaverde y Castro"
    consenting_patient(clinician_store, long_name, date_of_birth=date(1980, 5, 17), diagnosis="dysthymia")
    at = signed_in_app.run()
    from app import ui

    # the name alone (as Markdown that renders literally, app.ui.literal): nothing appended to cut off
    assert ui.literal(long_name) in [link.label for link in at.get("page_link")]
    assert "born 1980-05-17 · dysthymia" in page_text(at)
