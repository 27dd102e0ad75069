"""The objective a config composes: which terms, under which names, each equal to its part alone."""

from __future__ import annotations

import pytest
import torch

from emopillars.distill.config import TrainConfig
from emopillars.distill.data import Split
from emopillars.distill.losses import FocalLoss, LabelSmoothing, Orthogonality, SoftBCE, bernoulli_kl, build_objective

LABELS = ("joy", "anger", "fear")
TRAIN = Split.from_labels(["a", "b", "c", "d"], [["joy"], ["anger"], ["joy", "fear"], ["joy"]], LABELS)
LOGITS = torch.tensor([[2.0, -1.0, 0.5], [-0.3, 1.2, -2.0]])
TARGETS = torch.tensor([[1.0, 0.0, 0.7], [0.2, 1.0, 0.0]])
TEACHER = LOGITS.flip(0)
HEAD = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
STEP = {"logits": LOGITS, "targets": TARGETS, "teacher_logits": TEACHER, "head": HEAD}


def test_default_objective_is_soft_bce_alone() -> None:
    terms = build_objective(TrainConfig(labels=LABELS), TRAIN)(**STEP)
    assert list(terms) == ["task"]
    assert terms["task"].item() == pytest.approx(SoftBCE()(LOGITS, TARGETS).item())


def test_every_term_from_the_config_by_name() -> None:
    cfg = TrainConfig(labels=LABELS, loss="focal", focal_alpha=False, label_smoothing=0.1, ortho_weight=0.5,
                      kd_weight=0.25, temperature=2.0)  # fmt: skip
    terms = build_objective(cfg, TRAIN, distil=True)(**STEP)
    assert list(terms) == ["task", "kd", "ortho"]
    focal = FocalLoss(gamma=2.0, label_smoothing=0.1)(LOGITS, TARGETS)
    assert terms["task"].item() == pytest.approx(0.75 * focal.item())
    assert terms["kd"].item() == pytest.approx(0.25 * bernoulli_kl(LOGITS, TEACHER, 2.0).item())
    assert terms["ortho"].item() == pytest.approx(Orthogonality(0.5)(HEAD).item())
    assert build_objective(cfg, TRAIN, distil=False)(**STEP).keys() == {"task", "ortho"}


def test_without_kd_is_the_objective_of_a_run_without_teacher() -> None:
    """The validation loss: the KD wrapper gives way to its base loss in full; every other term stays."""
    cfg = TrainConfig(labels=LABELS, loss="focal", pos_weight=True, label_smoothing=0.1, ortho_weight=0.5,
                      kd_weight=0.25)  # fmt: skip
    plain = build_objective(cfg, TRAIN, distil=True).without_kd()(**STEP | {"teacher_logits": None})
    alone = build_objective(cfg, TRAIN, distil=False)(**STEP)
    assert plain.keys() == alone.keys() == {"task", "ortho"}
    assert all(plain[k].item() == pytest.approx(alone[k].item()) for k in alone)


def test_label_smoothing_is_its_own_part() -> None:
    assert torch.allclose(LabelSmoothing(0.2)(TARGETS), TARGETS * 0.8 + 0.1)
    assert LabelSmoothing(0.3, classes=None)(torch.eye(3)).sum(-1).tolist() == pytest.approx([1.0] * 3)
    assert SoftBCE(label_smoothing=0.2)(LOGITS, TARGETS).item() == pytest.approx(
        SoftBCE()(LOGITS, LabelSmoothing(0.2)(TARGETS)).item()
    )
