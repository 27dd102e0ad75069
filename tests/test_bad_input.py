"""Bad input by the thousand: every reader of a file the CLI accepts, fed malformed files by Hypothesis.

Each input must end in a valid result or in an `EmopillarsError` of one line naming the file; anything else (a
traceback) fails the test. Inputs start from a valid file of the format and are truncated, re-encoded, spliced with
random bytes, emptied, given huge fields; or are rows with fields missing, extra, of the wrong type, NaN/inf or out
of range. Each test prints how many inputs it tried (`pytest -s`) and records it as a property (`--junitxml`).
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from emopillars.cli import app
from emopillars.corpora import load_passages
from emopillars.distill.config import TrainConfig
from emopillars.distill.data import build_splits, load_splits, read_texts
from emopillars.downstream.tasks import read_task
from emopillars.errors import EmopillarsError
from emopillars.options import build_config, read_options_file
from emopillars.synth.teacher_eval import read_gold
from emopillars.taxonomy import LABELS

FIXTURES = Path(__file__).parent / "downstream" / "fixtures"
BASE = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)


def fuzz(n: int) -> settings:
    """`n` inputs, the same ones on every run (derandomized): a CI failure reproduces locally."""
    return settings(BASE, max_examples=n)


TRAIN_CFG = TrainConfig(data="rows")


class Tally:
    """Runs one input through a reader: a result, or a one-line error naming `path`; counts both."""

    def __init__(self, what: str, record: Callable[[str, object], None]):
        self.what, self.record, self.valid, self.errors = what, record, 0, 0
        self._dirs = count()

    def check(self, read: Callable[[], Any], path: Path) -> Any:
        try:
            result = read()
        except EmopillarsError as exc:
            message = str(exc)
            assert "\n" not in message, f"{self.what}: error spans lines: {message!r}"
            assert str(path) in message, f"{self.what}: error does not name {path}: {message[:300]}"
            assert len(message) < 2000, f"{self.what}: error of {len(message)} characters"
            self.errors += 1
            return None
        self.valid += 1
        return result

    def fresh(self, base: Path) -> Path:
        """An empty folder of its own for one input."""
        folder = base / f"in{next(self._dirs)}"
        folder.mkdir()
        return folder

    def done(self) -> None:
        tried = self.valid + self.errors
        print(f"\n{self.what}: {tried} inputs tried, {self.valid} valid, {self.errors} one-line errors")
        self.record(f"inputs_tried[{self.what}]", tried)
        assert tried > 0


@pytest.fixture
def tally(record_property, tmp_path):
    made: list[Tally] = []
    yield lambda what: made.append(Tally(what, record_property)) or made[-1]
    for t in made:
        t.done()
    shutil.rmtree(tmp_path, ignore_errors=True)


# --- strategies ---------------------------------------------------------------------------------------------

# floats: NaN, inf and -0.0 included
scalars = st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats() | st.text(max_size=20)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
scores = st.floats() | st.integers(-3, 3) | st.sampled_from([0.0, 0.5, 1.0, 1.7, -0.2, math.nan, math.inf])
soft_maps = st.dictionaries(st.sampled_from([*LABELS[:6], "happiness"]), scores | json_values, max_size=4)


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """`valid` after one to three damages: truncation, random bytes, another encoding, a huge field, lost lines."""
    data = valid
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["truncate", "insert", "flip", "cp1252", "utf16", "huge", "lines", "empty"]))
        at = draw(st.integers(0, len(data)))
        if kind == "truncate":
            data = data[:at]
        elif kind == "insert":
            data = data[:at] + draw(st.binary(min_size=1, max_size=12)) + data[at:]
        elif kind == "flip" and data:
            at = min(at, len(data) - 1)
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
        elif kind == "cp1252":
            data = data[:at] + "é’ç".encode("cp1252") + data[at:]
        elif kind == "utf16":
            data = data.decode("utf-8", errors="replace").encode("utf-16")
        elif kind == "huge":
            data = data[:at] + b"x" * draw(st.integers(10_000, 300_000)) + data[at:]
        elif kind == "lines":
            lines = data.split(b"\n")
            keep = draw(st.lists(st.integers(0, max(0, len(lines) - 1)), max_size=len(lines) + 2))
            data = b"\n".join(lines[i] for i in keep)
        elif kind == "empty":
            data = draw(st.sampled_from([b"", b"\n", b"  \n\n", b"\xef\xbb\xbf"]))
    return data


@st.composite
def damaged_rows(draw: st.DrawFn, rows: list[dict], special: dict[str, st.SearchStrategy]) -> list[dict]:
    """`rows` with fields dropped, added, or set to any JSON value (`special[field]` for fields that need more)."""
    rows = [dict(r) for r in rows]
    for _ in range(draw(st.integers(1, 4))):
        row = draw(st.sampled_from(rows))
        field = draw(st.sampled_from(sorted({*row, *special, "extra"})))
        action = draw(st.sampled_from(["drop", "set", "set"]))
        if action == "drop":
            row.pop(field, None)
        else:
            row[field] = draw(special.get(field, json_values) | json_values)
    return rows


def _jsonl(rows: list[dict]) -> bytes:
    return "".join(json.dumps(r, allow_nan=True) + "\n" for r in rows).encode()


# --- corpora ------------------------------------------------------------------------------------------------

CORPUS_ROWS = [
    {"id": f"d{i}", "title": f"Story {i}", "text": f"Mara found the letter {i}. She cried, then laughed."}
    for i in range(3)
]


def test_corpus_jsonl(tally, tmp_path):
    t = tally("corpus .jsonl")

    @fuzz(150)
    @given(st.one_of(mutated(_jsonl(CORPUS_ROWS)), damaged_rows(CORPUS_ROWS, {}).map(_jsonl)))
    def check(data: bytes) -> None:
        path = t.fresh(tmp_path) / "corpus.jsonl"
        path.write_bytes(data)
        passages = t.check(lambda: load_passages(str(path), max_chars=400), path)
        assert passages is None or all(p.text.strip() and len(p.text) <= 400 for p in passages)

    check()


def test_corpus_txt_folder(tally, tmp_path):
    t = tally("corpus .txt folder")
    story = b"Mara found the letter.\n\nShe cried, then laughed, and called her brother.\n"

    @fuzz(120)
    @given(st.lists(mutated(story), min_size=1, max_size=3))
    def check(files: list[bytes]) -> None:
        folder = t.fresh(tmp_path)
        for i, data in enumerate(files):
            (folder / f"part{i}.txt").write_bytes(data)
        t.check(lambda: load_passages(str(folder), max_chars=300), folder)

    check()


# --- training data and predict inputs -----------------------------------------------------------------------

TRAIN_ROWS = [
    {"text": f"I am {word} today", "labels": [label], "soft_labels": {label: 0.9}, "split": split}
    for word, label, split in [
        ("glad", "joy", "train"), ("sad", "sadness", "train"), ("angry", "anger", "train"),
        ("scared", "fear", "train"), ("calm", "neutral", "validation"), ("happy", "joy", "validation"),
    ]
]  # fmt: skip
TRAIN_SPECIAL = {"soft_labels": soft_maps, "labels": st.lists(st.sampled_from([*LABELS[:4], "glee"]) | json_values)}


def test_training_rows(tally):
    """Row values, without the file layer: thousands of rows through the checks `train` applies to each."""
    t = tally("training rows (build_splits)")
    where = Path("data.jsonl")

    @fuzz(400)
    @given(damaged_rows(TRAIN_ROWS, TRAIN_SPECIAL))
    def check(rows: list[dict]) -> None:
        splits = t.check(lambda: build_splits(rows, TRAIN_CFG, where=str(where)), where)
        if splits is not None:
            for _, split in splits.items():
                assert ((split.targets >= 0) & (split.targets <= 1)).all()  # NaN fails this too

    check()


@pytest.mark.parametrize("score", [1.7, -0.1, math.nan, math.inf, "high", True])
def test_a_bad_soft_label_names_file_and_row(tmp_path, score):
    rows = [dict(r) for r in TRAIN_ROWS]
    rows[3]["soft_labels"] = {"fear": score}
    path = tmp_path / "data.jsonl"
    path.write_bytes(_jsonl(rows))
    # NaN and Infinity are not JSON: the line is refused before `datasets` could turn them into a silent null.
    bad = "(NaN|Infinity) is not a JSON number" if isinstance(score, float) and not math.isfinite(score) else (
        r"row 4: soft_labels\['fear'\] is .*not a score between 0 and 1")  # fmt: skip
    with pytest.raises(EmopillarsError, match=rf"{re.escape(str(path))}(:4|): {bad}"):
        load_splits(TrainConfig(data=str(path)))


def _table(rows: list[dict], suffix: str) -> bytes:
    if suffix == ".json":
        return json.dumps(rows, allow_nan=True).encode()
    if suffix == ".csv":
        header = sorted({k for r in rows for k in r})
        out = [",".join(header)]
        for r in rows:
            cells = [json.dumps(r[k]) if not isinstance(r.get(k), str) else r[k] for k in header if k in r]
            out.append(",".join(f'"{c}"' if "," in c else c for c in cells))
        return ("\n".join(out) + "\n").encode()
    return _jsonl(rows)


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_training_files(tally, tmp_path, suffix):
    """Whole files through `datasets`, as `train --data FILE` reads them (slower: fewer inputs)."""
    t = tally(f"training data {suffix}")
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(TRAIN_ROWS), tmp_path / "valid.parquet")
        inputs = mutated((tmp_path / "valid.parquet").read_bytes())
    else:
        rows = damaged_rows(TRAIN_ROWS, TRAIN_SPECIAL).map(lambda rows: _table(rows, suffix))
        inputs = st.one_of(mutated(_table(TRAIN_ROWS, suffix)), rows)

    @fuzz(25)
    @given(inputs)
    def check(data: bytes) -> None:
        path = t.fresh(tmp_path) / f"data{suffix}"
        path.write_bytes(data)
        t.check(lambda: load_splits(TrainConfig(data=str(path))), path)

    check()


PREDICT_ROWS = [{"text": "I won!", "context": "a raffle"}, {"text": "It broke.", "character_description": "Ann"}]


@pytest.mark.parametrize("suffix", [".txt", ".jsonl", ".csv"])
def test_predict_inputs(tally, tmp_path, suffix):
    t = tally(f"predict input {suffix}")
    valid = b"I won the raffle!\nThe vase broke.\n" if suffix == ".txt" else _table(PREDICT_ROWS, suffix)
    rows = damaged_rows(PREDICT_ROWS, {}).map(lambda rows: _table(rows, suffix))

    @fuzz(150)
    @given(st.one_of(mutated(valid), rows))
    def check(data: bytes) -> None:
        path = t.fresh(tmp_path) / f"input{suffix}"
        path.write_bytes(data)
        result = t.check(lambda: read_texts(path), path)
        if result is not None:
            texts, contexts = result
            assert all(isinstance(x, str) for x in texts) and (contexts is None or len(contexts) == len(texts))

    check()


# --- teacher-eval gold files and the downstream releases -----------------------------------------------------

GOLD_JSONL = _jsonl([{"text": "What a lovely day", "labels": ["joy"]}, {"utterance": "Go away", "labels": ["anger"]}])
GOLD_TSV = b"What a lovely day\t17\tid1\nGo away\tanger,annoyance\n"


@pytest.mark.parametrize(("suffix", "valid"), [(".jsonl", GOLD_JSONL), (".tsv", GOLD_TSV)])
def test_gold_files(tally, tmp_path, suffix, valid):
    t = tally(f"teacher-eval gold {suffix}")
    rows = [{"text": "What a lovely day", "labels": ["joy"]}, {"text": "Go away", "labels": ["anger"]}]
    damaged = damaged_rows(rows, {"labels": st.lists(st.sampled_from([*LABELS[:3], "glee"]) | json_values)})

    @fuzz(150)
    @given(st.one_of(mutated(valid), damaged.map(_jsonl)) if suffix == ".jsonl" else mutated(valid))
    def check(data: bytes) -> None:
        path = t.fresh(tmp_path) / f"gold{suffix}"
        path.write_bytes(data)
        gold = t.check(lambda: read_gold(path), path)
        assert gold is None or all(g.labels and set(g.labels) <= set(LABELS) for g in gold)

    check()


RELEASES = {
    "goemotions": FIXTURES / "goemotions" / "original" / "train.tsv",
    "isear": FIXTURES / "isear" / "isear.csv",
    "iemocap": FIXTURES / "iemocap" / "iemocap.csv",
    "emocontext": FIXTURES / "emocontext" / "train.txt",
}


@pytest.mark.parametrize("task", sorted(RELEASES))
def test_downstream_releases(tally, tmp_path, task):
    t = tally(f"downstream {task}")
    release = RELEASES[task]

    @fuzz(150)
    @given(mutated(release.read_bytes()))
    def check(data: bytes) -> None:
        path = t.fresh(tmp_path) / release.name
        path.write_bytes(data)
        splits = t.check(lambda: read_task(task, path), path)
        if splits is not None:
            assert all(row["text"] and row["labels"] for rows in splits.values() for row in rows)

    check()


# --- --config files -----------------------------------------------------------------------------------------

CONFIG = {"data": "runs/synth", "epochs": 2, "lr": 5e-5, "batch_size": 8, "mode": "contextless"}
CONFIG_FIELDS = set(TrainConfig.model_fields)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_config_files(tally, tmp_path, suffix):
    t = tally(f"--config {suffix}")
    dump = (lambda d: json.dumps(d, allow_nan=True)) if suffix == ".json" else yaml.safe_dump
    keys = st.sampled_from(sorted(CONFIG_FIELDS)) | st.text(max_size=10)
    damaged = st.dictionaries(keys, json_values | scores, max_size=5).map(lambda extra: {**CONFIG, **extra})

    @fuzz(150)
    @given(st.one_of(mutated(dump(CONFIG).encode()), damaged.map(lambda d: dump(d).encode())))
    def check(data: bytes) -> None:
        path = t.fresh(tmp_path) / f"train{suffix}"
        path.write_bytes(data)
        t.check(lambda: build_config(TrainConfig, None, {}, read_options_file(path, CONFIG_FIELDS, {}), path), path)

    check()


# --- a handful through the command line ---------------------------------------------------------------------


def _bad_train_data(tmp_path: Path) -> Path:
    rows = [dict(r) for r in TRAIN_ROWS]
    rows[2]["soft_labels"] = {"anger": 1.7}
    path = tmp_path / "train.jsonl"
    path.write_bytes(_jsonl(rows))
    return path


CLI_CASES = {
    "train, a soft label of 1.7": lambda p: (["train", "--data", str(_bad_train_data(p))], "row 3"),
    "train, a --config that is not YAML": lambda p: (
        ["train", "--config", str(_write(p / "c.yaml", b"epochs: [1,\n  lr: {"))], "not valid JSON/YAML"),
    "train, a --config with a NaN lr": lambda p: (
        ["train", "--data", "x.jsonl", "--config", str(_write(p / "c.json", b'{"lr": NaN}'))], "lr"),
    "teacher-eval, a gold file in Latin-1": lambda p: (
        ["teacher-eval", "--out", str(p / "o"), "--gold", str(_write(p / "g.jsonl", '{"text": "café"}'.encode(
            "latin-1")))], "not UTF-8"),
    "synth, a corpus line that is a list": lambda p: (
        ["synth", "--out", str(p / "o"), "--corpus", str(_write(p / "c.jsonl", b"[1, 2]\n"))],
        "expected a JSON object"),
}  # fmt: skip


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_cli_bad_files(tmp_path, case):
    args, expected = CLI_CASES[case](tmp_path)
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, EmopillarsError), result.output
    message = str(result.exception)
    named = next(a for a in args if a.startswith(str(tmp_path)) and Path(a).suffix)
    assert expected in message and named in message and "\n" not in message
