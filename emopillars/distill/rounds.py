"""Students and teachers: the teacher of KD, the unlabelled pool and its pseudo-labels.

`trainer.train` runs the rounds. Each round: the best model so far labels the unlabelled pool, rows
whose top probability reaches `cfg.pseudo_threshold` join the training data with the model's
probabilities as soft targets, the last student becomes the teacher, and a fresh student (from the
pretrained encoder) trains with KD from it. One round without a pool is plain training (with KD when
`cfg.teacher` is set). Born-again generations (`cfg.born_again`) are the same loop without a pool:
each generation distils from the previous one. A multi-task run (`multitask.train_multitask`) runs
the same rounds with one teacher per task (`task_teachers`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from emopillars.distill.data import Split, read_texts
from emopillars.errors import EmopillarsError

if TYPE_CHECKING:
    from emopillars.distill.config import TrainConfig
    from emopillars.distill.tasks import Task
    from emopillars.inference.classifier import EmotionClassifier

log = logging.getLogger(__name__)


def load_teacher(cfg: TrainConfig, device: Any = None) -> EmotionClassifier:
    """`cfg.teacher` on `device` (this process's own, when several train); it must predict the student's labels."""
    from emopillars.inference.classifier import EmotionClassifier

    assert cfg.teacher is not None
    teacher = EmotionClassifier.from_pretrained(cfg.teacher, device=None if device is None else str(device))
    if teacher.labels != tuple(cfg.labels):
        raise EmopillarsError(f"teacher {cfg.teacher} predicts other labels ({len(teacher.labels)}) than the student")
    return teacher


def _task_teacher(ref: str, task: Task, device: Any, required: bool) -> EmotionClassifier | None:
    """`ref`'s head for `task`: its head of the same name (a multi-task folder), else its own head when it
    predicts the task's labels; None (or, when `required`, an error) when it has neither."""
    from emopillars.distill.tasks import read_tasks
    from emopillars.hub import resolve_model
    from emopillars.inference.classifier import EmotionClassifier

    heads = read_tasks(resolve_model(ref)) or {"tasks": {}}
    name = task.name if task.name in heads["tasks"] else None
    teacher = EmotionClassifier.from_pretrained(ref, device=None if device is None else str(device), task=name)
    if teacher.labels == tuple(task.cfg.labels):
        return teacher
    if required:
        raise EmopillarsError(f"--task-teacher {task.name}={ref} predicts other labels than task {task.name}")
    return None


def task_teachers(cfg: TrainConfig, tasks: list[Task], device: Any = None) -> dict[str, tuple[str, EmotionClassifier]]:
    """The tasks that have a teacher, each with (where from, its head): its `--task-teacher NAME=MODEL`, else
    `--teacher`'s head for it."""
    names = [t.name for t in tasks]
    pairs = [spec.partition("=") for spec in cfg.task_teacher]
    for spec, (name, sep, ref) in zip(cfg.task_teacher, pairs, strict=True):
        if not sep or not ref or name not in names:
            raise EmopillarsError(f"--task-teacher {spec!r}: expected NAME=MODEL with NAME one of {names}")
    own = {name: ref for name, _, ref in pairs}
    if len(own) < len(pairs):
        raise EmopillarsError("--task-teacher names a task twice")
    teachers = {}
    for t in tasks:
        ref = own.get(t.name) or cfg.teacher
        head = None if ref is None else _task_teacher(ref, t, device, required=t.name in own)
        if head is not None:
            teachers[t.name] = (ref, head)
    rest = [t.name for t in tasks if t.name not in own]
    if cfg.teacher and rest and not set(rest) & set(teachers):
        raise EmopillarsError(f"teacher {cfg.teacher} has no head for any of the tasks {rest} (by name or labels)")
    log.info("teachers: %s", {t.name: teachers.get(t.name, ("none",))[0] for t in tasks})
    return teachers


def load_pool(cfg: TrainConfig) -> tuple[list[str], list[str] | None]:
    """The unlabelled texts (and contexts, needed in contextual mode)."""
    assert cfg.unlabeled is not None
    texts, contexts = read_texts(cfg.unlabeled)
    if cfg.mode == "contextual" and contexts is None:
        raise EmopillarsError(f"{cfg.unlabeled}: mode 'contextual' needs a 'context' column in the unlabeled pool")
    if not texts:
        raise EmopillarsError(f"{cfg.unlabeled}: the unlabeled pool is empty")
    return texts, contexts if cfg.mode == "contextual" else None


def pseudo_label(
    model: EmotionClassifier, texts: list[str], contexts: list[str] | None, threshold: float, batch_size: int = 64
) -> Split:
    """Rows of the pool whose most confident label reaches `threshold`, with soft targets = probabilities.

    Hard labels (for the sampler and loss statistics) follow the model's tuned thresholds.
    """
    from emopillars.distill.metrics import decide

    scores = model.predict_proba(texts, contexts, batch_size)
    keep = np.flatnonzero(scores.max(1) >= threshold)
    single = model.problem_type == "single_label"
    gold = decide(scores[keep], model.thresholds, single)
    log.info("pseudo-labelling: %d of %d pool rows reach confidence %.2f", len(keep), len(texts), threshold)
    return Split(
        [texts[i] for i in keep],
        None if contexts is None else [contexts[i] for i in keep],
        scores[keep].astype(np.float32),
        gold,
    )
