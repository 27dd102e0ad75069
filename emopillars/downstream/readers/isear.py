"""ISEAR: the released table (pipe- or comma-separated, Windows-1252), a headerless `emotion,text` file, or Hub copy."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emopillars.downstream.readers import shared
from emopillars.downstream.readers.shared import RawRow, ReadOptions, Row
from emopillars.errors import EmopillarsError
from emopillars.sources import delimited_rows, read_text

_TEXT = ("text", "sit", "situation", "content", "sentence")
_LABEL = ("emotion", "label", "field1", "emot", "class")
_ARTEFACT = re.compile(r"\s+á\s+")  # the ISEAR export marks the original line breaks with a lone "á"


def label(value: Any, where: str, codes: tuple[str, ...]) -> str:
    """A label name, or its EMOT code: the task's labels (`codes`) are in codebook order, so code k is label k-1."""
    name = str(value).strip().lower()
    if name.isdigit() and 1 <= int(name) <= len(codes):
        return codes[int(name) - 1]
    if name not in codes:
        raise EmopillarsError(f"{where}: ISEAR label {value!r} is not one of {', '.join(codes)} (or a code 1-7)")
    return name


def read(source: str | Path, options: ReadOptions, labels: tuple[str, ...]) -> list[Row]:
    path = shared.local(source)
    if path is not None:
        raws = [
            raw for file, split in shared.split_files(path, shared.TABLE_EXTS) for raw in _raw_rows(file, split, labels)
        ]
    else:
        raws = list(shared.dataset_rows(source, options.hub_config))
    out = []
    for raw in raws:
        text_col = shared.find_column(raw, options.text_column, _TEXT, "text", "--text-column")
        label_col = shared.find_column(raw, options.label_column, _LABEL, "label", "--label-column")
        body = shared.text(_ARTEFACT.sub(" ", f" {raw.values[text_col]} "), raw.where)
        name = label(raw.values[label_col], raw.where, labels)
        # keyed by text, so a situation repeated under two emotions never straddles two splits
        split = shared.row_split(raw, shared.hash_split(body, options.split_seed))
        out.append(shared.row(shared.row_id(raw, ("mykey", "id")), body, None, [name], split))
    return out


def _raw_rows(path: Path, split: str | None, labels: tuple[str, ...]) -> Iterator[RawRow]:
    """An ISEAR table; a headerless two-column `emotion,text` file is read as such."""
    if path.suffix.lower() in {".jsonl", ".json", ".parquet"}:
        yield from shared.file_rows(path, split)
        return
    cells_iter = delimited_rows(path, read_text(path, legacy=True))
    first = next(cells_iter, None)
    if first is None:
        return
    headerless = len(first[1]) == 2 and first[1][0].strip().lower() in labels
    if not headerless:
        yield from shared.file_rows(path, split)
        return
    for n, cells in [first, *cells_iter]:
        if len(cells) != 2:
            raise EmopillarsError(f"{path}:{n}: {len(cells)} fields where an `emotion,text` row has 2")
        yield RawRow(f"{path}:{n}", split, {"emotion": cells[0], "text": cells[1]})
