"""Metrics as each benchmark's literature reports them, and the table beside the published numbers.

All numbers are scikit-learn on hard predictions (the labels `EmotionClassifier.predict` returns),
so `evaluate` equals scikit-learn on `predict`'s output by construction.

- GoEmotions: macro-F1 (Demszky et al., 2020), plus micro-F1 and per-label precision/recall/F1.
- ISEAR: accuracy and macro-F1.
- IEMOCAP: weighted-F1 and accuracy (the ERC literature's "weighted average F1").
- EmoContext: `micro_f1` is micro-averaged over happy, sad and angry only (SemEval-2019 Task 3);
  `others` counts only through the errors it causes.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from emopillars.downstream.tasks import Task


def task_metrics(
    gold: np.ndarray,
    pred: np.ndarray,
    labels: tuple[str, ...] | list[str],
    single_label: bool,
    emotion_labels: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The metric block of one evaluation.

    Args:
        gold: (N, L) 0/1 gold labels.
        pred: (N, L) 0/1 predicted labels (one 1 per row when `single_label`).
        labels: the L label names.
        single_label: score as single-label classification (accuracy, class ids).
        emotion_labels: labels that `micro_f1` averages over (EmoContext); default all.

    Returns:
        Flat floats (`macro_f1`, `micro_f1`, `weighted_f1`, ...) and `per_label`.
    """
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss, precision_recall_fscore_support

    labels = list(labels)
    gold, pred = np.asarray(gold, dtype=int), np.asarray(pred, dtype=int)
    assert gold.shape == pred.shape == (len(gold), len(labels)), (gold.shape, pred.shape)
    ids = list(range(len(labels)))
    if single_label:
        y_true, y_pred = gold.argmax(1), pred.argmax(1)
    else:
        y_true, y_pred = gold, pred
    micro_ids = [labels.index(name) for name in emotion_labels] if emotion_labels else ids

    def f1(average: str, which: list[int] = ids) -> float:
        return float(f1_score(y_true, y_pred, labels=which, average=average, zero_division=0))

    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=ids, zero_division=0)
    mp, mr, _, _ = precision_recall_fscore_support(y_true, y_pred, labels=ids, average="macro", zero_division=0)
    up, ur, _, _ = precision_recall_fscore_support(y_true, y_pred, labels=micro_ids, average="micro", zero_division=0)
    out: dict[str, Any] = {
        "n": len(gold),
        "macro_f1": f1("macro"),
        "micro_f1": f1("micro", micro_ids),
        "weighted_f1": f1("weighted"),
        "macro_precision": float(mp),
        "macro_recall": float(mr),
        "micro_precision": float(up),
        "micro_recall": float(ur),
    }
    if single_label:
        out["accuracy"] = float(accuracy_score(y_true, y_pred))
    else:
        out["subset_accuracy"] = float(accuracy_score(y_true, y_pred))
        out["hamming_loss"] = float(hamming_loss(y_true, y_pred))
    if emotion_labels:
        out["micro_f1_labels"] = list(emotion_labels)
    out["per_label"] = {
        name: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
        for i, name in enumerate(labels)
    }
    return out


@cache
def references() -> dict[str, list[dict[str, Any]]]:
    """The published numbers kept in `references.json`, by task, each with its source."""
    return json.loads(resources.files("emopillars.downstream").joinpath("references.json").read_text("utf-8"))


def comparison_table(task: Task | None, metrics: dict[str, Any]) -> str:
    """A text table: the task's literature metrics for this model beside each published system.

    Without a task (a dataset in the `train` format) the general metrics are shown alone.
    """
    keys = list(task.metrics) if task else ["macro_f1", "micro_f1", "weighted_f1"]
    keys += [k for k in ("accuracy", "subset_accuracy") if k in metrics and k not in keys]
    refs = references().get(task.name, []) if task else []
    header = ["metric", "this model", *(r["system"] for r in refs)]
    rows = [header]
    for key in keys:
        ref_cells = [f"{r['metrics'][key]:.4f}" if key in r["metrics"] else "-" for r in refs]
        rows.append([key, f"{metrics[key]:.4f}", *ref_cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [f"[{i + 1}] {r['system']}: {r['source']}" for i, r in enumerate(refs)]
    return "\n".join(lines)
