"""Threshold tuning and metrics on constructed data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score

from emopillars.distill.metrics import compute_metrics, decide, format_table, probabilities
from emopillars.distill.thresholds import tune_thresholds


def _scores_with_shifted_calibration(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Label 0's positives score around 0.3, label 1's around 0.8: 0.5 is wrong for both."""
    rng = np.random.default_rng(seed)
    y = (rng.random((400, 3)) < 0.3).astype(np.int8)
    y[:, 2] = 0  # a label without positives
    centers = np.array([[0.1, 0.3], [0.6, 0.8], [0.2, 0.2]])
    scores = np.where(y == 1, centers[:, 1], centers[:, 0]) + rng.normal(0, 0.04, y.shape)
    return y, scores.clip(0, 1)


def test_tuned_thresholds_beat_half_and_fallback_for_labels_without_positives() -> None:
    y, scores = _scores_with_shifted_calibration()
    t = tune_thresholds(y, scores)
    assert 0.1 < t[0] < 0.3 and 0.6 < t[1] < 0.8
    tuned = f1_score(y[:, :2], decide(scores, t)[:, :2], average="macro")
    fixed = f1_score(y[:, :2], decide(scores, None)[:, :2], average="macro", zero_division=0)
    assert tuned > 0.95 > fixed
    # Held-out data from the same distribution: tuning generalises.
    y2, s2 = _scores_with_shifted_calibration(seed=1)
    assert f1_score(y2[:, :2], decide(s2, t)[:, :2], average="macro") > 0.95
    assert 0.0 < t[2] < 1.0  # the micro-F1 fallback


def test_compute_metrics_values() -> None:
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 0, 1]])
    scores = np.array([[0.9, 0.1, 0.2], [0.2, 0.7, 0.1], [0.8, 0.3, 0.1], [0.1, 0.2, 0.6]])
    m = compute_metrics(y, scores, np.array([0.5, 0.5, 0.5]), ["a", "b", "c"])
    # one miss (row 2, label b): b has precision 1, recall 1/2
    assert m["per_label"]["b"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert m["macro_f1"] == pytest.approx((1 + 2 / 3 + 1) / 3)
    assert m["micro_f1"] == pytest.approx(2 * 4 / (2 * 4 + 0 + 1))
    assert m["hamming_loss"] == pytest.approx(1 / 12)
    assert m["subset_accuracy"] == pytest.approx(3 / 4)
    assert m["roc_auc_macro"] == pytest.approx(1.0)
    assert "macro_f1=" in format_table(m, "test")


def test_single_label_metrics_use_argmax_and_report_accuracy() -> None:
    y = np.eye(3, dtype=np.int8)[[0, 1, 2, 2]]
    logits = np.array([[3.0, 0, 0], [0, 2.0, 0], [0, 1.0, 0.5], [0, 0, 4.0]])
    scores = probabilities(logits, single_label=True)
    assert np.allclose(scores.sum(1), 1.0)
    m = compute_metrics(y, scores, None, ["x", "y", "z"], single_label=True)
    assert m["accuracy"] == pytest.approx(0.75) == m["subset_accuracy"]
    assert decide(scores, None, single_label=True).sum(1).tolist() == [1, 1, 1, 1]
