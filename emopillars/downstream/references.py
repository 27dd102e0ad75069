"""The published numbers of each benchmark, and the table that sets a model's metrics beside them.

The metrics themselves are `distill.metrics.prediction_metrics`; each task reports the ones its
literature does (`Task.metrics`):

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

from emopillars.downstream.tasks import Task


@cache
def references() -> dict[str, list[dict[str, Any]]]:
    """The published numbers kept in `references.json`, by task, each with its source."""
    return json.loads(resources.files("emopillars.downstream").joinpath("references.json").read_text("utf-8"))


def comparison_table(task: Task | None, metrics: dict[str, Any]) -> str:
    """A text table: the task's literature metrics for this model beside each published system.

    Without a task (a dataset in the `train` format) the general metrics are shown alone.
    """
    keys = list(task.metrics) if task else ["macro_f1", "micro_f1", "weighted_f1"]
    exact = "accuracy" if "accuracy" in metrics else "subset_accuracy"  # the same figure on one-hot rows
    keys += [exact] if exact in metrics and exact not in keys else []
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
