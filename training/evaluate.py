"""Evaluate a trained model on FER2013 `val`: `python -m training.evaluate --model runs/edge_xs/best.keras`.

Prints accuracy, macro recall, macro F1 and a per-class table; writes report.json, a normalised confusion-matrix PNG and
(for a training run) the training-curve PNGs into --out. Accepts a Keras model from `training.train` (normalisation read
from the run's config.json) or any .tflite with a sidecar (run through `fer.EmotionClassifier`, exactly as deployed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable

import numpy as np

from fer.labels import LABELS
from training.data import Dataset, load_split, model_inputs
from training.metrics import Report, classification_report
from training.plots import confusion_matrix_png, training_curves_png

DEFAULT_DATA = Path(os.environ.get("FER_DATA_DIR", "../shared/datasets/fer2013"))
Predict = Callable[[np.ndarray], np.ndarray]  # uint8 (N, 48, 48) -> probabilities (N, 7)


def keras_predictor(model_path: Path, tta_flip: bool = False) -> Predict:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    normalization = json.loads((model_path.parent / "config.json").read_text())["normalization"]
    model = keras.models.load_model(model_path, compile=False)

    def predict(images: np.ndarray) -> np.ndarray:
        x = model_inputs(images, normalization)
        probabilities = model.predict(x, batch_size=256, verbose=0)
        if tta_flip:
            probabilities = (probabilities + model.predict(x[:, :, ::-1], batch_size=256, verbose=0)) / 2
        return probabilities

    return predict


def tflite_predictor(model_path: Path, num_threads: int = 2) -> Predict:
    from fer import EmotionClassifier

    classifier = EmotionClassifier.load(model_path, num_threads=num_threads)
    return lambda images: np.concatenate([classifier.predict(images[i:i + 256]) for i in range(0, len(images), 256)])


def evaluate(predict: Predict, data: Dataset) -> Report:
    probabilities = predict(data.images)
    return classification_report(data.labels, probabilities.argmax(axis=1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=Path("runs/edge_xs/best.keras"), help=".keras or .tflite")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--split", default="val", help="val (PublicTest); never tune on anything else")
    parser.add_argument("--tta-flip", action="store_true", help="average with the mirrored face (Keras models only)")
    parser.add_argument("--out", type=Path, help="output directory (default: <model dir>/eval)")
    args = parser.parse_args(argv)
    if not args.model.exists():
        parser.error(f"{args.model} does not exist (train it with python -m training.train)")

    data = load_split(args.data, args.split)
    predict = tflite_predictor(args.model) if args.model.suffix == ".tflite" else keras_predictor(args.model, args.tta_flip)
    report = evaluate(predict, data)
    name = args.model.stem + ("_tta" if args.tta_flip else "")
    out = args.out or args.model.parent / "eval"
    out.mkdir(parents=True, exist_ok=True)
    print(f"{args.model} on {args.split} ({len(data)} images)\n{report.table()}")
    (out / f"{name}_report.json").write_text(json.dumps({"model": str(args.model), "split": args.split,
                                                         "labels": LABELS, **report.as_dict(),
                                                         "confusion": report.confusion.tolist()}, indent=2))
    figures = [confusion_matrix_png(report.confusion, out / f"{name}_confusion.png",
                                    f"{name} on {args.split}: acc {report.accuracy:.3f}")]
    history = args.model.parent / "history.csv"
    if history.exists():
        figures += training_curves_png(history, out, args.model.parent.name)
    print("wrote", ", ".join(str(p) for p in [out / f"{name}_report.json", *figures]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
