"""`emopillars teacher-eval`: how well does the teacher label? Checked on human-labelled utterances before the big run.

It runs the synth label stage unchanged (same prompt, shuffled label orders, samples, sampling and call cache) on
gold utterances, then scores the mean-of-samples labels against the gold ones with scikit-learn. Gold formats:
`.jsonl` with `text` (or `utterance`) and `labels` (names); the GoEmotions TSV (`text<TAB>ids<TAB>id`); a
two-column TSV `text<TAB>name,name`.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emopillars.distill.metrics import format_table, prediction_metrics
from emopillars.errors import EmopillarsError
from emopillars.jsonl import json_objects
from emopillars.labels import label_matrix, parse_label_names
from emopillars.sources import read_text
from emopillars.synth.backends import Backend
from emopillars.synth.config import TeacherEvalConfig
from emopillars.synth.fidelity import first_picks
from emopillars.synth.files import exclusive, write_atomic
from emopillars.synth.labeller import Labeller
from emopillars.synth.pipeline import build_backend
from emopillars.synth.runner import Runner
from emopillars.taxonomy import LABELS, check_labels

SPEAKER = "Someone"  # gold utterances come without a speaker, as context-less rewrites do


@dataclass(frozen=True)
class Gold:
    text: str
    labels: tuple[str, ...]


def read_gold(path: Path) -> list[Gold]:
    """Gold utterances from `.jsonl` or `.tsv`; a malformed line is a one-line error naming file:line."""
    if not path.is_file():
        raise EmopillarsError(f"gold file not found: {path}")
    lines = read_text(path).splitlines()
    if path.suffix == ".jsonl":
        rows = []
        for n, obj in json_objects(path, lines):
            text, labels = obj.get("text", obj.get("utterance")), obj.get("labels")
            if not isinstance(text, str) or not text.strip() or not isinstance(labels, list):
                raise EmopillarsError(f"{path}:{n}: needs 'text' (or 'utterance') and a list 'labels'")
            rows.append(_gold(text, [str(x) for x in labels], f"{path}:{n}"))
    elif path.suffix == ".tsv":
        rows = [_tsv_line(line, f"{path}:{n}") for n, line in enumerate(lines, 1) if line.strip()]
    else:
        raise EmopillarsError(f"gold file {path}: expected .jsonl or .tsv")
    if not rows:
        raise EmopillarsError(f"gold file {path} holds no utterances")
    return rows


def _tsv_line(line: str, where: str) -> Gold:
    fields = line.rstrip("\r").split("\t")
    if len(fields) not in (2, 3):
        raise EmopillarsError(f"{where}: expected text<TAB>labels[<TAB>id], found {len(fields)} field(s)")
    # GoEmotions writes label ids; the two-column form writes names.
    return _gold(fields[0], parse_label_names(fields[1], where), where)


def _gold(text: str, labels: list[str], where: str) -> Gold:
    check_labels(labels, where)
    if not labels:
        raise EmopillarsError(f"{where}: no labels")
    return Gold(" ".join(text.split()), tuple(sorted(set(labels), key=LABELS.index)))


def teacher_eval(config: TeacherEvalConfig, backend: Backend | None = None) -> dict:
    """Label the gold utterances as synth would, write predictions.jsonl and teacher_eval.json, return the metrics.

    The figures are `prediction_metrics`' (the ones `train` and `evaluate` report), rounded to 4 places.
    """
    if config.gold is None:
        raise EmopillarsError("teacher-eval needs --gold FILE (human-labelled utterances)")
    gold = read_gold(config.gold)[: config.max_examples]
    started = time.perf_counter()
    with exclusive(config.out):
        write_atomic(config.out / "config.json", config.model_dump_json(indent=2) + "\n")
        llm = backend or build_backend(config)
        runner = Runner(llm, config.out, config.max_retries, config.max_in_flight, config.sends_ahead)
        labeller = Labeller(config, runner)

        async def label_all() -> list:
            return list(await asyncio.gather(*(labeller(g.text, None, SPEAKER) for g in gold)))

        try:
            soft = runner.run(label_all)
        finally:
            if backend is None:
                llm.close()
        stats = runner.stats
        predictions = []
        for g, s in zip(gold, soft, strict=True):
            scores = s.scores if s else dict.fromkeys(LABELS, 0.0)  # no usable sample: predicts nothing
            labels = [label for label in LABELS if scores[label] >= config.label_threshold]
            predictions.append({"text": g.text, "labels": labels, "scores": scores, "gold": list(g.labels)})
        _write_jsonl(config.out / "predictions.jsonl", predictions)

        y_true = label_matrix([p["gold"] for p in predictions], LABELS)
        y_pred = label_matrix([p["labels"] for p in predictions], LABELS)
        agreements = [s.agreement for s in soft if s and s.agreement is not None]
        picks = first_picks(labeller.judgements)
        metrics = {
            **_rounded(prediction_metrics(y_true, y_pred, LABELS)),  # n, F1s, precision, recall, per_label
            "label_threshold": config.label_threshold,
            "first_pick_position_entropy_bits": picks["first_pick_position_entropy_bits"],
            "first_pick_entropy_bits": picks["first_pick_entropy_bits"],
            "label_agreement": round(sum(agreements) / len(agreements), 4) if agreements else None,
            "unlabelled": sum(s is None for s in soft),
            "model": llm.model,
            "label_samples": config.label_samples,
            "llm_calls": stats.total("sent"),
            "cached_calls": stats.total("cached"),
            "wall_seconds": round(time.perf_counter() - started, 2),
        }
        write_atomic(config.out / "teacher_eval.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


def summary(metrics: dict, out: Path) -> str:
    """The terminal table: headline figures, then labels with gold support."""
    return "\n".join(
        [
            f"emopillars teacher-eval -> {out}  ({metrics['model']}, {metrics['label_samples']} samples each)",
            f"  at threshold {metrics['label_threshold']}; label agreement {metrics['label_agreement']}; "
            f"first-pick position entropy {metrics['first_pick_position_entropy_bits']} bits (max 4.81)",
            format_table(metrics, "gold utterances", supported_only=True),
        ]
    )


def _rounded(value: Any) -> Any:
    """Floats to 4 places, through dicts (the figures stay readable in teacher_eval.json)."""
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return round(value, 4) if isinstance(value, float) else value


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
