"""The model card's speed line: milliseconds vary several-fold between hosts, so the card times the shipped model beside
the `fer` anchor in the same run and states the ratio, and names the host it was measured on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.model_card import SHIPPED_MODEL, Speed, measure_speed, render

SIDECAR = json.loads(SHIPPED_MODEL.with_suffix(".json").read_text()) if SHIPPED_MODEL.is_file() else None


@pytest.fixture
def sidecar() -> dict:
    if SIDECAR is None:
        pytest.skip("no shipped model")
    return SIDECAR


def test_the_card_states_the_time_per_face_against_the_anchor_timed_in_the_same_run(sidecar):
    card = render(sidecar, 672.0, speed=Speed(0.25, 0.36))
    assert "0.250 ms per single face" in card
    assert "the `fer` anchor took 0.360 ms in the same run, so this model needs **0.69x** the anchor's time" in card
    assert "cores)" in card  # the host is named


def test_without_the_anchor_the_card_says_so_instead_of_a_ratio(sidecar):
    card = render(sidecar, 672.0, speed=Speed(0.25))
    assert "the `fer` anchor was not at hand" in card and "x** the anchor" not in card


def test_speed_is_measured_for_the_model_and_for_the_anchor_where_it_is_present(sidecar, anchors_dir, tmp_path: Path):
    alone = measure_speed(SHIPPED_MODEL, anchors_dir=tmp_path)
    assert alone.ms_per_face > 0 and alone.anchor_ms_per_face is None and alone.ratio_to_anchor is None
    beside = measure_speed(SHIPPED_MODEL, anchors_dir=anchors_dir)
    assert beside.anchor_ms_per_face and beside.anchor_ms_per_face > 0


@pytest.mark.parametrize("distillation, named", [
    ({"teachers": ["a.tflite", "b.tflite"]}, "trained towards `a.tflite` + `b.tflite` (their mean) averaged over 2"),
    ({"teachers": ["a.tflite"]}, "trained towards `a.tflite` averaged over 2"),
    ({"teacher": "old.tflite"}, "trained towards `old.tflite` averaged over 2"),  # records written before ensembles
])
def test_a_distilled_card_names_every_teacher(sidecar, distillation: dict, named: str):
    record = {"targets": "t.npy", "teacher_weight": 0.7, "views": ["identity", "identity mirrored"],
              "val_accuracy": 0.68, **distillation}
    card = render({**sidecar, "training": {**sidecar["training"], "distillation": record}}, 672.0)
    assert named in card and "(that teacher's val accuracy: 0.6800)" in card
