"""Classification metrics (scikit-learn) of every model the package trains, fine-tunes or evaluates.

Training, `finetune` and `evaluate` report the same figures from one function, so a number in a
training report and in an `evaluate` result mean the same thing.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np


def probabilities(logits: np.ndarray, single_label: bool = False) -> np.ndarray:
    """Sigmoid per label, or softmax per row; float64 for stable thresholds."""
    logits = np.asarray(logits, dtype=np.float64)
    if single_label:
        z = np.exp(logits - logits.max(-1, keepdims=True))
        return z / z.sum(-1, keepdims=True)
    return 1.0 / (1.0 + np.exp(-logits))


def decide(scores: np.ndarray, thresholds: np.ndarray | None, single_label: bool = False) -> np.ndarray:
    """0/1 predictions (N, L): score >= its label's threshold, or the argmax for single-label."""
    if single_label:
        return np.eye(scores.shape[1], dtype=np.int8)[scores.argmax(-1)]
    t = np.full(scores.shape[1], 0.5) if thresholds is None else np.asarray(thresholds)
    return (scores >= t).astype(np.int8)


def prediction_metrics(
    gold: np.ndarray,
    pred: np.ndarray,
    labels: tuple[str, ...] | list[str],
    single_label: bool = False,
    emotion_labels: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """Every figure of hard predictions: training reports and downstream `evaluate` alike.

    Args:
        gold: (N, L) 0/1 gold labels.
        pred: (N, L) 0/1 predicted labels (one 1 per row when `single_label`).
        labels: the L label names.
        single_label: add `accuracy` (argmax of gold against argmax of pred).
        emotion_labels: labels that `micro_f1`/precision/recall average over (EmoContext); default all.

    Returns:
        macro/micro/weighted F1, macro and micro precision and recall, Hamming loss, subset accuracy and
        per-label precision/recall/F1/support. On one-hot rows these equal the single-label (multiclass) figures.
    """
    # Imported here: scikit-learn costs ~1 s, and `predict` needs only `probabilities`/`decide`.
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss, precision_recall_fscore_support

    labels = list(labels)
    gold, pred = np.asarray(gold).astype(np.int8), np.asarray(pred).astype(np.int8)
    assert gold.shape == pred.shape == (len(gold), len(labels)), (gold.shape, pred.shape)
    ids = list(range(len(labels)))
    micro_ids = [labels.index(name) for name in emotion_labels] if emotion_labels else ids

    def averaged(average: str, which: list[int] = ids) -> tuple[float, float, float]:
        p, r, f, _ = precision_recall_fscore_support(gold, pred, labels=which, average=average, zero_division=0)
        return float(p), float(r), float(f)

    macro_p, macro_r, macro_f = averaged("macro")
    micro_p, micro_r, micro_f = averaged("micro", micro_ids)
    p, r, f, s = precision_recall_fscore_support(gold, pred, labels=ids, average=None, zero_division=0)
    out: dict[str, Any] = {
        "n": int(len(gold)),
        "macro_f1": macro_f,
        "micro_f1": micro_f,
        "weighted_f1": float(f1_score(gold, pred, labels=ids, average="weighted", zero_division=0)),
        "macro_precision": macro_p,
        "macro_recall": macro_r,
        "micro_precision": micro_p,
        "micro_recall": micro_r,
        "hamming_loss": float(hamming_loss(gold, pred)),
        "subset_accuracy": float(accuracy_score(gold, pred)),
    }
    if single_label:
        out["accuracy"] = float((gold.argmax(-1) == pred.argmax(-1)).mean())
    if emotion_labels:
        out["micro_f1_labels"] = list(emotion_labels)
    out["per_label"] = {
        name: {"precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]), "support": int(s[j])}
        for j, name in enumerate(labels)
    }
    return out


def compute_metrics(
    y_true: np.ndarray,
    scores: np.ndarray,
    thresholds: np.ndarray | None,
    labels: tuple[str, ...] | list[str],
    single_label: bool = False,
) -> dict:
    """`prediction_metrics` of the thresholded scores, plus ROC-AUC (macro over labels with both classes)."""
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import roc_auc_score

    y_true = np.asarray(y_true).astype(np.int8)
    out = prediction_metrics(y_true, decide(scores, thresholds, single_label), labels, single_label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        both = [j for j in range(y_true.shape[1]) if 0 < y_true[:, j].sum() < len(y_true)]
        auc = roc_auc_score(y_true[:, both], scores[:, both], average="macro") if both else None
    return {**out, "roc_auc_macro": None if auc is None else float(auc)}


def format_table(metrics: dict, title: str = "", per_label: bool = True, supported_only: bool = False) -> str:
    """A plain-text table: the summary line, then (with `per_label`) precision/recall/F1/support per label
    (only the labels with gold rows, with `supported_only`)."""
    keys = ["macro_f1", "micro_f1", "weighted_f1", "roc_auc_macro", "hamming_loss", "subset_accuracy", "accuracy"]
    head = "  ".join(f"{k}={metrics[k]:.4f}" for k in keys if metrics.get(k) is not None)
    lines = [f"{title} (n={metrics['n']}): {head}" if title else head]
    if not per_label:
        return lines[0]
    lines.append(f"{'label':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
    for name, m in metrics["per_label"].items():
        if supported_only and not m["support"]:
            continue
        lines.append(f"{name:<16}{m['precision']:>10.3f}{m['recall']:>10.3f}{m['f1']:>10.3f}{m['support']:>9d}")
    return "\n".join(lines)
