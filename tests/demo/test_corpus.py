"""Reading and filtering a synth run for the demo, old runs (no v2 fields, no fidelity) included."""

from __future__ import annotations

from pathlib import Path

import pytest

from emopillars.demo.corpus import ALL, load_corpus, per_label_counts
from emopillars.errors import EmopillarsError

from .conftest import write_run


def test_filters_choices_and_fidelity_rows(run_dir: Path) -> None:
    corpus = load_corpus(run_dir)
    assert len(corpus.examples) == 5
    assert corpus.choices("expressiveness") == [ALL, "explicit", "subtle"]
    assert corpus.choices("mode") == [ALL, "contextless", "contextual"]
    assert [r["id"] for r in corpus.select(mode="contextual", expressiveness="subtle")] == ["ex4"]
    assert [r["id"] for r in corpus.select(label="grief", split="train")] == ["ex0", "ex1"]
    assert corpus.select(label="joy") == []
    assert ["target_recognition.macro", 0.6] in corpus.fidelity_rows()
    assert per_label_counts(corpus.select(label="grief")) == {"contextual": {"grief": 1}, "contextless": {"grief": 1}}


def test_old_runs_and_bad_folders(tmp_path: Path) -> None:
    old = load_corpus(write_run(tmp_path / "old", fidelity=None))
    assert old.fidelity_rows() == []
    with pytest.raises(EmopillarsError, match="not a synth output folder"):
        load_corpus(tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "examples.jsonl").write_text('{"id": 1}\n')
    with pytest.raises(EmopillarsError, match=r"examples.jsonl:1: no 'utterance'"):
        load_corpus(tmp_path / "bad")
