"""Metrics as the literature defines them, checked against hand-computed values, and the references."""

from __future__ import annotations

import numpy as np
import pytest

from emopillars.distill.metrics import prediction_metrics
from emopillars.downstream.references import comparison_table, references
from emopillars.downstream.tasks import TASKS

EMO = TASKS["emocontext"]


def _onehot(names: list[str], labels: tuple[str, ...]) -> np.ndarray:
    return np.eye(len(labels), dtype=int)[[labels.index(n) for n in names]]


def test_emocontext_micro_f1_leaves_out_others() -> None:
    gold = _onehot(["happy", "others", "sad", "angry", "others"], EMO.labels)
    pred = _onehot(["happy", "happy", "others", "angry", "others"], EMO.labels)
    m = prediction_metrics(gold, pred, EMO.labels, True, EMO.emotion_labels)
    # over happy/sad/angry: TP 2 (happy, angry), FP 1 (happy for others), FN 1 (sad) -> P = R = F1 = 2/3
    assert m["micro_f1"] == pytest.approx(2 / 3) and m["micro_precision"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(3 / 5)  # all-class micro-F1 would be this, not 2/3
    assert m["micro_f1_labels"] == ["happy", "sad", "angry"]


def test_single_label_weighted_f1_and_accuracy() -> None:
    labels = TASKS["iemocap"].labels
    gold = _onehot(["neu", "neu", "neu", "ang"], labels)
    pred = _onehot(["neu", "neu", "ang", "ang"], labels)
    m = prediction_metrics(gold, pred, labels, True)
    # neu: P 1, R 2/3, F1 0.8 (support 3); ang: P 1/2, R 1, F1 2/3 (support 1)
    assert m["weighted_f1"] == pytest.approx((3 * 0.8 + 2 / 3) / 4)
    assert m["accuracy"] == 0.75 and m["per_label"]["ang"] == {
        "precision": 0.5,
        "recall": 1.0,
        "f1": pytest.approx(2 / 3),
        "support": 1,
    }


def test_multi_label_macro_and_micro() -> None:
    labels = ("a", "b", "c")
    gold = np.array([[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    pred = np.array([[1, 0, 0], [0, 1, 0], [1, 0, 0]])
    m = prediction_metrics(gold, pred, labels, False)
    # a: P 1/2 R 1 F 2/3; b: P 1 R 1/2 F 2/3; c: 0 -> macro 4/9; micro: TP 2 FP 1 FN 2 -> 4/7
    assert m["macro_f1"] == pytest.approx(4 / 9) and m["micro_f1"] == pytest.approx(4 / 7)
    assert m["subset_accuracy"] == pytest.approx(1 / 3) and "accuracy" not in m


def test_references_have_sources_and_known_metrics() -> None:
    refs = references()
    assert set(refs) == set(TASKS)
    for name, entries in refs.items():
        for entry in entries:
            assert entry["source"] and entry["system"]
            assert set(entry["metrics"]) <= {"macro_f1", "micro_f1", "weighted_f1", "accuracy"} | {
                "macro_precision",
                "macro_recall",
            }
            assert set(entry["metrics"]) & set(TASKS[name].metrics)
    assert refs["goemotions"][0]["metrics"]["macro_f1"] == 0.46


def test_comparison_table_puts_the_model_beside_the_references() -> None:
    metrics = {"macro_f1": 0.5123, "micro_f1": 0.6, "accuracy": 0.7}
    table = comparison_table(TASKS["goemotions"], metrics)
    first, _, macro = table.splitlines()[:3]
    assert "this model" in first and "BERT-base" in first
    assert macro.split()[:3] == ["macro_f1", "0.5123", "0.4600"]
    assert "Demszky et al., 2020" in table
    plain = comparison_table(None, {"macro_f1": 0.1, "micro_f1": 0.2, "weighted_f1": 0.3})
    assert plain.splitlines()[0].split() == ["metric", "this", "model"]
