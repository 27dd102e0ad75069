"""Round trips finetune -> evaluate -> predict on every task's fixture with the real embedded MiniLM."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score

from emopillars.downstream.config import EvaluateConfig, FinetuneConfig
from emopillars.downstream.evaluate import evaluate
from emopillars.downstream.tasks import TASKS, read_task
from emopillars.errors import EmopillarsError

from .conftest import DATA, FAST


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from emopillars.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _sklearn_on_predict(model: Path, task: str) -> dict[str, float]:
    """The task's metrics computed here, independently: scikit-learn on `predict`'s labels."""
    from emopillars.inference.classifier import EmotionClassifier

    t = TASKS[task]
    clf = EmotionClassifier.from_pretrained(model)
    rows = read_task(task, DATA[task])["test"]
    contexts = [r["context"] or "" for r in rows] if t.mode == "contextual" else None
    predicted = [p["labels"] for p in clf.predict([r["text"] for r in rows], contexts)]
    if t.problem_type == "single_label":
        y_true = [r["labels"][0] for r in rows]
        y_pred = [p[0] for p in predicted]
        micro = list(t.emotion_labels or t.labels)
        return {
            "accuracy": accuracy_score(y_true, y_pred),
            "macro_f1": f1_score(y_true, y_pred, labels=list(t.labels), average="macro", zero_division=0),
            "weighted_f1": f1_score(y_true, y_pred, labels=list(t.labels), average="weighted", zero_division=0),
            "micro_f1": f1_score(y_true, y_pred, labels=micro, average="micro", zero_division=0),
        }
    gold = np.array([[n in r["labels"] for n in t.labels] for r in rows], dtype=int)
    pred = np.array([[n in p for n in t.labels] for p in predicted], dtype=int)
    return {
        "macro_f1": f1_score(gold, pred, average="macro", zero_division=0),
        "micro_f1": f1_score(gold, pred, average="micro", zero_division=0),
    }


@pytest.mark.parametrize("task", list(TASKS))
def test_finetune_then_evaluate_equals_sklearn_on_predict(finetuned, task: str) -> None:
    from emopillars.inference.classifier import EmotionClassifier

    model, report = finetuned(task)
    t = TASKS[task]
    clf = EmotionClassifier.from_pretrained(model)
    assert clf.labels == t.labels and clf.problem_type == t.problem_type and clf.mode == t.mode
    assert report["head_init"] == "mapped" and (model / "finetune_config.json").is_file()

    result = evaluate(EvaluateConfig(model=str(model), data=str(DATA[task]), task=task))
    metrics = result["metrics"]
    assert result["n"] == len(read_task(task, DATA[task])["test"]) > 0
    assert metrics == report["task_test"]  # finetune's closing evaluation is evaluate's
    for key, value in _sklearn_on_predict(model, task).items():
        assert metrics[key] == pytest.approx(value, abs=1e-12), key
    # the trainer's own test metrics (its thresholds, its path) agree as well
    saved = json.loads((model / "metrics.json").read_text())
    assert saved["test"]["macro_f1"] == pytest.approx(metrics["macro_f1"])
    assert {r["system"] for r in result["references"]}


def test_evaluate_without_task_on_train_format_data(finetuned, tmp_path: Path) -> None:
    """Any `train` input works: here the GoEmotions fixture written as train-format JSON lines."""
    model, _ = finetuned("goemotions")
    rows = [r for part in read_task("goemotions", DATA["goemotions"]).values() for r in part]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "eval.json"
    plain = evaluate(EvaluateConfig(model=str(model), data=str(data), out=out))
    with_task = evaluate(EvaluateConfig(model=str(model), data=str(DATA["goemotions"]), task="goemotions"))
    assert plain["n"] == with_task["n"] == 8 and plain["task"] is None
    for key in ("macro_f1", "micro_f1", "weighted_f1", "subset_accuracy"):
        assert plain["metrics"][key] == pytest.approx(with_task["metrics"][key])
    assert json.loads(out.read_text())["metrics"]["macro_f1"] == plain["metrics"]["macro_f1"]
    # without a split column: the seeded split `train` itself would make
    unsplit = tmp_path / "unsplit.jsonl"
    unsplit.write_text("".join(json.dumps({"text": r["text"], "labels": r["labels"]}) + "\n" for r in rows))
    assert evaluate(EvaluateConfig(model=str(model), data=str(unsplit), split="validation"))["n"] >= 1


def test_evaluate_refuses_a_model_with_other_labels(finetuned) -> None:
    model, _ = finetuned("isear")
    with pytest.raises(EmopillarsError, match="not the emocontext labels .*`emopillars finetune --task emocontext`"):
        evaluate(EvaluateConfig(model=str(model), data=str(DATA["emocontext"]), task="emocontext"))


def test_cli_finetune_evaluate_predict(init28: Path, tmp_path: Path) -> None:
    out, metrics = tmp_path / "isear-model", tmp_path / "isear-eval.json"
    fast = [f"--{k.replace('_', '-')}={v}" for k, v in FAST.items() if k != "progress"]
    data = str(Path(DATA["isear"]).parent / "isear_two_columns.csv")
    done = _cli("finetune", "--task", "isear", "--data", data, "--init", str(init28), "--out", str(out), *fast)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "this model" in done.stdout and "Adoma" in done.stdout and f"saved {out}" in done.stdout
    done = _cli("evaluate", "--model", str(out), "--task", "isear", "--data", data, "--output", str(metrics))
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(metrics.read_text())
    assert {"accuracy", "macro_f1", "per_label"} <= set(result["metrics"]) and result["split"] == "test"
    done = _cli("predict", "--model", str(out), "When I passed my final exam.")
    assert done.returncode == 0, done.stderr[-2000:]
    prediction = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(prediction["labels"]) == 1 and set(prediction["scores"]) == set(TASKS["isear"].labels)


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    done = _cli("evaluate", "--model", str(tmp_path), "--task", "isear", "--data", str(DATA["isear"]))
    assert done.returncode == 1 and done.stderr.strip().count("\n") == 0 and "config.json" in done.stderr
    done = _cli("finetune", "--task", "isear", "--data", str(DATA["isear"]), "--problem-type", "multi_label")
    assert done.returncode != 0 and "No such option" in done.stderr  # the task fixes it: not a flag here


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="problem_type is fixed by task isear"):
        FinetuneConfig(task="isear", data="x", problem_type="multi_label")
    with pytest.raises(ValueError, match="not both"):
        FinetuneConfig(task="isear", data="x", init="a", model="b")
    cfg = FinetuneConfig(task="iemocap", data="x", context_turns=1, mode="contextless")
    assert cfg.mode == "contextless" and cfg.labels == TASKS["iemocap"].labels
    assert cfg.read_options().context_turns == 1 and cfg.train_config().problem_type == "single_label"


def test_evaluate_on_train_data_scores_the_rows_train_held_out(tmp_path: Path) -> None:
    """A model from `emopillars train` on unsplit data: evaluate --data on that data equals its test metrics."""
    from emopillars.distill.config import TrainConfig
    from emopillars.distill.trainer import train

    rows = [r for part in read_task("goemotions", DATA["goemotions"]).values() for r in part]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"text": r["text"], "labels": r["labels"]}) + "\n" for r in rows))
    out = tmp_path / "model"
    report = train(TrainConfig(data=str(data), out=out, seed=3, **FAST)).report
    result = evaluate(EvaluateConfig(model=str(out), data=str(data)))
    assert result["n"] == report["test"]["n"]
    for key in ("macro_f1", "micro_f1", "weighted_f1", "subset_accuracy", "hamming_loss"):
        assert result["metrics"][key] == pytest.approx(report["test"][key]), key
