"""A tiny synth-like run folder written by hand (Example rows of records.py, some v2 fields, a report)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emopillars.records import Example
from emopillars.taxonomy import LABELS


def _example(n: int, mode: str, split: str, utterance: str, target: str, v1: bool = False, **v2: object) -> dict:
    soft = dict.fromkeys(LABELS, 0.0) | {target: 0.8, "neutral": 0.1}
    row = Example(
        id=f"ex{n}", mode=mode, split=split, passage_id=f"p{n % 2}", character="Mara",
        character_description="Mara, a lighthouse keeper", utterance=utterance, target_emotion=target,
        context="The storm took the boat while Mara watched from the tower." if mode == "contextual" else None,
        soft_labels=soft, labels=[target], source_id=None,
        **({"expressiveness": "implicit", "primary_emotion": target, "label_agreement": None, "explication": ""} | v2),
    ).model_dump()  # fmt: skip
    if v1:  # a corpus written before synth v2 has none of its fields; the demo must still show it
        for key in ("expressiveness", "primary_emotion", "label_agreement", "explication"):
            del row[key]
    return row


EXAMPLES = [
    _example(0, "contextual", "train", "They will never come back to me.", "grief", expressiveness="explicit",
             explication="She mourns the crew she could not save.", primary_emotion="grief", label_agreement=0.8),
    _example(1, "contextless", "train", "I keep seeing the boat go under.", "grief", expressiveness="subtle",
             explication="A loss replayed over and over.", primary_emotion="grief", label_agreement=0.6),
    _example(2, "contextual", "validation", "The lamp is lit, right on time!", "pride", expressiveness="explicit"),
    _example(3, "contextless", "test", "Thank you for staying with me tonight.", "gratitude", v1=True),
    _example(4, "contextual", "train", "Who left this letter at my door?", "curiosity", expressiveness="subtle",
             explication="Wondering who came by.", primary_emotion="curiosity", label_agreement=1.0),
]  # fmt: skip
FIDELITY = {"primary_agreement": 0.75, "target_recognition": {"macro": 0.6, "min": 0.2}, "labels_per_example": 1.25}


def write_run(folder: Path, fidelity: dict | None = FIDELITY) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in EXAMPLES), encoding="utf-8")
    report = {"examples": {"contextual": 3, "contextless": 2}} | ({"fidelity": fidelity} if fidelity else {})
    (folder / "report.json").write_text(json.dumps(report), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("run"))
