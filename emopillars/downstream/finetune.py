"""`emopillars finetune`: adapt a trained emopillars encoder to a downstream benchmark.

Read the benchmark in its public format, give the model a head over the task's labels initialised
from the pretrained 28-label head through the label mapping, train with the distillation trainer
(the same loop, options and outputs as `emopillars train`), then score the test split with the
task's literature metrics through `evaluate`, so the numbers match a later `emopillars evaluate`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from emopillars.config import save_config
from emopillars.distill.outputs import TrainResult, write_report
from emopillars.downstream.config import FinetuneConfig
from emopillars.downstream.evaluate import score, task_rows
from emopillars.downstream.mapping import mapped_head
from emopillars.downstream.readers import SplitRows
from emopillars.downstream.tasks import Task, get_task, read_task
from emopillars.errors import EmopillarsError
from emopillars.hub import resolve_model

log = logging.getLogger(__name__)


def to_splits(rows: SplitRows, task: Task, contextual: bool, source: str = "data") -> Any:
    """Reader rows -> the trainer's `Splits` (texts, contexts in contextual mode, targets, gold)."""
    from emopillars.distill.data import Split, Splits

    single = task.problem_type == "single_label"

    def one(part: list[dict]) -> Split:
        contexts = [r["context"] or "" for r in part] if contextual else None
        return Split.from_labels([r["text"] for r in part], [r["labels"] for r in part], task.labels, contexts, single)

    splits = Splits(one(rows["train"]), one(rows["validation"]), one(rows["test"]))
    splits.summary = {
        "source": source,
        "task": task.name,
        "mode": "contextual" if contextual else "contextless",
        "rows_read": sum(len(v) for v in rows.values()),
        "rows": {name: len(part) for name, part in rows.items()},
        "label_counts_train": {n: int(c) for n, c in zip(task.labels, splits.train.gold.sum(0), strict=True)},
    }
    return splits


class FinetuneResult(TrainResult):
    """What `finetune` made: `train`'s model folder and report, plus the task's literature metrics."""

    @property
    def task_test(self) -> dict[str, Any] | None:
        """The downstream task's literature metrics on its test split (None without test rows)."""
        return self.report.get("task_test")


def finetune(cfg: FinetuneConfig) -> FinetuneResult:
    """Run `emopillars finetune`: `train` with the task's head, then the task's metrics (`task_test`).

    Writes to `cfg.out` what `train` writes (model folder, metrics.json, card, plots) plus
    `finetune_config.json` (read back by `evaluate` for the context size and split seed).
    """
    from emopillars.distill.trainer import train
    from emopillars.inference.classifier import EmotionClassifier

    task = get_task(cfg.task)
    options = cfg.read_options()
    rows = read_task(task, cfg.data, options)
    if not rows["train"]:
        raise EmopillarsError(f"{cfg.data}: no training rows for {task.name}")
    data = to_splits(rows, task, cfg.mode == "contextual", str(cfg.data))
    init = str(resolve_model(cfg.init)) if cfg.init else None  # a Hub id becomes its cached folder
    head = mapped_head(init, task) if init and cfg.head_init == "mapped" else None
    result = train(cfg.train_config(init), data=data, head_init=head)
    report = result.report
    # The resolved reading options, so `evaluate` on the same files rebuilds the same contexts and splits.
    save_config(cfg.model_copy(update=asdict(options)), cfg.out / "finetune_config.json")
    report["task"] = task.name
    report["head_init"] = "mapped" if head is not None else "random"
    if rows["test"]:
        # The saved folder, through evaluate's own path: equal to a later `emopillars evaluate`.
        clf = EmotionClassifier.from_pretrained(cfg.out)
        texts, contexts, gold = task_rows(clf, task, rows["test"])
        report["task_test"] = score(clf, texts, contexts, gold, task, cfg.eval_batch_size)
    write_report(report, cfg.out)
    return FinetuneResult(result.out, report, result.main_process)
