"""Multi-task training: the synthesized 28-label corpus and a small single-label set over one encoder.

One two-task model is trained per session (`multitask`); the tests read its folder and report.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score
from typer.testing import CliRunner

from emopillars.cli import app
from emopillars.distill.config import TrainConfig
from emopillars.distill.data import load_splits
from emopillars.distill.metrics import decide
from emopillars.distill.multitask import task_probabilities
from emopillars.distill.tasks import parse_spec
from emopillars.errors import EmopillarsError
from emopillars.inference.classifier import EmotionClassifier

from .conftest import FAST

runner = CliRunner()

SENTIMENT = {
    "positive": ["I love this so much", "what a great gift", "this is the best day", "I am very pleased"],
    "negative": ["this is awful", "I hate waiting here", "what a terrible mess", "I am so disappointed"],
    "neutral": ["the bus leaves at nine", "the table is made of wood", "it is a Tuesday", "the box has two lids"],
}


def write_sentiment(path: Path) -> Path:
    """A tiny single-label jsonl: `text`, `labels` (one name), `split`."""
    with path.open("w", encoding="utf-8") as fh:
        for label, phrases in SENTIMENT.items():
            for phrase in phrases:
                for k, suffix in enumerate(["", " indeed", " today", " honestly"]):
                    split = "validation" if k == 2 else "test" if k == 3 else "train"
                    fh.write(json.dumps({"text": phrase + suffix, "labels": label, "split": split}) + "\n")
    return path


@pytest.fixture(scope="session")
def multitask(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, TrainConfig, str]:
    """The two-task model, trained through the command line (its printed output comes back too)."""
    tmp = tmp_path_factory.mktemp("multitask")
    sentiment = write_sentiment(tmp / "sentiment.jsonl")
    cfg = TrainConfig(task=(f"emo={synth_dir}", f"senti={sentiment}:labels"), out=tmp / "model", max_steps=12,
                      eval_every=6, **FAST)  # fmt: skip
    flags = ["--batch-size", "8", "--eval-batch-size", "32", "--max-length", "64", "--lr", "1e-4", "--no-progress"]
    assert set(FAST) == {"batch_size", "eval_batch_size", "max_length", "lr", "progress"}  # the flags above
    tasks = [arg for spec in cfg.task for arg in ("--task", spec)]
    result = runner.invoke(app, ["train", *tasks, "--out", str(cfg.out), "--max-steps", "12", "--eval-every", "6",
                                 *flags])  # fmt: skip
    assert result.exit_code == 0, result.output
    return cfg.out, json.loads((cfg.out / "metrics.json").read_text()), cfg, result.output


def test_each_head_has_its_labels_and_metrics_match_sklearn(multitask: tuple) -> None:
    out, report, cfg, printed = multitask
    assert "senti validation (n=12)" in printed and "emo test" in printed
    tasks = json.loads((out / "tasks.json").read_text())
    assert tasks["default"] == "emo" and list(tasks["tasks"]) == ["emo", "senti"]
    assert tasks["tasks"]["senti"]["labels"] == ["negative", "neutral", "positive"]
    assert tasks["tasks"]["senti"]["problem_type"] == "single_label"
    assert len(tasks["tasks"]["emo"]["labels"]) == 28
    for name, spec in zip(("emo", "senti"), cfg.task, strict=True):
        clf = EmotionClassifier.from_pretrained(out, task=name)
        assert list(clf.labels) == tasks["tasks"][name]["labels"]
        task_cfg = cfg.model_copy(update={"task": (), "data": parse_spec(spec)[1], "labels": clf.labels,
                                          "problem_type": clf.problem_type})  # fmt: skip
        test = load_splits(task_cfg).test
        single = clf.problem_type == "single_label"
        pred = decide(clf.predict_proba(test.texts, test.contexts), clf.thresholds, single)
        figures = report["tasks"][name]["test"]
        assert figures["macro_f1"] == pytest.approx(f1_score(test.gold, pred, average="macro", zero_division=0))
        assert figures["micro_f1"] == pytest.approx(f1_score(test.gold, pred, average="micro", zero_division=0))
        if single:
            assert figures["accuracy"] == pytest.approx(accuracy_score(test.gold.argmax(1), pred.argmax(1)))
    # the folder itself is the default task's model: single-task loaders read it unchanged
    assert EmotionClassifier.from_pretrained(out).labels == EmotionClassifier.from_pretrained(out, task="emo").labels
    card = (out / "README.md").read_text()
    assert (
        "## Tasks" in card
        and "| senti | single_label | 3 |" in card
        and (out / "heads" / "senti.safetensors").is_file()
    )
    assert [e["step"] for e in report["evals"]] == [6, 12] and {"val_macro_f1_emo", "val_macro_f1_senti"} <= set(
        report["evals"][0]
    )


def test_predict_task_on_the_command_line(multitask: tuple) -> None:
    cmd = ["predict", "--model", str(multitask[0]), "I love this so much"]
    senti = runner.invoke(app, [*cmd, "--task", "senti"])
    row = json.loads(senti.stdout.splitlines()[0])
    assert set(row["scores"]) == {"negative", "neutral", "positive"} and len(row["labels"]) == 1
    assert sum(row["scores"].values()) == pytest.approx(1.0, abs=1e-4)
    assert len(json.loads(runner.invoke(app, [*cmd, "--task", "emo"]).stdout)["scores"]) == 28
    bad = subprocess.run(
        [sys.executable, "-m", "emopillars.cli", *cmd, "--task", "nope"], capture_output=True, text=True
    )
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines() == ["error: unknown task 'nope'; the model's tasks are ['emo', 'senti']"]


def test_annealed_schedule_goes_from_proportional_to_near_uniform() -> None:
    sizes = np.array([900, 100])
    assert task_probabilities(sizes, 0, 50) == pytest.approx([0.9, 0.1])
    last = task_probabilities(sizes, 49, 50)
    assert last == pytest.approx(sizes**0.2 / (sizes**0.2).sum()) and last[1] > 0.35


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("a=data.jsonl", ("a", "data.jsonl", None)),
        ("b=d/x.jsonl:labels", ("b", "d/x.jsonl", "labels")),
        ("c=org/set", ("c", "org/set", None)),
    ],  # fmt: skip
)
def test_task_specs(spec: str, expected: tuple) -> None:
    assert parse_spec(spec) == expected


def test_bad_specs_and_refused_options(tmp_path: Path) -> None:
    with pytest.raises(EmopillarsError, match="expected NAME=DATA"):
        parse_spec("no-equals-sign")
    with pytest.raises(ValueError, match="two or more --task"):
        TrainConfig(task=("a=x",))
    result = runner.invoke(app, ["train", "--task", "a=x", "--task", "b=y", "--data", "z"])  # --task repeats
    assert "two or more --task NAME=DATA[:column] and no --data" in str(result.exception)
