"""Read narratives from wherever the user keeps them and cut them into passages.

Every source becomes a stream of documents `(doc_id, title, text)`; one splitter turns them into
`Passage` records with content-derived ids, so a rerun over the same corpus reproduces every id.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Iterator
from importlib.resources import files
from pathlib import Path
from typing import NamedTuple

from emopillars.corpora.passages import passage_id, split_passages
from emopillars.errors import EmopillarsError
from emopillars.jsonl import json_objects
from emopillars.records import Passage

log = logging.getLogger(__name__)

BUNDLED = "bundled"
# Files `Dataset.save_to_disk` / `DatasetDict.save_to_disk` always write.
_SAVED_DATASET_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")


class Document(NamedTuple):
    doc_id: str
    title: str | None
    text: str


def bundled_corpus_path() -> Path:
    """The corpus shipped with the package: original plot summaries written for emopillars."""
    return Path(str(files("emopillars.corpora") / "data" / "stories.jsonl"))


def load_passages(
    source: str | None,
    *,
    text_field: str = "text",
    max_chars: int = 1500,
    max_passages: int | None = None,
) -> list[Passage]:
    """Load a corpus and split it into passages of at most `max_chars` characters.

    Args:
        source: None for the bundled corpus; a folder of `.txt` files (recursive, sorted);
            a `.txt` file; a `.jsonl` file (one document per line); a folder written by
            `datasets.save_to_disk`; or a Hugging Face hub dataset id.
        text_field: the field (jsonl) or column (datasets) holding the text.
        max_chars: the longest passage, in characters.
        max_passages: keep only the first N passages, in corpus order.

    Returns:
        Passages in corpus order, each with a stable, content-derived id.

    Raises:
        EmopillarsError: naming the path, line, dataset or column at fault.
    """
    if max_chars < 1:
        raise EmopillarsError(f"max_chars must be >= 1, got {max_chars}")
    if max_passages is not None and max_passages < 1:
        raise EmopillarsError(f"max_passages must be >= 1, got {max_passages}")
    label = BUNDLED if source is None else str(source)
    documents = _documents(source, text_field)
    passages = itertools.islice(_passages(documents, label, max_chars), max_passages)
    result = list(passages)
    if not result:
        raise EmopillarsError(f"corpus {label} is empty: it holds no text")
    log.info("loaded %d passages from %s", len(result), label)
    return result


def _passages(documents: Iterable[Document], source: str, max_chars: int) -> Iterator[Passage]:
    for doc in documents:
        for k, text in enumerate(split_passages(doc.text, max_chars)):
            yield Passage(id=passage_id(doc.doc_id, k, text), source=source, title=doc.title, text=text)


def _documents(source: str | None, text_field: str) -> Iterator[Document]:
    """Pick the reader for a source; existence and format errors surface before any text is read."""
    if source is None:
        return _read_jsonl(bundled_corpus_path(), "text")
    path = Path(source).expanduser()
    if path.is_dir():
        if any((path / marker).is_file() for marker in _SAVED_DATASET_MARKERS):
            return _read_saved_dataset(path, text_field)
        return _read_txt_folder(path)
    if path.is_file():
        if path.suffix == ".jsonl":
            return _read_jsonl(path, text_field)
        if path.suffix == ".txt":
            return iter([_read_txt(path, path.stem)])
        raise EmopillarsError(f"corpus file {path} is neither .jsonl nor .txt")
    if _looks_like_path(source):
        raise EmopillarsError(f"corpus path {source} does not exist")
    return _read_hub_dataset(source, text_field)


def _looks_like_path(source: str) -> bool:
    # A hub id is "name" or "owner/name"; anything else the user typed is a path that is missing.
    return (
        source.startswith((".", "/", "~"))
        or source.count("/") > 1
        or "\\" in source
        or Path(source).suffix in {".jsonl", ".json", ".txt"}
    )


def _read_txt(path: Path, doc_id: str) -> Document:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EmopillarsError(f"corpus file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return Document(doc_id=doc_id, title=path.stem, text=text)


def _read_txt_folder(folder: Path) -> Iterator[Document]:
    paths = sorted(p for p in folder.rglob("*.txt") if p.is_file())
    if not paths:
        raise EmopillarsError(f"corpus folder {folder} has no .txt files")
    return _txt_documents(folder, paths)


def _txt_documents(folder: Path, paths: list[Path]) -> Iterator[Document]:
    skipped = 0
    for path in paths:
        doc_id = path.relative_to(folder).with_suffix("").as_posix()
        try:
            yield _read_txt(path, doc_id)
        except EmopillarsError as exc:
            skipped += 1
            log.warning("skipping %s", exc)
    if skipped == len(paths):
        raise EmopillarsError(f"corpus folder {folder}: none of its {skipped} .txt files is UTF-8 text")


def _read_jsonl(path: Path, text_field: str) -> Iterator[Document]:
    try:
        lines = path.read_bytes().decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise EmopillarsError(f"corpus file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    return _jsonl_documents(path, lines, text_field)


def _jsonl_documents(path: Path, lines: list[str], text_field: str) -> Iterator[Document]:
    for number, row in json_objects(path, lines):
        if not isinstance(row.get(text_field), str):
            raise EmopillarsError(f"{path}:{number}: has no string field '{text_field}'")
        doc_id = str(row.get("id", f"{path.stem}-{number}"))
        yield Document(doc_id=doc_id, title=_optional_str(row.get("title")), text=row[text_field])


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _read_saved_dataset(folder: Path, text_field: str) -> Iterator[Document]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(folder))
    except Exception as exc:  # datasets raises several types for a damaged folder
        raise EmopillarsError(f"cannot load the saved dataset at {folder}: {exc}") from exc
    return _dataset_documents(_pick_split(loaded), str(folder), text_field)


def _read_hub_dataset(name: str, text_field: str) -> Iterator[Document]:
    import datasets

    try:
        loaded = datasets.load_dataset(name)
    except Exception as exc:  # missing, private, gated, offline: all mean "cannot use this id"
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise EmopillarsError(
            f"corpus '{name}' is not a local path and not a loadable Hugging Face dataset ({reason})"
        ) from exc
    return _dataset_documents(_pick_split(loaded), name, text_field)


def _pick_split(loaded):
    """A DatasetDict gives its "train" split, else its first; a Dataset is used as is."""
    import datasets

    if isinstance(loaded, datasets.DatasetDict):
        return loaded["train"] if "train" in loaded else loaded[next(iter(loaded))]
    return loaded


def _dataset_documents(dataset, name: str, text_field: str) -> Iterator[Document]:
    if text_field not in dataset.column_names:
        raise EmopillarsError(
            f"dataset {name} has no column '{text_field}' (columns: {', '.join(dataset.column_names)})"
        )
    return _rows_documents(dataset, name, text_field)


def _rows_documents(dataset, name: str, text_field: str) -> Iterator[Document]:
    has_id, has_title = "id" in dataset.column_names, "title" in dataset.column_names
    for i, row in enumerate(dataset):
        text = row[text_field]
        if text is not None and not isinstance(text, str):
            raise EmopillarsError(f"dataset {name} row {i}: column '{text_field}' is not text")
        yield Document(
            doc_id=str(row["id"]) if has_id else f"row{i}",
            title=_optional_str(row["title"]) if has_title else None,
            text=text or "",
        )
