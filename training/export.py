"""Export a trained Keras model to TFLite and ship the best int8 one:
`python -m training.export --run runs/edge_xs --ship`.

Writes float32, dynamic-range and full-integer int8 (int8 input and output; representative data from train) models with
the metadata sidecar `fer` needs, measures each on `val` through `fer.EmotionClassifier` (exactly as deployed), and with
`--ship` copies the int8 model and its sidecar to fer/models/ (the model `fer.EmotionClassifier.load()` picks up).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from fer.labels import LABELS  # noqa: E402
from training.data import load_split, model_inputs  # noqa: E402
from training.evaluate import evaluate, tflite_predictor  # noqa: E402

DEFAULT_DATA = Path(os.environ.get("FER_DATA_DIR", "../shared/datasets/fer2013"))
SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "fer" / "models" / "fer_edge_int8.tflite"
QUANTIZATIONS = ("float32", "dynamic", "int8")
REPRESENTATIVE_SAMPLES = 1000


def convert(model: keras.Model, quantization: str, representative: np.ndarray | None = None) -> bytes:
    """TFLite flatbuffer for one quantization. `representative` holds normalised float inputs (N, 48, 48, 1)."""
    # from_keras_model freezes the variables; a hand-made concrete function keeps them as resources, which the int8
    # calibrator cannot read (READ_VARIABLE fails). The batch dimension stays dynamic.
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if quantization in ("dynamic", "int8"):
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "int8":
        if representative is None:
            raise ValueError("int8 export needs representative data")

        def samples():
            for x in representative:
                yield [x[None].astype(np.float32)]

        converter.representative_dataset = samples
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def with_flip_averaging(model: keras.Model) -> keras.Model:
    """The model averaged over the face and its mirror image (test-time augmentation inside the graph: +0.6 points
    on val for edge_xs at twice the compute, with nothing for the runtime to know)."""
    inputs = keras.Input(model.input_shape[1:], name="image")
    mirrored = keras.layers.Lambda(lambda x: keras.ops.flip(x, axis=2), name="mirror")(inputs)
    outputs = keras.layers.Average(name="probabilities")([model(inputs), model(mirrored)])
    return keras.Model(inputs, outputs, name=f"{model.name}_flip")


def sidecar(name: str, arch: str, input_size: tuple[int, int], normalization: dict, quantization: str,
            metrics: dict | None = None, training: dict | None = None) -> dict:
    return {
        "name": name,
        "arch": arch,
        "input_size": list(input_size),
        "normalization": normalization,  # model input = pixel (0..255) * scale + offset, before any int8 quantization
        "labels": list(LABELS),
        "quantization": quantization,
        "metrics": metrics or {},
        "training": training or {},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def export_run(run_dir: Path, data_dir: Path, ship: bool, checkpoint: str = "best.keras",
               tta_flip: bool = False) -> dict[str, dict]:
    config = json.loads((run_dir / "config.json").read_text())
    normalization = config["normalization"]
    model = keras.models.load_model(run_dir / checkpoint, compile=False)
    if tta_flip:
        model = with_flip_averaging(model)
    input_size = tuple(int(v) for v in model.input_shape[1:3])

    train = load_split(data_dir, "train")
    val = load_split(data_dir, "val")
    rng = np.random.default_rng(0)
    picks = rng.choice(len(train), size=min(REPRESENTATIVE_SAMPLES, len(train)), replace=False)
    representative = model_inputs(train.images[picks], normalization)

    out_dir = run_dir / "export"
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for quantization in QUANTIZATIONS:
        started = time.perf_counter()
        flatbuffer = convert(model, quantization, representative)
        name = f"{config['arch']}_{quantization}"
        path = out_dir / f"{name}.tflite"
        path.write_bytes(flatbuffer)
        meta = sidecar(name, config["arch"], input_size, normalization, quantization,
                       training={**_training_summary(run_dir, config, checkpoint), "test_time_flip": tta_flip})
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2))
        report = evaluate(tflite_predictor(path), val)
        meta["metrics"] = {"dataset": "FER2013 PublicTest (val)", "images": len(val), **report.as_dict(),
                           "confusion": report.confusion.tolist()}
        path.with_suffix(".json").write_text(json.dumps(meta, indent=2))
        results[quantization] = {"path": str(path), "size_kb": round(len(flatbuffer) / 1024, 1),
                                 "accuracy": report.accuracy, "macro_recall": report.macro_recall,
                                 "convert_s": round(time.perf_counter() - started, 1)}
        print(f"{quantization:>8}: {len(flatbuffer) / 1024:8.1f} KB  acc {report.accuracy:.4f}  "
              f"macro recall {report.macro_recall:.4f}", flush=True)
    drop = results["float32"]["accuracy"] - results["int8"]["accuracy"]
    print(f"int8 loses {drop * 100:.2f} accuracy points against float32")
    # The int8 sidecar records what quantization cost, so the model card and the bench can show it.
    int8_sidecar = Path(results["int8"]["path"]).with_suffix(".json")
    int8_meta = json.loads(int8_sidecar.read_text())
    int8_meta["float32_metrics"] = {key: results["float32"][key] for key in ("accuracy", "macro_recall", "size_kb")}
    int8_sidecar.write_text(json.dumps(int8_meta, indent=2))
    (out_dir / "export_summary.json").write_text(json.dumps(results, indent=2))
    if ship:
        ship_model(Path(results["int8"]["path"]), history=run_dir / "history.csv")
    return results


def ship_model(path: Path, destination: Path = SHIPPED_MODEL, history: Path | None = None) -> None:
    """Copy the model and its sidecar to `destination`, then write its figures and model card beside it."""
    from training.model_card import write_card
    from training.plots import confusion_matrix_png, training_curves_png

    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, destination)
    meta = json.loads(path.with_suffix(".json").read_text())
    meta["name"] = destination.stem
    destination.with_suffix(".json").write_text(json.dumps(meta, indent=2))
    confusion = np.asarray(meta["metrics"]["confusion"])
    confusion_matrix_png(confusion, destination.with_name(f"{destination.stem}_confusion.png"),
                         f"{destination.stem} on FER2013 val: acc {meta['metrics']['accuracy']:.3f}")
    if history is not None and history.exists():
        training_curves_png(history, destination.parent, destination.stem)
    write_card(destination)
    print(f"shipped {path} -> {destination}")


def _training_summary(run_dir: Path, config: dict, checkpoint: str = "best.keras") -> dict:
    history = run_dir / "history.csv"
    # A checkpoint made by training/swa.py says what it averaged and how batch norm was recomputed.
    averaged = (run_dir / checkpoint).with_suffix(".json")
    epochs = max(0, len(history.read_text().strip().splitlines()) - 1) if history.exists() else None
    return {"arch": config["arch"], "epochs_trained": epochs, "recipe": config.get("recipe"), "seed": config.get("seed"),
            "params": config.get("params"), "data": "FER2013 train (28,709 images)",
            **({"note": config["note"]} if config.get("note") else {}),
            **({"init_from": config["init_from"]} if config.get("init_from") else {}),
            **({"distillation": _distillation_record(config)} if config.get("teacher_targets") else {}),
            "checkpoint": checkpoint,
            **({"weight_averaging": json.loads(averaged.read_text())} if averaged.exists() else {})}


def _distillation_record(config: dict) -> dict:
    """What a distilled run was trained towards: its teacher targets' record (training/distill.py) and their weight."""
    targets = Path(config["teacher_targets"])
    record = json.loads(targets.with_suffix(".json").read_text()) if targets.with_suffix(".json").exists() else {}
    return {"targets": str(targets), "teacher_weight": config["recipe"]["teacher_weight"], **record}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, default=Path("runs/edge_xs"), help="a training run directory")
    parser.add_argument("--checkpoint", default="best.keras")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--ship", action="store_true", help=f"copy the int8 model to {SHIPPED_MODEL}")
    parser.add_argument("--tta-flip", action="store_true", help="average over the face and its mirror inside the model")
    args = parser.parse_args(argv)
    if not (args.run / args.checkpoint).exists():
        parser.error(f"{args.run / args.checkpoint} not found: train first (python -m training.train --arch edge_xs ...)")
    export_run(args.run, args.data, args.ship, args.checkpoint, args.tta_flip)
    return 0


if __name__ == "__main__":
    sys.exit(main())
