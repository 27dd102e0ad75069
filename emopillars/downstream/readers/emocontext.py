"""EmoContext (SemEval-2019 Task 3): `id, turn1, turn2, turn3, label` tab-separated; turns 1-2 are the context."""

from __future__ import annotations

from pathlib import Path

from emopillars.downstream.readers import shared
from emopillars.downstream.readers.shared import ReadOptions, Row
from emopillars.errors import EmopillarsError
from emopillars.sources import read_text

_HEADER = ["id", "turn1", "turn2", "turn3", "label"]


def _read_file(path: Path, split: str | None, options: ReadOptions, labels: tuple[str, ...]) -> list[Row]:
    out = []
    lines = read_text(path, legacy=True).split("\n")
    header = [h.strip().lower() for h in lines[0].rstrip("\r").split("\t")] if lines else []
    if header == _HEADER[:4]:
        raise EmopillarsError(f"{path}:1: no label column (an unlabelled test release cannot be used here)")
    if header != _HEADER:
        raise EmopillarsError(f"{path}:1: expected the header {' '.join(_HEADER)} (tab-separated)")
    for n, line in enumerate(lines[1:], 2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        where = f"{path}:{n}"
        if len(fields) != 5:
            raise EmopillarsError(f"{where}: expected 5 tab-separated fields (id, turn1-3, label), found {len(fields)}")
        id_, turn1, turn2, turn3, label = (f.strip() for f in fields)
        if label.lower() not in labels:
            raise EmopillarsError(f"{where}: EmoContext label {label!r} is not one of {', '.join(labels)}")
        context = shared.join_turns([shared.text(turn1, where, "turn1"), shared.text(turn2, where, "turn2")])
        part = split or shared.hash_split(id_, options.split_seed)
        out.append(shared.row(id_, shared.text(turn3, where, "turn3"), context, [label.lower()], part))
    return out


def read(source: str | Path, options: ReadOptions, labels: tuple[str, ...]) -> list[Row]:
    path = Path(source).expanduser()
    if not path.exists():
        raise EmopillarsError(f"{source}: no such file or folder (EmoContext is read from its released files)")
    return [
        r
        for file, split in shared.split_files(path, (".txt", ".tsv"))
        for r in _read_file(file, split, options, labels)
    ]
