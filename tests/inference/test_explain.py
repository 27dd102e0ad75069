"""Integrated Gradients explanations on a real MiniLM trained to rely on a planted word."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from emopillars.cli import app
from emopillars.errors import EmopillarsError
from emopillars.inference.classifier import EmotionClassifier

TRIGGER, TRIGGER_LABEL = "zorblax", "surprise"  # as planted by tests/conftest.py
PLANTED = [
    "zorblax the old man fed the ducks",
    "the old man fed zorblax the ducks",
    "the old man fed the ducks zorblax",
]


@pytest.fixture(scope="module")
def clf(planted_model: Path) -> EmotionClassifier:
    return EmotionClassifier.from_pretrained(planted_model, device="cpu")


def _baseline_score(clf: EmotionClassifier, text: str, label: str) -> float:
    """The documented baseline, built here independently: every word piece -> [PAD], specials kept."""
    enc = clf.tokenizer(text, return_tensors="pt", return_special_tokens_mask=True)
    special = enc.pop("special_tokens_mask").bool()
    enc["input_ids"] = torch.where(special, enc["input_ids"], clf.tokenizer.pad_token_id)
    with torch.no_grad():
        return float(clf.model(**enc).logits.sigmoid()[0, clf.labels.index(label)])


def test_attributions_sum_to_the_score_difference_from_the_baseline(clf: EmotionClassifier) -> None:
    texts = [PLANTED[1], "I am so happy today"]
    results = clf.explain(texts)  # the default 128 steps
    probs = clf.predict_proba(texts)
    for i, result in enumerate(results):
        assert result["text"] == texts[i] and result["context"] is None and result["explanations"]
        for item in result["explanations"]:
            j = clf.labels.index(item["label"])
            baseline = _baseline_score(clf, texts[i], item["label"])
            assert item["score"] == pytest.approx(probs[i, j], abs=1e-5)
            assert item["baseline_score"] == pytest.approx(baseline, abs=1e-5)
            total = sum(w["attribution"] for w in item["words"])
            assert total == pytest.approx(probs[i, j] - baseline, abs=0.01), item
            assert [w["word"] for w in item["words"]] == texts[i].split()


def test_planted_trigger_gets_the_top_attribution(clf: EmotionClassifier) -> None:
    for result in clf.explain(PLANTED):  # the predicted labels, which include the planted one
        by_label = {e["label"]: e for e in result["explanations"]}
        assert TRIGGER_LABEL in by_label, result
        words = by_label[TRIGGER_LABEL]["words"]
        top = max(words, key=lambda w: w["attribution"])
        assert top["word"] == TRIGGER and result["text"][top["start"] : top["end"]] == TRIGGER
        assert top["attribution"] > 0.5 * (by_label[TRIGGER_LABEL]["score"] - by_label[TRIGGER_LABEL]["baseline_score"])


def test_explain_one_label_and_word_pieces_join_into_words(clf: EmotionClassifier) -> None:
    text = "Unbelievably, the zorblax arrived!"  # "unbelievably" is several word pieces; "," and "!" are words
    (result,) = clf.explain(text, label="joy", steps=16)
    (item,) = result["explanations"]
    assert item["label"] == "joy"
    assert [w["word"] for w in item["words"]] == ["Unbelievably", ",", "the", "zorblax", "arrived", "!"]


def test_explain_errors_name_the_fault(clf: EmotionClassifier) -> None:
    with pytest.raises(EmopillarsError, match="unknown label 'bliss'"):
        clf.explain("hello", label="bliss")
    with pytest.raises(EmopillarsError, match="trained without context"):
        clf.explain("hello", contexts="a party")


def test_predict_explain_adds_explanations(planted_model: Path) -> None:
    result = CliRunner().invoke(app, ["predict", "--model", str(planted_model), "--explain", PLANTED[0]])
    assert result.exit_code == 0, result.output
    (line,) = [json.loads(x) for x in result.stdout.strip().splitlines()]
    assert line["labels"] and [e["label"] for e in line["explanations"]] == line["labels"]
    assert np.isfinite([w["attribution"] for e in line["explanations"] for w in e["words"]]).all()
