"""The four downstream benchmarks: label set, problem type, input mode and headline metrics.

A `Task` is everything the finetune/evaluate code needs to know about a benchmark besides how
its files are laid out (that is `readers.py`). Label order is the order of the public release's
codebook, and the mapping onto the 28 pretrained labels comes from `emopillars.taxonomy`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from emopillars import taxonomy
from emopillars.errors import EmopillarsError

ProblemType = Literal["multi_label", "single_label"]
Mode = Literal["contextless", "contextual"]


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


TASKS: dict[str, Task] = {
    "goemotions": Task(
        name="goemotions",
        labels=taxonomy.LABELS,
        problem_type="multi_label",
        mode="contextless",
        mapping=taxonomy.GOEMOTIONS,
        metrics=("macro_f1", "micro_f1"),
    ),
    "isear": Task(
        name="isear",
        labels=tuple(taxonomy.ISEAR),  # joy fear anger sadness disgust shame guilt: the ISEAR codes 1-7
        problem_type="single_label",
        mode="contextless",
        mapping=taxonomy.ISEAR,
        metrics=("accuracy", "macro_f1"),
    ),
    "iemocap": Task(
        name="iemocap",
        labels=tuple(taxonomy.IEMOCAP),
        problem_type="single_label",
        mode="contextual",
        mapping=taxonomy.IEMOCAP,
        metrics=("weighted_f1", "accuracy"),
    ),
    "emocontext": Task(
        name="emocontext",
        labels=tuple(taxonomy.EMOCONTEXT),
        problem_type="single_label",
        mode="contextual",
        mapping=taxonomy.EMOCONTEXT,
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
