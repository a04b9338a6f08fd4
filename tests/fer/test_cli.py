"""`python -m fer IMAGE`: the manual-check command prints each face with its emotion, and fails clearly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

from fer.__main__ import main
from tests.conftest import PROJECT_ROOT
from tests.fer.conftest import tiny_metadata


def test_prints_each_face_of_a_photo(photos_dir: Path, tiny_model_dir: Path, capsys) -> None:
    assert main([str(photos_dir / "obama.jpg"), "--model", str(tiny_model_dir / "tiny_float.tflite"), "--metrics"]) == 0
    out = capsys.readouterr().out
    assert "obama.jpg: 1 face(s)" in out
    assert "face 0: box (" in out and "happy=" in out
    assert " * Time for prediction:" in out and " * Emotion:" in out


def test_unreadable_image_is_reported(tiny_model_dir: Path, tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.zeros((120, 160, 3), np.uint8))
    assert main([str(bad), str(blank), "--model", str(tiny_model_dir / "tiny_float.tflite")]) == 1
    captured = capsys.readouterr()
    assert "bad.jpg: cannot read image" in captured.err
    assert "blank.png: 0 face(s)" in captured.out


def test_missing_model_exits_2_with_the_reason(tmp_path: Path) -> None:
    tiny_metadata().write(tmp_path / "model.json")
    completed = subprocess.run([sys.executable, "-m", "fer", "x.jpg", "--model", str(tmp_path / "model.tflite")],
                               cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2
    assert "model file not found" in completed.stderr
