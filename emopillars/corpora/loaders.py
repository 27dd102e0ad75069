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
from emopillars.records import Passage
from emopillars.sources import is_saved_dataset, jsonl_rows, load_dataset, locate, main_part, read_text

log = logging.getLogger(__name__)

BUNDLED = "bundled"


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
    located = locate(source, "corpus")
    if isinstance(located, str) or is_saved_dataset(located):
        return _dataset_documents(main_part(load_dataset(located)), str(source), text_field)
    if located.is_dir():
        return _read_txt_folder(located)
    if located.suffix == ".jsonl":
        return _read_jsonl(located, text_field)
    if located.suffix == ".txt":
        return iter([_read_txt(located, located.stem)])
    raise EmopillarsError(f"corpus file {located} is neither .jsonl nor .txt")


def _read_txt(path: Path, doc_id: str) -> Document:
    return Document(doc_id=doc_id, title=path.stem, text=read_text(path))


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
    return _jsonl_documents(path, list(jsonl_rows(path)), text_field)


def _jsonl_documents(path: Path, rows: list[tuple[int, dict]], text_field: str) -> Iterator[Document]:
    for number, row in rows:
        if not isinstance(row.get(text_field), str):
            raise EmopillarsError(f"{path}:{number}: has no string field '{text_field}'")
        doc_id = str(row.get("id", f"{path.stem}-{number}"))
        yield Document(doc_id=doc_id, title=_optional_str(row.get("title")), text=row[text_field])


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


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
