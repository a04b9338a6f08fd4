"""Tiny TFLite models built with TensorFlow at test time: exact, fast fixtures for the classifier's contract.

Each maps a grayscale face to 7 softmax scores from its mean brightness in a 3x3 grid (fixed, seeded weights), so
different faces give different, reproducible probabilities; variants cover int8 quantisation and bad shapes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def build_tiny_model(path: Path, *, input_size: tuple[int, int] = (48, 48), classes: int = 7,
                     int8: bool = False, uint8: bool = False, softmax: bool = True,
                     channels: int = 1, batch: int = 1, int16_output: bool = False) -> Path:
    import tensorflow as tf  # dev dependency only: the product never imports TensorFlow

    height, width = input_size
    rng = np.random.default_rng(7)
    weights = tf.constant(rng.normal(0, 0.8, (9 * channels, classes)).astype(np.float32))
    bias = tf.constant(rng.normal(0, 0.5, classes).astype(np.float32))

    @tf.function(input_signature=[tf.TensorSpec([batch, height, width, channels], tf.float32)])
    def model(x: tf.Tensor) -> tf.Tensor:
        window = (height // 3, width // 3)
        pooled = tf.nn.avg_pool2d(x, ksize=window, strides=window, padding="VALID")
        logits = tf.matmul(tf.reshape(pooled, (-1, 9 * channels)), weights) + bias
        return tf.nn.softmax(logits) if softmax else logits

    converter = tf.lite.TFLiteConverter.from_concrete_functions([model.get_concrete_function()], model)
    if int8 or uint8 or int16_output:
        def representative():
            # Calibrate on images whose 3x3 block means span the whole -1..1 range, as real faces do.
            for _ in range(64):
                blocks = rng.uniform(-1, 1, (3, 3, channels)).astype(np.float32)
                image = np.repeat(np.repeat(blocks, -(-height // 3), axis=0), -(-width // 3), axis=1)
                yield [image[None, :height, :width]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
    if int16_output:  # 16-bit activations (float input): a valid TFLite model the classifier does not support
        converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        converter.inference_output_type = tf.int16
    elif int8 or uint8:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8 if uint8 else tf.int8
        converter.inference_output_type = tf.uint8 if uint8 else tf.int8
    path.write_bytes(converter.convert())
    return path
