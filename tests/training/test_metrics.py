"""Metric code checked against a confusion matrix computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import classification_report, confusion_matrix, report_from_confusion


def test_confusion_matrix_counts_true_rows_against_predicted_columns():
    matrix = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], num_classes=3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_report_matches_hand_computation():
    # true\pred   a  b  c
    #   a         1  1  0     recall a = 1/2, precision a = 1/2
    #   b         0  1  0     recall b = 1,   precision b = 1/2
    #   c         1  0  2     recall c = 2/3, precision c = 1
    report = report_from_confusion(np.array([[1, 1, 0], [0, 1, 0], [1, 0, 2]]), labels=("a", "b", "c"))
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.macro_recall == pytest.approx((1 / 2 + 1 + 2 / 3) / 3)
    f1 = [2 * 0.5 * 0.5 / 1.0, 2 * 1 * 0.5 / 1.5, 2 * (2 / 3) * 1 / (5 / 3)]
    assert report.macro_f1 == pytest.approx(sum(f1) / 3)
    assert [c.support for c in report.per_class] == [2, 1, 3]
    assert report.per_class[2].precision == pytest.approx(1.0)


def test_class_never_predicted_has_zero_precision_not_nan():
    report = report_from_confusion(np.array([[2, 0], [1, 0]]), labels=("a", "b"))
    assert report.per_class[1].precision == 0.0 and report.per_class[1].f1 == 0.0
    assert report.macro_recall == pytest.approx(0.5)


def test_classes_without_support_do_not_dilute_macro_means():
    report = classification_report(np.array([0, 0, 3]), np.array([0, 0, 3]))
    assert report.macro_recall == 1.0 and report.accuracy == 1.0
