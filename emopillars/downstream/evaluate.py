"""`emopillars evaluate`: score a model folder on a benchmark split with the literature's metrics.

Predictions come from `EmotionClassifier.predict` (the model's own thresholds, or the argmax for
single-label models), and the metrics are scikit-learn on those labels: evaluating equals running
`predict` and scoring its output.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emopillars.distill.metrics import prediction_metrics
from emopillars.downstream.config import EvaluateConfig
from emopillars.downstream.readers import Row
from emopillars.downstream.references import references
from emopillars.downstream.tasks import Task, get_task, read_task
from emopillars.errors import EmopillarsError
from emopillars.labels import label_matrix
from emopillars.sources import split_name

if TYPE_CHECKING:
    from emopillars.distill.data import Split
    from emopillars.inference.classifier import EmotionClassifier

log = logging.getLogger(__name__)


def score(
    clf: EmotionClassifier,
    texts: list[str],
    contexts: list[str] | None,
    gold: np.ndarray,
    task: Task | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Predict with `clf` and compute the metric block (see `distill.metrics.prediction_metrics`)."""
    contexts = contexts if clf.mode == "contextual" else None
    predictions = clf.predict(texts, contexts, batch_size=batch_size)
    pred = label_matrix([p["labels"] for p in predictions], clf.labels)
    single = clf.problem_type == "single_label"
    return prediction_metrics(gold, pred, clf.labels, single, task.emotion_labels if task else None)


def task_rows(clf: EmotionClassifier, task: Task, rows: list[Row]) -> tuple[list[str], list[str], np.ndarray]:
    """Texts, contexts and gold matrix of reader rows, checked against the model's labels."""
    if clf.labels != task.labels:
        raise EmopillarsError(
            f"the model predicts {len(clf.labels)} labels ({', '.join(clf.labels[:7])}"
            f"{', ...' if len(clf.labels) > 7 else ''}), not the {task.name} "
            f"labels ({', '.join(task.labels)}): fine-tune it first with `emopillars finetune --task {task.name}`"
        )
    gold = label_matrix([r["labels"] for r in rows], task.labels)
    return [r["text"] for r in rows], [r["context"] or "" for r in rows], gold


def _train_format_split(clf: EmotionClassifier, cfg: EvaluateConfig) -> Split:
    """The chosen split of a dataset in the `train` input format, read by the trainer's own reader.

    With a `split` column: the rows of that split. Without: the seeded split `train` made for this model.
    """
    from emopillars.distill.config import TrainConfig
    from emopillars.distill.data import build_splits, read_records

    records = read_records(cfg.data)
    # The split seed, fractions and soft-label cut the model was trained with, so evaluating on the
    # training data scores the very test rows `train` held out.
    trained = _saved_json(clf.path, "train_config.json")
    settings = TrainConfig(
        data=cfg.data,
        labels=clf.labels,
        problem_type=clf.problem_type,
        mode=clf.mode,
        seed=cfg.split_seed if cfg.split_seed is not None else trained.get("seed", 0),
        split_fractions=trained.get("split_fractions", (0.8, 0.1, 0.1)),
        target_threshold=trained.get("target_threshold", 0.5),
    )
    if not any(r.get("split") for r in records):
        return getattr(build_splits(records, settings, cfg.data), cfg.split)
    chosen = [{**r, "split": None} for r in records if split_name(r.get("split")) == cfg.split]
    if len(chosen) < 2:
        raise EmopillarsError(f"{cfg.data}: split {cfg.split!r} has {len(chosen)} row(s); at least 2 are needed")
    # build_splits re-splits the unsplit rows; the metrics only need them all, in any order.
    parts = build_splits(chosen, settings, cfg.data)
    return parts.train.concat(parts.validation).concat(parts.test)


def _saved_json(folder: Path | None, name: str) -> dict[str, Any]:
    """A config the model folder keeps (`train_config.json`, `finetune_config.json`), or {}."""
    if folder is None:
        return {}
    path = Path(folder) / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def evaluate(cfg: EvaluateConfig, clf: EmotionClassifier | None = None) -> dict[str, Any]:
    """Run `emopillars evaluate` (`clf`, when given, saves loading `cfg.model` again); also written to `cfg.out`.

    Returns:
        {"model", "task", "data", "split", "n", "metrics", "references"}; `metrics` as
        `distill.metrics.prediction_metrics`, `references` the published numbers for the task with sources.
    """
    from emopillars.inference.classifier import EmotionClassifier

    clf = clf or EmotionClassifier.from_pretrained(cfg.model)
    task = get_task(cfg.task) if cfg.task else None
    if task:
        options = cfg.read_options(_saved_json(clf.path, "finetune_config.json"))
        rows = read_task(task, cfg.data, options)[cfg.split]
        if not rows:
            raise EmopillarsError(f"{cfg.data}: the {cfg.split} split of {task.name} is empty")
        texts, contexts, gold = task_rows(clf, task, rows)
    else:
        split = _train_format_split(clf, cfg)
        if not len(split):
            raise EmopillarsError(f"{cfg.data}: the {cfg.split} split is empty")
        texts, contexts, gold = split.texts, split.contexts, split.gold
    metrics = score(clf, texts, contexts, gold, task, cfg.batch_size)
    log.info("%s on %s [%s]: %d rows scored", cfg.model, cfg.data, cfg.split, len(texts))
    result = {
        "model": str(cfg.model),
        "task": task.name if task else None,
        "data": str(cfg.data),
        "split": cfg.split,
        "n": len(texts),
        "metrics": metrics,
        "references": references().get(task.name, []) if task else [],
    }
    if cfg.out:
        cfg.out.parent.mkdir(parents=True, exist_ok=True)
        cfg.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result
