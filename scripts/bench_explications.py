"""Benchmark the label stage's explications: does asking every label call for one change the scores?

Each utterance is labelled by `--label-samples` blind calls and only the first call's explication is kept with the
example. This runs `teacher-eval` on one loaded engine, on the same gold utterances, three times:

- `all`: every call writes an explication, then its scores (what synth did before);
- `first`: only the first call does, the others write their scores only (fewer generated tokens);
- `all, seed 1`: `all` again with another seed: how far the scores move by sampling alone, the yardstick for the
  difference between the first two.

The first call of an utterance sends the same prompt and seed in `all` and `first`, so the two differ only in the
other calls. Per run: macro F1 against the gold, target recall (share of utterances whose gold label is among the
predicted ones), primary accuracy (the top score is a gold label), mean label agreement of the samples, generated
tokens (from the call cache) and seconds. Then, per utterance against `all`: the mean absolute score difference
over the 28 labels and the share of utterances whose primary label changed; `first` counts as no change when it
moves the scores no more than the seed change does. The gold set (`scripts/data/gold_emotions.tsv`, 56 hand-written
utterances, 2 per label) is the default. The last line is JSON, also written to `--json-out`.

    python scripts/bench_explications.py [--gold FILE] [--model ID] [--label-samples 3] [--enforce-eager]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score

from emopillars.synth.config import TeacherEvalConfig
from emopillars.synth.pipeline import build_backend
from emopillars.synth.teacher_eval import teacher_eval
from emopillars.taxonomy import LABELS

GOLD = Path(__file__).parent / "data" / "gold_emotions.tsv"
VARIANTS = {"all": {"label_explications": "all"}, "first": {"label_explications": "first"},
            "all, seed 1": {"label_explications": "all", "seed": 1}}  # fmt: skip


def predictions(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def generated_tokens(out: Path) -> int:
    """Tokens the label calls generated, from the run's call cache (every call of the run is there)."""
    lines = (out / "cache" / "labels.jsonl").read_text().splitlines()
    return sum(json.loads(line)["completion"]["completion_tokens"] or 0 for line in lines)


def scores(rows: list[dict]) -> np.ndarray:
    return np.array([[row["scores"][label] for label in LABELS] for row in rows])


def quality(rows: list[dict], metrics: dict) -> dict:
    """How well a run's soft labels match the gold."""
    gold = np.array([[label in row["gold"] for label in LABELS] for row in rows])
    predicted = np.array([[label in row["labels"] for label in LABELS] for row in rows])
    primary = scores(rows).argmax(axis=1)
    return {
        "macro_f1": round(float(f1_score(gold, predicted, average="macro", zero_division=0)), 4),
        "target_recall": round(float((gold & predicted).any(axis=1).mean()), 4),
        "primary_accuracy": round(float(gold[np.arange(len(rows)), primary].mean()), 4),
        "label_agreement": metrics["label_agreement"],
    }


def difference(rows: list[dict], reference: list[dict]) -> dict:
    """How far a run's soft labels are from the reference run's, utterance by utterance."""
    a, b = scores(rows), scores(reference)
    return {
        "mean_abs_score_diff": round(float(np.abs(a - b).mean(axis=1).mean()), 4),
        "primary_changed": round(float((a.argmax(axis=1) != b.argmax(axis=1)).mean()), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold", type=Path, default=GOLD)
    parser.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    parser.add_argument("--label-samples", type=int, default=3)
    parser.add_argument("--enforce-eager", action="store_true", help="vLLM without torch.compile (starts faster)")
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args()

    base = {"gold": args.gold, "model": args.model, "label_samples": args.label_samples,
            "enforce_eager": args.enforce_eager}  # fmt: skip
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        backend = build_backend(TeacherEvalConfig(**base))
        with backend:
            for name, update in VARIANTS.items():
                config = TeacherEvalConfig(**base, **update, out=Path(tmp) / name.replace(", ", "-"))
                backend.reset_prefix_cache()  # each run pays its own prefill
                started = time.perf_counter()
                metrics = teacher_eval(config, backend=backend)
                rows[name] = {
                    "seconds": round(time.perf_counter() - started, 1),
                    "generated_tokens": generated_tokens(config.out),
                    **quality(predictions(config.out), metrics),
                    "predictions": predictions(config.out),
                }
    reference = rows["all"]["predictions"]
    for row in rows.values():
        row |= difference(row["predictions"], reference)
    seed_noise, first = rows["all, seed 1"], rows["first"]
    result = {
        "n": len(reference),
        "label_samples": args.label_samples,
        "model": args.model or "embedded SmolLM2-135M-Instruct",
        "generated_tokens_ratio_first_vs_all": round(first["generated_tokens"] / rows["all"]["generated_tokens"], 3),
        "speedup_first_vs_all": round(rows["all"]["seconds"] / first["seconds"], 2),
        "first_within_seed_noise": first["mean_abs_score_diff"] <= seed_noise["mean_abs_score_diff"]
        and first["primary_changed"] <= seed_noise["primary_changed"],
        "runs": {name: {k: v for k, v in row.items() if k != "predictions"} for name, row in rows.items()},
    }
    columns = [c for c in result["runs"]["all"]]
    print(f"\n{len(reference)} gold utterances, {args.label_samples} label calls each")
    print(f"{'run':<14}" + "".join(f"{c:>20}" for c in columns))
    for name, row in result["runs"].items():
        print(f"{name:<14}" + "".join(f"{row[c]!s:>20}" for c in columns))
    print(f"generated tokens, first / all: {result['generated_tokens_ratio_first_vs_all']}; "
          f"speed-up {result['speedup_first_vs_all']}x; "
          f"'first' within the seed's noise: {result['first_within_seed_noise']}")  # fmt: skip
    line = json.dumps(result)
    if args.json_out:
        args.json_out.write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
