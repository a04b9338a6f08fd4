"""Mixup and CutMix (`Recipe.batch_mixing`): each face is mixed with a partner from its batch, and its target and its
class weight are mixed in exactly the proportion of the face that each one contributes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("tensorflow")

import tensorflow as tf  # noqa: E402

from fer.labels import LABELS  # noqa: E402
from training.data import load_split  # noqa: E402
from training.models import get_architecture  # noqa: E402
from training.recipes import RECIPES  # noqa: E402
from training.train import make_dataset, mix_batch  # noqa: E402

CLASSES = len(LABELS)


def one_face_per_class() -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Face k is the constant 10 k and labelled k; its class weight is k + 1. A mixed face then tells by its pixels
    alone which faces went into it and how much of each."""
    images = tf.constant(np.repeat(np.arange(CLASSES, dtype=np.float32) * 10, 48 * 48).reshape(CLASSES, 48, 48, 1))
    targets = tf.eye(CLASSES)
    weights = tf.range(1, CLASSES + 1, dtype=tf.float32)
    return images, targets, weights


def test_mixup_blends_faces_targets_and_weights_in_one_proportion():
    tf.random.set_seed(11)
    images, targets, weights = one_face_per_class()
    mixed, mixed_targets, mixed_weights = (t.numpy() for t in mix_batch(images, targets, weights, "mixup", 1.0, 1.0))
    np.testing.assert_allclose(mixed_targets.sum(axis=1), 1.0, atol=1e-6)
    # Each pixel is the targets' expectation of the face value 10 k, and each weight their expectation of k + 1.
    np.testing.assert_allclose(mixed[:, 0, 0, 0], 10 * mixed_targets @ np.arange(CLASSES), atol=1e-4)
    np.testing.assert_allclose(mixed_weights, mixed_targets @ np.arange(1, CLASSES + 1), atol=1e-5)
    assert np.allclose(mixed, mixed[:, :1, :1]), "mixup blends whole faces, uniformly"
    assert (mixed_targets.max(axis=1) < 1).any(), "some face was mixed with another"


def test_cutmix_pastes_one_rectangle_whose_area_is_the_partners_share():
    tf.random.set_seed(5)
    images, targets, weights = one_face_per_class()
    mixed, mixed_targets, mixed_weights = (t.numpy() for t in mix_batch(images, targets, weights, "cutmix", 1.0, 1.0))
    np.testing.assert_allclose(mixed_targets.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(mixed_weights, mixed_targets @ np.arange(1, CLASSES + 1), atol=1e-5)
    pasted_somewhere = False
    for k in range(CLASSES):
        face = mixed[k, ..., 0]
        values = np.unique(face)
        assert set(values) <= {10.0 * k} | set(10.0 * np.arange(CLASSES)) and len(values) <= 2
        partner_pixels = face != 10 * k
        if partner_pixels.any():
            pasted_somewhere = True
            partner = int(face[partner_pixels][0] // 10)
            assert mixed_targets[k, partner] == pytest.approx(partner_pixels.mean(), abs=1e-6)
            rows, cols = np.nonzero(partner_pixels)
            box = partner_pixels[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
            assert box.all(), "the pasted part is one rectangle"
    assert pasted_somewhere


def test_a_batch_left_unmixed_is_returned_as_it_was():
    images, targets, weights = one_face_per_class()
    for method in ("mixup", "cutmix"):
        out = mix_batch(images, targets, weights, method, 1.0, probability=0.0)
        for before, after in zip((images, targets, weights), out):
            np.testing.assert_array_equal(before.numpy(), after.numpy())


def test_an_unknown_mixing_method_is_named():
    images, targets, weights = one_face_per_class()
    with pytest.raises(ValueError, match="'mixop'"):
        mix_batch(images, targets, weights, "mixop", 1.0, 1.0)


def test_a_cutmix_recipe_trains_on_soft_targets_and_validates_on_plain_labels(tiny_dataset):
    recipe = replace(RECIPES["edge_vgg"], batch_size=16, batch_mixing="cutmix", mixing_probability=1.0)
    arch = get_architecture("edge_vgg")
    train_split = load_split(tiny_dataset["folder"], "train")
    _, train_targets, _ = next(iter(make_dataset(train_split, arch, recipe, training=True, seed=3)))
    _, val_targets, val_weights = next(iter(make_dataset(load_split(tiny_dataset["folder"], "val"), arch, recipe,
                                                        training=False, seed=3)))
    np.testing.assert_allclose(train_targets.numpy().sum(axis=1), 1.0, atol=1e-6)
    assert (train_targets.numpy().max(axis=1) < 1).any()
    assert set(np.unique(val_targets.numpy())) == {0.0, 1.0} and np.all(val_weights.numpy() == 1)
