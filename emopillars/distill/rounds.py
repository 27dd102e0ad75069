"""Students and teachers: the teacher of KD, the pseudo-label rounds, the best student of them.

Each round: the best model so far labels the unlabelled pool, rows whose top probability reaches
`cfg.pseudo_threshold` join the training data with the model's probabilities as soft targets, the
last student becomes the teacher, and a fresh student (from the pretrained encoder) trains with KD
from it. One round without a pool is plain training (with KD when `cfg.teacher` is set).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emopillars.distill.data import Split, Splits, read_texts
from emopillars.errors import EmopillarsError

if TYPE_CHECKING:
    from emopillars.distill.config import TrainConfig
    from emopillars.distill.model import HeadInit
    from emopillars.distill.trainer import FitResult
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
    labeller: EmotionClassifier, texts: list[str], contexts: list[str] | None, threshold: float, batch_size: int = 64
) -> Split:
    """Rows of the pool whose most confident label reaches `threshold`, with soft targets = probabilities.

    Hard labels (for the sampler and loss statistics) follow the labeller's tuned thresholds.
    """
    from emopillars.distill.metrics import decide

    scores = labeller.predict_proba(texts, contexts, batch_size)
    keep = np.flatnonzero(scores.max(1) >= threshold)
    single = labeller.problem_type == "single_label"
    gold = decide(scores[keep], labeller.thresholds, single)
    log.info("pseudo-labelling: %d of %d pool rows reach confidence %.2f", len(keep), len(texts), threshold)
    return Split(
        [texts[i] for i in keep],
        None if contexts is None else [contexts[i] for i in keep],
        scores[keep].astype(np.float32),
        gold,
    )


def run_rounds(
    cfg: TrainConfig, data: Splits, teacher: EmotionClassifier | None, head_init: HeadInit | None, out: Path
) -> tuple[EmotionClassifier, FitResult, list[dict]]:
    """Every round of `cfg` (checkpoints under `out/checkpoints/round-N`): the best student, its run, a summary."""
    from emopillars.distill.model import load_classifier
    from emopillars.distill.trainer import evaluate, fit
    from emopillars.inference.classifier import EmotionClassifier

    pool = load_pool(cfg) if cfg.rounds > 1 else None
    rounds: list[dict] = []
    best: tuple[float, EmotionClassifier, FitResult] | None = None
    student: EmotionClassifier | None = None
    for r in range(cfg.rounds):
        added, train_split = 0, data.train
        if r > 0:
            assert best is not None and pool is not None
            pseudo = pseudo_label(best[1], *pool, cfg.pseudo_threshold, cfg.eval_batch_size)
            added, train_split = len(pseudo), data.train.concat(pseudo)
            teacher = student
        model, tokenizer = load_classifier(cfg.model, cfg.labels, cfg.problem_type, cfg.dropout, head_init)
        run_dir = out / "checkpoints" / f"round-{r}"
        result = fit(cfg, model, tokenizer, replace(data, train=train_split), teacher, run_dir)
        val, thresholds = evaluate(result.model, tokenizer, data.validation, cfg)
        student = EmotionClassifier(result.model, tokenizer, thresholds, cfg.mode, cfg.max_length)
        rounds.append(
            {
                "round": r + 1,
                "pseudo_labelled_added": added,
                "train_rows": len(train_split),
                "teacher": bool(teacher),
                "steps": result.steps,
                "best_step": result.best_step,
                "stopped": result.stopped,
                "validation": {k: val[k] for k in ("macro_f1", "micro_f1", "roc_auc_macro", "loss")},
            }
        )
        log.info("round %d: validation macro-F1 %.4f (+%d pseudo-labelled rows)", r + 1, val["macro_f1"], added)
        if best is None or val["macro_f1"] > best[0]:
            best = (val["macro_f1"], student, result)
    assert best is not None
    return best[1], best[2], rounds
