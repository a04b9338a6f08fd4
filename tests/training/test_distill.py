"""Distillation (training/distill.py, `training.train --teacher-targets`): the teacher's targets are its average over
test-time views, unchanged by mirroring the face, checked against the split they describe, and mixed with the labels
as the recipe says."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from fer.labels import LABELS  # noqa: E402
from training import distill  # noqa: E402
from training.data import load_split  # noqa: E402
from training.evaluate import tflite_predictor  # noqa: E402
from training.export import export_run, ship_model  # noqa: E402
from training.models import get_architecture  # noqa: E402
from training.recipes import RECIPES  # noqa: E402
from training.train import make_dataset, train, training_targets  # noqa: E402

REFERENCE_TEACHER = Path(__file__).resolve().parents[2] / "training" / "reference" / "edge_vgg_float32.tflite"


def asymmetric_classifier(images: np.ndarray) -> np.ndarray:
    """Probabilities from fixed random projections of the pixels: a 'model' that tells a face from its mirror."""
    projection = np.random.default_rng(3).normal(0, 0.02, (48 * 48, len(LABELS)))
    logits = (images.reshape(len(images), -1).astype(np.float64) - 128) / 128 @ projection
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


def smooth_faces(count: int) -> np.ndarray:
    """Faces with smooth, asymmetric shading, so zooming and shifting move real structure."""
    rows, cols = np.mgrid[0:48, 0:48]
    rng = np.random.default_rng(11)
    return np.stack([np.clip(128 + 60 * np.sin(cols / rng.uniform(3, 9) + rng.uniform(0, 6)) + 2 * cols - rows, 0, 255)
                     for _ in range(count)]).astype(np.uint8)


def test_the_views_are_the_face_shifted_zoomed_and_each_mirrored():
    assert len(distill.VIEWS) == 14 and "identity" in distill.VIEWS and "identity mirrored" in distill.VIEWS
    faces = smooth_faces(3)
    np.testing.assert_array_equal(distill.VIEWS["identity mirrored"](faces), faces[:, :, ::-1])
    np.testing.assert_array_equal(distill.VIEWS["shift +2x"](faces)[:, :, 2:], faces[:, :, :-2])
    assert not np.array_equal(distill.VIEWS["zoom 1.1"](faces), faces)


def test_a_face_and_its_mirror_get_the_same_targets_even_from_a_teacher_that_tells_them_apart():
    """The training pipeline mirrors faces at random; their target must not depend on it."""
    faces = smooth_faces(4)
    mirrored = np.ascontiguousarray(faces[:, :, ::-1])
    assert np.abs(asymmetric_classifier(faces) - asymmetric_classifier(mirrored)).max() > 0.01
    np.testing.assert_allclose(distill.view_averaged(asymmetric_classifier, faces),
                               distill.view_averaged(asymmetric_classifier, mirrored), atol=1e-3)


def test_targets_are_written_for_the_whole_train_split_with_a_record_of_the_teacher(tiny_dataset, tmp_path):
    out = tmp_path / "teacher" / "targets.npy"
    record = distill.write_teacher_targets([REFERENCE_TEACHER], tiny_dataset["folder"], out)
    train_split = load_split(tiny_dataset["folder"], "train")
    targets = np.load(out)
    assert targets.shape == (len(train_split), len(LABELS))
    np.testing.assert_allclose(targets, distill.view_averaged(tflite_predictor(REFERENCE_TEACHER), train_split.images),
                               atol=1e-6)
    saved = json.loads(out.with_suffix(".json").read_text())
    assert saved["teachers"] == [str(REFERENCE_TEACHER)] and saved["faces"] == len(train_split) == record.faces
    assert saved["views"] == list(distill.VIEWS) and len(saved["members"][0]["sha256"]) == 64
    assert 0 <= saved["val_accuracy"] <= 1 and 0 <= saved["val_accuracy_single_view"] <= 1
    # One teacher: the ensemble is that teacher.
    assert saved["val_accuracy"] == saved["members"][0]["val_accuracy"]


def test_an_ensemble_teacher_is_the_mean_of_its_members_each_averaged_over_the_views(tiny_dataset, tmp_path):
    shipped = Path(__file__).resolve().parents[2] / "fer" / "models" / "fer_edge_int8.tflite"
    out = tmp_path / "ensemble.npy"
    record = distill.write_teacher_targets([REFERENCE_TEACHER, shipped], tiny_dataset["folder"], out,
                                           distill.VIEW_SETS["mirror"])
    images = load_split(tiny_dataset["folder"], "train").images
    members = [distill.view_averaged(tflite_predictor(t), images, distill.VIEW_SETS["mirror"])
               for t in (REFERENCE_TEACHER, shipped)]
    np.testing.assert_allclose(np.load(out), (members[0] + members[1]) / 2, atol=1e-6)
    assert record.views == ["identity", "identity mirrored"]
    assert [m.teacher for m in record.members] == [str(REFERENCE_TEACHER), str(shipped)]
    assert record.members[0].sha256 != record.members[1].sha256


def test_measure_only_prints_the_teachers_val_numbers_and_writes_nothing(tiny_dataset, tmp_path, capsys,
                                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert distill.main(["--teacher", str(REFERENCE_TEACHER), "--views", "mirror", "--data",
                         str(tiny_dataset["folder"]), "--measure-only"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["views"] == ["identity", "identity mirrored"] and len(printed["members"]) == 1
    assert 0 <= printed["ensemble"]["val_accuracy"] <= 1
    assert list(tmp_path.iterdir()) == []


def test_a_missing_teacher_is_named_before_any_work(tiny_dataset, tmp_path, capsys):
    with pytest.raises(SystemExit):
        distill.main(["--teacher", str(REFERENCE_TEACHER), str(tmp_path / "gone.tflite"), "--out",
                      str(tmp_path / "t.npy"), "--data", str(tiny_dataset["folder"])])
    error = capsys.readouterr().err
    assert "teacher not found" in error and "gone.tflite" in error


@pytest.mark.parametrize("bad, message", [
    (np.full((42, 6), 1 / 6), "N x 7"),
    (np.full((10, 7), 1 / 7), "10 rows of teacher targets for 42"),
    (np.full((42, 7), 0.5), "not probability distributions"),
])
def test_targets_that_do_not_describe_this_train_split_are_refused(tiny_dataset, tmp_path, bad, message):
    path = tmp_path / "targets.npy"
    np.save(path, bad)
    with pytest.raises(ValueError, match=message):
        distill.load_teacher_targets(path, load_split(tiny_dataset["folder"], "train"))


def test_the_target_mixes_teacher_and_label_by_the_recipes_weight():
    labels = np.array([0, 3])
    teacher = np.array([[0.1, 0.0, 0.2, 0.5, 0.1, 0.0, 0.1], [0.0, 0.0, 0.0, 0.9, 0.0, 0.0, 0.1]], np.float32)
    mixed = training_targets(labels, teacher, 0.7)
    np.testing.assert_allclose(mixed[0], 0.7 * teacher[0] + 0.3 * np.eye(7)[0], atol=1e-6)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_array_equal(training_targets(labels, teacher, 0.0), np.eye(7, dtype=np.float32)[labels])
    np.testing.assert_array_equal(training_targets(labels, None, 0.7), np.eye(7, dtype=np.float32)[labels])


def test_only_training_batches_carry_the_teachers_targets(tiny_dataset):
    data = load_split(tiny_dataset["folder"], "train")
    teacher = np.random.default_rng(0).dirichlet(np.ones(7), len(data)).astype(np.float32)
    recipe, arch = RECIPES["edge_vgg_distill"], get_architecture("edge_vgg")
    seen = np.concatenate([y for _, y, _ in make_dataset(data, arch, recipe, True, seed=1, teacher=teacher).as_numpy_iterator()])
    expected = training_targets(data.labels, teacher, recipe.teacher_weight)
    # Shuffled: compare the rows as sets.
    np.testing.assert_allclose(np.sort(seen, axis=0), np.sort(expected, axis=0), atol=1e-6)
    val = np.concatenate([y for _, y, _ in make_dataset(data, arch, recipe, False, seed=1, teacher=teacher).as_numpy_iterator()])
    np.testing.assert_array_equal(val, np.eye(7, dtype=np.float32)[data.labels])


def test_a_distillation_recipe_needs_targets_and_a_plain_one_refuses_them(tiny_dataset, tmp_path):
    with pytest.raises(SystemExit, match="pass --teacher-targets"):
        train("edge_xs", tiny_dataset["folder"], epochs=0, out_dir=tmp_path / "a", resume=False, seed=1, batch_size=8,
              recipe_name="edge_vgg_distill")
    targets = tmp_path / "targets.npy"
    np.save(targets, np.full((42, 7), 1 / 7, np.float32))
    with pytest.raises(SystemExit, match="takes no --teacher-targets"):
        train("edge_xs", tiny_dataset["folder"], epochs=0, out_dir=tmp_path / "b", resume=False, seed=1, batch_size=8,
              teacher_targets=targets)


def test_a_distilled_model_says_in_its_sidecar_and_card_what_it_was_distilled_from(tiny_dataset, tmp_path):
    targets = tmp_path / "teacher" / "targets.npy"
    teacher = distill.write_teacher_targets([REFERENCE_TEACHER], tiny_dataset["folder"], targets)
    run_dir = tmp_path / "run"
    summary = train("edge_xs", tiny_dataset["folder"], epochs=1, out_dir=run_dir, resume=False, seed=1, batch_size=8,
                    recipe_name="edge_vgg_distill", teacher_targets=targets)
    assert summary["epochs_run"] == 1
    config = json.loads((run_dir / "config.json").read_text())
    assert config["teacher_targets"] == str(targets) and config["recipe"]["teacher_weight"] == 0.7
    results = export_run(run_dir, tiny_dataset["folder"], ship=False, checkpoint="last.keras")
    shipped = tmp_path / "shipped" / "fer_edge_int8.tflite"
    ship_model(Path(results["int8"]["path"]), shipped)
    record = json.loads(shipped.with_suffix(".json").read_text())["training"]["distillation"]
    assert record["teachers"] == [str(REFERENCE_TEACHER)] and record["teacher_weight"] == 0.7
    assert record["val_accuracy"] == teacher.val_accuracy
    card = shipped.with_suffix(".md").read_text()
    assert f"Distilled: trained towards `{REFERENCE_TEACHER}` averaged over 14 test-time views" in card
    assert "mixed 0.7 : 0.3 with the labels" in card
