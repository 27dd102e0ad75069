"""Per-label decision thresholds tuned on the validation split."""

from __future__ import annotations

import numpy as np

GRID = np.round(np.arange(0.02, 0.99, 0.01), 2)  # candidate thresholds


def _f1_grid(y_true: np.ndarray, scores: np.ndarray, grid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F1 per (threshold, label) and micro-F1 per threshold; y_true, scores (N, L)."""
    pred = scores[None, :, :] >= grid[:, None, None]  # (T, N, L)
    truth = y_true.astype(bool)[None]
    tp = (pred & truth).sum(1).astype(float)  # (T, L)
    fp = (pred & ~truth).sum(1)
    fn = (~pred & truth).sum(1)
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0)
    micro_den = (2 * tp + fp + fn).sum(1)
    micro = np.divide(2 * tp.sum(1), micro_den, out=np.zeros(len(grid)), where=micro_den > 0)
    return f1, micro


def _middle_of_best(values: np.ndarray, grid: np.ndarray) -> float:
    # Ties form plateaus; their middle generalises better than an edge.
    best = np.flatnonzero(np.isclose(values, values.max()))
    return float(grid[best[len(best) // 2]])


def tune_thresholds(y_true: np.ndarray, scores: np.ndarray, grid: np.ndarray = GRID) -> np.ndarray:
    """The threshold per label maximising that label's F1 on (y_true, scores), both (N, L).

    A label without positives (its F1 is 0 everywhere) gets the global threshold maximising micro-F1.
    Returns (L,) float thresholds.
    """
    f1, micro = _f1_grid(y_true, scores, grid)
    fallback = _middle_of_best(micro, grid)
    has_pos = y_true.sum(0) > 0
    return np.array(
        [_middle_of_best(f1[:, j], grid) if has_pos[j] else fallback for j in range(y_true.shape[1])],
        dtype=np.float32,
    )
