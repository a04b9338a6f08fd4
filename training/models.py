"""Network architectures, looked up by name with `build_model(arch)`.

Every model takes float32 images (N, 48, 48, 1) already normalised as its `Normalization` says and ends in a softmax over
`fer.LABELS`. The normalisation travels into the model's metadata sidecar so the runtime never hard-codes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import keras
from keras import layers

from fer.labels import LABELS

NUM_CLASSES = len(LABELS)
INPUT_SHAPE = (48, 48, 1)
# Keras' default momentum (0.99) lets the moving statistics lag behind fast-moving Adam weights: measured here, inference
# accuracy fell to half of training-mode accuracy. 0.9 tracks them (as PyTorch's default does).
BN_MOMENTUM = 0.9


@dataclass(frozen=True)
class Normalization:
    """model_input = pixel (0..255) * scale + offset."""

    scale: float
    offset: float


@dataclass(frozen=True)
class Architecture:
    name: str
    build: Callable[[], keras.Model]
    normalization: Normalization
    description: str


def build_ednn() -> keras.Model:
    """The seed project's EDNN (Jain et al. 2019), layer for layer as its published TFLite graph has it.

    Read from the seed's `tf_model.tflite` (ops, kernel shapes, strides, concatenations). Raw 0..255 input, as the seed fed it.
    Dropout and activations are fused away in TFLite; ReLU after every convolution is the notebook's choice.
    """
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = layers.Conv2D(32, 5, strides=2, activation="relu", name="conv2d")(inputs)  # 22x22
    x = layers.MaxPooling2D(2)(x)  # 11x11
    c1 = layers.Conv2D(64, 3, activation="relu", name="conv2d_1")(x)  # 9x9
    c2 = layers.Conv2D(64, 1, activation="relu", name="conv2d_2")(c1)
    c3 = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2d_3")(c2)
    x = layers.Concatenate()([c2, c3])  # 128
    x = layers.Conv2D(128, 3, padding="same", activation="relu", name="conv2d_4")(x)
    c5 = layers.Conv2D(256, 1, activation="relu", name="conv2d_5")(x)
    x = layers.Concatenate()([c5, c1])  # 320
    x = layers.Conv2D(128, 3, padding="same", activation="relu", name="conv2d_6")(x)
    x = layers.MaxPooling2D(2)(x)  # 4x4
    c7 = layers.Conv2D(128, 3, activation="relu", name="conv2d_7")(x)  # 2x2
    c8 = layers.Conv2D(64, 1, activation="relu", name="conv2d_8")(c7)
    c9 = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv2d_9")(c8)
    x = layers.Concatenate()([c8, c9])  # 128
    x = layers.Conv2D(128, 3, padding="same", activation="relu", name="conv2d_10")(x)
    c11 = layers.Conv2D(256, 1, activation="relu", name="conv2d_11")(x)
    x = layers.Concatenate()([c11, c7])  # 384
    x = layers.Conv2D(256, 3, padding="same", activation="relu", name="conv2d_12")(x)
    x = layers.MaxPooling2D(2)(x)  # 1x1
    x = layers.Conv2D(512, 3, padding="same", activation="relu", name="conv2d_13")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(1024, activation="relu")(x)
    x = layers.Dense(512, activation="relu")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="ednn")


def _separable_block(x, filters: int, convs: int, name: str):
    """Max-pool to half size, then `convs` separable 3x3 convolutions with a 1x1 projected shortcut (Xception style)."""
    x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_proj")(x)
    shortcut = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_proj_bn")(shortcut)
    for i in range(convs):
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_sep{i}")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn{i}")(x)
        if i < convs - 1:
            x = layers.ReLU(name=f"{name}_relu{i}")(x)
    x = layers.Add(name=f"{name}_add")([x, shortcut])
    return layers.ReLU(name=f"{name}_out")(x)


def _conv_bn_relu(x, filters: int, name: str):
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_edge_xs(width: int = 32, dropout: float = 0.3) -> keras.Model:
    """Compact CNN for the edge: about 0.26 M parameters and about 6 M multiply-adds per face.

    The faces it sees are blurred to FER2013-train sharpness (sigma 3 px at 48x48, see recipes.py), which carries no
    detail finer than about 12x12, so the network first averages down to 24x24 at no loss and 4x less compute.
    Full 3x3 convolutions where channels are few, then residual depthwise-separable blocks where channels are many:
    that keeps the int8 model small and fast on a Raspberry Pi CPU.
    """
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = layers.AveragePooling2D(2, name="downsample")(inputs)  # 24x24
    x = _conv_bn_relu(x, width, "stem")
    x = layers.MaxPooling2D(2, name="stem_pool")(x)  # 12x12
    x = _conv_bn_relu(x, width * 2, "conv2")
    x = _separable_block(x, width * 4, 2, "block1")  # 6x6
    x = _separable_block(x, width * 8, 3, "block2")  # 3x3
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="edge_xs")


def build_edge_vgg(widths: tuple[int, ...] = (24, 48, 96, 192), dropout: float = 0.3) -> keras.Model:
    """VGG-style CNN that keeps full 48x48 resolution in its first stage: about 0.66 M parameters, 0.33 ms per face int8.

    Two 3x3 conv-BN-ReLU layers per stage at 48/24/12/6 px, max-pooling between stages, global average pooling. On the
    sharp train split fine detail is real signal (mouth corners, brow furrows), so nothing is averaged away before the
    first convolutions; halving the channels of the 32..256 VGG costs about 4x less compute for a small loss.
    """
    inputs = keras.Input(INPUT_SHAPE, name="image")
    x = inputs
    for stage, filters in enumerate(widths):
        x = _conv_bn_relu(x, filters, f"stage{stage}a")
        x = _conv_bn_relu(x, filters, f"stage{stage}b")
        if stage < len(widths) - 1:
            x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    outputs = layers.Dense(NUM_CLASSES, activation="softmax", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="edge_vgg")


ARCHITECTURES: dict[str, Architecture] = {
    "ednn": Architecture("ednn", build_ednn, Normalization(1.0, 0.0), "Seed EDNN, raw 0..255 input"),
    "edge_xs": Architecture("edge_xs", build_edge_xs, Normalization(1 / 127.5, -1.0), "Residual separable CNN, [-1, 1] input"),
    "edge_m": Architecture("edge_m", lambda: build_edge_xs(width=48, dropout=0.2), Normalization(1 / 127.5, -1.0),
                           "edge_xs at 1.5x width (about 0.55 M parameters)"),
    "edge_vgg": Architecture("edge_vgg", build_edge_vgg, Normalization(1 / 127.5, -1.0),
                             "Full-resolution VGG-style CNN, 24..192 channels (about 0.66 M parameters)"),
    # The widest edge_vgg whose int8 file stays under 1 MB (905 KB). Measured in session 12 (int8, random weights, one
    # thread, same process): 1.08x the invoke time of edge_vgg, where 32..256 costs 1.12x and is 1.18 MB.
    "edge_vgg_wide": Architecture("edge_vgg_wide", lambda: build_edge_vgg(widths=(28, 56, 112, 224)),
                                  Normalization(1 / 127.5, -1.0),
                                  "edge_vgg at 28..224 channels (about 0.90 M parameters)"),
}


def get_architecture(name: str) -> Architecture:
    try:
        return ARCHITECTURES[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; choose from {sorted(ARCHITECTURES)}") from None
