"""A training run's state and its checkpoints: what `fit` saves and how it resumes exactly, from data only.

`run_dir/state.json` holds `FitState`, the config, every process's rng (python, numpy, torch CPU and
CUDA) and the layout of the model, optimizer and schedule state; their tensors lie in the
`run_dir/state-<step>.safetensors` file it names. `run_dir/best.safetensors` holds the best weights.
`--resume` reads tensors and JSON only, never Python objects, so a checkpoint folder copied from
elsewhere cannot run code (accelerate's `save_state` writes the rng and optimizer states with
`torch.save`, which can: hence this format).

Written by the main process only, each file through a temporary one and `os.replace`: the tensors
first, then `state.json`, which switches to them; a kill in between leaves the previous checkpoint
whole. Under `out/checkpoints/`, where `output_lock` keeps a second run out.
"""

from __future__ import annotations

import json
import logging
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from emopillars.errors import EmopillarsError

if TYPE_CHECKING:
    from accelerate import Accelerator

    from emopillars.distill.config import TrainConfig

log = logging.getLogger(__name__)

STATE_FILE, BEST_FILE = "state.json", "best.safetensors"
FORMAT = 2  # 1 was `torch.save` objects in `state.pt` (before 0.1.0 shipped): refused, never loaded


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


def _write_replace(path: Path, write: Any) -> None:
    """`write(tmp)` beside `path`, then rename it over `path`: a kill mid-write leaves the previous file intact."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
    except BaseException:  # a full disk or a kill: no half file left to fill the disk further
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    try:
        _write_replace(path, lambda tmp: save_file(tensors, tmp))
    except SafetensorError as exc:  # its I/O errors (a full disk) are not OSErrors
        raise EmopillarsError(f"cannot write checkpoint {path}: {exc}; the previous checkpoint is kept") from None


def _own_memory(tensor: torch.Tensor, storages: set[int]) -> torch.Tensor:
    """`tensor` on the CPU, copied when an earlier one shares its memory (safetensors refuses shared tensors)."""
    tensor = tensor.detach().to("cpu")
    if tensor.untyped_storage().data_ptr() in storages:
        tensor = tensor.clone()
    storages.add(tensor.untyped_storage().data_ptr())
    return tensor.contiguous()


def _flatten(obj: Any, key: str, tensors: dict[str, torch.Tensor], storages: set[int]) -> Any:
    """`obj` (a state dict: nested dicts, lists, tuples, tensors, numbers, strings) as JSON, its tensors moved
    to `tensors` under their path: {"tensor": path}, {"dict": [[key, value], ...]} (keys may be ints),
    {"tuple": [...]}; lists and scalars as they are."""
    if isinstance(obj, torch.Tensor):
        assert key not in tensors, key
        tensors[key] = _own_memory(obj, storages)
        return {"tensor": key}
    if isinstance(obj, dict):
        return {"dict": [[k, _flatten(v, f"{key}.{k}", tensors, storages)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [_flatten(v, f"{key}.{i}", tensors, storages) for i, v in enumerate(obj)]
        return {"tuple": items} if isinstance(obj, tuple) else items
    assert obj is None or isinstance(obj, (bool, int, float, str)), f"{key}: {type(obj).__name__} in a state dict"
    return obj


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The inverse of `_flatten`."""
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    ((kind, value),) = obj.items()
    if kind == "tensor":
        return tensors[value]
    if kind == "tuple":
        return tuple(_unflatten(v, tensors) for v in value)
    return {k: _unflatten(v, tensors) for k, v in value}


def _rng_state() -> dict[str, Any]:
    """This process's generators as JSON: python, numpy's global one, torch CPU and every CUDA device."""
    version, internal, gauss = random.getstate()
    numpy = np.random.get_state(legacy=False)
    numpy["state"]["key"] = numpy["state"]["key"].tolist()
    cuda = [s.tolist() for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else None
    return {"python": [version, list(internal), gauss], "numpy": numpy,
            "torch": torch.get_rng_state().tolist(), "cuda": cuda}  # fmt: skip


def _set_rng_state(rng: dict[str, Any]) -> None:
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = rng["numpy"]
    numpy["state"]["key"] = np.asarray(numpy["state"]["key"], dtype=np.uint32)
    np.random.set_state(numpy)
    torch.set_rng_state(torch.tensor(rng["torch"], dtype=torch.uint8))
    if torch.cuda.is_available() and rng["cuda"] is not None:
        torch.cuda.set_rng_state_all([torch.tensor(s, dtype=torch.uint8) for s in rng["cuda"]])


def cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def save_best(run_dir: Path | None, best: dict[str, torch.Tensor], parts: Parts) -> dict[str, torch.Tensor]:
    """`best` to `run_dir/best.safetensors` (the main process only); returns `best`."""
    if run_dir is not None and parts.accelerator.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        storages: set[int] = set()
        _save_tensors({k: _own_memory(v, storages) for k, v in best.items()}, run_dir / BEST_FILE)
    return best


def save_checkpoint(run_dir: Path | None, parts: Parts, state: FitState, cfg: TrainConfig) -> None:
    """Model, optimizer, schedule, progress and every process's rng to `run_dir` (written by the main process).

    Every process calls it: the main one gathers the others' rng states.
    """
    from accelerate.utils import gather_object

    if run_dir is None:
        return
    rngs = gather_object([_rng_state()]) if parts.accelerator.num_processes > 1 else [_rng_state()]
    if not parts.accelerator.is_main_process:
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    parts_state = {"model": parts.model.state_dict(), "optimizer": parts.optimizer.state_dict(),
                   "scheduler": parts.scheduler.state_dict()}  # fmt: skip
    layout = _flatten(parts_state, "state", tensors, set())
    tensor_file = f"state-{state.step}.safetensors"
    _save_tensors(tensors, run_dir / tensor_file)
    record = {"format": FORMAT, "tensors": tensor_file, "fit_state": asdict(state), "rng": rngs,
              "config": cfg.model_dump(mode="json"), "layout": layout}  # fmt: skip
    _write_replace(run_dir / STATE_FILE, lambda tmp: tmp.write_text(json.dumps(record), encoding="utf-8"))
    for old in run_dir.glob("state-*.safetensors"):
        if old.name != tensor_file:
            old.unlink()


def _read_checkpoint(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """`state.json` and the parts' state dicts it lays out; a one-line error for a file that is not one."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        record = json.loads((run_dir / STATE_FILE).read_text(encoding="utf-8"))
        if record.get("format") != FORMAT:
            raise ValueError(f"format {record.get('format')!r}, expected {FORMAT}")
        tensors = load_file(run_dir / record["tensors"])
        return record, _unflatten(record["layout"], tensors)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, SafetensorError) as exc:
        raise EmopillarsError(f"checkpoint in {run_dir} cannot be read ({exc}); start without --resume") from None


def resume(cfg: TrainConfig, run_dir: Path | None, parts: Parts) -> tuple[FitState, dict | None]:
    """The state (and best weights) to start from: the checkpoint's with `cfg.resume`, else a fresh one.

    Every process reads the checkpoint the main process wrote; they must all find the same one, or
    they would run different steps and wait on each other for ever.
    """
    from accelerate.utils import gather_object
    from safetensors.torch import load_file

    state, best = FitState(), None
    if cfg.resume and run_dir and (run_dir / "state.pt").is_file() and not (run_dir / STATE_FILE).is_file():
        raise EmopillarsError(f"{run_dir} holds an old-format checkpoint (state.pt), which this version does not "
                              "load: train without --resume, or into a new --out")  # fmt: skip
    if cfg.resume and run_dir and (run_dir / STATE_FILE).is_file():
        record, saved = _read_checkpoint(run_dir)
        parts.model.load_state_dict(saved["model"])
        parts.optimizer.load_state_dict(saved["optimizer"])
        parts.scheduler.load_state_dict(saved["scheduler"])
        state = FitState(**record["fit_state"])
        rank, rngs = parts.accelerator.process_index, record["rng"]
        if rank < len(rngs):
            _set_rng_state(rngs[rank])
        else:
            log.warning("checkpoint in %s has no rng state for process %d: its dropout will differ", run_dir, rank)
        if (run_dir / BEST_FILE).is_file():
            best = load_file(run_dir / BEST_FILE)
        log.info("resumed from %s at step %d", run_dir, state.step)
    elif cfg.resume:
        log.info("no checkpoint in %s: starting from scratch", run_dir)
    if parts.accelerator.num_processes > 1 and len(set(gather_object([state.step]))) > 1:
        raise EmopillarsError(f"the processes found different checkpoints in {run_dir}: put --out on a shared disk")
    return state, best
