"""`emopillars teacher-eval`: gold readers, and metrics that equal scikit-learn on its own predictions (real vLLM)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_recall_fscore_support

from emopillars.errors import EmopillarsError
from emopillars.synth.config import TeacherEvalConfig
from emopillars.synth.teacher_eval import read_gold, teacher_eval
from emopillars.taxonomy import LABELS

GOEMOTIONS_TSV = Path(__file__).parents[1] / "downstream" / "fixtures" / "goemotions" / "original" / "train.tsv"


def test_gold_formats(tmp_path):
    go = read_gold(GOEMOTIONS_TSV)
    assert go[0].labels == ("gratitude", "joy") and len(go) == 24
    names = tmp_path / "gold.tsv"
    names.write_text("I miss her so much\tsadness,grief\nWhat now?\tconfusion\n")
    assert [g.labels for g in read_gold(names)] == [("grief", "sadness"), ("confusion",)]
    jsonl = tmp_path / "gold.jsonl"
    jsonl.write_text('{"utterance": "Thanks!", "labels": ["gratitude"]}\n\n{"text": "Ugh.", "labels": ["annoyance"]}\n')
    assert [g.text for g in read_gold(jsonl)] == ["Thanks!", "Ugh."]


@pytest.mark.parametrize(
    ("content", "suffix", "culprit"),
    [
        ("fine\thappiness\n", ".tsv", "happiness"),
        ("no tab here\n", ".tsv", "gold.tsv:1"),
        ('{"text": "x"}\n', ".jsonl", "gold.jsonl:1"),
        ("", ".jsonl", "no utterances"),
        ("a,b\n", ".csv", "expected .jsonl or .tsv"),
    ],
)
def test_bad_gold_is_a_one_line_error(tmp_path, content, suffix, culprit):
    path = tmp_path / f"gold{suffix}"
    path.write_text(content)
    with pytest.raises(EmopillarsError, match=culprit.replace(".", r"\.")):
        read_gold(path)


def test_metrics_equal_scikit_learn_on_the_predictions(vllm_backend, tmp_path):
    config = TeacherEvalConfig(gold=GOEMOTIONS_TSV, out=tmp_path, max_examples=4, label_samples=2)
    metrics = teacher_eval(config, backend=vllm_backend)
    rows = [json.loads(line) for line in (tmp_path / "predictions.jsonl").read_text().splitlines()]
    assert len(rows) == metrics["n"] == 4
    gold = [g.labels for g in read_gold(GOEMOTIONS_TSV)[:4]]
    assert [tuple(r["gold"]) for r in rows] == gold
    for r in rows:
        assert set(r) >= {"text", "labels", "scores"} and list(r["scores"]) == list(LABELS)
        assert r["labels"] == [label for label in LABELS if r["scores"][label] >= config.label_threshold]

    def indicator(lists):
        return np.array([[label in labels for label in LABELS] for labels in lists], dtype=int)

    y_true, y_pred = indicator([r["gold"] for r in rows]), indicator([r["labels"] for r in rows])
    assert metrics["macro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-4)
    assert metrics["micro_f1"] == pytest.approx(f1_score(y_true, y_pred, average="micro", zero_division=0), abs=1e-4)
    p, r, f, support = precision_recall_fscore_support(y_true, y_pred, zero_division=0)
    for i, label in enumerate(LABELS):
        m = metrics["per_label"][label]
        assert (m["precision"], m["recall"], m["f1"], m["support"]) == pytest.approx((p[i], r[i], f[i], support[i]))
    assert 0 <= metrics["first_pick_position_entropy_bits"] <= np.log2(28)
    saved = json.loads((tmp_path / "teacher_eval.json").read_text())
    assert saved["macro_f1"] == metrics["macro_f1"] and metrics["llm_calls"] >= 8

    again = teacher_eval(config, backend=vllm_backend)  # the same label stage cache: nothing is sent twice
    assert again["llm_calls"] == 0 and again["macro_f1"] == metrics["macro_f1"]


def test_cli_names_a_missing_gold_file(tmp_path):
    import subprocess
    import sys

    missing = tmp_path / "nope.tsv"
    result = subprocess.run(
        [sys.executable, "-m", "emopillars.cli", "teacher-eval", "--gold", str(missing), "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1 and str(missing) in result.stderr and "Traceback" not in result.stderr
