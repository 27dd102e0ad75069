"""Locating and opening inputs: split aliases, Hub ids against missing paths, files by suffix, encodings."""

from __future__ import annotations

from pathlib import Path

import datasets
import pytest

from emopillars.errors import EmopillarsError
from emopillars.sources import (
    SPLIT_ALIASES,
    SPLITS,
    load_dataset,
    locate,
    main_part,
    read_text,
    split_name,
    split_of_file,
    table_rows,
)


def test_every_alias_names_a_split_whatever_its_case() -> None:
    assert set(SPLIT_ALIASES.values()) == set(SPLITS)
    assert [split_name(v) for v in ("training", " Dev ", "VALID", "val", "test", None, "holdout")] == [
        "train", "validation", "validation", "validation", "test", None, None,
    ]  # fmt: skip
    assert [split_of_file(n) for n in ("training_set.csv", "dev.tsv", "notes.txt")] == ["train", "validation", None]


def test_missing_paths_are_errors_and_ids_stay_ids(tmp_path: Path) -> None:
    assert locate("owner/name") == "owner/name"
    assert locate(str(tmp_path)) == tmp_path
    for missing in (str(tmp_path / "x"), "data.jsonl", "./rel", "a/b/c", tmp_path / "y"):
        with pytest.raises(EmopillarsError, match="corpus not found: "):
            locate(missing, "corpus")


def test_files_and_saved_folders_open_as_datasets(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("text,label\nhello,joy\n", encoding="utf-8")
    assert load_dataset(tmp_path / "d.csv")["text"] == ["hello"]
    part = datasets.Dataset.from_dict
    saved = datasets.DatasetDict(test=part({"t": [1]}), train=part({"t": [2]}))
    saved.save_to_disk(str(tmp_path / "saved"))
    assert main_part(load_dataset(tmp_path / "saved"))["t"] == [2]
    (tmp_path / "plain").mkdir()
    with pytest.raises(EmopillarsError, match="not one written by `datasets.save_to_disk`"):
        load_dataset(tmp_path / "plain")
    (tmp_path / "d.xml").write_text("<a/>")
    with pytest.raises(EmopillarsError, match="d.xml: not a .jsonl/.json/.csv/.parquet file"):
        load_dataset(tmp_path / "d.xml")


def test_text_is_utf8_or_a_one_line_error_unless_legacy(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes("emotion|text\njoy|Wikstr\xf6m\n".encode("cp1252"))
    with pytest.raises(EmopillarsError, match=r"t.csv:2: not UTF-8 text"):
        read_text(path)
    assert read_text(path, legacy=True).endswith("Wikström\n")
    assert [row for _, row in table_rows(path, legacy=True)] == [{"emotion": "joy", "text": "Wikström"}]
    (tmp_path / "bom.txt").write_bytes(b"\xef\xbb\xbfhi")
    assert read_text(tmp_path / "bom.txt") == "hi"
