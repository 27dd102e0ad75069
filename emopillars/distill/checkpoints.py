"""A training run's state and its checkpoints: what `fit` saves and how it resumes exactly.

`run_dir/state.pt` holds model, optimizer, schedule, `FitState` and rng; `run_dir/best.pt` the best
weights. Both are written by the main process only, through a temporary file and `os.replace`,
under `out/checkpoints/`, where `output_lock` keeps a second run out.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from emopillars.errors import EmopillarsError

if TYPE_CHECKING:
    from accelerate import Accelerator

    from emopillars.distill.config import TrainConfig

log = logging.getLogger(__name__)


@dataclass
class FitState:
    """Where a run stands: what a checkpoint holds besides weights, optimizer, schedule and rng."""

    step: int = 0
    epoch: int = 0
    epoch_step: int = 0  # optimizer steps done in this epoch
    best: float = -1.0  # best validation macro-F1 so far
    best_step: int = 0
    bad: int = 0  # evaluations since the best
    stopped: str = "max_steps"  # or "early_stopping"
    history: list[dict] = field(default_factory=list)  # one entry per optimizer step
    evals: list[dict] = field(default_factory=list)  # one entry per evaluation


@dataclass
class Parts:
    """The objects a checkpoint saves and restores; `model` is the unwrapped module."""

    accelerator: Accelerator
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any  # a torch LR scheduler


@contextmanager
def output_lock(out: Path, main: bool) -> Iterator[None]:
    """Held by the main process while it trains into `out`: a second run there stops at once instead of
    mixing checkpoints. An OS lock (fcntl), so a killed run leaves none behind and `--resume` proceeds."""
    from filelock import FileLock, Timeout

    if not main:
        yield
        return
    path = out / "checkpoints" / "train.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(path, timeout=0):
            yield
    except Timeout:
        raise EmopillarsError(f"{out} is being written by another `emopillars train` (lock {path})") from None


def save_atomic(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill mid-write leaves the previous checkpoint intact


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def save_best(run_dir: Path | None, best: dict[str, torch.Tensor], parts: Parts) -> dict[str, torch.Tensor]:
    """`best` to `run_dir/best.pt` (the main process only); returns `best`."""
    if run_dir is not None and parts.accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_atomic(best, run_dir / "best.pt")
    return best


def save_checkpoint(run_dir: Path | None, parts: Parts, state: FitState, cfg: TrainConfig) -> None:
    """Model, optimizer, schedule, progress and rng to `run_dir/state.pt` (the main process only)."""
    if run_dir is None or not parts.accelerator.is_main_process:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    save_atomic(
        {
            "model": parts.model.state_dict(),
            "optimizer": parts.optimizer.state_dict(),
            "scheduler": parts.scheduler.state_dict(),
            "state": asdict(state),
            "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "config": cfg.model_dump(mode="json"),
        },
        run_dir / "state.pt",
    )


def resume(cfg: TrainConfig, run_dir: Path | None, parts: Parts) -> tuple[FitState, dict | None]:
    """The state (and best weights) to start from: the checkpoint's with `cfg.resume`, else a fresh one.

    Every process reads the checkpoint the main process wrote; they must all find the same one, or
    they would run different steps and wait on each other for ever.
    """
    from accelerate.utils import gather_object

    state, best = FitState(), None
    path = run_dir / "state.pt" if run_dir else None
    if cfg.resume and path and path.is_file():
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
        parts.model.load_state_dict(ckpt["model"])
        parts.optimizer.load_state_dict(ckpt["optimizer"])
        parts.scheduler.load_state_dict(ckpt["scheduler"])
        state = FitState(**ckpt["state"])
        torch.set_rng_state(ckpt["rng"])
        if torch.cuda.is_available() and ckpt.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        if (path.parent / "best.pt").is_file():
            best = torch.load(path.parent / "best.pt", map_location="cpu")
        log.info("resumed from %s at step %d", path, state.step)
    elif cfg.resume:
        log.info("no checkpoint in %s: starting from scratch", run_dir)
    if parts.accelerator.num_processes > 1 and len(set(gather_object([state.step]))) > 1:
        raise EmopillarsError(f"the processes found different checkpoints in {run_dir}: put --out on a shared disk")
    return state, best
