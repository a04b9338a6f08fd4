"""Recovering a trainable network from a committed float32 TFLite export (training/recover.py): the recovered network
computes what the export computes, trains from there, and refuses a file that is not the same network."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import keras  # noqa: E402

from training.export import convert  # noqa: E402
from training.models import build_edge_vgg, build_edge_xs, get_architecture  # noqa: E402
from training.recover import folded_layers, recover_model  # noqa: E402
from training import train as train_module  # noqa: E402
from training.data import Dataset  # noqa: E402
from training.swa import recalibrate_batch_norm  # noqa: E402
from training.train import train  # noqa: E402
from tests.training.networks import SMALL_VGG, faces, small_vgg_with_statistics  # noqa: E402



def trained_like_network(seed: int) -> keras.Model:
    """A small edge_vgg whose batch-norm layers hold non-trivial statistics, as a trained network's do."""
    return small_vgg_with_statistics(seed)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    original = trained_like_network(seed=3)
    path = tmp_path_factory.mktemp("export") / "float32.tflite"
    path.write_bytes(convert(original, "float32"))
    return original, path


def test_the_recovered_network_predicts_what_the_export_predicts(exported):
    original, path = exported
    recovered = recover_model(build_edge_vgg(widths=SMALL_VGG), path, calibration_inputs=faces(512, seed=1))
    inputs = faces(64, seed=2)
    np.testing.assert_allclose(recovered.predict(inputs, verbose=0), original.predict(inputs, verbose=0), atol=1e-5)


def test_in_training_mode_batch_statistics_give_back_the_folded_function(exported):
    """Training normalises by each batch's own statistics: on faces like the calibration faces the recovered network
    must compute nearly the same function in both modes, or a warm restart would begin from a scrambled network."""
    _, path = exported
    recovered = recover_model(build_edge_vgg(widths=SMALL_VGG, dropout=0.0), path, calibration_inputs=faces(1024, seed=1))
    batch = faces(256, seed=5)
    inference = recovered(batch, training=False).numpy()
    training = recovered(batch, training=True).numpy()
    assert np.abs(training - inference).max() < 0.05
    assert (training.argmax(1) == inference.argmax(1)).mean() > 0.9


def test_a_quantized_export_is_refused_with_a_clear_error(exported, tmp_path):
    original, _ = exported
    int8 = tmp_path / "int8.tflite"
    int8.write_bytes(convert(original, "int8", representative=faces(16, seed=1)))
    with pytest.raises(ValueError, match="quantized"):
        folded_layers(int8)


def test_an_export_of_another_architecture_is_refused(exported):
    _, path = exported
    with pytest.raises(ValueError, match="not the same network|kernel"):
        recover_model(build_edge_vgg(widths=(8, 8, 8, 16)), path, calibration_inputs=faces(32, seed=1))
    with pytest.raises(ValueError, match="separable|not the same network"):
        recover_model(build_edge_xs(width=8), path, calibration_inputs=faces(32, seed=1))


def test_a_warm_restart_can_start_from_a_committed_tflite_export(tiny_dataset, tmp_path):
    """`--init-from file.tflite`: zero epochs, so what is saved is exactly what the restart started from."""
    keras.utils.set_random_seed(4)
    source = build_edge_vgg()
    path = tmp_path / "edge_vgg_float32.tflite"
    path.write_bytes(convert(source, "float32"))
    restart_dir = tmp_path / "restart"
    train("edge_vgg", tiny_dataset["folder"], epochs=0, out_dir=restart_dir, resume=False, seed=2, batch_size=8,
          recipe_name="edge_vgg_restart", init_from=path)
    restarted = keras.models.load_model(restart_dir / "last.keras", compile=False)
    inputs = faces(16, seed=9)
    np.testing.assert_allclose(restarted.predict(inputs, verbose=0), source.predict(inputs, verbose=0), atol=1e-5)
    assert json.loads((restart_dir / "config.json").read_text())["init_from"] == str(path)


def test_a_recovered_network_takes_its_statistics_from_faces_across_the_whole_split(exported, monkeypatch):
    """The folder loader returns faces class by class. Statistics fitted to the first faces alone would be one class's,
    and recalibrating batch norm on typical faces afterwards (training.swa) would change what the network computes."""
    _, path = exported
    rng = np.random.default_rng(8)
    dark, bright = rng.integers(20, 90, (128, 48, 48)), rng.integers(150, 230, (128, 48, 48))
    split = Dataset(np.concatenate([dark, bright]).astype(np.uint8), np.repeat([0, 1], 128))
    monkeypatch.setattr(train_module, "CALIBRATION_FACES", 64)
    model = build_edge_vgg(widths=SMALL_VGG, dropout=0.0)
    train_module.load_initial_weights(model, path, split, get_architecture("edge_vgg"))
    inputs = split.images[..., None].astype(np.float32) / 127.5 - 1.0
    before = model.predict(inputs, verbose=0)
    recalibrate_batch_norm(model, inputs)
    after = model.predict(inputs, verbose=0)
    spread_across_faces = np.abs(before - before.mean(axis=0)).max()
    assert np.abs(after - before).max() < 0.25 * spread_across_faces  # fitted to the first faces: 1.07x
