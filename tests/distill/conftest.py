"""Shared fixtures: tiny synth-format data (four well-separated emotions, contexts that flip them),
one MiniLM per session, one trained model per session."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from emopillars.distill.config import TrainConfig
from emopillars.distill.model import load_classifier
from emopillars.taxonomy import LABELS

PHRASES = {
    "joy": ["I am so happy today", "this is wonderful news", "what a delightful day", "I feel great and cheerful"],
    "anger": ["I am furious with you", "this makes me so angry", "how dare they do this", "I am livid right now"],
    "fear": ["I am terrified of the dark", "something scary is outside", "I am afraid to go", "please, I am so scared"],
    "gratitude": ["thank you so much", "I really appreciate your help", "thanks a lot, friend", "I am grateful to you"],
}
SUFFIXES = ["", " indeed", " honestly", " again", " now", " tonight"]
# Contextual rows: the same words mean joy or fear depending on what happened.
AMBIGUOUS = ["I can't believe this is happening", "my heart is pounding", "it is finally here", "look at that"]
CONTEXTS = {
    "joy": "Mara just won the championship and her family is cheering around her.",
    "fear": "A stranger with a knife is following Mara down the dark alley.",
}


def _soft(label: str) -> dict[str, float]:
    soft = dict.fromkeys(LABELS, 0.0)
    soft[label] = 0.9
    soft["neutral"] = 0.05
    return soft


def example_rows() -> list[dict]:
    rows: list[dict] = []
    for label, phrases in PHRASES.items():
        for phrase in phrases:
            for k, suffix in enumerate(SUFFIXES):
                split = "test" if k == 5 else "validation" if k == 4 else "train"
                rows.append(_row(len(rows), "contextless", split, phrase + suffix, None, label))
    for i, text in enumerate(AMBIGUOUS * 3):
        for label, context in CONTEXTS.items():
            split = "validation" if i % 6 == 4 else "test" if i % 6 == 5 else "train"
            rows.append(_row(len(rows), "contextual", split, text, context, label))
    return rows


def _row(n: int, mode: str, split: str, utterance: str, context: str | None, label: str) -> dict:
    return {
        "id": f"ex{n}",
        "mode": mode,
        "split": split,
        "passage_id": f"p{n % 5}",
        "character": "Mara",
        "character_description": "Mara, a young athlete",
        "context": context,
        "utterance": utterance,
        "target_emotion": label,
        "soft_labels": _soft(label),
        "labels": [label],
    }


def write_synth_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "examples.jsonl").open("w", encoding="utf-8") as fh:
        for row in example_rows():
            fh.write(json.dumps(row) + "\n")
    return folder


# Small and fast on a shared 2-core CPU: short sequences, batch 8, a few steps.
FAST = {"batch_size": 8, "eval_batch_size": 32, "max_length": 64, "progress": False, "lr": 1e-4}


@pytest.fixture
def fast() -> dict:
    return dict(FAST)


@pytest.fixture
def contexts() -> dict[str, str]:
    return dict(CONTEXTS)


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synth_folder(tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="session")
def _minilm() -> tuple:
    return load_classifier(None, LABELS, "multi_label")


@pytest.fixture
def minilm(_minilm: tuple) -> tuple:
    """A fresh copy of MiniLM with a 28-label head, and its tokenizer."""
    model, tokenizer = _minilm
    return copy.deepcopy(model), tokenizer


@pytest.fixture(scope="session")
def trained(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A contextless model trained for a few steps through the public `train` (the CLI's path)."""
    from emopillars.distill.trainer import train

    out = tmp_path_factory.mktemp("trained")
    cfg = TrainConfig(data=str(synth_dir), out=out, max_steps=10, eval_every=5, **FAST)
    return out, train(cfg).report
