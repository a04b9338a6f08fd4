"""A trainable Keras model recovered from a float32 TFLite export, so a warm restart survives the loss of `runs/`.

Checkpoints live under `runs/`, out of git, and a new machine starts without them; the float32 export of the shipped
network is committed (training/reference/). The converter folded each BatchNormalization into its convolution's kernel
and bias, so the recovered network carries the folded weights and BatchNormalization layers re-fitted to reproduce them:
moving statistics set to each convolution's output mean and variance on calibration faces, and gamma/beta chosen so
that normalising by those statistics gives back the folded function. Inference is then exact, and the first training
batches (which normalise by their own statistics) see almost the same function instead of a freshly whitened one.

    python -m training.train --arch edge_vgg --recipe edge_vgg_restart \\
        --init-from training/reference/edge_vgg_float32.tflite --epochs 20 --out runs/edge_vgg_r1
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

FOLDED_OPS = ("CONV_2D", "FULLY_CONNECTED")


@dataclass(frozen=True)
class FoldedLayer:
    op: str  # CONV_2D or FULLY_CONNECTED
    kernel: np.ndarray  # in Keras layout: HWIO for a convolution, (in, out) for a dense layer
    bias: np.ndarray


def folded_layers(tflite_path: Path) -> list[FoldedLayer]:
    """The weighted layers of a float32 TFLite model in execution order."""
    # Without the default XNNPACK delegate the graph keeps its own ops (the delegate replaces them by one DELEGATE op).
    interpreter = Interpreter(model_path=str(tflite_path),
                              experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    layers: list[FoldedLayer] = []
    for op in interpreter._get_ops_details():  # the only API that lists ops with their tensors, in execution order
        if op["op_name"] not in FOLDED_OPS:
            continue
        _, weights_index, bias_index = op["inputs"][:3]
        weights = interpreter.get_tensor(weights_index)
        if weights.dtype != np.float32:
            raise ValueError(f"{tflite_path} is quantized ({tensors[weights_index]['dtype']}): recover from a float32 export")
        bias = interpreter.get_tensor(bias_index) if bias_index >= 0 else np.zeros(weights.shape[0], np.float32)
        kernel = weights.transpose(1, 2, 3, 0) if op["op_name"] == "CONV_2D" else weights.T  # OHWI -> HWIO; (out, in) -> (in, out)
        layers.append(FoldedLayer(op["op_name"], kernel, bias))
    return layers


def _conv_and_bn_pairs(model: keras.Model) -> list[tuple[keras.layers.Layer, keras.layers.Layer | None]]:
    """Each convolution or dense layer in graph order, with the BatchNormalization that follows it (or None)."""
    weighted = (keras.layers.Conv2D, keras.layers.Dense)
    pairs: list[tuple[keras.layers.Layer, keras.layers.Layer | None]] = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.SeparableConv2D | keras.layers.DepthwiseConv2D):
            raise ValueError(f"{layer.name}: separable convolutions are not supported by the recovery")
        if isinstance(layer, keras.layers.BatchNormalization):
            if not pairs or pairs[-1][1] is not None:
                raise ValueError(f"{layer.name} does not follow a convolution: this architecture cannot be recovered")
            pairs[-1] = (pairs[-1][0], layer)
        elif isinstance(layer, weighted):
            pairs.append((layer, None))
    return pairs


def recover_model(model: keras.Model, tflite_path: Path, calibration_inputs: np.ndarray) -> keras.Model:
    """Load the folded weights of `tflite_path` into `model` (a freshly built network of the same architecture).

    `calibration_inputs` are normalised model inputs (N, H, W, C) of faces like the training data; a few thousand suffice.
    """
    folded = folded_layers(tflite_path)
    pairs = _conv_and_bn_pairs(model)
    if len(folded) != len(pairs):
        raise ValueError(f"{tflite_path} has {len(folded)} weighted layers, {model.name} has {len(pairs)}: not the same network")
    for (layer, bn), source in zip(pairs, folded):
        expected = tuple(layer.kernel.shape)
        if source.kernel.shape != expected:
            raise ValueError(f"{layer.name}: kernel {source.kernel.shape} in {tflite_path}, {expected} in the model")
        if bn is None:
            layer.set_weights([source.kernel, source.bias] if layer.use_bias else [source.kernel])
            continue
        if layer.use_bias:
            raise ValueError(f"{layer.name} has a bias before its BatchNormalization: unexpected layout")
        layer.set_weights([source.kernel])
        # First as an identity plus the folded bias (moving variance 1 - epsilon), so the network computes the folded
        # function exactly; the statistics are measured once every layer holds its weights.
        channels = source.bias.shape[0]
        bn.set_weights([np.ones(channels, np.float32), source.bias.astype(np.float32),
                        np.zeros(channels, np.float32), np.full(channels, 1.0 - bn.epsilon, np.float32)])

    with_bn = [(layer, bn) for layer, bn in pairs if bn is not None]
    probe = keras.Model(model.inputs, [layer.output for layer, _ in with_bn])
    outputs = probe.predict(calibration_inputs, batch_size=256, verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    for (layer, bn), conv_output in zip(with_bn, outputs):
        axes = tuple(range(conv_output.ndim - 1))
        mean = conv_output.mean(axis=axes).astype(np.float32)
        variance = conv_output.var(axis=axes).astype(np.float32)
        bias = bn.get_weights()[1]
        # gamma * (z - mean) / sqrt(variance + eps) + beta == z + bias  when  gamma = sqrt(variance + eps), beta = mean + bias
        bn.set_weights([np.sqrt(variance + bn.epsilon), mean + bias, mean, variance])
    return model
