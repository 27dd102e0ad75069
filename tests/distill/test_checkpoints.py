"""Checkpoints hold tensors and JSON only: every part and every generator comes back; old or broken ones are refused."""

from __future__ import annotations

import json
import pickle
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import get_scheduler

from emopillars.distill.checkpoints import FitState, Parts, resume, save_checkpoint
from emopillars.distill.config import TrainConfig
from emopillars.distill.parallel import make_accelerator
from emopillars.errors import EmopillarsError


def _parts(cfg: TrainConfig) -> Parts:
    """A tiny model, the trainer's kind of optimizer (two groups, tuple betas) and a warmup schedule."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.LayerNorm(3))
    groups = [{"params": [model[0].weight], "weight_decay": 0.01}, {"params": [model[0].bias, *model[1].parameters()]}]
    optimizer = torch.optim.AdamW(groups, lr=1e-2, betas=(0.9, 0.999), fused=True)
    return Parts(make_accelerator(cfg, None), model, optimizer, get_scheduler("linear", optimizer, 2, 10))


def _train(parts: Parts, steps: int) -> None:
    for _ in range(steps):
        parts.model(torch.randn(5, 4)).pow(2).sum().backward()
        parts.optimizer.step()
        parts.scheduler.step()
        parts.optimizer.zero_grad()


def _draws() -> tuple[float, float, float]:
    return random.random(), float(np.random.rand()), float(torch.rand(1))


def test_resume_restores_weights_optimizer_schedule_progress_and_every_generator(tmp_path: Path) -> None:
    cfg = TrainConfig(out=tmp_path, resume=True)
    saved = _parts(cfg)
    _train(saved, 3)
    state = FitState(step=3, epoch=1, epoch_step=2, best=0.5, best_step=2, history=[{"step": 3, "loss": 0.25}])
    save_checkpoint(tmp_path, saved, state, cfg)
    expected = _draws()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state-3.safetensors", "state.json"]

    torch.manual_seed(123)  # the generators moved on, as in a new process
    np.random.seed(123)
    random.seed(123)
    loaded = _parts(cfg)
    got, best = resume(cfg, tmp_path, loaded)
    assert got == state and best is None
    assert _draws() == expected
    for a, b in zip(saved.model.state_dict().values(), loaded.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    ours, theirs = saved.optimizer.state_dict(), loaded.optimizer.state_dict()
    assert ours["param_groups"] == theirs["param_groups"]  # betas come back as a tuple, ids as ints
    for i, s in ours["state"].items():
        assert all(torch.equal(v, theirs["state"][i][k]) for k, v in s.items())
    assert loaded.scheduler.state_dict() == saved.scheduler.state_dict()
    for parts in (saved, loaded):  # the same next batch: the same next weights (optimizer moments and lr agree)
        torch.manual_seed(7)
        _train(parts, 1)
    assert torch.equal(saved.model[0].weight, loaded.model[0].weight)


def test_a_new_checkpoint_replaces_the_old_tensor_file(tmp_path: Path) -> None:
    cfg = TrainConfig(out=tmp_path, resume=True)
    parts = _parts(cfg)
    for step in (1, 2):
        _train(parts, 1)
        save_checkpoint(tmp_path, parts, FitState(step=step), cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state-2.safetensors", "state.json"]
    assert resume(cfg, tmp_path, _parts(cfg))[0].step == 2


class _Planted:
    """Runs code when unpickled: what a hostile `state.pt` could do."""

    def __reduce__(self) -> tuple:
        return (Path.touch, (Path(__file__).parent / "never-created",))


def test_an_old_format_checkpoint_is_refused_without_loading_it(tmp_path: Path) -> None:
    run = tmp_path / "round-0"
    run.mkdir()
    (run / "state.pt").write_bytes(pickle.dumps({"model": _Planted()}))
    cfg = TrainConfig(out=tmp_path, resume=True)
    with pytest.raises(EmopillarsError, match=rf"{run}.*old-format checkpoint \(state.pt\)") as err:
        resume(cfg, run, _parts(cfg))
    assert "\n" not in str(err.value)
    assert not (Path(__file__).parent / "never-created").exists()
    assert resume(TrainConfig(out=tmp_path), run, _parts(cfg))[0] == FitState()  # without --resume: a fresh start


@pytest.mark.parametrize("damage", ["truncate", "format", "tensors"])
def test_a_damaged_checkpoint_is_one_line_naming_the_folder(tmp_path: Path, damage: str) -> None:
    cfg = TrainConfig(out=tmp_path, resume=True)
    parts = _parts(cfg)
    save_checkpoint(tmp_path, parts, FitState(step=1), cfg)
    state = tmp_path / "state.json"
    if damage == "truncate":
        state.write_text(state.read_text()[:100])
    elif damage == "format":
        state.write_text(json.dumps(json.loads(state.read_text()) | {"format": 1}))
    else:
        (tmp_path / "state-1.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(EmopillarsError, match=rf"checkpoint in {tmp_path} cannot be read .*start without --resume"):
        resume(cfg, tmp_path, parts)
