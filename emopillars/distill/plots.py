"""PNG plots of a run: training curves and per-label F1 (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on servers
import matplotlib.pyplot as plt  # noqa: E402


def plot_training(history: list[dict], evals: list[dict], path: Path) -> None:
    """Training loss per step, validation loss and macro-F1 per evaluation."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot([h["step"] for h in history], [h["loss"] for h in history], lw=1, label="train loss")
    if evals:
        left.plot([e["step"] for e in evals], [e["val_loss"] for e in evals], "o-", label="validation loss")
        right.plot([e["step"] for e in evals], [e["val_macro_f1"] for e in evals], "o-", color="C2")
    left.set(xlabel="step", ylabel="loss", title="loss")
    left.legend()
    right.set(xlabel="step", ylabel="macro-F1", title="validation macro-F1", ylim=(0, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_per_label_f1(validation: dict, test: dict | None, path: Path) -> None:
    """Horizontal bars of F1 per label on validation (and test)."""
    labels = list(validation["per_label"])
    fig, ax = plt.subplots(figsize=(7, max(3, 0.28 * len(labels) + 1)))
    y = range(len(labels))
    height = 0.4 if test else 0.8
    ax.barh([i - height / 2 if test else i for i in y], [validation["per_label"][k]["f1"] for k in labels],
            height=height, label="validation")  # fmt: skip
    if test:
        ax.barh([i + height / 2 for i in y], [test["per_label"][k]["f1"] for k in labels], height=height, label="test")
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    ax.set(xlabel="F1", xlim=(0, 1), title="per-label F1 (tuned thresholds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
