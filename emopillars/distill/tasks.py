"""The tasks of a multi-task run: `--task NAME=DATA[:labels-column]` specs, each task's data and label set,
and the files that let a saved multi-task folder be loaded one task at a time.

A multi-task folder is an ordinary model folder for its default (first) task — encoder, that task's head,
thresholds — so `predict`, `export`, `explain`, `finetune --init` and `evaluate` read it unchanged — plus
`tasks.json` (per task: labels, problem type, thresholds, head file) and `heads/NAME.safetensors` (each
task's head weights: every parameter outside the shared encoder).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emopillars.distill.data import TARGET_COLUMNS, Splits, build_splits, read_records
from emopillars.errors import EmopillarsError

if TYPE_CHECKING:
    from torch import nn

    from emopillars.distill.config import TrainConfig

TASKS_FILE = "tasks.json"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass
class Task:
    """One labelled set of a multi-task run: its settings (labels, problem type, data) and splits."""

    name: str
    cfg: TrainConfig
    data: Splits


def parse_spec(spec: str) -> tuple[str, str, str | None]:
    """ "NAME=DATA[:labels-column]" -> (name, data, column or None)."""
    name, sep, rest = spec.partition("=")
    if not sep or not NAME.fullmatch(name) or not rest:
        raise EmopillarsError(f"--task {spec!r}: expected NAME=DATA[:labels-column] (NAME: letters, digits, _ . -)")
    data, colon, column = rest.rpartition(":")
    if not colon or "/" in column or "\\" in column or not column:  # no column given (or a ':' inside a path)
        return name, rest, None
    return name, data, column


def _label_set(records: list[dict], column: str | None, cfg: TrainConfig, where: str) -> tuple[tuple, str]:
    """Labels and problem type read off the targets: one name per row -> single_label over the names seen;
    lists of names -> multi_label over them; scores (a mapping or a vector) -> `cfg.labels`, multi_label."""
    if not records:
        raise EmopillarsError(f"{where} holds no rows")
    col = column or next((c for c in TARGET_COLUMNS if c in records[0]), None)
    if col is None or col not in records[0]:
        raise EmopillarsError(f"{where}: no labels column {column or ' or '.join(TARGET_COLUMNS)!r}")
    values = [r.get(col) for r in records]
    if all(isinstance(v, str) and not v.strip().startswith("{") for v in values):
        return tuple(sorted(set(values))), "single_label"
    if all(isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v) for v in values):
        return tuple(sorted({x for v in values for x in v})), "multi_label"
    return cfg.labels, "multi_label"


def load_tasks(cfg: TrainConfig) -> list[Task]:
    """Each `cfg.task` spec's settings (the run's, with that task's data, column, labels) and splits."""
    tasks: list[Task] = []
    for spec in cfg.task:
        name, data, column = parse_spec(spec)
        if name in [t.name for t in tasks]:
            raise EmopillarsError(f"--task {name!r} is given twice")
        base = cfg.model_copy(update={"task": (), "data": data, "labels_column": column})
        records = read_records(data, base)
        labels, problem = _label_set(records, column, cfg, data)
        if len(labels) < 2:
            raise EmopillarsError(f"--task {name}: {data} has fewer than two labels ({list(labels)})")
        single = {"loss": "bce", "pos_weight": False} if problem == "single_label" else {}  # multi-label options
        task_cfg = base.model_copy(update={"labels": labels, "problem_type": problem, **single})
        tasks.append(Task(name, task_cfg, build_splits(records, task_cfg, where=data)))
    return tasks


def encoder_name(model: nn.Module) -> str:
    """The attribute holding the shared encoder: `encoder` (Tanh head) or transformers' base model prefix."""
    from emopillars.distill.heads import TanhHeadClassifier

    return "encoder" if isinstance(model, TanhHeadClassifier) else model.base_model_prefix


def head_state(model: nn.Module) -> dict[str, Any]:
    """The head's weights: every entry of the state dict outside the encoder."""
    prefix = encoder_name(model) + "."
    return {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items() if not k.startswith(prefix)}


def save_tasks(out: Path, default: str, entries: dict[str, dict], heads: dict[str, nn.Module]) -> None:
    """`heads/NAME.safetensors` per task and `tasks.json` ({"default", "tasks": {NAME: entry + head file}})."""
    from safetensors.torch import save_file

    (out / "heads").mkdir(parents=True, exist_ok=True)
    for name, model in heads.items():
        save_file(head_state(model), out / "heads" / f"{name}.safetensors")
    tasks = {name: {**entry, "head": f"heads/{name}.safetensors"} for name, entry in entries.items()}
    text = json.dumps({"default": default, "tasks": tasks}, indent=2) + "\n"
    (out / TASKS_FILE).write_text(text, encoding="utf-8")


def read_tasks(folder: Path) -> dict[str, Any] | None:
    """`tasks.json` of a multi-task folder, or None for a single-task one."""
    path = folder / TASKS_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def task_entry(folder: Path, task: str | None) -> dict[str, Any] | None:
    """The `tasks.json` entry of `task`; None for the folder's own head (no task, or the default task)."""
    tasks = read_tasks(folder)
    if tasks is None:
        if task is not None:
            raise EmopillarsError(f"{folder} is a single-task model (no {TASKS_FILE}); drop --task {task}")
        return None
    if task is not None and task not in tasks["tasks"]:
        raise EmopillarsError(f"unknown task {task!r}; the model's tasks are {sorted(tasks['tasks'])}")
    return None if task in (None, tasks["default"]) else tasks["tasks"][task]


def load_task_model(folder: Path, entry: dict[str, Any], device: str | None) -> nn.Module:
    """The folder's encoder under the head of the task `entry` describes, in eval mode on `device`."""
    import torch
    from safetensors.torch import load_file

    from emopillars.distill.model import load_classifier

    quiet = logging.getLogger("emopillars.distill.model")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # its "head re-initialised" note: the task's head is loaded next
    try:
        model, _ = load_classifier(str(folder), tuple(entry["labels"]), entry["problem_type"])
    finally:
        quiet.setLevel(level)
    missing, unexpected = model.load_state_dict(load_file(folder / entry["head"]), strict=False)
    prefix = encoder_name(model) + "."
    if unexpected or any(not k.startswith(prefix) for k in missing):
        raise EmopillarsError(f"{folder / entry['head']} does not fit the model's head ({unexpected or missing})")
    return model.to(device or ("cuda" if torch.cuda.is_available() else "cpu")).eval()
