"""The model card (README.md) of a trained model folder: data, settings, metrics."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emopillars.distill.config import TrainConfig

SETTINGS = (
    "mode", "problem_type", "model", "epochs", "max_steps", "batch_size", "grad_accum", "lr", "schedule",
    "warmup_ratio", "max_length", "loss", "focal_gamma", "pos_weight", "label_smoothing", "ortho_weight",
    "teacher", "kd_weight", "temperature", "rounds", "pseudo_threshold", "seed",
)  # fmt: skip
SUMMARY = ("macro_f1", "micro_f1", "weighted_f1", "roc_auc_macro", "hamming_loss", "subset_accuracy", "accuracy")


def _fmt(value: object) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "n/a" if value is None else str(value)


def render_card(cfg: TrainConfig, report: dict) -> str:
    """Markdown with Hub front matter, so the folder reads well locally and on the Hub."""
    splits = [(name, report[name]) for name in ("validation", "test") if report.get(name)]
    rows = report["data"].get("rows", {})
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-classification",
        "tags: [emotion, emopillars, " + cfg.problem_type.replace("_", "-") + "]",
        "---",
        f"# emopillars emotion classifier ({cfg.mode})",
        "",
        f"A {len(cfg.labels)}-label {cfg.problem_type.replace('_', '-')} classifier (dropout + linear head over "
        "the pooled [CLS] output) trained with `emopillars train`.",
        "",
        "```python",
        "from transformers import pipeline",
        'clf = pipeline("text-classification", model="PATH", top_k=None)',
        "# or, with the tuned thresholds: emopillars.EmotionClassifier.from_pretrained(PATH).predict(texts)",
        "```",
        "",
        "## Data",
        f"Source: `{report['data'].get('source', 'in-memory splits')}`; rows: "
        + ", ".join(f"{k} {v}" for k, v in rows.items()),
        "",
        "## Settings",
        "| setting | value |",
        "|---|---|",
        f"| model | {cfg.model or 'all-MiniLM-L6-v2 (embedded)'} |",
        *(f"| {k} | {_fmt(getattr(cfg, k))} |" for k in SETTINGS if k != "model"),
        "",
        "## Metrics (thresholds tuned per label on validation)",
        "| split | " + " | ".join(SUMMARY) + " |",
        "|---|" + "---|" * len(SUMMARY),
        *(f"| {name} | " + " | ".join(_fmt(m.get(k)) for k in SUMMARY) + " |" for name, m in splits),
    ]
    if "rounds" in report:
        lines += ["", "## Pseudo-label rounds", "| round | added | validation macro-F1 |", "|---|---|---|"]
        lines += [f"| {r['round']} | {r['pseudo_labelled_added']} | {r['validation']['macro_f1']:.4f} |"
                  for r in report["rounds"]]  # fmt: skip
    lines += ["", "Per-label figures are in `metrics.json`; curves in `training_curves.png`.", ""]
    return "\n".join(lines)


def write_card(cfg: TrainConfig, report: dict, path: Path) -> None:
    path.write_text(render_card(cfg, report), encoding="utf-8")
