"""Training objectives: small `nn.Module` terms over logits (B, L) and soft targets (B, L).

Every term declares `inputs`, the names of the step tensors it reads, in call order:
`logits` (B, L), `targets` (B, L), `teacher_logits` (B, L), `head` (L, H), the classifier rows, and
`anneal` (0-d), the teacher-annealing lambda of the step.
`build_objective(cfg, train, distil)` composes the terms a `TrainConfig` asks for into one
`Objective`; the trainer calls it on every micro-batch and sums and logs the named terms it returns,
so a new term touches this module and the config only. Shapes: B rows, L labels, H hidden size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

if TYPE_CHECKING:
    from emopillars.distill.config import TrainConfig
    from emopillars.distill.data import Split


class LabelSmoothing(nn.Module):
    """Pulls every target towards uniform by eps (Szegedy et al., 2016): t' = t * (1 - eps) + eps / classes.

    Args:
        eps: the smoothing share in [0, 1).
        classes: 2 for per-label sigmoid targets; None for a distribution over the last axis (softmax).
    """

    def __init__(self, eps: float = 0.0, classes: int | None = 2) -> None:
        super().__init__()
        self.eps, self.classes = eps, classes

    def forward(self, targets: torch.Tensor) -> torch.Tensor:
        if not self.eps:
            return targets
        return targets * (1.0 - self.eps) + self.eps / (self.classes or targets.shape[-1])


class SoftBCE(nn.Module):
    """Binary cross-entropy on soft targets, averaged over B*L.

    loss = -mean[ pw_j * t * log s(x) + (1 - t) * log(1 - s(x)) ]

    Args:
        pos_weight: (L,) weight of the positive term per label (e.g. neg/pos counts), or None.
        label_smoothing: eps in t' = t * (1 - eps) + eps / 2.
    """

    inputs = ("logits", "targets")

    def __init__(self, pos_weight: torch.Tensor | None = None, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)
        self.smooth = LabelSmoothing(label_smoothing)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = self.smooth(targets.to(logits.dtype))
        return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=self.pos_weight)


class FocalLoss(nn.Module):
    """Multi-label focal loss on soft targets (Lin et al., 2017, "Focal Loss for Dense Object Detection").

    loss_j = -a_j * [ pw_j * t * (1 - p)^g * log p + (1 - t) * p^g * log(1 - p) ],  p = s(x),
    averaged over B*L. With g = 0, a = 1 and pw = 1 it equals `SoftBCE`.

    Args:
        gamma: focusing parameter g >= 0; larger down-weights easy examples.
        alpha: (L,) per-label weight a_j (e.g. inverse label frequency normalised to mean 1), or None.
        pos_weight: (L,) weight of the positive term, or None.
        label_smoothing: as in `SoftBCE`.
    """

    inputs = ("logits", "targets")

    def __init__(
        self,
        gamma: float = 2.0,
        alpha: torch.Tensor | None = None,
        pos_weight: torch.Tensor | None = None,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = gamma
        self.register_buffer("alpha", alpha)
        self.register_buffer("pos_weight", pos_weight)
        self.smooth = LabelSmoothing(label_smoothing)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = self.smooth(targets.to(logits.dtype))
        log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)  # stable log s(x), log(1 - s(x))
        p = log_p.exp()
        pos = targets * (1 - p).pow(self.gamma) * log_p
        if self.pos_weight is not None:
            pos = pos * self.pos_weight
        loss = -(pos + (1 - targets) * p.pow(self.gamma) * log_not_p)  # (B, L)
        if self.alpha is not None:
            loss = loss * self.alpha
        return loss.mean()


class SoftCrossEntropy(nn.Module):
    """Softmax cross-entropy against a target distribution per row (single-label problems).

    loss = -mean_b sum_j t'_bj log softmax(x_b)_j,  t' = t * (1 - eps) + eps / L.
    """

    inputs = ("logits", "targets")

    def __init__(self, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.smooth = LabelSmoothing(label_smoothing, classes=None)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        targets = self.smooth(targets.to(logits.dtype))
        return -(targets * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def bernoulli_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-label Bernoulli KL(teacher || student) of temperature-softened sigmoids, mean over B*L, times T^2.

    KL = q log(q/p) + (1-q) log((1-q)/(1-p)),  q = s(t/T), p = s(x/T)   (Hinton et al., 2015, scaled by T^2).
    """
    s, t = student / temperature, teacher / temperature
    q = torch.sigmoid(t)
    kl = q * (F.logsigmoid(t) - F.logsigmoid(s)) + (1 - q) * (F.logsigmoid(-t) - F.logsigmoid(-s))
    return kl.mean() * temperature**2


def softmax_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(t/T) || softmax(x/T)) per row, mean over B, times T^2 (Hinton et al., 2015)."""
    log_q = F.log_softmax(teacher / temperature, dim=-1)
    log_p = F.log_softmax(student / temperature, dim=-1)
    return (log_q.exp() * (log_q - log_p)).sum(-1).mean() * temperature**2


class KnowledgeDistillation(nn.Module):
    """Wraps a base loss: {"task": (1 - w) * base(x, t), "kd": w * T^2 * KL(teacher || student)}.

    Args:
        base: the supervised loss on the (soft) targets.
        temperature: T > 0 softening both teacher and student.
        weight: w in [0, 1], the KD share.
        multi_label: Bernoulli KL per label (sigmoid heads) or softmax KL (single-label heads).
    """

    inputs = ("logits", "targets", "teacher_logits")

    def __init__(self, base: nn.Module, temperature: float = 2.0, weight: float = 0.5, multi_label: bool = True):
        super().__init__()
        if temperature <= 0 or not 0.0 <= weight <= 1.0:
            raise ValueError(f"KD needs temperature > 0 and weight in [0, 1], got {temperature}, {weight}")
        self.base, self.temperature, self.weight = base, temperature, weight
        self.kl = bernoulli_kl if multi_label else softmax_kl

    def forward(
        self, logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        return {
            "task": (1 - self.weight) * self.base(logits, targets),
            "kd": self.weight * self.kl(logits, teacher_logits.to(logits.dtype), self.temperature),
        }


class TeacherAnnealing(nn.Module):
    """Wraps a base loss: base(x, lambda * t + (1 - lambda) * q), q the teacher's probabilities (BAM!).

    Clark et al. (ACL 2019, "BAM! Born-Again Multi-Task Networks"): lambda rises linearly from 0 at the
    first optimizer step to 1 at the last, so the target moves from the teacher's distribution to the
    gold one. It replaces the fixed KD mix, as in the paper: the teacher is read at temperature 1 and
    `kd_weight` does not apply. The trainer passes lambda as the step tensor `anneal` (a 0-d tensor).

    Args:
        base: the supervised loss on the (soft) targets.
        multi_label: teacher probabilities by sigmoid per label, or softmax over the classes.
    """

    inputs = ("logits", "targets", "teacher_logits", "anneal")

    def __init__(self, base: nn.Module, multi_label: bool = True) -> None:
        super().__init__()
        self.base, self.multi_label = base, multi_label

    def forward(
        self, logits: torch.Tensor, targets: torch.Tensor, teacher_logits: torch.Tensor, anneal: torch.Tensor
    ) -> torch.Tensor:
        teacher = teacher_logits.to(logits.dtype)
        q = teacher.sigmoid() if self.multi_label else teacher.softmax(-1)
        lam = anneal.to(logits.dtype)
        return self.base(logits, lam * targets.to(logits.dtype) + (1 - lam) * q)


class Orthogonality(nn.Module):
    """Pushes classifier rows apart: lambda * sum_{i<j} max(0, cos(w_i, w_j)) over the weight (L, H).

    Zero for mutually orthogonal (or opposed) rows, positive when any two labels share a direction.
    """

    inputs = ("head",)

    def __init__(self, weight: float) -> None:
        super().__init__()
        self.weight = weight

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        unit = F.normalize(rows.float(), dim=-1)
        cos = unit @ unit.T  # (L, L)
        upper = torch.triu(cos, diagonal=1).clamp(min=0)
        return self.weight * upper.sum()


def label_statistics(train: Split) -> tuple[torch.Tensor, torch.Tensor]:
    """(pos_weight, alpha) per label from hard train labels: neg/pos in [1, 100]; 1/freq scaled to mean 1."""
    pos = train.gold.sum(0).astype(np.float64)
    n = len(train)
    pos_weight = np.clip((n - pos) / np.maximum(pos, 1.0), 1.0, 100.0)
    inv = 1.0 / np.maximum(pos / n, 1.0 / n)
    alpha = inv / inv.mean()
    return torch.tensor(pos_weight, dtype=torch.float32), torch.tensor(alpha, dtype=torch.float32)


class Objective(nn.Module):
    """The terms of one training run by name; called with every step tensor, it returns each term's value.

    A term that returns named parts (KD: task and kd) contributes those names instead of its own.
    """

    def __init__(self, terms: dict[str, nn.Module]) -> None:
        super().__init__()
        self.terms = nn.ModuleDict(terms)

    def forward(self, **step: torch.Tensor | None) -> dict[str, torch.Tensor]:
        values: dict[str, torch.Tensor] = {}
        for name, term in self.terms.items():
            value = term(*(step[key] for key in term.inputs))
            values.update(value if isinstance(value, dict) else {name: value})
        return values

    def without_kd(self) -> Objective:
        """The same terms with every KD wrapper replaced by its base loss: the validation loss.

        Validation has no teacher, and the supervised term then counts in full, as in a run without
        one; label smoothing, focal, `pos_weight` and orthogonality stay, so the two curves a user
        compares measure the same objective.
        """
        teacher_terms = (KnowledgeDistillation, TeacherAnnealing)
        plain = {name: term.base if isinstance(term, teacher_terms) else term for name, term in self.terms.items()}
        return Objective(plain)

    @property
    def anneals(self) -> bool:
        """Whether a term reads the teacher-annealing lambda (the trainer then passes and logs it)."""
        return any(isinstance(term, TeacherAnnealing) for term in self.terms.values())


def build_objective(cfg: TrainConfig, train: Split, distil: bool = False) -> Objective:
    """Every term `cfg` asks for: the supervised loss (with a teacher: KD-wrapped, or teacher-annealed with
    `cfg.teacher_annealing`), then orthogonality."""
    if not cfg.multi_label:
        task: nn.Module = SoftCrossEntropy(cfg.label_smoothing)
    else:
        pos_weight, alpha = label_statistics(train)
        pw = pos_weight if cfg.pos_weight else None
        if cfg.loss == "focal":
            task = FocalLoss(cfg.focal_gamma, alpha if cfg.focal_alpha else None, pw, cfg.label_smoothing)
        else:
            task = SoftBCE(pw, cfg.label_smoothing)
    if distil and cfg.teacher_annealing:
        task = TeacherAnnealing(task, multi_label=cfg.multi_label)
    elif distil:
        task = KnowledgeDistillation(task, cfg.temperature, cfg.kd_weight, multi_label=cfg.multi_label)
    terms = {"task": task}
    if cfg.ortho_weight > 0:
        terms["ortho"] = Orthogonality(cfg.ortho_weight)
    return Objective(terms)
