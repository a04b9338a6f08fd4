"""Classification metrics from a confusion matrix (pure NumPy, so they are easy to check by hand)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fer.labels import LABELS


@dataclass(frozen=True)
class ClassMetrics:
    label: str
    support: int
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class Report:
    confusion: np.ndarray  # (K, K): rows true class, columns predicted class
    accuracy: float
    macro_recall: float
    macro_f1: float
    per_class: list[ClassMetrics]

    def as_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "per_class": {c.label: {"support": c.support, "precision": c.precision, "recall": c.recall, "f1": c.f1}
                          for c in self.per_class},
        }

    def table(self) -> str:
        lines = [f"{'class':<10}{'support':>9}{'precision':>11}{'recall':>9}{'f1':>8}"]
        lines += [f"{c.label:<10}{c.support:>9}{c.precision:>11.4f}{c.recall:>9.4f}{c.f1:>8.4f}" for c in self.per_class]
        lines.append(f"accuracy {self.accuracy:.4f}  macro recall {self.macro_recall:.4f}  macro F1 {self.macro_f1:.4f}")
        return "\n".join(lines)


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = len(LABELS)) -> np.ndarray:
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def report_from_confusion(matrix: np.ndarray, labels: tuple[str, ...] = LABELS) -> Report:
    """Accuracy, and per-class precision/recall/F1 with their unweighted (macro) means over classes that have support.

    A class never predicted has precision 0 (not NaN), as scikit-learn's zero_division=0.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    precision = np.divide(true_positive, predicted, out=np.zeros_like(true_positive), where=predicted > 0)
    recall = np.divide(true_positive, support, out=np.zeros_like(true_positive), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(true_positive), where=denominator > 0)
    present = support > 0
    per_class = [ClassMetrics(label, int(support[i]), float(precision[i]), float(recall[i]), float(f1[i]))
                 for i, label in enumerate(labels)]
    return Report(
        confusion=matrix.astype(np.int64),
        accuracy=float(true_positive.sum() / max(matrix.sum(), 1)),
        macro_recall=float(recall[present].mean()) if present.any() else 0.0,
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        per_class=per_class,
    )


def classification_report(y_true: np.ndarray, y_pred: np.ndarray) -> Report:
    return report_from_confusion(confusion_matrix(y_true, y_pred))
