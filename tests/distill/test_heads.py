"""`--head tanh`: a head of its own over [CLS] that trains, saves, loads, exports to ONNX and explains."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from emopillars.cli import app
from emopillars.distill.heads import TanhHeadClassifier
from emopillars.distill.model import head_linear, load_classifier
from emopillars.errors import EmopillarsError
from emopillars.inference.classifier import EmotionClassifier
from emopillars.inference.export import export_onnx
from emopillars.taxonomy import LABELS

runner = CliRunner()
TEXTS = ["I am so happy today", "this makes me so angry, again!", "thank you", "the meeting is on tuesday"]


@pytest.fixture(scope="module")
def tanh_model(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tanh")
    args = ["train", "--data", str(synth_dir), "--out", str(out), "--head", "tanh", "--max-steps", "2",
            "--batch-size", "8", "--max-length", "32", "--no-progress"]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return out


def test_fresh_tanh_head_is_separate_and_initialised_as_transformers_does() -> None:
    model, _ = load_classifier(None, LABELS, "multi_label", head="tanh")
    assert isinstance(model, TanhHeadClassifier) and model.encoder.pooler is None  # not BERT's pooler
    assert head_linear(model) is model.classifier and model.classifier.out_features == len(LABELS)
    std = model.config.initializer_range
    for layer in (model.pre_classifier, model.classifier):
        assert torch.count_nonzero(layer.bias) == 0
        assert layer.weight.std().item() == pytest.approx(std, rel=0.1)
    assert model.pre_classifier.weight.shape == (model.config.hidden_size, model.config.hidden_size)


def test_tanh_model_round_trips_through_save_load_onnx_and_predict(tanh_model: Path, tmp_path: Path) -> None:
    config = json.loads((tanh_model / "config.json").read_text())
    assert (
        config["emopillars_head"] == "tanh" and json.loads((tanh_model / "metrics.json").read_text())["head"] == "tanh"
    )
    assert "Tanh head: dense -> Tanh -> dropout -> linear" in (tanh_model / "README.md").read_text()
    clf = EmotionClassifier.from_pretrained(tanh_model, device="cpu")
    assert isinstance(clf.model, TanhHeadClassifier) and clf.labels == LABELS
    probs = clf.predict_proba(TEXTS)

    clf.save_pretrained(tmp_path / "copy")  # save -> load: the same weights
    again = EmotionClassifier.from_pretrained(tmp_path / "copy", device="cpu")
    assert np.array_equal(again.predict_proba(TEXTS), probs)

    export_onnx(tanh_model, tmp_path / "onnx")
    onnx_clf = EmotionClassifier.from_pretrained(tmp_path / "onnx")
    assert onnx_clf.backend == "onnx" and np.abs(onnx_clf.predict_proba(TEXTS) - probs).max() <= 1e-4

    result = runner.invoke(app, ["predict", "--model", str(tanh_model), *TEXTS])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    printed = np.array([[p["scores"][name] for name in LABELS] for p in lines])
    assert np.abs(printed - probs).max() <= 1e-5


def test_tanh_model_explains_and_refuses_a_linear_restart(tanh_model: Path) -> None:
    clf = EmotionClassifier.from_pretrained(tanh_model, device="cpu")
    (result,) = clf.explain(TEXTS[0], label="joy", steps=32)
    item = result["explanations"][0]
    total = sum(w["attribution"] for w in item["words"])
    assert total == pytest.approx(item["score"] - item["baseline_score"], abs=0.02)
    with pytest.raises(EmopillarsError, match="has a tanh head"):
        load_classifier(str(tanh_model), LABELS, "multi_label", head="linear")
    model, _ = load_classifier(str(tanh_model), LABELS, "multi_label")  # no --head: the folder's head, kept
    assert isinstance(model, TanhHeadClassifier)
    assert torch.equal(model.classifier.weight, clf.model.classifier.weight)


def test_transformers_refuses_a_tanh_folder_instead_of_misloading_it(tanh_model: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    with pytest.raises(OSError):
        AutoModelForSequenceClassification.from_pretrained(tanh_model)
