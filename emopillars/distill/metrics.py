"""Classification metrics (scikit-learn) from gold labels, scores and thresholds.

compute_metrics(y_true (N, L) 0/1, scores (N, L) probabilities, thresholds (L,) | None,
                labels, single_label=False) -> dict
decide(scores, thresholds, single_label) -> (N, L) 0/1 predictions
probabilities(logits, single_label) -> (N, L)
format_table(metrics) -> str
"""

from __future__ import annotations

import warnings

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


def compute_metrics(
    y_true: np.ndarray,
    scores: np.ndarray,
    thresholds: np.ndarray | None,
    labels: tuple[str, ...] | list[str],
    single_label: bool = False,
) -> dict:
    """macro/micro/weighted F1, ROC-AUC (macro over labels with both classes), Hamming loss, subset
    accuracy (plus `accuracy` for single-label) and per-label precision/recall/F1/support."""
    # Imported here: scikit-learn costs ~1 s, and `predict` needs only `probabilities`/`decide`.
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        hamming_loss,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    y_true = np.asarray(y_true).astype(np.int8)
    pred = decide(scores, thresholds, single_label)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        p, r, f, s = precision_recall_fscore_support(y_true, pred, average=None, zero_division=0)
        both = [j for j in range(y_true.shape[1]) if 0 < y_true[:, j].sum() < len(y_true)]
        auc = roc_auc_score(y_true[:, both], scores[:, both], average="macro") if both else None
        out = {
            "n": int(len(y_true)),
            "macro_f1": float(f1_score(y_true, pred, average="macro", zero_division=0)),
            "micro_f1": float(f1_score(y_true, pred, average="micro", zero_division=0)),
            "weighted_f1": float(f1_score(y_true, pred, average="weighted", zero_division=0)),
            "roc_auc_macro": None if auc is None else float(auc),
            "hamming_loss": float(hamming_loss(y_true, pred)),
            "subset_accuracy": float(accuracy_score(y_true, pred)),
        }
    if single_label:
        out["accuracy"] = float((y_true.argmax(-1) == scores.argmax(-1)).mean())
    out["per_label"] = {
        name: {"precision": float(p[j]), "recall": float(r[j]), "f1": float(f[j]), "support": int(s[j])}
        for j, name in enumerate(labels)
    }
    return out


def format_table(metrics: dict, title: str = "", per_label: bool = True) -> str:
    """A plain-text table: the summary line, then (with `per_label`) precision/recall/F1/support per label."""
    keys = ["macro_f1", "micro_f1", "weighted_f1", "roc_auc_macro", "hamming_loss", "subset_accuracy", "accuracy"]
    head = "  ".join(f"{k}={metrics[k]:.4f}" for k in keys if metrics.get(k) is not None)
    lines = [f"{title} (n={metrics['n']}): {head}" if title else head]
    if not per_label:
        return lines[0]
    lines.append(f"{'label':<16}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}")
    for name, m in metrics["per_label"].items():
        lines.append(f"{name:<16}{m['precision']:>10.3f}{m['recall']:>10.3f}{m['f1']:>10.3f}{m['support']:>9d}")
    return "\n".join(lines)
