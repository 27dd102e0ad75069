"""GoEmotions: the original TSV release (`text<TAB>ids<TAB>comment id`) or any table or Hub copy of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emopillars.downstream.readers import shared
from emopillars.downstream.readers.shared import ReadOptions, Row
from emopillars.errors import EmopillarsError
from emopillars.labels import parse_label_names
from emopillars.sources import read_text
from emopillars.taxonomy import LABELS


def label_names(value: Any, where: str, labels: tuple[str, ...] = LABELS) -> list[str]:
    """Label ids as the releases write them (`"3,15"`, `[3, 15]`, `"['3', '15']"`, names) -> label names."""
    names = parse_label_names(value, where, labels)
    unknown = [name for name in names if name not in labels]
    if unknown:
        raise EmopillarsError(f"{where}: label {unknown[0]!r} is not a GoEmotions label id 0-{len(labels) - 1}")
    if not names:
        raise EmopillarsError(f"{where}: no labels")
    return sorted(set(names), key=labels.index)


def _read_tsv(path: Path, split: str | None, options: ReadOptions, labels: tuple[str, ...]) -> list[Row]:
    out = []
    for n, line in enumerate(read_text(path, legacy=True).split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise EmopillarsError(
                f"{path}:{n}: expected 3 tab-separated fields (text, label ids, comment id), found {len(fields)}"
            )
        body, ids, comment_id = fields
        where = f"{path}:{n}"
        out.append(
            shared.row(
                comment_id.strip() or f"{path.stem}-{n}",
                shared.text(body, where),
                None,
                label_names(ids, where, labels),
                split or shared.hash_split(comment_id, options.split_seed),
            )
        )
    return out


def read(source: str | Path, options: ReadOptions, labels: tuple[str, ...] = LABELS) -> list[Row]:
    path = shared.local(source)
    if path is not None and (path.suffix.lower() == ".tsv" or (path.is_dir() and any(path.glob("*.tsv")))):
        return [
            r for file, split in shared.split_files(path, (".tsv",)) for r in _read_tsv(file, split, options, labels)
        ]
    out = []
    config = options.hub_config or ("simplified" if path is None and not Path(source).exists() else None)
    for raw in shared.rows(source, config):
        text_col = shared.find_column(raw, options.text_column, ("text",), "text", "--text-column")
        label_col = shared.find_column(raw, options.label_column, ("labels", "label"), "labels", "--label-column")
        body = shared.text(raw.values[text_col], raw.where)
        id_ = shared.row_id(raw, ("id",))
        split = shared.row_split(raw, shared.hash_split(id_ if id_ != raw.where else body, options.split_seed))
        out.append(shared.row(id_, body, None, label_names(raw.values[label_col], raw.where, labels), split))
    return out
