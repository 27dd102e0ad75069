"""What training leaves behind: a run's result, the command's result, its report and the model folder.

The training loop (`trainer.py`) only trains and evaluates; this module holds what it returns and
turns that into files: weights and tokenizer (`save_pretrained` + thresholds), `train_config.json`, `metrics.json`,
the plots and the card. Only the main process of a launch writes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

    from emopillars.distill.config import TrainConfig
    from emopillars.distill.data import Splits
    from emopillars.distill.losses import Objective
    from emopillars.inference.classifier import EmotionClassifier


@dataclass
class FitResult:
    """What `fit` returns: one training run."""

    model: nn.Module  # best weights loaded
    objective: Objective  # the run's training objective (its KD term, if any, included); multi-task: by task
    best_score: float  # validation macro-F1 at the best step (thresholds tuned on validation)
    best_step: int
    steps: int
    stopped: str  # "max_steps" or "early_stopping"
    history: list[dict] = field(default_factory=list)  # one entry per optimizer step
    evals: list[dict] = field(default_factory=list)  # one entry per evaluation
    train_seconds: float = 0.0
    samples_seen: int = 0  # rows this process trained on

    @property
    def anneals(self) -> bool:
        """Whether the run's target moved from a teacher to gold (in a multi-task run: any task's)."""
        objectives = self.objective.values() if isinstance(self.objective, dict) else [self.objective]
        return any(o.anneals for o in objectives)


@dataclass
class TrainResult:
    """What `train` made: the model folder, its files, and the report `metrics.json` holds."""

    out: Path  # the save_pretrained folder (model, tokenizer, thresholds.json, README.md, plots)
    report: dict[str, Any]
    main_process: bool = True  # False in the other processes of a multi-process launch: they wrote nothing

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


ROUND_FIGURES = ("macro_f1", "micro_f1", "roc_auc_macro", "loss")  # validation figures of a round's line


def round_summary(r: int, added: int, train_rows: int, teacher: Any, result: FitResult, val: dict) -> dict:
    """Round `r`'s line of the report: what it trained on, how it ended, its validation figures (those of
    ROUND_FIGURES that `val` has)."""
    return {
        "round": r + 1,
        "pseudo_labelled_added": added,
        "train_rows": train_rows,
        "teacher": teacher is not None,
        "teacher_annealing": teacher is not None and result.anneals,
        "steps": result.steps,
        "best_step": result.best_step,
        "stopped": result.stopped,
        "validation": {k: val[k] for k in ROUND_FIGURES if k in val},
    }


def rounds_report(cfg: TrainConfig, rounds: list[dict]) -> dict[str, Any]:
    """The report's `rounds` (pseudo-labelling) or, for born-again runs, the same lines as `generations` and the
    `best_generation` (the first with the best validation macro-F1: the saved one); nothing for a single round."""
    if cfg.born_again > 1:
        scores = [g["validation"]["macro_f1"] for g in rounds]
        generations = [{"generation": g.pop("round"), **g} for g in rounds]
        return {"generations": generations, "best_generation": 1 + scores.index(max(scores))}
    return {"rounds": rounds} if cfg.rounds > 1 else {}


def training_report(
    cfg: TrainConfig,
    data: Splits,
    clf: EmotionClassifier,
    result: FitResult,
    metrics: dict[str, dict | None],
    wall_seconds: float,
    processes: int,
    rounds: list[dict],
) -> dict[str, Any]:
    """The report of a run: `metrics` ({"validation", "test"}), thresholds, data and training figures.

    `result` is the kept round's run; `wall_seconds` the whole run's, all rounds and evaluations; `rounds`
    each round's `round_summary` (`rounds_report`).
    """
    from emopillars.distill.heads import head_of  # torch: loaded by the run, not by `import emopillars.downstream`

    return {
        "validation": metrics["validation"],
        "test": metrics["test"],
        "head": head_of(clf.model.config),
        "thresholds": {name: float(t) for name, t in zip(cfg.labels, clf.thresholds, strict=True)},
        "data": data.summary | {"train_rows_used": len(data.train)},
        "training": {
            "steps": result.steps,
            "best_step": result.best_step,
            "stopped": result.stopped,
            "train_seconds": round(result.train_seconds, 2),
            "samples_per_s": round(result.samples_seen / max(result.train_seconds, 1e-9), 2),
            "wall_seconds": round(wall_seconds, 2),
            "processes": processes,
        },
        "history": result.history,
        "evals": result.evals,
    } | rounds_report(cfg, rounds)


def write_model_folder(cfg: TrainConfig, clf: EmotionClassifier, report: dict[str, Any], out: Path) -> None:
    """The model folder: weights and tokenizer, settings, metrics, plots and card."""
    from emopillars.config import save_config
    from emopillars.distill.card import write_card
    from emopillars.distill.plots import plot_per_label_f1, plot_training

    clf.save_pretrained(out)
    save_config(cfg, out / "train_config.json")
    write_report(report, out)
    plot_training(report["history"], report["evals"], out / "training_curves.png")
    plot_per_label_f1(report["validation"], report["test"], out / "per_label_f1.png")
    write_card(cfg, report, out / "README.md")


def write_report(report: dict[str, Any], out: Path) -> None:
    """`out/metrics.json` (finetune rewrites it with its task's figures added)."""
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
