"""Reading every input format into splits, and batching."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from emopillars.distill.config import TrainConfig
from emopillars.distill.data import (
    Split,
    build_splits,
    load_splits,
    read_records,
    read_texts,
    records_from_dataset,
)
from emopillars.errors import EmopillarsError
from emopillars.taxonomy import LABEL2ID, LABELS


def test_synth_folder_contextless_uses_all_rows_with_given_splits(synth_dir: Path) -> None:
    data = load_splits(TrainConfig(data=str(synth_dir)))
    records = read_records(synth_dir)
    assert sum(data.summary["rows"].values()) == len(records)
    assert data.train.contexts is None
    assert data.summary["rows"]["test"] == sum(r["split"] == "test" for r in records)
    joy = data.train.texts.index("I am so happy today")
    assert data.train.targets[joy, LABEL2ID["joy"]] == pytest.approx(0.9)
    assert data.train.gold[joy].tolist() == [int(name == "joy") for name in LABELS]  # from `labels`


def test_synth_folder_contextual_keeps_rows_with_context_and_pairs_description(synth_dir: Path) -> None:
    data = load_splits(TrainConfig(data=str(synth_dir), mode="contextual"))
    assert sum(data.summary["rows"].values()) == sum(bool(r["context"]) for r in read_records(synth_dir))
    assert data.train.contexts[0].startswith("Mara, a young athlete: ")


def test_saved_hf_dataset_and_soft_label_lists(tmp_path: Path) -> None:
    import datasets

    rows = [{"text": f"row {i}", "soft_labels": [float(j == i % 3) for j in range(28)]} for i in range(20)]
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    data = load_splits(TrainConfig(data=str(tmp_path / "ds"), seed=1))
    assert data.summary["rows"] == {"train": 16, "validation": 2, "test": 2}  # seeded 0.8/0.1/0.1 split
    assert load_splits(TrainConfig(data=str(tmp_path / "ds"), seed=1)).train.texts == data.train.texts


def test_csv_with_hard_labels_and_custom_single_label_set(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["text", "labels", "split"])
        w.writerows([[f"t{i}", ["joy", "fear"][i % 2], ["train", "dev", "test"][i % 3]] for i in range(12)])
    cfg = TrainConfig(data=str(path), labels=("joy", "fear"), problem_type="single_label")
    data = load_splits(cfg)
    assert len(data.validation) == 4  # "dev" means validation
    assert (data.train.gold.sum(1) == 1).all() and np.allclose(data.train.targets.sum(1), 1.0)


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([{"utterance": "hi", "labels": ["joyful"]}], r"label\(s\) \['joyful'\]"),
        ([{"sentence": "hi", "labels": ["joy"]}], "missing column 'utterance' or 'text'"),
        ([{"text": "hi"}], "missing column 'soft_labels' or 'labels'"),
        ([{"text": "hi", "soft_labels": {"happiness": 1.0}}], r"outside"),
        ([{"text": "hi", "labels": ["joy"], "split": "holdout"}], "column 'split'"),
    ],
)
def test_bad_rows_give_one_line_errors(tmp_path: Path, rows: list[dict], match: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(EmopillarsError, match=match):
        load_splits(TrainConfig(data=str(path)))


def test_every_split_alias_is_accepted() -> None:
    aliases = ["training", "Train", "dev", "valid", "val", "validation", "test", "TEST"]
    rows = [{"text": f"row {i}", "labels": ["joy"], "split": s} for i, s in enumerate(aliases)]
    data = build_splits(rows, TrainConfig())
    assert {name: len(part) for name, part in data.items()} == {"train": 2, "validation": 4, "test": 2}


def test_missing_paths_and_modes(tmp_path: Path, synth_dir: Path) -> None:
    with pytest.raises(EmopillarsError, match="data file not found"):
        read_records(tmp_path / "nope.jsonl")
    with pytest.raises(EmopillarsError, match="neither a synth output"):
        read_records(tmp_path)
    with pytest.raises(EmopillarsError, match="contextual' needs rows"):
        build_splits([{"text": "a", "labels": ["joy"]}], TrainConfig(mode="contextual"))
    with pytest.raises(EmopillarsError, match="no training data"):
        load_splits(TrainConfig())


def test_read_texts_formats(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("one\n\ntwo\n")
    assert read_texts(tmp_path / "a.txt") == (["one", "two"], None)
    (tmp_path / "b.jsonl").write_text(json.dumps({"utterance": "u", "context": "c", "character_description": "d"}))
    assert read_texts(tmp_path / "b.jsonl") == (["u"], ["d: c"])
    with pytest.raises(EmopillarsError, match="input file not found"):
        read_texts(tmp_path / "c.txt")


def test_split_from_labels_checks_names() -> None:
    split = Split.from_labels(["a", "b"], [["joy"], ["joy", "fear"]], ("joy", "fear"))
    assert split.gold.tolist() == [[1, 0], [1, 1]]
    with pytest.raises(EmopillarsError, match="exactly one label"):
        Split.from_labels(["a", "b"], [["joy"], ["joy", "fear"]], ("joy", "fear"), single_label=True)


def test_every_file_format_reads_the_same_rows(tmp_path: Path) -> None:
    import datasets

    rows = [{"text": f"row {i}", "labels": [["joy", "fear"][i % 2]], "split": "train"} for i in range(6)]
    ds = datasets.Dataset.from_list(rows)
    ds.to_json(str(tmp_path / "d.jsonl"))
    ds.to_parquet(str(tmp_path / "d.parquet"))
    (tmp_path / "d.json").write_text(json.dumps(rows))
    expected = read_records(tmp_path / "d.jsonl")
    assert [r["text"] for r in expected] == [r["text"] for r in rows]
    for name in ("d.parquet", "d.json"):
        assert read_records(tmp_path / name) == expected, name


def test_class_label_ids_and_names_read_alike_with_chosen_columns() -> None:
    """Labels typed as the synth export and GoEmotions type them (Sequence(ClassLabel)), in other columns."""
    import datasets

    names = [["joy"], ["fear", "joy"], ["anger"], ["joy"]] * 5
    text = [f"line {i}" for i in range(len(names))]
    features = datasets.Features(
        {
            "sentence": datasets.Value("string"),
            "emotions": datasets.Sequence(datasets.ClassLabel(names=list(LABELS))),
            "situation": datasets.Value("string"),
        }
    )
    ids = [[LABEL2ID[n] for n in row] for row in names]
    typed = datasets.Dataset.from_dict({"sentence": text, "emotions": ids, "situation": ["s"] * 20}, features=features)
    plain = datasets.Dataset.from_dict({"sentence": text, "emotions": names, "situation": ["s"] * 20})
    cfg = TrainConfig(text_column="sentence", labels_column="emotions", context_column="situation", mode="contextual")
    from_ids = build_splits(records_from_dataset(typed), cfg)
    from_names = build_splits(records_from_dataset(plain), cfg)
    assert from_ids.train.texts == from_names.train.texts and from_ids.train.contexts[0] == "s"
    assert (from_ids.train.gold == from_names.train.gold).all()
    every = from_ids.train.concat(from_ids.validation).concat(from_ids.test)
    assert every.gold[every.texts.index("line 1")].nonzero()[0].tolist() == sorted([LABEL2ID["fear"], LABEL2ID["joy"]])
    # plain integer ids (no features) index the label set too
    raw = [{"text": t, "labels": i} for t, i in zip(text, ids, strict=True)]
    by_id = build_splits(raw, TrainConfig())
    assert (by_id.train.gold == from_names.train.gold).all()
    dd = datasets.DatasetDict(train=typed, validation=typed)
    only = records_from_dataset(dd, TrainConfig(data="x", data_split="validation"))
    assert len(only) == 20 and "split" not in only[0]
    with pytest.raises(EmopillarsError, match="no split 'dev'"):
        records_from_dataset(dd, TrainConfig(data="x", data_split="dev"))
