"""`python -m fer IMAGE...`: faces and emotions in still images, for a quick manual check of the vision core.

    python -m fer photo.jpg [--model MODEL.tflite [--metadata SIDECAR.json]] [--detector haar] [--metrics]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

from fer.analysis import analyze
from fer.classifier import EmotionClassifier
from fer.detection import DETECTORS, make_detector
from fer.errors import FerError
from fer.labels import LABELS
from fer.stream import MetricsMonitor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="+", type=Path)
    parser.add_argument("--model", type=Path, help="a .tflite with its .json sidecar (default: the shipped model)")
    parser.add_argument("--metadata", type=Path, help="the model's sidecar JSON, if not next to the model")
    parser.add_argument("--detector", choices=sorted(DETECTORS), default="blazeface")
    parser.add_argument("--metrics", action="store_true", help="also print the seed-style metrics block")
    args = parser.parse_args(argv)
    try:
        classifier = EmotionClassifier.load(args.model, metadata=args.metadata)
        detector = make_detector(args.detector)
    except FerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    monitor = MetricsMonitor()
    status = 0
    for path in args.images:
        frame = cv2.imread(str(path))
        if frame is None:
            print(f"{path}: cannot read image", file=sys.stderr)
            status = 1
            continue
        results = analyze(frame, classifier=classifier, detector=detector)
        print(f"{path}: {len(results)} face(s)")
        for index, face in enumerate(results):
            scores = " ".join(f"{label}={p:.2f}" for label, p in zip(LABELS, face.probabilities))
            print(f"  face {index}: box {face.box.as_tuple()} {face.dominant}  ({scores})")
        if args.metrics:
            print(monitor.measure(results).format())
    return status


if __name__ == "__main__":
    sys.exit(main())
