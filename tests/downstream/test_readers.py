"""Readers on fixtures in each public format: layouts, splits, context construction, malformed files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from emopillars.downstream.readers import ReadOptions, hash_split
from emopillars.downstream.tasks import read_task
from emopillars.errors import EmopillarsError
from emopillars.sources import split_of_file

from .conftest import FIXTURES


def _flat(splits: dict) -> list[tuple]:
    return sorted((r["id"], r["text"], tuple(r["labels"]), r["split"]) for rows in splits.values() for r in rows)


# --- GoEmotions ------------------------------------------------------------------------------


def test_goemotions_original_release() -> None:
    splits = read_task("goemotions", FIXTURES / "goemotions" / "original")
    assert {k: len(v) for k, v in splits.items()} == {"train": 24, "validation": 8, "test": 8}
    first = splits["train"][0]
    # "15,17" in the file: ids index the 28 labels in the canonical order
    assert first["labels"] == ["gratitude", "joy"] and first["id"] == "ee000x000" and first["context"] is None
    assert {tuple(r["labels"]) for r in splits["test"]} >= {("confusion", "curiosity"), ("fear", "nervousness")}


def test_goemotions_hf_layouts_agree(tmp_path: Path) -> None:
    """The HF `simplified` layout as JSON lines, parquet and save_to_disk reads as the original TSVs."""
    import datasets

    original = _flat(read_task("goemotions", FIXTURES / "goemotions" / "original"))
    jsonl = FIXTURES / "goemotions" / "simplified"
    assert _flat(read_task("goemotions", jsonl)) == original
    parquet = tmp_path / "parquet"
    parquet.mkdir()
    saved = datasets.DatasetDict({f.stem: datasets.Dataset.from_json(str(f)) for f in sorted(jsonl.glob("*.jsonl"))})
    for name, part in saved.items():
        part.to_parquet(str(parquet / f"{name}-00000-of-00001.parquet"))
    assert _flat(read_task("goemotions", parquet)) == original
    saved.save_to_disk(str(tmp_path / "disk"))
    assert _flat(read_task("goemotions", tmp_path / "disk")) == original


def test_single_file_gets_a_stable_seeded_split() -> None:
    path = FIXTURES / "goemotions" / "original" / "train.tsv"
    a, b = read_task("goemotions", path), read_task("goemotions", path)
    assert _flat(a) == _flat(b) and len(_flat(a)) == 24
    assert all(r["split"] == hash_split(r["id"], 0) for r in a["train"] + a["test"])
    assert a["train"] and a["validation"]
    other = read_task("goemotions", path, ReadOptions(split_seed=1))
    assert _flat(other) != _flat(a)  # the seed moves rows between splits


def test_split_names_from_release_files() -> None:
    assert [split_of_file(n) for n in ("train.tsv", "dev.txt", "test.txt", "validation-0.parquet", "notes.txt")] == [
        "train",
        "validation",
        "test",
        "validation",
        None,
    ]


# --- ISEAR -----------------------------------------------------------------------------------


def test_isear_databank_layout() -> None:
    splits = read_task("isear", FIXTURES / "isear" / "isear.csv")
    rows = [r for part in splits.values() for r in part]
    assert len(rows) == 28
    counts = {label: sum(r["labels"] == [label] for r in rows) for label in ("joy", "shame", "guilt")}
    assert counts == {"joy": 4, "shame": 4, "guilt": 4}
    storm = next(r for r in rows if "storm" in r["text"])
    assert storm["text"] == "When the plane dropped suddenly during a storm over the mountains."  # "á" removed
    assert storm["labels"] == ["fear"] and storm["id"] == "090022"


def test_isear_two_column_and_custom_columns(tmp_path: Path) -> None:
    rows = [r for part in read_task("isear", FIXTURES / "isear" / "isear_two_columns.csv").values() for r in part]
    assert len(rows) == 14
    quoted = next(r for r in rows if "only a game" in r["text"])
    assert quoted["text"].startswith('When someone said "it is only a game"') and quoted["labels"] == ["anger"]
    custom = tmp_path / "isear.csv"
    custom.write_text("Feeling;Situation\n1;When I won.\n7;When I lied.\n6;When I fell.\n", encoding="utf-8")
    got = read_task("isear", custom, ReadOptions(text_column="situation", label_column="Feeling"))
    assert sorted((r["text"], r["labels"][0]) for p in got.values() for r in p) == [
        ("When I fell.", "shame"),
        ("When I lied.", "guilt"),
        ("When I won.", "joy"),
    ]


# --- IEMOCAP ---------------------------------------------------------------------------------


def test_iemocap_context_is_the_previous_turns_in_order() -> None:
    splits = read_task("iemocap", FIXTURES / "iemocap" / "iemocap.csv", ReadOptions(context_turns=2))
    rows = {r["id"]: r for part in splits.values() for r in part}
    # utterance 3 of the dialogue (rows are shuffled in the file; utterance_order sorts them)
    row = rows["Ses01F_impro01_M001"]
    assert row["text"] == "I'm sorry, those are the rules." and row["labels"] == ["neu"]
    assert row["context"] == (
        "M: You'll have to fill out this form first and wait in line.\n"
        "F: I already waited in line for two hours. This is ridiculous."
    )
    assert rows["Ses01F_impro01_F000"]["context"] is None  # the opening turn has none
    # an `xxx` turn is no example but stays in its neighbours' context
    assert "Ses03F_impro02_F002" not in rows
    assert rows["Ses03F_impro02_M002"]["context"].endswith("F: Wait, what was that noise?")


def test_iemocap_context_size_and_session_split() -> None:
    path = FIXTURES / "iemocap" / "iemocap.csv"
    none = read_task("iemocap", path, ReadOptions(context_turns=0))
    assert all(r["context"] is None for part in none.values() for r in part)
    five = read_task("iemocap", path, ReadOptions(context_turns=5))
    last = next(r for r in five["test"] if r["id"] == "Ses05M_script02_F002")
    assert last["context"].count("\n") == 4
    assert {r["dialogue_id"][:5] for r in five["test"]} == {"Ses05"}  # session 5 is the test set
    assert five["validation"] and not {r["dialogue_id"] for r in five["validation"]} & {
        r["dialogue_id"] for r in five["train"]
    }


# --- EmoContext ------------------------------------------------------------------------------


def test_emocontext_turns_one_and_two_are_the_context() -> None:
    splits = read_task("emocontext", FIXTURES / "emocontext")
    assert {k: len(v) for k, v in splits.items()} == {"train": 16, "validation": 8, "test": 8}
    row = next(r for r in splits["validation"] if r["id"] == "101")
    assert row["text"] == "thank you, I'm the happiest person alive" and row["labels"] == ["happy"]
    assert row["context"] == "It's my wedding day\nCongratulations!"


# --- malformed files -------------------------------------------------------------------------


def _copy(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
    return dst


def _break_line(path: Path, line: int, new: str) -> None:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[line - 1] = new
    path.write_text("\n".join(lines), encoding="utf-8")


@pytest.mark.parametrize(
    ("task", "fixture", "file", "line", "content", "match"),
    [
        ("goemotions", "goemotions/original", "dev.tsv", 3, "no tabs here", r"dev.tsv:3: expected 3 tab-separated"),
        ("goemotions", "goemotions/original", "test.tsv", 2, "text\t28\tid1", r"test.tsv:2: label '28'"),
        ("goemotions", "goemotions/simplified", "train.jsonl", 5, "{oops", r"train.jsonl:5: not valid JSON"),
        ("isear", "isear/isear.csv", None, 4, "1|2|3", r"isear.csv:4: 3 fields where the header has 43"),
        ("isear", "isear/isear_two_columns.csv", None, 6, "happiness,When I won.", r"csv:6: ISEAR label 'happiness'"),
        ("iemocap", "iemocap/iemocap.csv", None, 5, "Ses01F_impro01,u,x,F,Hi.,neu", r"iemocap.csv:5: utterance order"),
        ("iemocap", "iemocap/iemocap.csv", None, 7, "Ses01F_impro01,u,9,F,Hi.,joy", r"iemocap.csv:7: IEMOCAP label"),
        ("emocontext", "emocontext", "train.txt", 1, "id\tturn1\tturn2\tturn3", r"train.txt:1: no label column"),
        ("emocontext", "emocontext", "dev.txt", 4, "7\ta\tb\tc", r"dev.txt:4: expected 5 tab-separated"),
        ("emocontext", "emocontext", "test.txt", 3, "7\ta\tb\tc\tjoyful", r"test.txt:3: EmoContext label 'joyful'"),
    ],
)
def test_malformed_files_name_file_and_line(
    tmp_path: Path, task: str, fixture: str, file: str | None, line: int, content: str, match: str
) -> None:
    source = _copy(FIXTURES / fixture, tmp_path)
    _break_line(source / file if file else source, line, content)
    with pytest.raises(EmopillarsError, match=match) as info:
        read_task(task, source)
    assert "\n" not in str(info.value)


def test_missing_column_and_missing_source(tmp_path: Path) -> None:
    bad = tmp_path / "isear.csv"
    bad.write_text("mood,words\njoy,hello\n", encoding="utf-8")
    with pytest.raises(EmopillarsError, match=r"isear.csv:2: no text column .*--text-column.*\['mood', 'words'\]"):
        read_task("isear", bad)
    with pytest.raises(EmopillarsError, match="no such file"):
        read_task("emocontext", tmp_path / "absent")
    with pytest.raises(EmopillarsError, match="unknown task 'semeval'"):
        read_task("semeval", bad)


def test_non_utf8_release_is_read_as_windows_1252(tmp_path: Path) -> None:
    path = tmp_path / "isear.csv"
    path.write_bytes("emotion,text\njoy,When I met Jan-Erik Wikstr\xf6m.\n".encode("cp1252"))
    rows = read_task("isear", path)
    assert [r["text"] for p in rows.values() for r in p] == ["When I met Jan-Erik Wikström."]


def test_rows_are_in_the_train_input_format() -> None:
    row = read_task("emocontext", FIXTURES / "emocontext")["train"][0]
    assert set(row) == {"id", "text", "context", "labels", "split"}
    json.dumps(row)  # plain JSON values, so a user can dump them to a `train` jsonl
