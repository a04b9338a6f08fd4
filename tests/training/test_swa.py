"""Weight averaging and batch-norm recalibration (training/swa.py): recalibrated statistics are those of the clean faces,
an average of networks is their midpoint, and an averaged checkpoint is exported with a record of what it averaged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402

from training import swa  # noqa: E402
from training.export import export_run, ship_model  # noqa: E402
from training.models import build_edge_vgg, build_edge_xs  # noqa: E402
from training.train import train  # noqa: E402
from tests.training.networks import SMALL_VGG, faces, small_vgg_with_statistics  # noqa: E402



def network_with_wrong_statistics(seed: int) -> keras.Model:
    """A small edge_vgg whose batch-norm moving statistics belong to other inputs, as after training on augmented faces."""
    return small_vgg_with_statistics(seed, mean_sd=1.0, variance=(0.05, 5.0), dropout=0.0)


def test_after_recalibration_inference_normalises_by_the_clean_faces_own_statistics():
    """In training mode a network normalises by the batch's statistics; fed the whole calibration set as one batch, that
    is exactly what the recalibrated network must compute in inference mode. More faces than one streaming batch."""
    model = network_with_wrong_statistics(seed=4)
    calibration = faces(swa.BATCH + 188, seed=1)
    before = model(calibration, training=False).numpy()
    swa.recalibrate_batch_norm(model, calibration)
    after = model(calibration, training=False).numpy()
    batch_statistics = model(calibration, training=True).numpy()
    np.testing.assert_allclose(after, batch_statistics, atol=2e-3)
    assert np.abs(before - batch_statistics).max() > 0.05  # the wrong statistics did matter


def test_recalibration_changes_only_the_moving_statistics():
    model = network_with_wrong_statistics(seed=5)
    learnt = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers if layer.get_weights()}
    swa.recalibrate_batch_norm(model, faces(64, seed=2))
    for layer in model.layers:
        if not layer.get_weights():
            continue
        now = layer.get_weights()
        kept = now[:2] if isinstance(layer, keras.layers.BatchNormalization) else now
        for old, new in zip(learnt[layer.name], kept):
            np.testing.assert_array_equal(old, new)


def test_the_average_of_two_networks_is_their_midpoint_and_of_one_network_itself():
    first, second = network_with_wrong_statistics(seed=1), network_with_wrong_statistics(seed=2)
    averaged = swa.average_weights([first, second])
    for a, b, mean in zip(first.get_weights(), second.get_weights(), averaged):
        np.testing.assert_allclose(mean, (a + b) / 2, rtol=1e-6)
    for original, same in zip(first.get_weights(), swa.average_weights([first])):
        np.testing.assert_array_equal(original, same)


def test_networks_of_different_architectures_are_not_averaged():
    with pytest.raises(ValueError, match="one architecture"):
        swa.average_weights([build_edge_vgg(widths=SMALL_VGG), build_edge_xs(width=8)])
    with pytest.raises(ValueError, match="nothing"):
        swa.average_weights([])


def test_a_run_keeps_every_epoch_and_its_snapshots_average_into_an_exportable_checkpoint(tiny_dataset, tmp_path):
    run_dir = tmp_path / "edge_xs"
    train("edge_xs", tiny_dataset["folder"], epochs=2, out_dir=run_dir, resume=False, seed=1, batch_size=8)
    snapshots = sorted(p.name for p in (run_dir / "snapshots").iterdir())
    assert snapshots == ["epoch_001.keras", "epoch_002.keras"]

    sources = [f"snapshots/{name}" for name in snapshots]
    result = swa.averaged_checkpoint(run_dir, sources, tiny_dataset["folder"], faces=30)
    assert result.sources == sources and result.calibration_faces == 30
    assert 0.0 <= result.val_accuracy <= 1.0
    assert json.loads((run_dir / "swa.json").read_text())["sources"] == sources

    results = export_run(run_dir, tiny_dataset["folder"], ship=False, checkpoint="swa.keras")
    shipped = tmp_path / "shipped" / "fer_edge_int8.tflite"
    ship_model(Path(results["int8"]["path"]), shipped)
    meta = json.loads(shipped.with_suffix(".json").read_text())
    assert meta["training"]["checkpoint"] == "swa.keras"
    assert meta["training"]["weight_averaging"]["sources"] == sources
    card = shipped.with_suffix(".md").read_text()
    assert "- Weights: the average of 2 checkpoint(s) of the run (snapshots/epoch_001.keras, snapshots/epoch_002.keras)" in card


def test_a_pattern_stands_for_every_matching_checkpoint_of_the_run_in_epoch_order(tmp_path):
    (tmp_path / "snapshots").mkdir()
    for epoch in (10, 2, 1):
        (tmp_path / "snapshots" / f"epoch_{epoch:03d}.keras").write_bytes(b"")
    assert swa.expand_checkpoints(tmp_path, ["best.keras", "snapshots/*.keras"]) == [
        "best.keras", "snapshots/epoch_001.keras", "snapshots/epoch_002.keras", "snapshots/epoch_010.keras"]


def test_the_command_refuses_checkpoints_that_are_not_in_the_run(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    assert swa.main(["--run", str(tmp_path), "--checkpoints", "best.keras"]) == 2
    assert "best.keras" in capsys.readouterr().err
    assert swa.main(["--run", str(tmp_path), "--checkpoints", "snapshots/*.keras"]) == 2  # a pattern matching nothing


def test_each_epoch_is_judged_with_recalibrated_batch_norm_and_the_best_copy_is_kept(tmp_path):
    """The callback's number is the val accuracy of the recalibrated network, it lands in the epoch's logs, and the
    checkpoint is only replaced by a better epoch (a resumed run starts from its best so far)."""
    model = network_with_wrong_statistics(seed=6)
    calibration, val = faces(96, seed=3), faces(40, seed=4)
    reference = keras.models.clone_model(model)
    reference.set_weights(model.get_weights())
    swa.recalibrate_batch_norm(reference, calibration)
    labels = reference.predict(val, verbose=0).argmax(axis=1)  # the recalibrated network is right on every face
    path = tmp_path / "best_recalibrated.keras"
    callback = swa.RecalibratedValidation(lambda: build_edge_vgg(widths=SMALL_VGG, dropout=0.0), calibration, val,
                                          labels, path, best_so_far=None)
    callback.set_model(model)
    logs: dict = {}
    callback.on_epoch_end(0, logs)
    assert logs["val_accuracy_recalibrated"] == 1.0
    assert np.mean(model.predict(val, verbose=0).argmax(axis=1) == labels) < 1.0  # the statistics as trained are not
    assert json.loads(path.with_suffix(".json").read_text()) == {
        "sources": ["snapshots/epoch_001.keras"], "calibration_faces": 96, "val_accuracy": 1.0,
        "val_macro_recall": pytest.approx(1.0)}
    saved = keras.models.load_model(path, compile=False)
    np.testing.assert_allclose(saved.predict(val, verbose=0), reference.predict(val, verbose=0), atol=1e-5)

    path.unlink()
    worse = swa.RecalibratedValidation(lambda: build_edge_vgg(widths=SMALL_VGG, dropout=0.0), calibration, val,
                                       (labels + 1) % 7, path, best_so_far=0.5)
    worse.set_model(model)
    worse.on_epoch_end(1, logs)
    assert logs["val_accuracy_recalibrated"] == 0.0 and not path.exists()
