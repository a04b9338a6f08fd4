"""Write the shipped model's card (fer/models/<model>.md) from its metadata sidecar: `python -m training.model_card`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fer.labels import LABELS

SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "fer" / "models" / "fer_edge_int8.tflite"


def render(meta: dict, size_kb: float, comparison: list[dict] | None = None) -> str:
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
        f"- Input: {meta['input_size'][0]}x{meta['input_size'][1]} grayscale face crop; model input = pixel x "
        f"{meta['normalization']['scale']:.6g} + {meta['normalization']['offset']:.6g}, then int8 quantization.",
        f"- Preprocessing (from the sidecar, applied by `fer`): faces sharper than Laplacian variance "
        f"{meta['normalization'].get('max_laplacian_variance', 0):g} are blurred with sigma "
        f"{meta['normalization'].get('blur_sigma', 0):g} px, then histogram-equalised"
        f"{' (test-time mirror averaging is inside the graph)' if training.get('test_time_flip') else ''}.",
        f"- Output: 7 probabilities in the order {', '.join(LABELS)}.",
        f"- Quantization: {meta.get('quantization')} (full integer: int8 weights, activations, input and output); {size_kb:.0f} KB.",
        "",
        "## Data",
        "FER2013 (Goodfellow et al. 2013): 28,709 training faces, 48x48 grayscale, collected by web image search and labelled by",
        "one annotator per image. Validation numbers below are on the 3,589-image PublicTest split (`val`); the PrivateTest split",
        "is held out for final testing outside this repository and was never used for tuning.",
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
        "- The shared FER2013 train split is blurred (about sigma 3 px at 48x48) while val is sharp: the model learned from",
        "  soft faces only, and sharp faces are blurred to match before it sees them (docs/training.md). That caps what it",
        "  can tell apart: fine cues (eye corners, brows, wrinkles) are gone, which hurts fear, sad and neutral most.",
        "- Labels are one annotator's judgement (human agreement on FER2013 is about 65%).",
        "- Glasses, masks, strong side light, faces turned more than about 30 degrees and faces smaller than 48 pixels degrade it.",
        "- A facial expression is not an emotion: culture, medication (e.g. antipsychotics, botulinum), flat affect and",
        "  neurological conditions change expression without changing feeling.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--comparison", type=Path, help="JSON list of {model, accuracy, macro_recall, size_kb} rows")
    args = parser.parse_args(argv)
    meta = json.loads(args.model.with_suffix(".json").read_text())
    comparison = json.loads(args.comparison.read_text()) if args.comparison else None
    card = args.model.with_suffix(".md")
    card.write_text(render(meta, args.model.stat().st_size / 1024, comparison))
    print(f"wrote {card}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
