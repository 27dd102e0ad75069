"""The four downstream benchmarks: label set, problem type, input mode and headline metrics.

A `Task` is everything the finetune/evaluate code needs to know about a benchmark besides how
its files are laid out (that is `readers/`). Label order is the order of the public release's
codebook; the mapping onto the 28 pretrained labels is defined here, beside the task that uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emopillars.errors import EmopillarsError
from emopillars.sources import Mode, ProblemType
from emopillars.taxonomy import LABELS


@dataclass(frozen=True)
class Task:
    """One benchmark.

    Attributes:
        name: the `--task` value.
        labels: the task's label names, in the order of the model head.
        problem_type: multi-label (sigmoid + BCE) or single-label (softmax + cross-entropy).
        mode: whether the encoder sees a context (pair encoding) beside the text.
        mapping: task label -> pretrained 28-label names whose head rows initialise it.
        metrics: the metric keys the literature reports for this task, headline first.
        emotion_labels: the labels `micro_f1` averages over (EmoContext leaves out `others`).
    """

    name: str
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


def _task(name: str, mapping: dict[str, tuple[str, ...]], **fields: Any) -> Task:
    return Task(name=name, labels=tuple(mapping), mapping=mapping, **fields)


TASKS: dict[str, Task] = {
    "goemotions": _task(
        "goemotions",
        {label: (label,) for label in LABELS},
        problem_type="multi_label",
        mode="contextless",
        metrics=("macro_f1", "micro_f1"),
    ),
    "isear": _task("isear", ISEAR, problem_type="single_label", mode="contextless", metrics=("accuracy", "macro_f1")),
    "iemocap": _task(
        "iemocap", IEMOCAP, problem_type="single_label", mode="contextual", metrics=("weighted_f1", "accuracy")
    ),
    "emocontext": _task(
        "emocontext",
        EMOCONTEXT,
        problem_type="single_label",
        mode="contextual",
        metrics=("micro_f1", "accuracy", "macro_f1"),
        emotion_labels=("happy", "sad", "angry"),
    ),
}


def get_task(name: str) -> Task:
    """The task called `name`, or a one-line error listing the known ones."""
    try:
        return TASKS[name.lower()]
    except KeyError:
        raise EmopillarsError(f"unknown task {name!r}; choose one of: {', '.join(TASKS)}") from None
