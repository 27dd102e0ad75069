"""`emopillars train` and `emopillars predict` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from emopillars.cli import app
from emopillars.errors import EmopillarsError
from emopillars.taxonomy import LABELS

runner = CliRunner()


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emopillars.cli", *args], capture_output=True, text=True)


def test_train_with_config_file_and_flags_winning(tmp_path: Path, synth_dir: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump({"data": str(synth_dir), "max_steps": 50, "batch_size": 8, "max_length": 64,
                                      "progress": False, "loss": "focal"}))  # fmt: skip
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", "--config", str(config), "--out", str(out), "--max-steps", "2"])
    assert result.exit_code == 0, result.output
    assert "macro_f1=" in result.output and f"saved {out}" in result.output
    saved = json.loads((out / "train_config.json").read_text())
    assert saved["max_steps"] == 2 and saved["loss"] == "focal"


def test_predict_texts_input_file_and_output(trained: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = trained
    result = runner.invoke(app, ["predict", "--model", str(out), "I am so happy today", "I am livid right now"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [p["text"] for p in lines] == ["I am so happy today", "I am livid right now"]
    assert all(set(p["scores"]) == set(LABELS) and isinstance(p["labels"], list) for p in lines)

    src = tmp_path / "in.csv"
    src.write_text("text\nthank you so much\nI am afraid to go\n")
    dest = tmp_path / "pred.jsonl"
    result = runner.invoke(app, ["predict", "--model", str(out), "--input", str(src), "--output", str(dest)])
    assert result.exit_code == 0, result.output
    assert len(dest.read_text().splitlines()) == 2


def test_user_errors_are_one_red_line_and_exit_1(tmp_path: Path) -> None:
    proc = _cli("predict", "--model", str(tmp_path / "missing"), "hi")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        f"error: model folder not found or has no config.json: {tmp_path}/missing"
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "--model", "{model}", "--input", "{tmp}/no.txt"], "input file not found"),
        (["predict", "--model", "{model}", "--context", "a party", "hi"], "trained without context"),
        (["predict", "--model", "{model}"], "nothing to predict"),
        (["train", "--data", "{tmp}/none.jsonl"], "data file not found"),
        (["train", "--lr", "-1"], "lr: Input should be greater than 0"),
        (["train", "--rounds", "2"], "needs an unlabeled pool"),
        (["train", "--data", "{tmp}"], "neither a synth output"),
        (["train", "--data", "{synth}", "--teacher", "{tmp}/none"], "model folder not found"),
    ],
)
def test_user_errors_name_the_fault(
    args: list[str], message: str, tmp_path: Path, trained: tuple[Path, dict], synth_dir: Path
) -> None:
    args = [a.format(model=trained[0], tmp=tmp_path, synth=synth_dir) for a in args]
    result = runner.invoke(app, args)
    assert isinstance(result.exception, EmopillarsError) and message in str(result.exception)
