"""`emopillars export`: ONNX fp32 / int8 folders that agree with the torch model and load without torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from emopillars.cli import app
from emopillars.errors import EmopillarsError
from emopillars.inference.classifier import EmotionClassifier
from emopillars.inference.export import export_onnx

runner = CliRunner()
TEXTS = [
    "we cooked zorblax rice for dinner", "the old man fed the ducks", "I am so happy today",
    "this makes me so angry, again!", "thank you so much for everything", "I am afraid to go out tonight",
    "zorblax", "the meeting is on tuesday and I can't wait", "what a delightful, wonderful day it was",
    "please, I am so scared of what comes next", "she put the zorblax book on the table",
    "he wrote a letter to the bank about the loan, which took him most of the afternoon to finish",
]  # fmt: skip


@pytest.fixture(scope="module")
def exported(planted_model: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """fp32 through the CLI, int8 through the Python API."""
    folder = tmp_path_factory.mktemp("onnx")
    result = runner.invoke(
        app, ["export", "--model", str(planted_model), "--format", "onnx", "--out", f"{folder}/fp32"]
    )
    assert result.exit_code == 0, result.output
    export_onnx(planted_model, folder / "int8", quantize="int8")
    return {"fp32": folder / "fp32", "int8": folder / "int8"}


@pytest.mark.parametrize(("kind", "tolerance"), [("fp32", 1e-4), ("int8", 0.05)])
def test_onnx_agrees_with_torch(planted_model: Path, exported: dict[str, Path], kind: str, tolerance: float) -> None:
    torch_clf = EmotionClassifier.from_pretrained(planted_model, device="cpu")
    onnx_clf = EmotionClassifier.from_pretrained(exported[kind])
    assert onnx_clf.backend == "onnx" and torch_clf.backend == "torch"
    texts = TEXTS * 3  # batches of mixed lengths (batch_size 8 below): padding must not change a score
    ours, theirs = onnx_clf.predict_proba(texts, batch_size=8), torch_clf.predict_proba(texts, batch_size=8)
    assert np.abs(ours - theirs).max() <= tolerance
    same = [a["labels"] == b["labels"] for a, b in zip(onnx_clf.predict(texts), torch_clf.predict(texts), strict=True)]
    assert np.mean(same) >= 0.95
    assert onnx_clf.labels == torch_clf.labels and onnx_clf.mode == torch_clf.mode
    assert np.array_equal(onnx_clf.thresholds, torch_clf.thresholds)
    meta = json.loads((exported[kind] / "config.json").read_text())["emopillars"]
    assert meta["export"]["quantize"] == (None if kind == "fp32" else "int8") and meta["mode"] == "contextless"


def test_int8_is_smaller(exported: dict[str, Path]) -> None:
    assert (exported["int8"] / "model.onnx").stat().st_size < 0.4 * (exported["fp32"] / "model.onnx").stat().st_size


def test_predict_on_onnx_loads_neither_torch_nor_transformers(exported: dict[str, Path], planted_model: Path) -> None:
    code = (
        "import sys; from emopillars.cli import main; sys.argv = ['emopillars', 'predict', '--model', sys.argv[1],"
        " sys.argv[2]]\ntry:\n    main()\nfinally:\n"
        "    print(sorted(m for m in ('torch', 'transformers', 'vllm', 'faiss', 'sklearn') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(exported["int8"]), TEXTS[0]], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    line, loaded = proc.stdout.strip().splitlines()
    assert loaded == "[]"
    expected = EmotionClassifier.from_pretrained(planted_model, device="cpu").predict(TEXTS[0])[0]["labels"]
    assert json.loads(line)["labels"] == expected == ["surprise"]


def test_export_errors_name_the_fault(planted_model: Path, exported: dict[str, Path], tmp_path: Path) -> None:
    for args, message in [  # option values are usage errors (exit 2), as for every command
        (["--quantize", "int4"], "Invalid value for '--quantize'"),
        (["--format", "tflite"], "Invalid value for '--format'"),
    ]:
        result = runner.invoke(app, ["export", "--model", str(planted_model), *args, "--out", str(tmp_path / "out")])
        assert result.exit_code == 2 and message in result.output, result.output
    for model, message in [
        (exported["fp32"], "already an exported ONNX folder"),
        (tmp_path / "none", "model folder not found"),
    ]:
        result = runner.invoke(app, ["export", "--model", str(model), "--out", str(tmp_path / "out")])
        assert isinstance(result.exception, EmopillarsError) and message in str(result.exception), result.output
    assert not (tmp_path / "out").exists()
    with pytest.raises(EmopillarsError, match="explanations need the torch model"):
        EmotionClassifier.from_pretrained(exported["fp32"]).explain("hello")
