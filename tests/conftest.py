"""Fixtures shared by every test package: where ../shared is, and skipping cleanly when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("FER_SHARED_DIR", PROJECT_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED_DIR.is_dir():
        pytest.skip(f"shared material not found at {SHARED_DIR}")
    return SHARED_DIR


@pytest.fixture(scope="session")
def fer2013_dir(shared_dir: Path) -> Path:
    path = shared_dir / "datasets" / "fer2013"
    if not (path / "val").is_dir():
        pytest.skip(f"FER2013 not found at {path}")
    return path


@pytest.fixture(scope="session")
def photos_dir(shared_dir: Path) -> Path:
    path = shared_dir / "datasets" / "photos"
    if not path.is_dir():
        pytest.skip(f"photos not found at {path}")
    return path


@pytest.fixture(scope="session")
def anchors_dir(shared_dir: Path) -> Path:
    path = shared_dir / "anchors"
    if not path.is_dir():
        pytest.skip(f"anchor models not found at {path}")
    return path
