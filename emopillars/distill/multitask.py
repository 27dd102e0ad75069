"""Multi-task training: one shared encoder, one head per task, batches alternating between tasks.

Public API:
    MultiTaskModel(models: dict[name, classifier]) -> nn.Module   # the heads share the first one's encoder
    train_multitask(cfg) -> TrainResult                           # `emopillars train --task ... --task ...`

The schedule is BAM!'s annealed sampling (Clark et al., 2019): each optimizer step draws its task with
probability proportional to n_task ** alpha, alpha falling linearly from 1 (proportional to the training
rows) at the first step to 0.2 (near uniform) at the last. Proportional sampling alone would starve a small
set next to the synthesized corpus (tens of rows against thousands), and uniform sampling from the start
would overfit the small set early; annealing sees the large task most while the encoder is shaped and every
task about equally at the end, so the small heads are not forgotten. Each task keeps its own objective
(`losses.build_objective` on its own split), thresholds (tuned on its validation split) and metrics; the
best weights are those of the evaluation with the best mean macro-F1 over the tasks. One process only, no
checkpoints.

Teachers and rounds work per task, as in a single-task run (`rounds`): each task learns from its own
teacher (`--task-teacher NAME=MODEL`, or `--teacher`'s head for it; BAM!'s single-task teachers of a
multi-task student), with KD or teacher annealing on its own loss. Each pseudo-label round or born-again
generation trains a fresh multi-task student whose every head distils from the previous generation's head
of the same task; with a pool, each head of the best model so far labels it and its confident rows join
that task's training split. The saved model is the generation with the best mean validation macro-F1.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

from emopillars.distill.batching import Collator, sample_weights
from emopillars.distill.checkpoints import cpu_state, output_lock
from emopillars.distill.model import head_linear, load_classifier
from emopillars.distill.outputs import FitResult, TrainResult, round_summary, training_report, write_model_folder
from emopillars.distill.parallel import make_accelerator
from emopillars.distill.rounds import load_pool, pseudo_label, task_teachers
from emopillars.distill.tasks import Task, encoder_name, load_tasks, save_tasks
from emopillars.errors import EmopillarsError

if TYPE_CHECKING:
    from emopillars.distill.config import TrainConfig
    from emopillars.inference.classifier import EmotionClassifier

    Teachers = dict[str, EmotionClassifier]  # task name -> its teacher's head

log = logging.getLogger(__name__)

ALPHA_END = 0.2  # the sampling exponent at the last step (BAM!'s annealed sampling ends near 0.2)


class MultiTaskModel(nn.Module):
    """Task classifiers sharing one encoder: `models[name]` is a whole classifier (its own config and head)
    whose encoder is the first model's, so each one runs, saves and loads as a single-task model."""

    def __init__(self, models: dict[str, nn.Module]) -> None:
        super().__init__()
        first = next(iter(models.values()))
        shared = getattr(first, encoder_name(first))
        for model in models.values():
            setattr(model, encoder_name(model), shared)
        self.tasks = nn.ModuleDict(models)

    def forward(self, task: str, **inputs: Any) -> Any:
        return self.tasks[task](**inputs)


def task_probabilities(sizes: np.ndarray, step: int, total: int) -> np.ndarray:
    """The chance of each task at `step` of `total`: sizes ** alpha, alpha 1 -> ALPHA_END (annealed sampling)."""
    alpha = 1.0 - (1.0 - ALPHA_END) * step / max(total - 1, 1)
    weights = sizes.astype(np.float64) ** alpha
    return weights / weights.sum()


def _batches(task: Task, lengths: list[int], accelerator: Any) -> Iterator[list[list[int]]]:
    """The task's optimizer steps (micro-batches of row indices), epoch after epoch without end."""
    from emopillars.distill.trainer import _epoch_steps

    weights = sample_weights(task.data.train.gold) if task.cfg.weighted_sampling else None
    epoch = 0
    while True:
        yield from _epoch_steps(task.cfg, lengths, weights, accelerator, epoch)
        epoch += 1


def _evaluate(model: MultiTaskModel, tokenizer: Any, tasks: list[Task], objectives: dict) -> dict[str, dict]:
    from emopillars.distill.trainer import evaluate_split

    return {
        t.name: evaluate_split(model.tasks[t.name], tokenizer, t.data.validation, t.cfg, objectives[t.name])[0]
        for t in tasks
    }


def fit_tasks(
    cfg: TrainConfig, model: MultiTaskModel, tokenizer: Any, tasks: list[Task], teachers: Teachers | None = None
) -> FitResult:
    """Train every head and the shared encoder by the annealed schedule; keep the best mean macro-F1.

    `teachers[name]` (when set) teaches task `name` by KD, or by teacher annealing (lambda 0 -> 1 over
    the run's steps). Returns the default (first) task's `FitResult` view: history and evals cover every
    task (`task` per step, `val_macro_f1_<task>` per evaluation); `objective` is a dict by task name.
    """
    from accelerate.utils import set_seed
    from transformers import get_scheduler

    from emopillars.distill.losses import build_objective
    from emopillars.distill.trainer import SCHEDULES, _optimizer, _step, _train_rows

    accelerator = make_accelerator(cfg, None)
    if accelerator.num_processes > 1:
        raise EmopillarsError("multi-task training runs in one process; start it without torchrun/accelerate launch")
    set_seed(cfg.seed)
    teachers = teachers or {}
    rows = {t.name: _train_rows(t.cfg, tokenizer, t.data.train, teachers.get(t.name), accelerator) for t in tasks}
    streams = {t.name: _batches(t, [len(r["input_ids"]) for r in rows[t.name]], accelerator) for t in tasks}
    per_epoch = sum(math.ceil(len(t.data.train) / (cfg.batch_size * cfg.grad_accum)) for t in tasks)
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * per_epoch))
    eval_every = cfg.eval_every or per_epoch
    objectives = {
        t.name: build_objective(t.cfg, t.data.train, distil=teachers.get(t.name) is not None).to(accelerator.device)
        for t in tasks
    }
    optimizer = _optimizer(model, cfg)
    scheduler = get_scheduler(SCHEDULES[cfg.schedule], optimizer, int(cfg.warmup_ratio * total), total)
    model.train()
    runners = {name: accelerator.prepare(m) for name, m in model.tasks.items()}  # device + autocast per task
    optimizer = accelerator.prepare(optimizer)
    collate = Collator.on(accelerator.device, tokenizer.pad_token_id or 0, cfg.max_length, cfg.pad_to_multiple_of)
    rng = np.random.default_rng(cfg.seed)
    sizes = np.array([len(t.data.train) for t in tasks])
    history: list[dict] = []
    evals: list[dict] = []
    best, best_step, best_state, samples, started = -1.0, 0, None, 0, time.perf_counter()
    for step in range(1, total + 1):
        name = tasks[int(rng.choice(len(tasks), p=task_probabilities(sizes, step - 1, total)))].name
        micro = next(streams[name])
        lr = scheduler.get_last_lr()[0]
        head = head_linear(model.tasks[name]).weight
        batches = [collate([rows[name][i] for i in mb]) for mb in micro]
        anneal = (step - 1) / max(total - 1, 1)  # teacher annealing's lambda: 0 at the first step, 1 at the last
        terms = _step(runners[name], objectives[name], head, batches, accelerator, anneal)
        loss = sum(terms.values())
        if not math.isfinite(loss):
            raise EmopillarsError(f"training loss of task {name} became {loss} at step {step} (try a lower --lr)")
        if cfg.clip_grad > 0:
            accelerator.clip_grad_norm_(model.parameters(), cfg.clip_grad)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        samples += sum(map(len, micro))
        logged = {"teacher_lambda": anneal} if objectives[name].anneals else {}
        history.append({"step": step, "time": round(time.perf_counter() - started, 4), "lr": lr, "loss": loss,
                        "task": name, **terms, **logged})  # fmt: skip
        if step % eval_every == 0 or step == total:
            metrics = _evaluate(model, tokenizer, tasks, objectives)
            score = float(np.mean([m["macro_f1"] for m in metrics.values()]))
            first = metrics[tasks[0].name]
            evals.append({"step": step, "val_macro_f1": score, "val_loss": first["loss"]}
                         | {f"val_macro_f1_{n}": m["macro_f1"] for n, m in metrics.items()})  # fmt: skip
            log.info("step %d: mean validation macro-F1 %.4f", step, score)
            if score > best:
                best, best_step, best_state = score, step, cpu_state(model)
    if best_state is not None:
        model.load_state_dict(best_state)
    seconds = time.perf_counter() - started
    return FitResult(model, objectives, best, best_step, total, "max_steps", history, evals, seconds, samples)  # type: ignore[arg-type]


def _task_report(task: Task, clf: EmotionClassifier, validation: dict, test: dict | None, teacher: str | None) -> dict:
    return {
        "data": task.cfg.data,
        "labels": list(task.cfg.labels),
        "problem_type": task.cfg.problem_type,
        "thresholds": {n: round(float(t), 4) for n, t in zip(task.cfg.labels, clf.thresholds, strict=True)},
        "rows": task.data.summary.get("rows", {}),
        "teacher": teacher,
        "validation": validation,
        "test": test,
    }


@dataclass
class Generation:
    """One round's (or born-again generation's) student: every task's classifier and validation figures."""

    score: float  # mean validation macro-F1 over the tasks
    classifiers: dict[str, EmotionClassifier]
    validation: dict[str, dict]
    result: FitResult


def _student(cfg: TrainConfig, tasks: list[Task], teachers: Teachers) -> Generation:
    """A fresh multi-task model (pretrained encoder, new heads) trained on `tasks`, its thresholds tuned."""
    from accelerate.utils import set_seed

    from emopillars.distill.trainer import evaluate_split
    from emopillars.inference.classifier import EmotionClassifier

    set_seed(cfg.seed)  # the heads' random start too: a rerun of the same options is the same model
    loaded = {t.name: load_classifier(cfg.model, t.cfg.labels, t.cfg.problem_type, cfg.dropout, None, cfg.head)
              for t in tasks}  # fmt: skip
    tokenizer = loaded[tasks[0].name][1]
    model = MultiTaskModel({name: m for name, (m, _) in loaded.items()})
    result = fit_tasks(cfg, model, tokenizer, tasks, teachers)
    classifiers, validation = {}, {}
    for t in tasks:
        net, objective = model.tasks[t.name], result.objective[t.name]  # type: ignore[index]
        validation[t.name], thresholds = evaluate_split(net, tokenizer, t.data.validation, t.cfg, objective)
        classifiers[t.name] = EmotionClassifier(net, tokenizer, thresholds, cfg.mode, cfg.max_length)
    score = float(np.mean([v["macro_f1"] for v in validation.values()]))
    return Generation(score, classifiers, validation, result)


def _with_pseudo_labels(cfg: TrainConfig, tasks: list[Task], best: Generation, pool: tuple) -> list[Task]:
    """Each task with the pool rows its head in `best` labels confidently added to its training split."""
    return [
        replace(t, data=replace(t.data, train=t.data.train.concat(
            pseudo_label(best.classifiers[t.name], *pool, cfg.pseudo_threshold, cfg.eval_batch_size))))
        for t in tasks
    ]  # fmt: skip


def _round_line(r: int, tasks: list[Task], trained: list[Task], teachers: Teachers, g: Generation) -> dict:
    """Round `r`'s line of the report (`outputs.round_summary` of the mean macro-F1), with each task's figures."""
    added = {t.name: len(u.data.train) - len(t.data.train) for t, u in zip(tasks, trained, strict=True)}
    rows = sum(len(t.data.train) for t in trained)
    line = round_summary(r, sum(added.values()), rows, teachers or None, g.result, {"macro_f1": g.score})
    line["validation"] |= {f"macro_f1_{n}": v["macro_f1"] for n, v in g.validation.items()}
    return line | {"tasks": {n: {"pseudo_labelled_added": added[n], "teacher": n in teachers} for n in added}}


def train_multitask(cfg: TrainConfig) -> TrainResult:
    """`emopillars train --task A=... --task B=...`: the folder is the best generation's default task's model
    plus every head (see the module docstring for teachers and rounds)."""
    from emopillars.distill.trainer import _test_metrics

    out = Path(cfg.out)
    with output_lock(out, True):
        started = time.perf_counter()
        tasks = load_tasks(cfg)
        given = task_teachers(cfg, tasks)
        teachers: Teachers = {name: head for name, (_, head) in given.items()}
        pool = load_pool(cfg) if cfg.rounds > 1 else None
        rounds: list[dict] = []
        best: Generation | None = None
        student: Generation | None = None
        for r in range(max(cfg.rounds, cfg.born_again)):  # pseudo-label rounds or born-again generations
            trained = tasks
            if r > 0:  # the last generation teaches the next, head by head; the best so far labels the pool
                assert best is not None and student is not None
                teachers = dict(student.classifiers)
                trained = tasks if pool is None else _with_pseudo_labels(cfg, tasks, best, pool)
            student = _student(cfg, trained, teachers)
            log.info("round %d: mean validation macro-F1 %.4f", r + 1, student.score)
            rounds.append(_round_line(r, tasks, trained, teachers, student))
            if best is None or student.score > best.score:
                best = student
        assert best is not None
        entries = {t.name: _task_report(t, best.classifiers[t.name], best.validation[t.name],
                                        _test_metrics(t.cfg, best.classifiers[t.name], t.data.test),
                                        given.get(t.name, (None,))[0]) for t in tasks}  # fmt: skip
        first = tasks[0]
        metrics = {"validation": entries[first.name]["validation"], "test": entries[first.name]["test"]}
        report = training_report(first.cfg, first.data, best.classifiers[first.name], best.result, metrics,
                                 time.perf_counter() - started, 1, rounds)  # fmt: skip
        report |= {"tasks": entries, "default_task": first.name}
        saved = first.cfg.model_copy(update={"task": cfg.task, "data": None, "labels_column": None})
        write_model_folder(saved, best.classifiers[first.name], report, out)
        heads = {n: clf.model for n, clf in best.classifiers.items()}
        save_tasks(out, first.name, {n: {k: e[k] for k in ("labels", "problem_type", "thresholds")}
                                     for n, e in entries.items()}, heads)  # fmt: skip
    return TrainResult(out, report, True)
