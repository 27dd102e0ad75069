"""Training an encoder + linear head on `Splits`: a nanoGPT-style loop driven by `accelerate`.

Public API (stable; `emopillars finetune` reuses it, no second trainer):
    train(cfg: TrainConfig, data=None, head_init: HeadInit | None = None) -> TrainResult
        The whole `emopillars train`: load data (unless given as `Splits` or a `datasets.Dataset`/
        `DatasetDict`), then run the rounds (KD from `cfg.teacher`, pseudo-labels from
        `cfg.unlabeled`, or `cfg.born_again` generations: rounds without a pool): each builds a fresh
        model (optionally with the caller's initial classifier rows), `fit`s it (from round 2 on with
        the previous round's model as teacher) and tunes thresholds on validation. The best round is
        evaluated on validation and test and written to `cfg.out` by `outputs.write_model_folder`.
    fit(cfg, model, tokenizer, data, teacher=None, run_dir=None, on_evaluate=None) -> FitResult
        One training run of `model` on `data.train`, evaluated on `data.validation`; keeps the best
        weights by macro-F1 (multi_label) or accuracy-tied macro-F1 (single_label).
    OnEvaluate = Callable[[int, dict], None]: called after each evaluation with the step and the
        validation metrics (in every process, same values); raising stops the run (`tune` prunes so).
    evaluate_split(model, tokenizer, split, cfg, objective, thresholds=None) -> (metrics, thresholds)
        Metrics of a model on a split; its loss is the training objective without the KD term.
    predict_logits(...) -> np.ndarray (N, L): re-exported from `model`, the one inference path.

    HeadInit = tuple[Tensor (L, H) weight, Tensor (L,) bias]: rows of the new classifier, e.g.
    averaged rows of a 28-label emopillars model mapped onto a downstream label set.

Read `train` then `fit` top to bottom: rounds, then per optimizer step the learning rate, the
targets and loss of each micro-batch (`_step`, from the rows `_train_rows` made once; with
`cfg.teacher_annealing` the step's lambda, 0 at the first step and 1 at the last), clip, step,
log, evaluate, checkpoint. The objective is built once per run (`losses.build_objective`).

Devices: `accelerate` places the model (bf16 autocast on GPUs that support it). Several processes
(`torchrun` or `accelerate launch`, see the README) run data parallelism: each process takes an
equal share of every epoch's batches (`batching.shard_batches`), the teacher's logits are computed
once per row across the processes, the main process evaluates and shares the result, and only it
writes files. A launch of several processes on a machine without GPUs runs on the CPUs over gloo.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from accelerate.utils import set_seed
from torch import nn

from emopillars.distill.batching import Collator, encode, length_grouped_batches, sample_weights, shard_batches
from emopillars.distill.checkpoints import (
    FitState,
    Parts,
    cpu_state,
    output_lock,
    resume,
    save_best,
    save_checkpoint,
)
from emopillars.distill.data import Split, Splits, build_splits, load_splits, records_from_dataset
from emopillars.distill.losses import Objective, build_objective
from emopillars.distill.metrics import compute_metrics, probabilities
from emopillars.distill.model import HeadInit, head_linear, load_classifier, predict_logits
from emopillars.distill.outputs import FitResult, TrainResult, round_summary, training_report, write_model_folder
from emopillars.distill.parallel import make_accelerator, process_state, teacher_logits
from emopillars.distill.rounds import load_pool, load_teacher, pseudo_label
from emopillars.distill.thresholds import tune_thresholds
from emopillars.errors import EmopillarsError

if TYPE_CHECKING:
    from accelerate import Accelerator

    from emopillars.distill.config import TrainConfig
    from emopillars.inference.classifier import EmotionClassifier

__all__ = ["FitResult", "HeadInit", "OnEvaluate", "TrainResult", "evaluate_split", "fit", "predict_logits", "train"]

log = logging.getLogger(__name__)

# transformers' schedule names for ours; "constant" keeps the warmup.
SCHEDULES = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}
OnEvaluate = Callable[[int, dict], None]


# --- pure helpers ---------------------------------------------------------------------------------------


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # As nanoGPT: weight decay on matrices only, not on biases and LayerNorm gains.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    # The fused kernel (CPU and CUDA) is ~10x faster than the per-tensor loop on a 2-core CPU.
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8, fused=True)


def _epoch_steps(
    cfg: TrainConfig, lengths: list[int], weights: np.ndarray | None, accelerator: Accelerator, epoch: int
) -> list[list[list[int]]]:
    """This process's micro-batches (row indices) of an epoch, grouped into optimizer steps."""
    batches = length_grouped_batches(lengths, cfg.batch_size, cfg.seed + epoch, weights, cfg.group_by_length)
    mine = shard_batches(batches, accelerator.process_index, accelerator.num_processes)
    return [mine[i : i + cfg.grad_accum] for i in range(0, len(mine), cfg.grad_accum)]


def evaluate_split(
    model: nn.Module,
    tokenizer: Any,
    split: Split,
    cfg: TrainConfig,
    objective: Objective,
    thresholds: np.ndarray | None = None,
) -> tuple[dict, np.ndarray]:
    """Metrics of `model` on `split` and the thresholds used (tuned on `split` itself when None).

    The loss is `objective` without its KD term (`Objective.without_kd`): the training loss of a run
    without a teacher, label smoothing, focal, `pos_weight` and orthogonality included.
    """
    single = not cfg.multi_label
    logits = predict_logits(model, tokenizer, split.texts, split.contexts, cfg.max_length, cfg.eval_batch_size)
    scores = probabilities(logits, single)
    if thresholds is None:
        thresholds = np.full(len(cfg.labels), 0.5) if single else tune_thresholds(split.gold, scores)
    metrics = compute_metrics(split.gold, scores, thresholds, cfg.labels, single)
    head = head_linear(model).weight.detach()  # (L, H)
    with torch.no_grad():
        terms = objective.without_kd()(
            logits=torch.from_numpy(logits).to(head.device),
            targets=torch.from_numpy(split.targets).to(head.device),
            teacher_logits=None,
            head=head,
        )
    metrics["loss"] = float(sum(terms.values()))
    return metrics, np.asarray(thresholds, dtype=np.float32)


# --- the loop ---------------------------------------------------------------------------------------------


def _train_rows(
    cfg: TrainConfig, tokenizer: Any, split: Split, teacher: EmotionClassifier | None, accelerator: Accelerator
) -> list[dict]:
    """Token ids, targets and (with a teacher) the teacher's logits of every training row."""
    rows = encode(tokenizer, split.texts, split.contexts, cfg.max_length)
    for row, target in zip(rows, split.targets, strict=True):
        row["labels"] = target
    if teacher is not None:
        for row, logit in zip(rows, teacher_logits(teacher, split, cfg.eval_batch_size, accelerator), strict=True):
            row["teacher_logits"] = logit
    return rows


def _step(
    model: nn.Module,
    objective: Objective,
    head: torch.Tensor,
    micro_batches: list[dict],
    accelerator: Accelerator,
    anneal: float = 1.0,
) -> dict[str, float]:
    """Forward and backward over one optimizer step's micro-batches; each term's mean over all its rows.

    `anneal` is the teacher-annealing lambda of the step (read only by a `TeacherAnnealing` term).
    """
    n_rows = sum(len(b["labels"]) for b in micro_batches)
    lam = torch.tensor(anneal, device=accelerator.device)
    sums: dict[str, torch.Tensor] = {}
    for j, batch in enumerate(micro_batches):
        batch = {k: v.to(accelerator.device) for k, v in batch.items()}
        targets, teacher_logits = batch.pop("labels"), batch.pop("teacher_logits", None)
        share = len(targets) / n_rows  # the step's loss is the mean over its rows
        with nullcontext() if j == len(micro_batches) - 1 else accelerator.no_sync(model):
            logits = model(**batch).logits.float()  # (B, L)
            terms = objective(logits=logits, targets=targets, teacher_logits=teacher_logits, head=head, anneal=lam)
            accelerator.backward(sum(terms.values()) * share)
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + value.detach() * share
    means = accelerator.reduce(torch.stack(list(sums.values())), "mean")  # one sync per step, across processes
    return dict(zip(sums, means.tolist(), strict=True))


def _check_finite(loss: float, step: int, run_dir: Path | None) -> None:
    """Stop on a NaN/inf loss before the optimizer spreads it into the weights (every process sees the same mean)."""
    if not math.isfinite(loss):
        saved = run_dir is not None and (run_dir / "state.json").is_file()
        kept = f"; the last good checkpoint is kept in {run_dir}" if saved else ""
        raise EmopillarsError(f"training loss became {loss} at step {step} (try a lower --lr){kept}")


def _evaluate_step(
    cfg: TrainConfig,
    tokenizer: Any,
    validation: Split,
    objective: Objective,
    parts: Parts,
    state: FitState,
    run_dir: Path | None,
    on_evaluate: OnEvaluate | None,
) -> dict[str, torch.Tensor] | None:
    """Evaluate on the main process, share its metrics, update best and patience; the new best weights or None."""
    from accelerate.utils import broadcast_object_list

    main = parts.accelerator.is_main_process
    metrics = evaluate_split(parts.model, tokenizer, validation, cfg, objective)[0] if main else None
    metrics = broadcast_object_list([metrics])[0]  # one decision for all processes: none stops alone
    state.evals.append({"step": state.step, "val_macro_f1": metrics["macro_f1"], "val_loss": metrics["loss"]})
    parts.accelerator.log({f"validation/{k}": v for k, v in metrics.items() if isinstance(v, float)}, step=state.step)
    log.info("step %d: loss %.4f, val macro-F1 %.4f", state.step, state.history[-1]["loss"], metrics["macro_f1"])
    if on_evaluate is not None:
        on_evaluate(state.step, metrics)
    if metrics["macro_f1"] > state.best:
        state.best, state.best_step, state.bad = metrics["macro_f1"], state.step, 0
        return save_best(run_dir, cpu_state(parts.model), parts)
    state.bad += 1
    if cfg.patience and state.bad >= cfg.patience:
        state.stopped = "early_stopping"
    return None


def _end_run(accelerator: Accelerator, state: FitState, model: nn.Module, best: dict | None) -> None:
    """Close the trackers and load the best weights into `model` (the unwrapped module)."""
    for tracker in accelerator.trackers:  # not end_training(): it ends the process group the next round needs
        tracker.finish()
    if (processes := accelerator.num_processes) > 1:
        log.info("process %d of %d: %d optimizer steps", accelerator.process_index, processes, state.step)
    if best is not None:
        model.load_state_dict(best)


def fit(
    cfg: TrainConfig,
    model: nn.Module,
    tokenizer: Any,
    data: Splits,
    teacher: EmotionClassifier | None = None,
    run_dir: Path | None = None,
    on_evaluate: OnEvaluate | None = None,
) -> FitResult:
    """Train `model` on `data.train`, evaluate on `data.validation`, keep the best weights.

    With `run_dir`, checkpoints (model, optimizer, schedule, progress, best, rng) go to
    `run_dir/state.json` (+ `best.safetensors`) and `cfg.resume` continues from them exactly.
    """
    from tqdm.auto import tqdm
    from transformers import get_scheduler

    accelerator = make_accelerator(cfg, run_dir)
    set_seed(cfg.seed)
    rows = _train_rows(cfg, tokenizer, data.train, teacher, accelerator)
    lengths = [len(r["input_ids"]) for r in rows]
    weights = sample_weights(data.train.gold) if cfg.weighted_sampling else None
    collate = Collator.on(accelerator.device, tokenizer.pad_token_id or 0, cfg.max_length, cfg.pad_to_multiple_of)
    steps_per_epoch = len(_epoch_steps(cfg, lengths, weights, accelerator, 0))
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    eval_every = cfg.eval_every or steps_per_epoch
    save_every = cfg.save_every or eval_every
    objective = build_objective(cfg, data.train, distil=teacher is not None).to(accelerator.device)
    model.train()
    optimizer = _optimizer(model, cfg)
    # Stepped here once per optimizer step, not through accelerate (which steps it once per process).
    scheduler = get_scheduler(SCHEDULES[cfg.schedule], optimizer, int(cfg.warmup_ratio * total), total)
    model, optimizer = accelerator.prepare(model, optimizer)
    raw = accelerator.unwrap_model(model)
    parts = Parts(accelerator, raw, optimizer, scheduler)
    state, best_state = resume(cfg, run_dir, parts)
    head = head_linear(raw).weight  # (L, H)
    bar = tqdm(
        total=total, initial=state.step, desc="train", disable=not (cfg.progress and accelerator.is_main_process)
    )
    samples, started = 0, time.perf_counter()
    while state.step < total and state.stopped == "max_steps":
        for micro in _epoch_steps(cfg, lengths, weights, accelerator, state.epoch)[state.epoch_step :]:
            lr = scheduler.get_last_lr()[0]
            anneal = state.step / max(total - 1, 1)  # teacher annealing's lambda: 0 at the first step, 1 at the last
            terms = _step(model, objective, head, [collate([rows[i] for i in mb]) for mb in micro], accelerator, anneal)
            loss = sum(terms.values())
            _check_finite(loss, state.step + 1, run_dir)
            if cfg.clip_grad > 0:
                accelerator.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step, state.epoch_step, samples = state.step + 1, state.epoch_step + 1, samples + sum(map(len, micro))
            elapsed = round(time.perf_counter() - started, 4)  # step-end clock: step times are its differences
            logged = {"teacher_lambda": anneal} if objective.anneals else {}
            state.history.append({"step": state.step, "time": elapsed, "lr": lr, "loss": loss, **terms, **logged})
            accelerator.log({"train/loss": loss, "train/lr": lr} | {f"train/{k}": v for k, v in terms.items()},
                            step=state.step)  # fmt: skip
            bar.update(1)
            bar.set_postfix(loss=f"{loss:.4f}")
            last = state.step >= total
            if state.step % eval_every == 0 or last:
                best = _evaluate_step(cfg, tokenizer, data.validation, objective, parts, state, run_dir, on_evaluate)
                best_state = best or best_state
            if state.step % save_every == 0 or last or state.stopped != "max_steps":
                save_checkpoint(run_dir, parts, state, cfg)
            if last or state.stopped != "max_steps":
                break
        else:
            state.epoch, state.epoch_step = state.epoch + 1, 0
    bar.close()
    _end_run(accelerator, state, raw, best_state)
    seconds = time.perf_counter() - started
    return FitResult(raw, objective, state.best, state.best_step, state.step, state.stopped, state.history,
                     state.evals, seconds, samples)  # fmt: skip


# --- the whole command ------------------------------------------------------------------------------------


def _as_splits(data: Any, cfg: TrainConfig) -> Splits:
    """`Splits` as given, or built from a `datasets.Dataset`/`DatasetDict` the caller holds in memory."""
    if data is None:
        return load_splits(cfg)
    if isinstance(data, Splits):
        return data
    return build_splits(records_from_dataset(data, cfg), cfg, where=f"in-memory {type(data).__name__}")


def _test_metrics(cfg: TrainConfig, clf: EmotionClassifier, test: Split) -> dict[str, Any] | None:
    """Test metrics through the classifier: the same path and thresholds as `emopillars predict`."""
    if not len(test):
        return None
    scores = clf.predict_proba(test.texts, test.contexts, cfg.eval_batch_size)
    return compute_metrics(test.gold, scores, clf.thresholds, cfg.labels, not cfg.multi_label)


def train(
    cfg: TrainConfig, data: Any = None, head_init: HeadInit | None = None, on_evaluate: OnEvaluate | None = None
) -> TrainResult:
    """Run `emopillars train` (see module docstring).

    Args:
        cfg: the settings (`cfg.data` is read unless `data` is given).
        data: `Splits`, or a `datasets.Dataset`/`DatasetDict` with the columns `cfg.data` would have.
        head_init: initial classifier rows (L, H) and bias (L,).
        on_evaluate: called with (step, validation metrics) after each evaluation of every round.

    Returns:
        A `TrainResult`: the folder `cfg.out`, its files, and the metrics report.
    """
    from emopillars.inference.classifier import EmotionClassifier

    if cfg.task:  # several labelled sets: `multitask.train_multitask`, which builds on this module
        raise EmopillarsError("cfg.task lists several tasks: run emopillars.distill.multitask.train_multitask(cfg)")
    out = Path(cfg.out)
    processes = process_state()
    with output_lock(out, processes.is_main_process):
        data = _as_splits(data, cfg)
        teacher = load_teacher(cfg, processes.device) if cfg.teacher else None
        pool = load_pool(cfg) if cfg.rounds > 1 else None
        started = time.perf_counter()
        rounds: list[dict] = []
        best: tuple[float, EmotionClassifier, FitResult] | None = None
        student: EmotionClassifier | None = None
        for r in range(max(cfg.rounds, cfg.born_again)):  # pseudo-label rounds or born-again generations
            train_split = data.train
            if r > 0:  # the last student teaches the next; with a pool, the best model so far labels it
                assert best is not None
                if pool is not None:
                    added = pseudo_label(best[1], *pool, cfg.pseudo_threshold, cfg.eval_batch_size)
                    train_split = train_split.concat(added)
                teacher = student
            set_seed(cfg.seed)  # the new head's random start too: a rerun of the same options is the same model
            model, tokenizer = load_classifier(
                cfg.model, cfg.labels, cfg.problem_type, cfg.dropout, head_init, cfg.head
            )
            run_dir = out / "checkpoints" / f"round-{r}"
            result = fit(cfg, model, tokenizer, replace(data, train=train_split), teacher, run_dir, on_evaluate)
            val, thresholds = evaluate_split(result.model, tokenizer, data.validation, cfg, result.objective)
            student = EmotionClassifier(result.model, tokenizer, thresholds, cfg.mode, cfg.max_length)
            log.info("round %d: validation macro-F1 %.4f (%d training rows)", r + 1, val["macro_f1"], len(train_split))
            rounds.append(round_summary(r, len(train_split) - len(data.train), len(train_split), teacher, result, val))
            if best is None or val["macro_f1"] > best[0]:
                best = (val["macro_f1"], student, result)
        assert best is not None
        _, clf, result = best
        metrics = {
            "validation": evaluate_split(
                clf.model, clf.tokenizer, data.validation, cfg, result.objective, clf.thresholds
            )[0],
            "test": _test_metrics(cfg, clf, data.test),
        }
        seconds = time.perf_counter() - started
        report = training_report(cfg, data, clf, result, metrics, seconds, processes.num_processes, rounds)
        if processes.is_main_process:
            write_model_folder(cfg, clf, report, out)
    processes.wait_for_everyone()  # the others return once the folder is complete (a push from any sees it all)
    if processes.is_main_process and not cfg.keep_checkpoints:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return TrainResult(out, report, processes.is_main_process)
