"""One process or several: accelerate's state, the `Accelerator` of a run, and work split across processes.

A multi-process launch (`torchrun`, `accelerate launch`) runs data parallelism. Rules that keep it
from hanging: every process takes the same number of steps (`batching.shard_batches`), decisions
(early stopping) come from the main process, and only the main process writes files.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from emopillars.distill.model import predict_logits

if TYPE_CHECKING:
    from accelerate import Accelerator, PartialState

    from emopillars.distill.config import TrainConfig
    from emopillars.distill.data import Split
    from emopillars.inference.classifier import EmotionClassifier

log = logging.getLogger(__name__)


def cpu_launch() -> bool:
    """Whether accelerate must be told `cpu=True`: asked for (`accelerate launch --cpu`), or several processes
    launched on a machine without GPUs, which must run gloo on the CPUs.

    accelerate picks multi-CPU only when told `cpu=True`; otherwise every process of a `torchrun`
    launch trains on all the data alone and they collide writing the same checkpoint.
    """
    if os.environ.get("ACCELERATE_USE_CPU", "").lower() in {"1", "true", "yes"}:
        return True  # as accelerate reads it; the state built first must agree with the Accelerator's
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()


def process_state() -> PartialState:
    """accelerate's view of the launch (the same object `make_accelerator` builds on)."""
    from accelerate import PartialState

    return PartialState(cpu=cpu_launch())


def tracked_config(cfg: TrainConfig) -> dict[str, int | float | str | bool]:
    """The run's settings as trackers take them (TensorBoard hparams accept only scalars and strings)."""
    plain = cfg.model_dump(mode="json", exclude={"labels"})
    return {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in plain.items()} | {
        "num_labels": len(cfg.labels)
    }


def mixed_precision(cfg: TrainConfig) -> str:
    if cfg.mixed_precision != "auto":
        return cfg.mixed_precision
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def make_accelerator(cfg: TrainConfig, run_dir: Path | None) -> Accelerator:
    """The run's `Accelerator`, with `cfg.report_to`'s tracker started (a run per round when there are rounds)."""
    from accelerate import Accelerator

    accelerator = Accelerator(
        cpu=cpu_launch(),
        mixed_precision=mixed_precision(cfg),
        log_with=None if cfg.report_to == "none" else cfg.report_to,
        project_dir=str(Path(cfg.out) / "runs"),
    )
    if cfg.report_to != "none":
        name = (cfg.run_name or Path(cfg.out).name) + (f"-{run_dir.name}" if run_dir and cfg.rounds > 1 else "")
        # tensorboard: the run is a folder under --out/runs; wandb: a run of project "emopillars".
        accelerator.init_trackers(
            name if cfg.report_to == "tensorboard" else "emopillars",
            config=tracked_config(cfg),
            init_kwargs={"wandb": {"name": name}},
        )
    return accelerator


def teacher_logits(teacher: EmotionClassifier, split: Split, batch_size: int, accelerator: Accelerator) -> np.ndarray:
    """The teacher's logits (N, L) on its own inputs: each process computes every n-th row, all get all."""
    from accelerate.utils import gather_object

    step = accelerator.num_processes
    part = split.subset(np.arange(accelerator.process_index, len(split), step))
    contexts = part.contexts if teacher.mode == "contextual" else None
    logits = predict_logits(teacher.model, teacher.tokenizer, part.texts, contexts, teacher.max_length, batch_size)
    if step == 1:
        return logits
    log.info(
        "process %d of %d: the teacher's logits of %d of %d rows",
        accelerator.process_index,
        step,
        len(part),
        len(split),
    )
    out = np.empty((len(split), logits.shape[1]), dtype=np.float32)
    for rank, shard in enumerate(gather_object([logits])):
        out[rank::step] = shard
    return out
