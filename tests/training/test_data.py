"""FER2013 loaders: both layouts give the same arrays; malformed input is named, never silently dropped."""

from __future__ import annotations

import numpy as np
import pytest

from fer.labels import LABELS
import cv2

from training.data import DataError, load_csv, load_folder, load_split, model_inputs
from tests.training.conftest import IMAGES_PER_CLASS


def test_folder_and_csv_layouts_load_identical_arrays(tiny_dataset):
    from_csv = load_csv(tiny_dataset["csv"])
    for split in ("train", "val"):
        from_folder = load_folder(tiny_dataset["folder"] / split)
        order_folder = np.lexsort((from_folder.images.reshape(len(from_folder), -1).sum(1), from_folder.labels))
        order_csv = np.lexsort((from_csv[split].images.reshape(len(from_csv[split]), -1).sum(1), from_csv[split].labels))
        np.testing.assert_array_equal(from_folder.labels[order_folder], from_csv[split].labels[order_csv])
        np.testing.assert_array_equal(from_folder.images[order_folder], from_csv[split].images[order_csv])
        assert from_folder.images.dtype == np.uint8 and from_folder.images.shape[1:] == (48, 48)


def test_load_split_accepts_either_source(tiny_dataset):
    assert len(load_split(tiny_dataset["folder"], "val")) == len(LABELS) * IMAGES_PER_CLASS["val"]
    assert len(load_split(tiny_dataset["csv"], "val")) == len(LABELS) * IMAGES_PER_CLASS["val"]
    assert load_split(tiny_dataset["csv"], "train").class_counts() == {label: IMAGES_PER_CLASS["train"] for label in LABELS}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("9,1 2 3,Training", "emotion 9 outside"),
        ("x,1 2 3,Training", "not an integer"),
        ("3,1 2 3,Training", "expected 2304 pixel values"),
        ("3," + " ".join(["300"] * 2304) + ",Training", "in 0..255"),
        ("3," + " ".join(["1"] * 2304) + ",Somewhere", "unknown Usage"),
    ],
)
def test_malformed_csv_row_is_reported_with_its_line_number(tmp_path, row, message):
    path = tmp_path / "bad.csv"
    good = "0," + " ".join(["5"] * 2304) + ",Training"
    path.write_text(f"emotion,pixels,Usage\n{good}\n{row}\n")
    with pytest.raises(DataError, match=message) as error:
        load_csv(path)
    assert "bad.csv:3" in str(error.value)


def test_unreadable_image_file_is_named(tmp_path):
    (tmp_path / "val" / "happy").mkdir(parents=True)
    (tmp_path / "val" / "happy" / "PublicTest_1.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError, match="PublicTest_1.jpg: unreadable image"):
        load_folder(tmp_path / "val")


def test_unknown_class_folder_is_rejected(tmp_path):
    (tmp_path / "val" / "contempt").mkdir(parents=True)
    with pytest.raises(DataError, match="unknown class folders \\['contempt'\\]"):
        load_folder(tmp_path / "val")


def test_missing_source_is_named(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_split(tmp_path / "nowhere", "train")


def test_model_inputs_follow_the_runs_normalisation_record():
    faces = np.random.default_rng(0).integers(40, 120, size=(3, 48, 48), dtype=np.uint8)  # low contrast
    plain = model_inputs(faces, {"scale": 1 / 127.5, "offset": -1.0})
    assert plain.shape == (3, 48, 48, 1) and plain.dtype == np.float32
    np.testing.assert_allclose(plain[..., 0], faces / 127.5 - 1.0, atol=1e-6)
    equalised = model_inputs(faces, {"scale": 1.0, "offset": 0.0, "equalize_histogram": True})
    np.testing.assert_array_equal(equalised[0, ..., 0], cv2.equalizeHist(faces[0]))
