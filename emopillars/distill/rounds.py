"""Students and teachers: the teacher of KD, the unlabelled pool and its pseudo-labels.

`trainer.train` runs the rounds. Each round: the best model so far labels the unlabelled pool, rows
whose top probability reaches `cfg.pseudo_threshold` join the training data with the model's
probabilities as soft targets, the last student becomes the teacher, and a fresh student (from the
pretrained encoder) trains with KD from it. One round without a pool is plain training (with KD when
`cfg.teacher` is set). Born-again generations (`cfg.born_again`) are the same loop without a pool:
each generation distils from the previous one.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from emopillars.distill.data import Split, read_texts
from emopillars.errors import EmopillarsError

if TYPE_CHECKING:
    from emopillars.distill.config import TrainConfig
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
