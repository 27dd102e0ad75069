"""Training an encoder + linear head on `Splits`: a nanoGPT-style loop driven by `accelerate`.

Public API (stable; `emopillars finetune` reuses it, no second trainer):
    train(cfg: TrainConfig, data=None, head_init: HeadInit | None = None) -> TrainResult
        The whole `emopillars train`: load data (unless given as `Splits` or a `datasets.Dataset`/
        `DatasetDict`), build the model (optionally with
        the caller's initial classifier rows), run the rounds (KD from `cfg.teacher`, pseudo-labels
        from `cfg.unlabeled`), tune thresholds on validation, evaluate validation and test, and
        write the model folder `cfg.out` (save_pretrained + thresholds.json, metrics.json,
        config.json, README.md, plots; `--report-to` trackers under out/runs). Returns a `TrainResult`
        (the folder, its files and the metrics report that metrics.json holds).
    fit(cfg, model, tokenizer, data, teacher=None, run_dir=None) -> FitResult
        One training run of `model` on `data.train`, evaluated on `data.validation`; keeps the best
        weights by macro-F1 (multi_label) or accuracy-tied macro-F1 (single_label).
    predict_logits(model, tokenizer, texts, contexts, max_length, batch_size) -> np.ndarray (N, L)
        The one inference path: training evaluation, `EmotionClassifier` and metrics all use it,
        so test metrics equal what `emopillars predict` prints.

    HeadInit = tuple[Tensor (L, H) weight, Tensor (L,) bias]: rows of the new classifier, e.g.
    averaged rows of a 28-label emopillars model mapped onto a downstream label set.

Devices: `accelerate` places the model (bf16 autocast on GPUs that support it). Multi-GPU:
`accelerate launch -m emopillars.cli train --data ... --out ...` (batches are sharded across
processes; only the main process writes files).

Evaluation helpers live in `emopillars.distill.metrics` (compute_metrics(y_true, scores,
thresholds, labels, single_label)) and `emopillars.distill.thresholds` (tune_thresholds).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from emopillars.distill.data import (
    Collator,
    Split,
    Splits,
    build_splits,
    encode,
    length_grouped_batches,
    load_splits,
    records_from_dataset,
)
from emopillars.distill.losses import KnowledgeDistillation, Orthogonality, build_loss
from emopillars.distill.metrics import compute_metrics, probabilities
from emopillars.distill.model import HeadInit, head_linear, load_classifier, predict_logits
from emopillars.distill.thresholds import tune_thresholds
from emopillars.errors import EmopillarsError

if TYPE_CHECKING:
    from emopillars.distill.classifier import EmotionClassifier
    from emopillars.distill.config import TrainConfig

__all__ = ["FitResult", "HeadInit", "TrainResult", "evaluate", "fit", "predict_logits", "train"]

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    model: nn.Module  # best weights loaded
    best_score: float  # validation macro-F1 at the best step (thresholds tuned on validation)
    best_step: int
    steps: int
    stopped: str  # "max_steps" or "early_stopping"
    history: list[dict] = field(default_factory=list)  # one entry per optimizer step
    evals: list[dict] = field(default_factory=list)  # one entry per evaluation
    train_seconds: float = 0.0
    samples_seen: int = 0


# --- pure helpers ---------------------------------------------------------------------------------------


def lr_factor(step: int, warmup: int, total: int, schedule: str) -> float:
    """Multiplier of the peak lr at `step`: linear warmup, then linear/cosine decay to 0 or constant."""
    if step < warmup:
        return (step + 1) / (warmup + 1)
    progress = (step - warmup) / max(1, total - warmup)
    if schedule == "linear":
        return max(0.0, 1.0 - progress)
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))
    return 1.0


def sample_weights(gold: np.ndarray) -> np.ndarray:
    """Per-row sampling weight: inverse frequency of the row's rarest label (label-less rows count as a class)."""
    counts = gold.sum(0).astype(float)
    none = gold.sum(1) == 0
    inv = np.where(counts > 0, 1.0 / np.maximum(counts, 1.0), 0.0)
    weights = (gold * inv).max(1)
    weights[none] = 1.0 / max(1, none.sum())
    return weights


def tracked_config(cfg: TrainConfig) -> dict[str, int | float | str | bool]:
    """The run's settings as trackers take them (TensorBoard hparams accept only scalars and strings)."""
    plain = cfg.model_dump(mode="json", exclude={"labels"})
    return {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v) for k, v in plain.items()} | {
        "num_labels": len(cfg.labels)
    }


def _precision(cfg: TrainConfig) -> str:
    if cfg.mixed_precision != "auto":
        return cfg.mixed_precision
    return "bf16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else "no"


def _optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    # As nanoGPT: weight decay on matrices only, not on biases and LayerNorm gains.
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    # The fused kernel (CPU and CUDA) is ~10x faster than the per-tensor loop on a 2-core CPU.
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8, fused=True)


def _plain_loss(logits: np.ndarray, targets: np.ndarray, single_label: bool) -> float:
    x, t = torch.from_numpy(logits).float(), torch.from_numpy(targets).float()
    if single_label:
        return float(-(t * F.log_softmax(x, -1)).sum(-1).mean())
    return float(F.binary_cross_entropy_with_logits(x, t))


def evaluate(
    model: nn.Module, tokenizer: Any, split: Split, cfg: TrainConfig, thresholds: np.ndarray | None = None
) -> tuple[dict, np.ndarray]:
    """Metrics of `model` on `split` and the thresholds used (tuned on `split` itself when None)."""
    single = not cfg.multi_label
    logits = predict_logits(model, tokenizer, split.texts, split.contexts, cfg.max_length, cfg.eval_batch_size)
    scores = probabilities(logits, single)
    if thresholds is None:
        thresholds = np.full(len(cfg.labels), 0.5) if single else tune_thresholds(split.gold, scores)
    metrics = compute_metrics(split.gold, scores, thresholds, cfg.labels, single)
    metrics["loss"] = _plain_loss(logits, split.targets, single)
    return metrics, np.asarray(thresholds, dtype=np.float32)


# --- checkpoints ------------------------------------------------------------------------------------------


def _save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill mid-write leaves the previous checkpoint intact


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


# --- the loop ---------------------------------------------------------------------------------------------


def fit(
    cfg: TrainConfig,
    model: nn.Module,
    tokenizer: Any,
    data: Splits,
    teacher: EmotionClassifier | None = None,
    run_dir: Path | None = None,
) -> FitResult:
    """Train `model` on `data.train`, evaluate on `data.validation`, keep the best weights.

    With `run_dir`, checkpoints (model, optimizer, step, position, best, rng) go to
    `run_dir/state.pt` (+ `best.pt`) and `cfg.resume` continues from them exactly.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from tqdm.auto import tqdm

    accelerator = Accelerator(
        mixed_precision=_precision(cfg),
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
    set_seed(cfg.seed)
    single = not cfg.multi_label
    train_split = data.train
    rows = encode(tokenizer, train_split.texts, train_split.contexts, cfg.max_length)
    for row, target in zip(rows, train_split.targets, strict=True):
        row["labels"] = target
    if teacher is not None:  # teacher logits once, under no_grad, on the teacher's own inputs
        contexts = train_split.contexts if teacher.mode == "contextual" else None
        teacher_logits = predict_logits(
            teacher.model, teacher.tokenizer, train_split.texts, contexts, teacher.max_length, cfg.eval_batch_size
        )
        for row, logit in zip(rows, teacher_logits, strict=True):
            row["teacher_logits"] = logit
    lengths = [len(r["input_ids"]) for r in rows]
    weights = sample_weights(train_split.gold) if cfg.weighted_sampling else None
    collate = Collator(tokenizer.pad_token_id or 0)

    def epoch_steps(epoch: int) -> list[list[list[int]]]:
        """This process's micro-batches of an epoch, grouped into optimizer steps."""
        batches = length_grouped_batches(lengths, cfg.batch_size, cfg.seed + epoch, weights, cfg.group_by_length)
        mine = batches[accelerator.process_index :: accelerator.num_processes]
        return [mine[i : i + cfg.grad_accum] for i in range(0, len(mine), cfg.grad_accum)]

    steps_per_epoch = len(epoch_steps(0))
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    warmup = int(cfg.warmup_ratio * total)
    eval_every = cfg.eval_every or steps_per_epoch
    save_every = cfg.save_every or eval_every

    loss_fn: nn.Module = build_loss(cfg, train_split)
    if teacher is not None:
        loss_fn = KnowledgeDistillation(loss_fn, cfg.temperature, cfg.kd_weight, multi_label=not single)
    ortho = Orthogonality(cfg.ortho_weight) if cfg.ortho_weight > 0 else None
    loss_fn.to(accelerator.device)
    model.train()
    optimizer = _optimizer(model, cfg)
    model, optimizer = accelerator.prepare(model, optimizer)
    raw = accelerator.unwrap_model(model)

    st: dict[str, Any] = {"step": 0, "epoch": 0, "chunk": 0, "best": -1.0, "best_step": 0, "bad": 0}
    history: list[dict] = []
    evals: list[dict] = []
    best_state: dict[str, torch.Tensor] | None = None
    state_path = run_dir / "state.pt" if run_dir else None
    if cfg.resume and state_path and state_path.is_file():
        ckpt = torch.load(state_path, map_location="cpu", weights_only=False)
        raw.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        st, history, evals = ckpt["progress"], ckpt["history"], ckpt["evals"]
        torch.set_rng_state(ckpt["rng"])
        if torch.cuda.is_available() and ckpt.get("cuda_rng") is not None:
            torch.cuda.set_rng_state_all(ckpt["cuda_rng"])
        if (run_dir / "best.pt").is_file():
            best_state = torch.load(run_dir / "best.pt", map_location="cpu")
        log.info("resumed from %s at step %d", state_path, st["step"])
    elif cfg.resume:
        log.info("no checkpoint in %s: starting from scratch", run_dir)

    def checkpoint() -> None:
        if state_path is None or not accelerator.is_main_process:
            return
        run_dir.mkdir(parents=True, exist_ok=True)
        _save(
            {
                "model": raw.state_dict(),
                "optimizer": optimizer.state_dict(),
                "progress": st,
                "history": history,
                "evals": evals,
                "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
                "config": cfg.model_dump(mode="json"),
            },
            state_path,
        )

    bar = tqdm(
        total=total, initial=st["step"], desc="train", disable=not (cfg.progress and accelerator.is_main_process)
    )
    stopped, samples, started = "max_steps", 0, time.perf_counter()
    while st["step"] < total and stopped == "max_steps":
        steps = epoch_steps(st["epoch"])
        for chunk in steps[st["chunk"] :]:
            lr = cfg.lr * lr_factor(st["step"], warmup, total, cfg.schedule)
            for group in optimizer.param_groups:
                group["lr"] = lr
            n_rows = sum(len(mb) for mb in chunk)
            terms_sum: dict[str, torch.Tensor] = {}
            for j, micro in enumerate(chunk):
                batch = {k: v.to(accelerator.device) for k, v in collate([rows[i] for i in micro]).items()}
                targets, teacher_batch = batch.pop("labels"), batch.pop("teacher_logits", None)
                with nullcontext() if j == len(chunk) - 1 else accelerator.no_sync(model):
                    logits = model(**batch).logits.float()  # (B, L)
                    terms = loss_fn(logits, targets, teacher_batch) if teacher else {"task": loss_fn(logits, targets)}
                    if ortho is not None:
                        terms["ortho"] = ortho(head_linear(raw).weight)
                    loss = sum(terms.values())
                    accelerator.backward(loss * (len(micro) / n_rows))  # mean over the step's rows
                for name, value in terms.items():
                    terms_sum[name] = terms_sum.get(name, 0.0) + value.detach() * (len(micro) / n_rows)
            step_loss = float(sum(terms_sum.values()))  # one device sync per optimizer step
            if not math.isfinite(step_loss):
                kept = f"; the last good checkpoint is kept in {run_dir}" if state_path and state_path.is_file() else ""
                raise EmopillarsError(
                    f"training loss became {step_loss} at step {st['step'] + 1} (try a lower --lr){kept}"
                )
            if cfg.clip_grad > 0:
                accelerator.clip_grad_norm_(model.parameters(), cfg.clip_grad)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            st["step"] += 1
            st["chunk"] += 1
            samples += n_rows
            terms_log = {k: float(v) for k, v in terms_sum.items()}
            elapsed = round(time.perf_counter() - started, 4)  # step-end clock: step times are its differences
            history.append({"step": st["step"], "time": elapsed, "lr": lr, "loss": step_loss, **terms_log})
            accelerator.log({"train/loss": step_loss, "train/lr": lr} | {f"train/{k}": v for k, v in terms_log.items()},
                            step=st["step"])  # fmt: skip
            bar.update(1)
            bar.set_postfix(loss=f"{step_loss:.4f}")
            last = st["step"] >= total
            if st["step"] % eval_every == 0 or last:
                metrics, _ = evaluate(raw, tokenizer, data.validation, cfg)
                evals.append({"step": st["step"], "val_macro_f1": metrics["macro_f1"], "val_loss": metrics["loss"]})
                tracked = {k: v for k, v in metrics.items() if isinstance(v, float)}
                accelerator.log({f"validation/{k}": v for k, v in tracked.items()}, step=st["step"])
                log.info("step %d: loss %.4f, val macro-F1 %.4f", st["step"], step_loss, metrics["macro_f1"])
                if metrics["macro_f1"] > st["best"]:
                    st.update(best=metrics["macro_f1"], best_step=st["step"], bad=0)
                    best_state = _cpu_state(raw)
                    if state_path and accelerator.is_main_process:
                        run_dir.mkdir(parents=True, exist_ok=True)
                        _save(best_state, run_dir / "best.pt")
                else:
                    st["bad"] += 1
                if cfg.patience and st["bad"] >= cfg.patience:
                    stopped = "early_stopping"
            if st["step"] % save_every == 0 or last or stopped != "max_steps":
                checkpoint()
            if last or stopped != "max_steps":
                break
        else:
            st["epoch"] += 1
            st["chunk"] = 0
    bar.close()
    accelerator.end_training()  # flushes and closes the trackers
    if best_state is not None:
        raw.load_state_dict(best_state)
    return FitResult(
        model=raw,
        best_score=st["best"],
        best_step=st["best_step"],
        steps=st["step"],
        stopped=stopped,
        history=history,
        evals=evals,
        train_seconds=time.perf_counter() - started,
        samples_seen=samples,
    )


# --- the whole command ------------------------------------------------------------------------------------


def _load_teacher(cfg: TrainConfig) -> EmotionClassifier:
    from emopillars.distill.classifier import EmotionClassifier

    teacher = EmotionClassifier.from_pretrained(cfg.teacher)
    if teacher.labels != tuple(cfg.labels):
        raise EmopillarsError(f"teacher {cfg.teacher} predicts other labels ({len(teacher.labels)}) than the student")
    return teacher


@dataclass
class TrainResult:
    """What `train` made: the model folder, its files, and the report `metrics.json` holds."""

    out: Path  # the save_pretrained folder (model, tokenizer, thresholds.json, README.md, plots)
    report: dict[str, Any]

    @property
    def metrics_file(self) -> Path:
        return self.out / "metrics.json"

    @property
    def card(self) -> Path:
        return self.out / "README.md"

    @property
    def validation(self) -> dict[str, Any]:
        return self.report["validation"]

    @property
    def test(self) -> dict[str, Any] | None:
        return self.report["test"]

    @property
    def thresholds(self) -> dict[str, float]:
        return self.report["thresholds"]

    @property
    def training(self) -> dict[str, Any]:
        return self.report["training"]

    @property
    def rounds(self) -> list[dict[str, Any]]:
        return self.report.get("rounds", [])

    @property
    def task_test(self) -> dict[str, Any] | None:
        """The downstream task's literature metrics on its test split (`finetune` only)."""
        return self.report.get("task_test")


def _as_splits(data: Any, cfg: TrainConfig) -> Splits:
    """`Splits` as given, or built from a `datasets.Dataset`/`DatasetDict` the caller holds in memory."""
    if data is None:
        return load_splits(cfg)
    if isinstance(data, Splits):
        return data
    return build_splits(records_from_dataset(data, cfg), cfg, where=f"in-memory {type(data).__name__}")


def train(cfg: TrainConfig, data: Any = None, head_init: HeadInit | None = None) -> TrainResult:
    """Run `emopillars train` (see module docstring).

    Args:
        cfg: the settings (`cfg.data` is read unless `data` is given).
        data: `Splits`, or a `datasets.Dataset`/`DatasetDict` with the columns `cfg.data` would have.
        head_init: initial classifier rows (L, H) and bias (L,).

    Returns:
        A `TrainResult`: the folder `cfg.out`, its files, and the metrics report.
    """

    from accelerate import PartialState

    from emopillars.config import save_config
    from emopillars.distill.card import write_card
    from emopillars.distill.classifier import EmotionClassifier
    from emopillars.distill.plots import plot_per_label_f1, plot_training
    from emopillars.distill.rounds import load_pool, pseudo_label

    data = _as_splits(data, cfg)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    teacher = _load_teacher(cfg) if cfg.teacher else None
    pool = load_pool(cfg) if cfg.rounds > 1 else None
    started = time.perf_counter()
    rounds: list[dict] = []
    best: tuple[float, EmotionClassifier, FitResult] | None = None
    student: EmotionClassifier | None = None
    for r in range(cfg.rounds):
        added, train_split = 0, data.train
        if r > 0:
            assert best is not None and pool is not None
            pseudo = pseudo_label(best[1], *pool, cfg.pseudo_threshold, cfg.eval_batch_size)
            added, train_split = len(pseudo), data.train.concat(pseudo)
            teacher = student
        model, tokenizer = load_classifier(cfg.model, cfg.labels, cfg.problem_type, cfg.dropout, head_init)
        result = fit(
            cfg, model, tokenizer, replace(data, train=train_split), teacher, out / "checkpoints" / f"round-{r}"
        )
        val, thresholds = evaluate(result.model, tokenizer, data.validation, cfg)
        student = EmotionClassifier(result.model, tokenizer, thresholds, cfg.mode, cfg.max_length)
        rounds.append(
            {
                "round": r + 1,
                "pseudo_labelled_added": added,
                "train_rows": len(train_split),
                "teacher": bool(teacher),
                "steps": result.steps,
                "best_step": result.best_step,
                "stopped": result.stopped,
                "validation": {k: val[k] for k in ("macro_f1", "micro_f1", "roc_auc_macro", "loss")},
            }
        )
        log.info("round %d: validation macro-F1 %.4f (+%d pseudo-labelled rows)", r + 1, val["macro_f1"], added)
        if best is None or val["macro_f1"] > best[0]:
            best = (val["macro_f1"], student, result)
    assert best is not None
    _, clf, result = best
    single = not cfg.multi_label
    val, _ = evaluate(clf.model, clf.tokenizer, data.validation, cfg, clf.thresholds)
    test = None
    if len(data.test):
        # Through the classifier: the same path and thresholds as `emopillars predict`.
        scores = clf.predict_proba(data.test.texts, data.test.contexts, cfg.eval_batch_size)
        test = compute_metrics(data.test.gold, scores, clf.thresholds, cfg.labels, single)
    report: dict[str, Any] = {
        "validation": val,
        "test": test,
        "thresholds": {name: float(t) for name, t in zip(cfg.labels, clf.thresholds, strict=True)},
        "data": data.summary | {"train_rows_used": len(data.train)},
        "training": {
            "steps": result.steps,
            "best_step": result.best_step,
            "stopped": result.stopped,
            "train_seconds": round(result.train_seconds, 2),
            "samples_per_s": round(result.samples_seen / max(result.train_seconds, 1e-9), 2),
            "wall_seconds": round(time.perf_counter() - started, 2),
        },
        "history": result.history,
        "evals": result.evals,
    }
    if cfg.rounds > 1:
        report["rounds"] = rounds
    if not PartialState().is_main_process:
        return TrainResult(out, report)
    clf.save_pretrained(out)
    save_config(cfg, out / "train_config.json")
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    plot_training(result.history, result.evals, out / "training_curves.png")
    plot_per_label_f1(val, test, out / "per_label_f1.png")
    write_card(cfg, report, out / "README.md")
    if not cfg.keep_checkpoints:
        shutil.rmtree(out / "checkpoints", ignore_errors=True)
    return TrainResult(out, report)
