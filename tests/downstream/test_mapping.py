"""Label-mapped head initialisation: averaged rows, and the trainer starting from them."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emopillars import taxonomy
from emopillars.downstream.mapping import map_head_rows, mapped_head
from emopillars.downstream.tasks import TASKS
from emopillars.errors import EmopillarsError


def test_rows_are_averaged_in_target_order() -> None:
    weight = torch.tensor([[1.0, 0.0], [0.0, 1.0], [4.0, 4.0]])
    bias = torch.tensor([0.5, -0.5, 2.0])
    mapping = {"pos": ("a", "b"), "big": ("c",)}
    w, b = map_head_rows(weight, bias, ["a", "b", "c"], mapping, ["big", "pos"])
    assert torch.equal(w, torch.tensor([[4.0, 4.0], [0.5, 0.5]])) and torch.equal(b, torch.tensor([2.0, 0.0]))
    w[0, 0] = 9.0
    assert weight[2, 0] == 4.0  # new tensors, the source is untouched
    with pytest.raises(EmopillarsError, match=r"no head row for mapped label\(s\) \['c'\]"):
        map_head_rows(weight[:2], bias[:2], ["a", "b"], mapping, ["big"])


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_label_maps_into_the_taxonomy(name: str) -> None:
    task = TASKS[name]
    assert set(task.mapping) == set(task.labels)
    assert all(source in taxonomy.LABEL2ID for sources in task.mapping.values() for source in sources)


def test_mapped_head_from_a_28_label_model(init28: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    head = AutoModelForSequenceClassification.from_pretrained(init28).classifier
    row = {name: (head.weight[i].detach(), head.bias[i].detach()) for i, name in enumerate(taxonomy.LABELS)}
    w, b = mapped_head(init28, TASKS["isear"])
    assert w.shape == (7, head.in_features) and b.shape == (7,)
    guilt = TASKS["isear"].labels.index("guilt")
    assert torch.allclose(w[guilt], row["remorse"][0]) and torch.allclose(b[guilt], row["remorse"][1])
    w, b = mapped_head(init28, TASKS["emocontext"])
    happy = torch.stack([row[n][0] for n in ("joy", "amusement", "excitement")]).mean(0)
    assert torch.allclose(w[0], happy)
    w, _ = mapped_head(init28, TASKS["iemocap"])
    fru = (row["annoyance"][0] + row["disappointment"][0]) / 2
    assert torch.allclose(w[TASKS["iemocap"].labels.index("fru")], fru)


def test_trainer_model_starts_from_the_mapped_rows(init28: Path) -> None:
    """The distill trainer's model builder puts the rows in the new head; the encoder is the init's."""
    from transformers import AutoModelForSequenceClassification

    from emopillars.distill.model import head_linear, load_classifier

    task = TASKS["isear"]
    head = mapped_head(init28, task)
    model, _ = load_classifier(str(init28), task.labels, task.problem_type, head_init=head)
    assert torch.equal(head_linear(model).weight, head[0]) and torch.equal(head_linear(model).bias, head[1])
    assert model.config.id2label == dict(enumerate(task.labels))
    source = AutoModelForSequenceClassification.from_pretrained(init28)
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(model.state_dict()[name], source.state_dict()[name])


def test_missing_init_folder(tmp_path: Path) -> None:
    with pytest.raises(EmopillarsError, match="not a model folder"):
        mapped_head(tmp_path, TASKS["isear"])
