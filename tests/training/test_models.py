"""The architectures training can build: what every one of them must be for `fer` to run it."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from training.models import ARCHITECTURES, INPUT_SHAPE, NUM_CLASSES, get_architecture  # noqa: E402
from training.recipes import RECIPES  # noqa: E402

# int8 stores about one byte per parameter: the 1 MB budget for the shipped file, with room for the graph.
EDGE_PARAMETER_BUDGET = 1_000_000


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_every_architecture_maps_a_48px_grey_face_to_seven_probabilities(name):
    model = get_architecture(name).build()
    assert tuple(model.input_shape[1:]) == INPUT_SHAPE
    faces = np.random.default_rng(0).uniform(-1, 1, (2, *INPUT_SHAPE)).astype(np.float32)
    probabilities = model.predict(faces, verbose=0)
    assert probabilities.shape == (2, NUM_CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(name for name in ARCHITECTURES if name.startswith("edge_")))
def test_every_edge_architecture_fits_the_int8_size_budget(name):
    assert get_architecture(name).build().count_params() <= EDGE_PARAMETER_BUDGET


def test_every_architecture_has_a_default_recipe():
    assert set(ARCHITECTURES) <= set(RECIPES)


def test_the_wide_network_differs_from_edge_vgg_in_width_alone():
    narrow, wide = get_architecture("edge_vgg").build(), get_architecture("edge_vgg_wide").build()
    assert [layer.name for layer in narrow.layers] == [layer.name for layer in wide.layers]
    assert 1.3 < wide.count_params() / narrow.count_params() < 1.45
    assert RECIPES["edge_vgg_wide"] == RECIPES["edge_vgg"]
