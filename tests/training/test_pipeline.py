"""End to end on the tiny dataset: one training epoch, TFLite export in three quantizations, and the exported model
loading and predicting through `fer.EmotionClassifier` exactly as deployed."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from fer.labels import LABELS  # noqa: E402
from training.export import QUANTIZATIONS, export_run, ship_model  # noqa: E402
from training.train import augmenter, class_weights, learning_rate_at, train  # noqa: E402
from training.recipes import RECIPES  # noqa: E402


@pytest.fixture(scope="module")
def one_epoch_run(tiny_dataset, tmp_path_factory):
    """One epoch of training, done once per module (the slow part). Tests never touch this directory: see trained_run."""
    run_dir = tmp_path_factory.mktemp("run") / "edge_xs"
    summary = train("edge_xs", tiny_dataset["folder"], epochs=1, out_dir=run_dir, resume=False, seed=1, batch_size=8)
    return run_dir, summary


@pytest.fixture
def trained_run(one_epoch_run, tmp_path):
    """A private copy of the one-epoch run: a test that resumes, exports or fails into it cannot change what another
    test sees, whatever order they run in."""
    run_dir, summary = one_epoch_run
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    return copy, dict(summary)


def test_one_epoch_writes_checkpoint_history_and_config(trained_run):
    run_dir, summary = trained_run
    assert summary["epochs_run"] == 1
    assert (run_dir / "best.keras").exists() and (run_dir / "last.keras").exists()
    history = (run_dir / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch") and len(history) == 2
    # Each epoch is also judged as deployment will see it: batch norm recalibrated on clean faces, best copy kept.
    assert "val_accuracy_recalibrated" in history[0].split(",")
    assert (run_dir / "best_recalibrated.keras").exists()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["arch"] == "edge_xs" and config["normalization"] == {
        "scale": 1 / 127.5, "offset": -1.0, "equalize_histogram": True}


def test_a_second_run_into_the_same_directory_needs_resume(trained_run, tiny_dataset):
    run_dir, _ = trained_run
    with pytest.raises(SystemExit, match="--resume"):
        train("edge_xs", tiny_dataset["folder"], epochs=1, out_dir=run_dir, resume=False, seed=1, batch_size=8)


def test_resume_continues_from_the_last_finished_epoch(trained_run, tiny_dataset):
    run_dir, _ = trained_run
    summary = train("edge_xs", tiny_dataset["folder"], epochs=2, out_dir=run_dir, resume=True, seed=1, batch_size=8)
    assert summary["epochs_run"] == 1  # only epoch 2 ran; epoch 1 was restored
    assert len((run_dir / "history.csv").read_text().splitlines()) == 3


def test_a_warm_restart_starts_from_the_given_weights_with_its_own_recipe(trained_run, tiny_dataset, tmp_path):
    import keras

    run_dir, _ = trained_run
    restart_dir = tmp_path / "restart"
    # Zero epochs: what is saved is exactly what the restart started from.
    train("edge_xs", tiny_dataset["folder"], epochs=0, out_dir=restart_dir, resume=False, seed=2, batch_size=8,
          recipe_name="edge_m", init_from=run_dir / "last.keras")
    started_from = keras.models.load_model(restart_dir / "last.keras", compile=False).get_weights()
    finished = keras.models.load_model(run_dir / "last.keras", compile=False).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(started_from, finished, strict=True))
    # The starting model stays in the run, so a weight soup of start and end needs nothing outside it.
    kept_start = keras.models.load_model(restart_dir / "init.keras", compile=False).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(kept_start, finished, strict=True))
    config = json.loads((restart_dir / "config.json").read_text())
    assert config["recipe_name"] == "edge_m" and config["init_from"] == str(run_dir / "last.keras")
    assert config["recipe"] == {**RECIPES["edge_m"].as_dict(), "batch_size": 8}


def test_the_card_of_a_warm_restart_says_what_it_started_from(trained_run, tiny_dataset, tmp_path):
    run_dir, _ = trained_run
    restart_dir = tmp_path / "restart"
    train("edge_xs", tiny_dataset["folder"], epochs=0, out_dir=restart_dir, resume=False, seed=2, batch_size=8,
          recipe_name="edge_m", init_from=run_dir / "last.keras")
    results = export_run(restart_dir, tiny_dataset["folder"], ship=False, checkpoint="last.keras")
    shipped = tmp_path / "shipped" / "fer_edge_int8.tflite"
    ship_model(__import__("pathlib").Path(results["int8"]["path"]), shipped)
    assert json.loads(shipped.with_suffix(".json").read_text())["training"]["init_from"] == str(run_dir / "last.keras")
    assert f"Warm restart: started from `{run_dir / 'last.keras'}`" in shipped.with_suffix(".md").read_text()


def test_export_produces_all_quantizations_loadable_by_fer(trained_run, tiny_dataset, tmp_path):
    fer = pytest.importorskip("fer")
    run_dir, _ = trained_run
    results = export_run(run_dir, tiny_dataset["folder"], ship=False)
    assert set(results) == set(QUANTIZATIONS)
    assert results["int8"]["size_kb"] < results["float32"]["size_kb"] / 2
    shipped = tmp_path / "fer_edge_int8.tflite"
    ship_model(__import__("pathlib").Path(results["int8"]["path"]), shipped)
    meta = json.loads(shipped.with_suffix(".json").read_text())
    assert meta["labels"] == list(LABELS) and meta["input_size"] == [48, 48] and "accuracy" in meta["metrics"]
    classifier = fer.EmotionClassifier.load(shipped)
    faces = np.random.default_rng(0).integers(0, 256, size=(5, 64, 80), dtype=np.uint8)  # any size: it resizes
    probabilities = classifier.predict(faces)
    assert probabilities.shape == (5, 7) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)


def test_flip_averaging_is_symmetric_and_keeps_probabilities(trained_run):
    import keras

    from training.export import with_flip_averaging

    run_dir, _ = trained_run
    averaged = with_flip_averaging(keras.models.load_model(run_dir / "best.keras", compile=False))
    faces = np.random.default_rng(1).random((3, 48, 48, 1)).astype(np.float32)
    original, mirrored = averaged.predict(faces, verbose=0), averaged.predict(faces[:, :, ::-1], verbose=0)
    np.testing.assert_allclose(original, mirrored, atol=1e-5)
    np.testing.assert_allclose(original.sum(axis=1), 1.0, atol=1e-5)


def test_without_geometric_jitter_the_augmenter_only_mirrors():
    faces = np.random.default_rng(3).uniform(0, 255, (16, 48, 48, 1)).astype(np.float32)
    out = augmenter(seed=5, photometric=False, geometric_jitter=0.0)(faces, training=True).numpy()
    mirrored = [np.allclose(o, f[:, ::-1]) for o, f in zip(out, faces)]
    kept = [np.allclose(o, f) for o, f in zip(out, faces)]
    assert all(m or k for m, k in zip(mirrored, kept)) and any(mirrored) and any(kept)
    jittered = augmenter(seed=5, photometric=False, geometric_jitter=1.0)(faces, training=True).numpy()
    assert not any(np.allclose(o, f) or np.allclose(o, f[:, ::-1]) for o, f in zip(jittered, faces))


def test_class_weights_favour_rare_classes_and_average_one():
    labels = np.array([0] * 90 + [1] * 10)
    weights = class_weights(labels, power=0.5)
    assert weights[1] == pytest.approx(weights[0] * 3)
    assert weights[labels].mean() == pytest.approx(1.0)


def test_learning_rate_warms_up_then_decays_to_zero():
    recipe = RECIPES["edge_xs"]
    rates = [learning_rate_at(epoch, recipe, total_epochs=20) for epoch in range(20)]
    assert rates[0] < rates[recipe.warmup_epochs - 1] == pytest.approx(recipe.learning_rate)
    assert all(a >= b for a, b in zip(rates[recipe.warmup_epochs:], rates[recipe.warmup_epochs + 1:]))
    assert rates[-1] < recipe.learning_rate * 0.05
