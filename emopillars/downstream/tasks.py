"""The four downstream benchmarks: label set, problem type, input mode and headline metrics.

A `Task` is everything the finetune/evaluate code needs to know about a benchmark, its reader
included (how its files are laid out is the reader's business, in `readers/`). Label order is the
order of the public release's codebook; the mapping onto the 28 pretrained labels is defined here,
beside the task that uses it.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emopillars.downstream.readers import ReadOptions, Row, SplitRows, emocontext, goemotions, iemocap, isear
from emopillars.errors import EmopillarsError
from emopillars.sources import SPLITS, Mode, ProblemType
from emopillars.taxonomy import LABELS

log = logging.getLogger(__name__)
Reader = Callable[[str | Path, ReadOptions, tuple[str, ...]], list[Row]]  # (source, options, labels) -> rows


@dataclass(frozen=True)
class Task:
    """One benchmark.

    Attributes:
        name: the `--task` value.
        title: the benchmark's own spelling, for help texts and docs.
        reader: reads the release into rows (`readers/`), given the task's labels.
        labels: the task's label names, in the order of the model head.
        problem_type: multi-label (sigmoid + BCE) or single-label (softmax + cross-entropy).
        mode: whether the encoder sees a context (pair encoding) beside the text.
        mapping: task label -> pretrained 28-label names whose head rows initialise it.
        metrics: the metric keys the literature reports for this task, headline first.
        emotion_labels: the labels `micro_f1` averages over (EmoContext leaves out `others`).
    """

    name: str
    title: str
    reader: Reader
    labels: tuple[str, ...]
    problem_type: ProblemType
    mode: Mode
    mapping: dict[str, tuple[str, ...]]
    metrics: tuple[str, ...]
    emotion_labels: tuple[str, ...] | None = None


# Task label -> the GoEmotions labels whose head rows initialise it (rows are averaged); each mapping is
# argued in docs/label_mappings.md. Key order is the release's codebook order, e.g. ISEAR's codes 1-7.
ISEAR: dict[str, tuple[str, ...]] = {
    "joy": ("joy",),
    "fear": ("fear",),
    "anger": ("anger",),
    "sadness": ("sadness",),
    "disgust": ("disgust",),
    "shame": ("embarrassment",),
    "guilt": ("remorse",),
}
IEMOCAP: dict[str, tuple[str, ...]] = {
    "neu": ("neutral",),
    "hap": ("joy",),
    "sad": ("sadness",),
    "ang": ("anger",),
    "exc": ("excitement",),
    "fru": ("annoyance", "disappointment"),
}
EMOCONTEXT: dict[str, tuple[str, ...]] = {
    "happy": ("joy", "amusement", "excitement"),
    "sad": ("sadness", "grief", "disappointment"),
    "angry": ("anger", "annoyance"),
    "others": ("neutral",),
}


def _task(name: str, title: str, reader: Reader, mapping: dict[str, tuple[str, ...]], **fields: Any) -> Task:
    return Task(name=name, title=title, reader=reader, labels=tuple(mapping), mapping=mapping, **fields)


GOEMOTIONS = {label: (label,) for label in LABELS}
SINGLE = {"problem_type": "single_label"}
# name, title, reader, label mapping (its keys are the labels), problem type, input mode, headline metrics
TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        _task("goemotions", "GoEmotions", goemotions.read, GOEMOTIONS, problem_type="multi_label",
              mode="contextless", metrics=("macro_f1", "micro_f1")),
        _task("isear", "ISEAR", isear.read, ISEAR, **SINGLE, mode="contextless", metrics=("accuracy", "macro_f1")),
        _task("iemocap", "IEMOCAP", iemocap.read, IEMOCAP, **SINGLE, mode="contextual",
              metrics=("weighted_f1", "accuracy")),
        _task("emocontext", "EmoContext", emocontext.read, EMOCONTEXT, **SINGLE, mode="contextual",
              metrics=("micro_f1", "accuracy", "macro_f1"), emotion_labels=("happy", "sad", "angry")),
    )
}  # fmt: skip


def get_task(name: str) -> Task:
    """The task called `name`, or a one-line error listing the known ones."""
    try:
        return TASKS[name.lower()]
    except KeyError:
        raise EmopillarsError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}") from None


def titles(joiner: str = "or") -> str:
    """The benchmarks' names for a sentence: "GoEmotions, ISEAR, IEMOCAP or EmoContext"."""
    names = [task.title for task in TASKS.values()]
    return f"{', '.join(names[:-1])} {joiner} {names[-1]}"


def read_task(task: str | Task, source: str | Path, options: ReadOptions | None = None) -> SplitRows:
    """`{"train": rows, "validation": rows, "test": rows}` of a release file, a folder of split files, a
    `save_to_disk` folder or a Hub id; a validation split is carved from train where the release has none."""
    task = get_task(task) if isinstance(task, str) else task
    options = options or ReadOptions()
    rows = task.reader(source, options, task.labels)
    if not rows:
        raise EmopillarsError(f"{source}: no {task.name} examples found")
    splits: SplitRows = {name: [] for name in SPLITS}
    for row in rows:
        splits[row["split"]].append(row)
    if not splits["validation"]:
        _carve_validation(splits, options.split_seed)
    log.info("read %s from %s: %s", task.name, source, {k: len(v) for k, v in splits.items()})
    return splits


def _carve_validation(splits: SplitRows, seed: int) -> None:
    """Move one train group (an IEMOCAP dialogue, else a row) to validation: training needs one."""
    groups = sorted({row.get("dialogue_id", row["id"]) for row in splits["train"]})
    if len(groups) < 2:
        return
    chosen = min(groups, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).digest())
    splits["validation"] = [r for r in splits["train"] if r.get("dialogue_id", r["id"]) == chosen]
    splits["train"] = [r for r in splits["train"] if r.get("dialogue_id", r["id"]) != chosen]
    for row in splits["validation"]:
        row["split"] = "validation"
