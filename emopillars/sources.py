"""Where inputs live and how they open, for every reader in the package.

A source is a file (its format picked by suffix), a folder, a folder written by `save_to_disk`, or a
Hugging Face Hub id loaded through `datasets`. The split names and their aliases, the input modes and
the problem types are defined here once, so `synth`, `train`, `finetune` and `evaluate` accept the same
values and fail with the same one-line errors.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any, Literal, get_args

from emopillars.errors import EmopillarsError
from emopillars.jsonl import json_objects, loads

log = logging.getLogger(__name__)

Mode = Literal["contextless", "contextual"]  # the default first, as --help lists it
# The synth export stores modes as ClassLabel ids in this order (contextual = 0): saved datasets depend on it.
MODES: tuple[str, ...] = get_args(Mode)[::-1]
ProblemType = Literal["multi_label", "single_label"]
SplitName = Literal["train", "validation", "test"]
SPLITS: tuple[str, ...] = get_args(SplitName)
# Release files and Hub datasets name their splits in several ways; all of them mean one of SPLITS.
SPLIT_ALIASES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation"}
SPLIT_ALIASES |= {"val": "validation", "dev": "validation", "test": "test"}
_SPLIT_PREFIX = re.compile(r"^(training|train|validation|valid|val|dev|test)", re.IGNORECASE)

# Files `Dataset.save_to_disk` / `DatasetDict.save_to_disk` always write.
SAVED_DATASET_MARKERS = ("dataset_dict.json", "dataset_info.json", "state.json")
# Suffix -> the `datasets` builder that reads it.
FILE_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
_PATH_SUFFIXES = {*FILE_FORMATS, ".txt", ".tsv"}


def split_name(value: Any) -> str | None:
    """The split a name stands for (`dev` -> validation, `Training` -> train), or None when it is none."""
    return SPLIT_ALIASES.get(str(value).strip().lower()) if value is not None else None


def split_of_file(name: str) -> str | None:
    """The split a release file belongs to, from the start of its name (`dev.tsv` -> validation), or None."""
    match = _SPLIT_PREFIX.match(Path(name).name)
    return SPLIT_ALIASES[match.group(1).lower()] if match else None


def is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in SAVED_DATASET_MARKERS)


def _looks_like_path(source: str) -> bool:
    """Whether a missing `source` was meant as a path: a Hub id is "name" or "owner/name" with no data suffix."""
    return (
        source.startswith((".", "/", "~"))
        or source.count("/") > 1
        or "\\" in source
        or Path(source).suffix.lower() in _PATH_SUFFIXES
    )


def locate(source: str | Path, what: str = "data file") -> Path | str:
    """An existing path, else the Hub id `source` names; a missing path is a one-line error naming `what`."""
    path = Path(source).expanduser()
    if path.exists():
        return path
    if isinstance(source, Path) or _looks_like_path(str(source)):
        raise EmopillarsError(f"{what} not found: {source}")
    return str(source)


def read_text(path: Path, legacy: bool = False) -> str:
    """A file's UTF-8 text (BOM dropped); `legacy` falls back to Windows-1252, as old dataset releases use."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        if not legacy:
            raise EmopillarsError(f"{path}:{line}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise EmopillarsError(f"{path}:{line}: not UTF-8 or Windows-1252 text") from None
        log.warning("%s:%d is not UTF-8; read as Windows-1252", path, line)
        return text


def text_lines(path: Path) -> Iterator[str]:
    """A UTF-8 file's lines (ends kept, BOM dropped), decoded one at a time: a bad byte is an error naming its line."""
    with path.open("rb") as fh:
        for n, raw in enumerate(fh, start=1):
            try:
                yield raw.decode("utf-8-sig" if n == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise EmopillarsError(f"{path}:{n}: not UTF-8 text ({exc.reason})") from None


def jsonl_rows(path: Path, legacy: bool = False) -> Iterator[tuple[int, dict]]:
    """(line number, object) of a JSON Lines file, read whole first so a bad encoding fails before any row."""
    return json_objects(path, read_text(path, legacy).splitlines())


def _delimiter(first_line: str, path: Path) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    counts = {d: first_line.count(d) for d in (",", "\t", "|", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def delimited_rows(path: Path, text: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of a delimited file's whole text."""
    return delimited_lines(path, io.StringIO(text))


def delimited_lines(path: Path, lines: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of a delimited file's lines (line ends kept), its delimiter sniffed from the first;
    `|` has no quoting."""
    lines = iter(lines)
    first = next(lines, "")
    delimiter = _delimiter(first, path)
    quoting = csv.QUOTE_NONE if delimiter == "|" else csv.QUOTE_MINIMAL
    reader = csv.reader(chain([first], lines), delimiter=delimiter, quoting=quoting, strict=True)
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                yield reader.line_num, cells
    except csv.Error as exc:
        raise EmopillarsError(f"{path}:{reader.line_num}: malformed delimited row ({exc})") from None


def table_rows(path: Path, legacy: bool = False) -> Iterator[tuple[str, dict[str, Any]]]:
    """("file:line", row) of a delimited file with a header, a JSON Lines file or a parquet file."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise EmopillarsError(f"{path}: not a readable parquet file ({exc})") from None
        for i, values in enumerate(table):
            yield f"{path} row {i + 1}", values
        return
    text = read_text(path, legacy)  # whole first: a bad encoding fails before any row
    yield from _rows(path, text.splitlines() if suffix in {".jsonl", ".json"} else io.StringIO(text))


def streamed_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """`table_rows` of a UTF-8 JSON Lines or delimited file, read a line at a time: memory flat in its size."""
    return _rows(path, text_lines(path))


def _rows(path: Path, lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    if path.suffix.lower() in {".jsonl", ".json"}:
        for n, values in json_objects(path, lines):
            yield f"{path}:{n}", values
        return
    header: list[str] | None = None
    for n, cells in delimited_lines(path, lines):
        if header is None:
            header = [c.strip() for c in cells]
            continue
        if len(cells) != len(header):
            raise EmopillarsError(f"{path}:{n}: {len(cells)} fields where the header has {len(header)}")
        yield f"{path}:{n}", dict(zip(header, cells, strict=True))


def first_line(exc: BaseException) -> str:
    """An exception's first line, for one-line errors about a library's failure."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _guarded(where: str, loader: Any) -> Any:
    try:
        return loader()
    except EmopillarsError:
        raise
    except Exception as exc:  # a damaged file or folder, a missing or gated id: one line naming it
        raise EmopillarsError(f"cannot read {where}: {first_line(exc)}") from None


def load_dataset(source: str | Path, config: str | None = None, split: str | None = None) -> Any:
    """The `datasets` object of a data file, a `save_to_disk` folder or a Hub id (`config`, `split` for the Hub).

    A file comes back as one `Dataset`; a folder or Hub id as whatever it holds, split by split.
    """
    import datasets

    located = locate(source)
    if isinstance(located, str):
        return _guarded(f"Hub dataset {located!r}", lambda: datasets.load_dataset(located, config, split=split))
    if located.is_dir():
        if not is_saved_dataset(located):
            raise EmopillarsError(f"{located} is a folder but not one written by `datasets.save_to_disk`")
        return _guarded(str(located), lambda: datasets.load_from_disk(str(located)))
    builder = FILE_FORMATS.get(located.suffix.lower())
    if builder is None:
        raise EmopillarsError(f"{located}: not a {'/'.join(FILE_FORMATS)} file")
    if builder == "json" and located.suffix.lower() == ".jsonl":
        for _ in jsonl_rows(located):  # one line per error, with its number, before datasets parses it
            pass
    elif builder == "json":  # a whole-file JSON document: checked as strictly before datasets reads it
        loads(read_text(located), str(located))
    return _guarded(str(located), lambda: datasets.load_dataset(builder, data_files=str(located), split="train"))


def dataset_parts(loaded: Any) -> list[tuple[str | None, Any]]:
    """(split name as the dataset spells it, or None, `Dataset`) for a `DatasetDict` or a lone `Dataset`."""
    import datasets

    if isinstance(loaded, datasets.DatasetDict):
        return list(loaded.items())
    return [(None, loaded)]


def main_part(loaded: Any) -> Any:
    """The rows one stream should read: a `DatasetDict`'s train split, else its first; a `Dataset` as is."""
    parts = dict(dataset_parts(loaded))
    return parts["train"] if "train" in parts else next(iter(parts.values()))
