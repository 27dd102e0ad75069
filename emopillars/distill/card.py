"""The model card (README.md) of a trained model folder, through `huggingface_hub.ModelCard`.

The front matter is `ModelCardData`: base model, datasets (when the data is a Hub id), pipeline tag,
widget examples and a model-index with the validation/test metrics, so the Hub shows them; the body
spells out the input mode, the thresholds, the training settings (numbers exactly as given) and how
to use the model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

    from emopillars.distill.config import TrainConfig

SUMMARY = ("macro_f1", "micro_f1", "weighted_f1", "roc_auc_macro", "hamming_loss", "subset_accuracy", "accuracy")
EMBEDDED_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"  # what the embedded default model is
WIDGET = ["I can't believe you remembered my birthday!", "Leave me alone, I said no."]
HEADS = {
    "linear": "dropout + linear head over the pooled [CLS] output",
    "tanh": "Tanh head: dense -> Tanh -> dropout -> linear over the [CLS] hidden state",
}
MODES = {
    "contextless": "the utterance alone: `tokenizer(utterance)`.",
    "contextual": "a pair `tokenizer(utterance, context)` where context is "
    '`"<character description>: <situation>"` (either part may be empty); the context side is truncated first.',
}


def _hub_id(ref: str | None) -> str | None:
    """`ref` when it names a Hub repo rather than a local path (the Hub rejects paths in metadata)."""
    if not ref or Path(ref).expanduser().exists() or ref.startswith((".", "/", "~")) or Path(ref).suffix:
        return None
    return ref.partition("@")[0]


def _fmt(value: Any) -> str:
    """Numbers as given (5e-05, not 0.0001); everything else as JSON would write it."""
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else json.dumps(value)


def build_card(cfg: TrainConfig, report: dict[str, Any]) -> ModelCard:
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    data_id = _hub_id(cfg.data)
    name = f"emopillars-{Path(cfg.out).name}"
    results = [
        EvalResult(
            task_type="text-classification",
            dataset_type=data_id or "emopillars-synthetic",
            dataset_name=data_id or str(report["data"].get("source", "in-memory data")),
            dataset_split=split,
            metric_type=key,
            metric_name=key.replace("_", " "),
            metric_value=round(float(report[split][key]), 4),
        )
        for split in ("validation", "test")
        if report.get(split)
        for key in SUMMARY
        if report[split].get(key) is not None
    ]
    problem = cfg.problem_type.replace("_", "-")
    data = ModelCardData(
        model_name=name,
        base_model=_hub_id(cfg.model) or (EMBEDDED_ENCODER if cfg.model is None else None),
        datasets=[data_id] if data_id else None,
        library_name="transformers",
        pipeline_tag="text-classification",
        tags=["emotion", "emopillars", problem, cfg.mode],
        eval_results=results or None,
        widget=[{"text": text} for text in WIDGET],
    )
    return ModelCard(f"---\n{data.to_yaml()}\n---\n" + _body(cfg, report, name))


def _pipeline_usage(head: str) -> list[str]:
    """transformers' pipeline loads a linear-head folder; the Tanh head is emopillars' own module."""
    if head == "tanh":
        return ["The Tanh head is emopillars' own module (`transformers.pipeline` does not load it):", ""]
    return [
        "```python",
        "from transformers import pipeline",
        "",
        'clf = pipeline("text-classification", model="REPO_OR_FOLDER", top_k=None)',
        'clf("I can\'t believe you remembered my birthday!")  # every label with its score',
        "```",
        "",
        "With the tuned per-label thresholds (and the context, for contextual models):",
        "",
    ]


def _body(cfg: TrainConfig, report: dict[str, Any], name: str) -> str:
    rows = report["data"].get("rows", {})
    splits = [(split, report[split]) for split in ("validation", "test") if report.get(split)]
    settings = cfg.model_dump(mode="json", exclude={"labels", "out", "progress"})
    thresholds = report.get("thresholds", {})
    head = report.get("head", "linear")
    lines = [
        f"# {name}",
        "",
        f"A {len(cfg.labels)}-label {cfg.problem_type.replace('_', '-')} emotion classifier ({HEADS[head]} "
        f"of `{cfg.model or EMBEDDED_ENCODER}`) trained with `emopillars train`.",
        "",
        f"**Input mode: {cfg.mode}**: {MODES[cfg.mode]}",
        "",
        "## Usage",
        "",
        *_pipeline_usage(head),
        "```python",
        "from emopillars import EmotionClassifier",
        "",
        'clf = EmotionClassifier.from_pretrained("REPO_OR_FOLDER")',
        'clf.predict(["I can\'t believe you remembered my birthday!"]'
        + (
            ', contexts=["Mara, a young athlete: her friends threw a surprise party."]'
            if cfg.mode == "contextual"
            else ""
        )
        + ")",
        "```",
        "",
        "## Data",
        "",
        f"Source: `{report['data'].get('source', 'in-memory splits')}`; rows: "
        + ", ".join(f"{k} {v}" for k, v in rows.items()),
        "",
        "## Metrics",
        "",
        "Thresholds tuned per label on validation." if cfg.multi_label else "Argmax over the classes.",
        "",
        "| split | " + " | ".join(SUMMARY) + " |",
        "|---|" + "---|" * len(SUMMARY),
        *(
            f"| {s} | " + " | ".join("n/a" if m.get(k) is None else f"{m[k]:.4f}" for k in SUMMARY) + " |"
            for s, m in splits
        ),
    ]
    if "rounds" in report:
        lines += ["", "### Pseudo-label rounds", "", "| round | added | validation macro-F1 |", "|---|---|---|"]
        lines += [f"| {r['round']} | {r['pseudo_labelled_added']} | {r['validation']['macro_f1']:.4f} |"
                  for r in report["rounds"]]  # fmt: skip
    lines += _teacher_lines(cfg, report) + _task_lines(report)
    if "search" in report:
        lines += _search_section(report["search"])
    if cfg.multi_label and thresholds:
        lines += ["", "## Thresholds", "", "| label | threshold |", "|---|---|"]
        lines += [f"| {label} | {_fmt(t)} |" for label, t in thresholds.items()]
    lines += ["", "## Training settings", "", "| setting | value |", "|---|---|"]
    lines += [f"| {key} | {_fmt(value)} |" for key, value in settings.items()]
    lines += ["", "Per-label figures are in `metrics.json`; curves in `training_curves.png`.", ""]
    return "\n".join(lines)


def _teacher_lines(cfg: TrainConfig, report: dict[str, Any]) -> list[str]:
    """Born-again generations (which one was kept) and teacher annealing, when the run used them."""
    lines: list[str] = []
    if "generations" in report:
        lines += ["", "### Born-again generations", "",
                  f"{len(report['generations'])} generations of the same architecture, each distilling from the "
                  f"previous one; generation {report['best_generation']} (best validation macro-F1) is this model.",
                  "", "| generation | teacher | validation macro-F1 |", "|---|---|---|"]  # fmt: skip
        first = cfg.teacher or ("--task-teacher" if cfg.task_teacher else "none")
        lines += [f"| {g['generation']} | {'previous generation' if g['generation'] > 1 else first} "
                  f"| {g['validation']['macro_f1']:.4f} |" for g in report["generations"]]  # fmt: skip
    if cfg.teacher_annealing:
        lines += ["", "**Teacher annealing** (BAM!): with a teacher, the target moved linearly from the teacher's "
                  "probabilities to the gold labels over training (lambda 0 -> 1 by optimizer step)."]  # fmt: skip
    return lines


def _search_section(search: dict[str, Any]) -> list[str]:
    """How `emopillars tune` chose the options: the study, its trials, the space and this trial's draws."""
    trials = ", ".join(f"{n} {state}" for state, n in search["trials"].items() if n)
    lines = ["", "## Hyper-parameter search", "",
             f"The options below were chosen by {search['tool']}: study `{search['study']}`, {search['sampler']}, "
             f"{search['pruner']} pruner, objective {search['objective']}; {trials}. This model is trial "
             f"{search['trial']} (validation macro-F1 {search['value']:.4f}).",
             "", "| option | searched over | chosen |", "|---|---|---|"]  # fmt: skip
    lines += [f"| {name} | {where} | {_fmt(search['chosen'].get(name))} |" for name, where in search["space"].items()]
    return lines


def _task_lines(report: dict[str, Any]) -> list[str]:
    """A multi-task model's tasks: each head's labels, data and figures (the metrics above are the default's)."""
    tasks = report.get("tasks")
    if not tasks:
        return []
    lines = ["", "## Tasks", "", f"One head per task over a shared encoder; the default task is "
             f"`{report['default_task']}` (the figures above). Load another head with "
             "`EmotionClassifier.from_pretrained(\"REPO_OR_FOLDER\", task=NAME)` or `emopillars predict --task NAME`.",
             "", "| task | problem | labels | data | teacher | validation macro-F1 | test macro-F1 |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for name, t in tasks.items():
        test = "n/a" if not t["test"] else f"{t['test']['macro_f1']:.4f}"
        teacher = f"`{t['teacher']}`" if t.get("teacher") else "none"
        lines.append(f"| {name} | {t['problem_type']} | {len(t['labels'])} | `{t['data']}` | {teacher} "
                     f"| {t['validation']['macro_f1']:.4f} | {test} |")  # fmt: skip
    return lines


def write_card(cfg: TrainConfig, report: dict[str, Any], path: Path) -> None:
    build_card(cfg, report).save(path)
