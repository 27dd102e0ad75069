"""A downstream task's initial classifier head, built from a pretrained 28-label emopillars head.

Each task label starts as the average of the output-layer rows (weight and bias) of the pretrained
labels it maps to (`Task.mapping`, documented in docs/label_mappings.md): ISEAR `guilt`
starts where `remorse` ended, EmoContext `happy` between `joy`, `amusement` and `excitement`. The
fine-tuning then starts from a head that already separates the task's classes instead of from noise.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from emopillars.downstream.tasks import Task
from emopillars.errors import EmopillarsError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)


def map_head_rows(
    weight: torch.Tensor,
    bias: torch.Tensor,
    source_labels: tuple[str, ...] | list[str],
    mapping: dict[str, tuple[str, ...]],
    target_labels: tuple[str, ...] | list[str],
    where: str = "model",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Average the source rows of each target label's mapped labels.

    Args:
        weight: (S, H) output-layer weight of the pretrained model.
        bias: (S,) its bias.
        source_labels: the S pretrained label names, in row order.
        mapping: target label -> the source labels whose rows it averages.
        target_labels: the T task labels, in the new head's order.
        where: named in the error when a mapped label is missing from the source.

    Returns:
        (T, H) weight and (T,) bias, new tensors (the source is left untouched).
    """
    import torch

    index = {name: i for i, name in enumerate(source_labels)}
    missing = sorted({s for t in target_labels for s in mapping[t] if s not in index})
    if missing:
        raise EmopillarsError(f"{where}: has no head row for mapped label(s) {missing}; its labels: {list(index)}")
    rows = [torch.tensor([index[s] for s in mapping[t]]) for t in target_labels]
    new_weight = torch.stack([weight.detach()[r].mean(0) for r in rows])  # (T, H)
    new_bias = torch.stack([bias.detach()[r].mean(0) for r in rows])  # (T,)
    return new_weight.clone(), new_bias.clone()


def mapped_head(init: str | Path, task: Task) -> tuple[torch.Tensor, torch.Tensor]:
    """The task's initial head from the pretrained 28-label model folder `init`.

    Returns:
        (T, H) weight and (T,) bias in `task.labels` order: the trainer's `head_init`.
    """
    import torch

    from emopillars.distill.heads import load_sequence_classifier
    from emopillars.distill.model import head_linear

    path = Path(init)
    if not (path / "config.json").is_file():
        raise EmopillarsError(f"--init {init}: not a model folder (no config.json)")
    model = load_sequence_classifier(path, "cpu", dtype=torch.float32)  # a linear or a tanh head
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    layer = head_linear(model)  # BERT `classifier`, RoBERTa `classifier.out_proj`
    weight, bias = map_head_rows(layer.weight, layer.bias, labels, task.mapping, task.labels, where=str(init))
    log.info("initialised the %d-label %s head from %s by label mapping", len(task.labels), task.name, init)
    return weight, bias
