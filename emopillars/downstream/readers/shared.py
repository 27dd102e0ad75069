"""What the benchmark readers share: options, rows in the `train` input format, split files, columns.

Opening files, folders, saved datasets and Hub ids is `emopillars.sources`; this module turns what
they hold into `RawRow`s with a location for error messages, and raw values into reader rows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emopillars.errors import EmopillarsError
from emopillars.sources import (
    SPLIT_ALIASES,
    dataset_parts,
    is_saved_dataset,
    load_dataset,
    locate,
    split_name,
    split_of_file,
    table_rows,
)

Row = dict[str, Any]
SplitRows = dict[str, list[Row]]  # split name -> reader rows (the trainer's arrays are `distill.data.Splits`)

TABLE_EXTS = (".csv", ".tsv", ".txt", ".jsonl", ".json", ".parquet")


@dataclass(frozen=True)
class ReadOptions:
    """How to read a source; each field is a `finetune`/`evaluate` option of the same name.

    Attributes:
        text_column: column holding the text (default: the usual header of the format).
        label_column: column holding the label (default: the usual header of the format).
        context_turns: IEMOCAP: how many previous turns of the dialogue form the context.
        split_seed: seed of the hash split used where the release has no split.
        hub_config: configuration name when `source` is a Hugging Face hub id.
    """

    text_column: str | None = None
    label_column: str | None = None
    context_turns: int = 3
    split_seed: int = 0
    hub_config: str | None = None


@dataclass(frozen=True)
class RawRow:
    where: str  # "file:line" or "source [split] row N", for error messages
    split: str | None  # from the file name or the dataset split, when known
    values: dict[str, Any]


def hash_split(key: str, seed: int, validation: float = 0.1, test: float = 0.1) -> str:
    """A stable split for `key`: the same key and seed always land in the same split."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "test" if u < test else "validation" if u < test + validation else "train"


def local(source: str | Path) -> Path | None:
    """The local path of a release's own files; None for a saved dataset or a Hub id (read through `datasets`)."""
    located = locate(source)
    return None if isinstance(located, str) or is_saved_dataset(located) else located


def split_files(path: Path, exts: tuple[str, ...]) -> list[tuple[Path, str | None]]:
    """The data files of a source: itself, or the split files of a folder (train/dev/test...)."""
    if path.is_file():
        return [(path, None)]
    found = sorted(
        (p, split_of_file(p.name)) for p in path.iterdir() if p.suffix.lower() in exts and split_of_file(p.name)
    )
    if not found:
        raise EmopillarsError(f"{path}: no train/dev/test files ({', '.join(exts)}) in this folder")
    return found


def dataset_rows(source: str | Path, config: str | None) -> Iterator[RawRow]:
    """Rows of a `save_to_disk` folder or a Hub dataset, each split named by the dataset."""
    for name, part in dataset_parts(load_dataset(source, config)):
        for i, values in enumerate(part):
            yield RawRow(f"{source} [{name or 'data'}] row {i + 1}", split_name(name), values)


def file_rows(path: Path, split: str | None) -> Iterator[RawRow]:
    """Rows of a table file (delimited with a header, JSON Lines, parquet), text read leniently."""
    for where, values in table_rows(path, legacy=True):
        yield RawRow(where, split, values)


def rows(source: str | Path, config: str | None = None) -> Iterator[RawRow]:
    """Dict rows of any tabular source: a file, a folder of split files, a saved or Hub dataset."""
    path = local(source)
    if path is None:
        yield from dataset_rows(source, config)
        return
    for file, split in split_files(path, TABLE_EXTS):
        yield from file_rows(file, split)


def column(row: RawRow, wanted: str | None, candidates: tuple[str, ...], what: str) -> str | None:
    """The name of the column holding `what`: `wanted` if given, else the first usual header present."""
    by_lower = {str(k).lower(): k for k in row.values}
    if wanted is not None:
        if wanted.lower() not in by_lower:
            raise EmopillarsError(f"{row.where}: no {what} column {wanted!r}; columns: {list(row.values)}")
        return by_lower[wanted.lower()]
    return next((by_lower[c] for c in candidates if c in by_lower), None)


def find_column(row: RawRow, wanted: str | None, candidates: tuple[str, ...], what: str, flag: str) -> str:
    name = column(row, wanted, candidates, what)
    if name is None:
        raise EmopillarsError(
            f"{row.where}: no {what} column (looked for {', '.join(candidates)}; set {flag}); "
            f"columns: {list(row.values)}"
        )
    return name


def text(value: Any, where: str, what: str = "text") -> str:
    """The value with its white space folded; empty is an error naming `what`."""
    folded = " ".join(str(value).split()) if value is not None else ""
    if not folded:
        raise EmopillarsError(f"{where}: empty {what}")
    return folded


def row(id_: str, text: str, context: str | None, labels: list[str], split: str) -> Row:
    return {"id": id_, "text": text, "context": context, "labels": labels, "split": split}


def row_id(raw: RawRow, candidates: tuple[str, ...]) -> str:
    """The row's id from the first id column present, else its location."""
    col = column(raw, None, candidates, "id")
    value = raw.values[col] if col is not None else None
    return raw.where if value in (None, "") else str(value).strip()


def row_split(raw: RawRow, default: str) -> str:
    """A `split` column wins, then the split file or dataset split the row came from, then `default`."""
    split_col = column(raw, None, ("split",), "split")
    if split_col is not None and raw.values[split_col] not in (None, ""):
        value = raw.values[split_col]
        split = split_name(value)
        if split is None:
            raise EmopillarsError(f"{raw.where}: split {value!r} is not one of {', '.join(SPLIT_ALIASES)}")
        return split
    return raw.split or default


def join_turns(turns: list[str]) -> str | None:
    """The context string of a dialogue: one turn per line, oldest first (None when there is none)."""
    return "\n".join(turns) if turns else None
