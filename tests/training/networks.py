"""Small networks for the training tests: an edge_vgg whose batch norms hold chosen, non-trivial statistics."""

from __future__ import annotations

import keras
import numpy as np

from training.models import build_edge_vgg

SMALL_VGG = (4, 8, 8, 16)


def small_vgg_with_statistics(seed: int, mean_sd: float = 0.2, variance: tuple[float, float] = (0.2, 3.0),
                              dropout: float = 0.3) -> keras.Model:
    """Batch norms with random gamma/beta and moving statistics (mean ~ N(0, mean_sd), variance ~ U(variance)), as a
    trained network's hold, or (with a wide spread) as one trained on other inputs holds."""
    keras.utils.set_random_seed(seed)
    model = build_edge_vgg(widths=SMALL_VGG, dropout=dropout)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            channels = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2.0, channels), rng.normal(0, 0.3, channels),
                               rng.normal(0, mean_sd, channels), rng.uniform(*variance, channels)])
    return model


def faces(count: int, seed: int) -> np.ndarray:
    """Normalised model inputs (count, 48, 48, 1) in [-1, 1]."""
    return np.random.default_rng(seed).uniform(-1, 1, (count, 48, 48, 1)).astype(np.float32)
