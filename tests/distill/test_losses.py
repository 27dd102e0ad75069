"""Each loss against an independent reference computation on fixed tensors, plus gradient checks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from emopillars.distill.losses import (
    FocalLoss,
    KnowledgeDistillation,
    Orthogonality,
    SoftBCE,
    SoftCrossEntropy,
    bernoulli_kl,
    softmax_kl,
)

LOGITS = torch.tensor([[2.0, -1.0, 0.5], [-0.3, 1.2, -2.0]], dtype=torch.float64)
TARGETS = torch.tensor([[1.0, 0.0, 0.7], [0.2, 1.0, 0.0]], dtype=torch.float64)


def _manual_bce(x: torch.Tensor, t: torch.Tensor, pw: torch.Tensor | None = None) -> float:
    total = 0.0
    for i in range(x.shape[0]):
        for j in range(x.shape[1]):
            p = 1 / (1 + math.exp(-float(x[i, j])))
            w = 1.0 if pw is None else float(pw[j])
            total += -(w * float(t[i, j]) * math.log(p) + (1 - float(t[i, j])) * math.log(1 - p))
    return total / x.numel()


def test_soft_bce_matches_formula_with_pos_weight_and_smoothing() -> None:
    pw = torch.tensor([1.0, 3.0, 2.0], dtype=torch.float64)
    assert SoftBCE()(LOGITS, TARGETS).item() == pytest.approx(_manual_bce(LOGITS, TARGETS))
    assert SoftBCE(pw)(LOGITS, TARGETS).item() == pytest.approx(_manual_bce(LOGITS, TARGETS, pw))
    smoothed = TARGETS * 0.8 + 0.1
    assert SoftBCE(label_smoothing=0.2)(LOGITS, TARGETS).item() == pytest.approx(_manual_bce(LOGITS, smoothed))


def test_focal_with_gamma_zero_equals_bce_and_gamma_two_matches_formula() -> None:
    assert FocalLoss(gamma=0.0)(LOGITS, TARGETS).item() == pytest.approx(SoftBCE()(LOGITS, TARGETS).item())
    p = torch.sigmoid(LOGITS)
    alpha = torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64)
    ref = -(TARGETS * (1 - p) ** 2 * p.log() + (1 - TARGETS) * p**2 * (1 - p).log()) * alpha
    assert FocalLoss(gamma=2.0, alpha=alpha)(LOGITS, TARGETS).item() == pytest.approx(ref.mean().item())
    # focusing: confident correct rows weigh less than under BCE
    assert FocalLoss(gamma=2.0)(LOGITS, TARGETS).item() < SoftBCE()(LOGITS, TARGETS).item()
    with pytest.raises(ValueError, match="gamma"):
        FocalLoss(gamma=-1.0)


def test_soft_cross_entropy_equals_torch_on_one_hot() -> None:
    hard = torch.tensor([0, 1])
    one_hot = F.one_hot(hard, 3).double()
    assert SoftCrossEntropy()(LOGITS, one_hot).item() == pytest.approx(F.cross_entropy(LOGITS, hard).item())
    ls = SoftCrossEntropy(0.1)(LOGITS, one_hot).item()
    assert ls == pytest.approx(F.cross_entropy(LOGITS, hard, label_smoothing=0.1).item())


def test_orthogonality_zero_for_orthogonal_rows_positive_otherwise() -> None:
    reg = Orthogonality(weight=0.5)
    assert reg(torch.eye(3, 4)).item() == pytest.approx(0.0)
    assert reg(torch.tensor([[1.0, 0.0], [-1.0, 0.0]])).item() == pytest.approx(0.0)  # opposed: not penalised
    # rows (1,0), (1,1), (0,1): cosines 1/sqrt2, 0, 1/sqrt2 -> 0.5 * sqrt2
    rows = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    assert reg(rows).item() == pytest.approx(0.5 * math.sqrt(2), rel=1e-6)


def test_bernoulli_kl_against_hand_computed_value() -> None:
    student, teacher, T = torch.tensor([[0.0]]), torch.tensor([[2.0]]), 2.0
    q, p = 1 / (1 + math.exp(-1.0)), 0.5  # sigmoid(2/2), sigmoid(0/2)
    expected = (q * math.log(q / p) + (1 - q) * math.log((1 - q) / (1 - p))) * T**2
    assert bernoulli_kl(student, teacher, T).item() == pytest.approx(expected, rel=1e-6)
    assert bernoulli_kl(LOGITS, LOGITS, 3.0).item() == pytest.approx(0.0, abs=1e-12)


def test_softmax_kl_equals_torch_kl_div() -> None:
    teacher = LOGITS.flip(0)
    ref = F.kl_div(
        F.log_softmax(LOGITS / 2, -1), F.log_softmax(teacher / 2, -1), log_target=True, reduction="batchmean"
    )
    assert softmax_kl(LOGITS, teacher, 2.0).item() == pytest.approx(ref.item() * 4)


def test_kd_wraps_base_loss_with_weights() -> None:
    kd = KnowledgeDistillation(SoftBCE(), temperature=2.0, weight=0.25)
    terms = kd(LOGITS, TARGETS, LOGITS.flip(0))
    assert terms["task"].item() == pytest.approx(0.75 * SoftBCE()(LOGITS, TARGETS).item())
    assert terms["kd"].item() == pytest.approx(0.25 * bernoulli_kl(LOGITS, LOGITS.flip(0), 2.0).item())
    with pytest.raises(ValueError, match="temperature"):
        KnowledgeDistillation(SoftBCE(), temperature=0.0)


@pytest.mark.parametrize(
    "loss",
    [
        lambda x: SoftBCE(label_smoothing=0.1)(x, TARGETS),
        lambda x: FocalLoss(gamma=2.0)(x, TARGETS),
        lambda x: SoftCrossEntropy(0.1)(x, TARGETS),
        lambda x: bernoulli_kl(x, LOGITS.flip(0), 2.0),
        lambda x: Orthogonality(1.0)(x),
    ],
)
def test_gradients_match_finite_differences(loss) -> None:
    x = LOGITS.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(loss, (x,))
