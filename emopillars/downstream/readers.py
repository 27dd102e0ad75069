"""Readers for GoEmotions, ISEAR, IEMOCAP (text) and EmoContext in their public release formats.

Every reader returns the same shape, `{split: [row, ...]}` with splits `train`/`validation`/`test`
and rows in the `emopillars train` input format (`id`, `text`, `context`, `labels` as a list of the
task's label names, `split`), so the distillation trainer consumes them unchanged. A malformed file
stops with a one-line `EmopillarsError` naming the file and line.

Where a release has no split (a single ISEAR file, say) rows are split 80/10/10 by a seeded hash of
their id (of the dialogue, for IEMOCAP), so `finetune` and `evaluate` on the same file agree on
which rows are held out without storing anything.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emopillars.downstream.tasks import Task, get_task
from emopillars.errors import EmopillarsError
from emopillars.jsonl import json_objects
from emopillars.taxonomy import LABELS

log = logging.getLogger(__name__)

SPLITS = ("train", "validation", "test")
Row = dict[str, Any]
Splits = dict[str, list[Row]]

_SPLIT_RE = re.compile(r"^(train|training|validation|valid|val|dev|test)", re.IGNORECASE)
_SPLIT_NAMES = {"train": "train", "training": "train", "validation": "validation", "valid": "validation"}
_SPLIT_NAMES |= {"val": "validation", "dev": "validation", "test": "test"}
_TABLE_EXTS = (".csv", ".tsv", ".txt", ".jsonl", ".json", ".parquet")
# Labels of the IEMOCAP release outside the standard 6-class text setting: those utterances stay in
# the dialogue (as context for their neighbours) but are not examples.
_IEMOCAP_OTHER = frozenset({"xxx", "oth", "other", "sur", "fea", "dis"})
# ISEAR's EMOT codebook: 1 joy, 2 fear, 3 anger, 4 sadness, 5 disgust, 6 shame, 7 guilt.
_ISEAR_CODES = ("joy", "fear", "anger", "sadness", "disgust", "shame", "guilt")


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


def read_task(task: str | Task, source: str | Path, options: ReadOptions | None = None) -> Splits:
    """Read a downstream dataset from a local path (file or folder) or a Hugging Face id.

    Args:
        task: a task name (`goemotions`, `isear`, `iemocap`, `emocontext`) or `Task`.
        source: a file, a folder of split files, a `save_to_disk` folder, or a hub id.
        options: column names, IEMOCAP context size, split seed.

    Returns:
        `{"train": rows, "validation": rows, "test": rows}`; rows in the `train` input format.
    """
    task = get_task(task) if isinstance(task, str) else task
    options = options or ReadOptions()
    reader = {
        "goemotions": _read_goemotions,
        "isear": _read_isear,
        "iemocap": _read_iemocap,
        "emocontext": _read_emocontext,
    }[task.name]
    rows = reader(source, options)
    if not rows:
        raise EmopillarsError(f"{source}: no {task.name} examples found")
    splits: Splits = {name: [] for name in SPLITS}
    for row in rows:
        splits[row["split"]].append(row)
    if not splits["validation"]:
        _carve_validation(splits, options.split_seed)
    log.info("read %s from %s: %s", task.name, source, {k: len(v) for k, v in splits.items()})
    return splits


def _carve_validation(splits: Splits, seed: int) -> None:
    """Move one train group (an IEMOCAP dialogue, else a row) to validation: training needs one."""
    groups = sorted({row.get("dialogue_id", row["id"]) for row in splits["train"]})
    if len(groups) < 2:
        return
    chosen = min(groups, key=lambda g: hashlib.sha256(f"{seed}:{g}".encode()).digest())
    splits["validation"] = [r for r in splits["train"] if r.get("dialogue_id", r["id"]) == chosen]
    splits["train"] = [r for r in splits["train"] if r.get("dialogue_id", r["id"]) != chosen]
    for row in splits["validation"]:
        row["split"] = "validation"


# --- locating and decoding files -------------------------------------------------------------


def split_of(name: str) -> str | None:
    """The split a release file belongs to, from its name (`dev.tsv` -> validation), or None."""
    match = _SPLIT_RE.match(Path(name).name)
    return _SPLIT_NAMES[match.group(1).lower()] if match else None


def hash_split(key: str, seed: int, validation: float = 0.1, test: float = 0.1) -> str:
    """A stable split for `key`: the same key and seed always land in the same split."""
    digest = hashlib.sha256(f"{seed}:{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    return "test" if u < test else "validation" if u < test + validation else "train"


def read_text(path: Path) -> str:
    """A file's text: UTF-8 (BOM dropped), else Windows-1252 as old releases use; else a one-line error."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            raise EmopillarsError(f"{path}:{line}: not UTF-8 or Windows-1252 text") from None
        log.warning("%s:%d is not UTF-8; read as Windows-1252", path, line)
        return text


def _files(path: Path, exts: tuple[str, ...]) -> list[tuple[Path, str | None]]:
    """The data files of a source: itself, or the split files of a folder (train/dev/test...)."""
    if path.is_file():
        return [(path, None)]
    found = sorted((p, split_of(p.name)) for p in path.iterdir() if p.suffix.lower() in exts and split_of(p.name))
    if not found:
        raise EmopillarsError(f"{path}: no train/dev/test files ({', '.join(exts)}) in this folder")
    return found


def _is_saved_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / f).is_file() for f in ("dataset_dict.json", "state.json"))


def _hf_rows(source: str | Path, config: str | None) -> Iterator[RawRow]:
    """Rows of a `save_to_disk` folder or a hub dataset, each split named by the dataset."""
    import datasets

    path = Path(source)
    try:
        loaded = datasets.load_from_disk(str(path)) if path.exists() else datasets.load_dataset(str(source), config)
    except (FileNotFoundError, ValueError, ConnectionError) as exc:
        raise EmopillarsError(f"cannot load dataset {source}: {exc}".splitlines()[0]) from None
    parts = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [(None, loaded)]
    for name, part in parts:
        split = _SPLIT_NAMES.get(name.lower()) if name else None
        for i, values in enumerate(part):
            yield RawRow(f"{source} [{name or 'data'}] row {i + 1}", split, values)


def _delimiter(first_line: str, path: Path) -> str:
    if path.suffix.lower() == ".tsv":
        return "\t"
    counts = {d: first_line.count(d) for d in (",", "\t", "|", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _csv_rows(path: Path, text: str, *, header: bool = True) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of a delimited file; the pipe layout of ISEAR has no quoting."""
    lines = text.splitlines()
    delimiter = _delimiter(lines[0] if lines else "", path)
    quoting = csv.QUOTE_NONE if delimiter == "|" else csv.QUOTE_MINIMAL
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, quoting=quoting, strict=True)
    try:
        for cells in reader:
            if any(c.strip() for c in cells):
                yield reader.line_num, cells
    except csv.Error as exc:
        raise EmopillarsError(f"{path}:{reader.line_num}: malformed delimited row ({exc})") from None


def _table_rows(path: Path, split: str | None) -> Iterator[RawRow]:
    """Rows of a delimited file with a header, a JSON-lines file or a parquet file, as dicts."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path).to_pylist()
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise EmopillarsError(f"{path}: not a readable parquet file ({exc})") from None
        for i, values in enumerate(table):
            yield RawRow(f"{path} row {i + 1}", split, values)
        return
    text = read_text(path)
    if suffix in {".jsonl", ".json"}:
        for n, values in json_objects(path, text.splitlines()):
            yield RawRow(f"{path}:{n}", split, values)
        return
    header: list[str] | None = None
    for n, cells in _csv_rows(path, text):
        if header is None:
            header = [c.strip() for c in cells]
            continue
        if len(cells) != len(header):
            raise EmopillarsError(f"{path}:{n}: {len(cells)} fields where the header has {len(header)}")
        yield RawRow(f"{path}:{n}", split, dict(zip(header, cells, strict=True)))


def _rows(source: str | Path, config: str | None = None) -> Iterator[RawRow]:
    """Dict rows of any tabular source: a file, a folder of split files, a saved or hub dataset."""
    path = Path(source)
    if not path.exists() or _is_saved_dataset(path):
        yield from _hf_rows(source, config)
        return
    for file, split in _files(path, _TABLE_EXTS):
        yield from _table_rows(file, split)


def _column(row: RawRow, wanted: str | None, candidates: tuple[str, ...], what: str) -> str | None:
    """The name of the column holding `what`: `wanted` if given, else the first usual header present."""
    by_lower = {str(k).lower(): k for k in row.values}
    if wanted is not None:
        if wanted.lower() not in by_lower:
            raise EmopillarsError(f"{row.where}: no {what} column {wanted!r}; columns: {list(row.values)}")
        return by_lower[wanted.lower()]
    return next((by_lower[c] for c in candidates if c in by_lower), None)


def _require(row: RawRow, wanted: str | None, candidates: tuple[str, ...], what: str, flag: str) -> str:
    name = _column(row, wanted, candidates, what)
    if name is None:
        raise EmopillarsError(
            f"{row.where}: no {what} column (looked for {', '.join(candidates)}; set {flag}); "
            f"columns: {list(row.values)}"
        )
    return name


def _text(value: Any, where: str, what: str = "text") -> str:
    text = " ".join(str(value).split()) if value is not None else ""
    if not text:
        raise EmopillarsError(f"{where}: empty {what}")
    return text


def _row(id_: str, text: str, context: str | None, labels: list[str], split: str) -> Row:
    return {"id": id_, "text": text, "context": context, "labels": labels, "split": split}


def _id(raw: RawRow, candidates: tuple[str, ...]) -> str:
    """The row's id from the first id column present, else its location."""
    col = _column(raw, None, candidates, "id")
    value = raw.values[col] if col is not None else None
    return raw.where if value in (None, "") else str(value).strip()


def _split(raw: RawRow, default: str) -> str:
    """A `split` column wins, then the split file or dataset split the row came from, then `default`."""
    split_col = _column(raw, None, ("split",), "split")
    if split_col is not None and raw.values[split_col] not in (None, ""):
        value = str(raw.values[split_col]).strip().lower()
        if value not in _SPLIT_NAMES:
            raise EmopillarsError(f"{raw.where}: split {value!r} is not one of train, validation, test")
        return _SPLIT_NAMES[value]
    return raw.split or default


# --- GoEmotions ------------------------------------------------------------------------------


def _goemotions_ids(value: Any, where: str) -> list[str]:
    """Label ids as the releases write them (`"3,15"`, `[3, 15]`, names) -> label names."""
    if isinstance(value, str):
        value = value.strip().strip("[]")
        items: list[Any] = [v.strip().strip("'\"") for v in value.split(",") if v.strip()]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    names = []
    for item in items:
        if isinstance(item, str) and item in LABELS:
            names.append(item)
            continue
        try:
            index = int(item)
        except (TypeError, ValueError):
            index = -1
        if not 0 <= index < len(LABELS):
            raise EmopillarsError(f"{where}: label {item!r} is not a GoEmotions label id 0-{len(LABELS) - 1}")
        names.append(LABELS[index])
    if not names:
        raise EmopillarsError(f"{where}: no labels")
    return sorted(set(names), key=LABELS.index)


def _read_goemotions_tsv(path: Path, split: str | None, options: ReadOptions) -> list[Row]:
    """The original release: `text<TAB>ids<TAB>comment id`, no header."""
    rows = []
    for n, line in enumerate(read_text(path).split("\n"), 1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise EmopillarsError(
                f"{path}:{n}: expected 3 tab-separated fields (text, label ids, comment id), found {len(fields)}"
            )
        text, ids, comment_id = fields
        where = f"{path}:{n}"
        rows.append(
            _row(
                comment_id.strip() or f"{path.stem}-{n}",
                _text(text, where),
                None,
                _goemotions_ids(ids, where),
                split or hash_split(comment_id, options.split_seed),
            )
        )
    return rows


def _read_goemotions(source: str | Path, options: ReadOptions) -> list[Row]:
    path = Path(source)
    if (path.is_file() and path.suffix.lower() == ".tsv") or (path.is_dir() and any(path.glob("*.tsv"))):
        return [row for file, split in _files(path, (".tsv",)) for row in _read_goemotions_tsv(file, split, options)]
    rows = []
    config = options.hub_config or ("simplified" if not path.exists() else None)
    for raw in _rows(source, config):
        text_col = _require(raw, options.text_column, ("text",), "text", "--text-column")
        label_col = _require(raw, options.label_column, ("labels", "label"), "labels", "--label-column")
        text = _text(raw.values[text_col], raw.where)
        labels = _goemotions_ids(raw.values[label_col], raw.where)
        id_ = _id(raw, ("id",))
        rows.append(
            _row(
                id_, text, None, labels, _split(raw, hash_split(id_ if id_ != raw.where else text, options.split_seed))
            )
        )
    return rows


# --- ISEAR -----------------------------------------------------------------------------------

_ISEAR_TEXT = ("text", "sit", "situation", "content", "sentence")
_ISEAR_LABEL = ("emotion", "label", "field1", "emot", "class")
_ISEAR_ARTEFACT = re.compile(r"\s+á\s+")  # the ISEAR export marks the original line breaks with a lone "á"


def _isear_label(value: Any, where: str) -> str:
    label = str(value).strip().lower()
    if label.isdigit() and 1 <= int(label) <= len(_ISEAR_CODES):
        return _ISEAR_CODES[int(label) - 1]
    if label not in _ISEAR_CODES:
        raise EmopillarsError(f"{where}: ISEAR label {value!r} is not one of {', '.join(_ISEAR_CODES)} (or a code 1-7)")
    return label


def _read_isear(source: str | Path, options: ReadOptions) -> list[Row]:
    path = Path(source)
    if path.exists() and not _is_saved_dataset(path):
        raws = [raw for file, split in _files(path, _TABLE_EXTS) for raw in _isear_raw(file, split)]
    else:
        raws = list(_hf_rows(source, options.hub_config))
    rows = []
    for raw in raws:
        text_col = _require(raw, options.text_column, _ISEAR_TEXT, "text", "--text-column")
        label_col = _require(raw, options.label_column, _ISEAR_LABEL, "label", "--label-column")
        text = _text(_ISEAR_ARTEFACT.sub(" ", f" {raw.values[text_col]} "), raw.where)
        label = _isear_label(raw.values[label_col], raw.where)
        # keyed by text, so a situation repeated under two emotions never straddles two splits
        rows.append(
            _row(_id(raw, ("mykey", "id")), text, None, [label], _split(raw, hash_split(text, options.split_seed)))
        )
    return rows


def _isear_raw(path: Path, split: str | None) -> Iterator[RawRow]:
    """An ISEAR table; a headerless two-column `emotion,text` file is read as such."""
    if path.suffix.lower() in {".jsonl", ".json", ".parquet"}:
        yield from _table_rows(path, split)
        return
    text = read_text(path)
    cells_iter = _csv_rows(path, text)
    first = next(cells_iter, None)
    if first is None:
        return
    headerless = len(first[1]) == 2 and first[1][0].strip().lower() in _ISEAR_CODES
    if not headerless:
        yield from _table_rows(path, split)
        return
    for n, cells in [first, *cells_iter]:
        if len(cells) != 2:
            raise EmopillarsError(f"{path}:{n}: {len(cells)} fields where an `emotion,text` row has 2")
        yield RawRow(f"{path}:{n}", split, {"emotion": cells[0], "text": cells[1]})


# --- IEMOCAP (text) --------------------------------------------------------------------------

_IEMOCAP_DIALOGUE = ("dialogue_id", "dialog_id", "dialogue", "conversation_id", "session_id")
_IEMOCAP_ORDER = ("utterance_order", "order", "turn", "turn_id", "utterance_idx", "utt_index")
_IEMOCAP_TEXT = ("text", "utterance", "transcript", "transcription")
_IEMOCAP_LABEL = ("label", "emotion")
_SESSION = re.compile(r"^ses0*(\d+)", re.IGNORECASE)


def join_turns(turns: list[str]) -> str | None:
    """The context string of a dialogue: one turn per line, oldest first (None when there is none)."""
    return "\n".join(turns) if turns else None


def _iemocap_split(dialogue: str, options: ReadOptions) -> str:
    """The standard text setting: sessions 1-4 train (10% of their dialogues validation), session 5 test."""
    match = _SESSION.match(dialogue)
    if not match:
        return hash_split(dialogue, options.split_seed)
    if int(match.group(1)) == 5:
        return "test"
    return hash_split(dialogue, options.split_seed, validation=0.1, test=0.0)


def _read_iemocap(source: str | Path, options: ReadOptions) -> list[Row]:
    dialogues: dict[str, list[tuple[float, int, RawRow, str, str]]] = defaultdict(list)
    for index, raw in enumerate(_rows(source, options.hub_config)):
        dialogue_col = _require(raw, None, _IEMOCAP_DIALOGUE, "dialogue id", "a dialogue_id column")
        text_col = _require(raw, options.text_column, _IEMOCAP_TEXT, "text", "--text-column")
        label_col = _require(raw, options.label_column, _IEMOCAP_LABEL, "label", "--label-column")
        order_col = _column(raw, None, _IEMOCAP_ORDER, "utterance order")
        dialogue = _text(raw.values[dialogue_col], raw.where, "dialogue id")
        order = float(index)  # file order when the release has no order column
        if order_col is not None:
            try:
                order = float(raw.values[order_col])
            except (TypeError, ValueError):
                raise EmopillarsError(
                    f"{raw.where}: utterance order {raw.values[order_col]!r} is not a number"
                ) from None
        label = str(raw.values[label_col]).strip().lower()
        if label not in get_task("iemocap").labels and label not in _IEMOCAP_OTHER:
            raise EmopillarsError(
                f"{raw.where}: IEMOCAP label {raw.values[label_col]!r} is not one of "
                f"{', '.join(get_task('iemocap').labels)} (or {', '.join(sorted(_IEMOCAP_OTHER))}, kept as context)"
            )
        dialogues[dialogue].append((order, index, raw, _text(raw.values[text_col], raw.where), label))
    rows = []
    for dialogue, turns in dialogues.items():
        turns.sort(key=lambda t: (t[0], t[1]))
        shown: list[str] = []  # the dialogue so far, as the context side sees it
        for order, _, raw, text, label in turns:
            speaker_col = _column(raw, None, ("speaker", "spk"), "speaker")
            speaker = str(raw.values[speaker_col]).strip() if speaker_col else ""
            if label not in _IEMOCAP_OTHER:
                context = join_turns(shown[-options.context_turns :] if options.context_turns else [])
                id_ = _id(raw, ("utterance_id", "id"))
                id_ = f"{dialogue}_{order:g}" if id_ == raw.where else id_
                row = _row(id_, text, context, [label], _split(raw, _iemocap_split(dialogue, options)))
                rows.append({**row, "dialogue_id": dialogue})
            shown.append(f"{speaker}: {text}" if speaker else text)
    return rows


# --- EmoContext (SemEval-2019 Task 3) --------------------------------------------------------

_EMOCONTEXT_HEADER = ["id", "turn1", "turn2", "turn3", "label"]


def _read_emocontext_file(path: Path, split: str | None, options: ReadOptions) -> list[Row]:
    """`id<TAB>turn1<TAB>turn2<TAB>turn3<TAB>label` with that header; turns 1-2 are turn 3's context."""
    labels = get_task("emocontext").labels
    rows = []
    lines = read_text(path).split("\n")
    header = [h.strip().lower() for h in lines[0].rstrip("\r").split("\t")] if lines else []
    if header == _EMOCONTEXT_HEADER[:4]:
        raise EmopillarsError(f"{path}:1: no label column (an unlabelled test release cannot be used here)")
    if header != _EMOCONTEXT_HEADER:
        raise EmopillarsError(f"{path}:1: expected the header {' '.join(_EMOCONTEXT_HEADER)} (tab-separated)")
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
        context = join_turns([_text(turn1, where, "turn1"), _text(turn2, where, "turn2")])
        rows.append(
            _row(
                id_,
                _text(turn3, where, "turn3"),
                context,
                [label.lower()],
                split or hash_split(id_, options.split_seed),
            )
        )
    return rows


def _read_emocontext(source: str | Path, options: ReadOptions) -> list[Row]:
    path = Path(source)
    if not path.exists():
        raise EmopillarsError(f"{source}: no such file or folder (EmoContext is read from its released files)")
    return [
        row for file, split in _files(path, (".txt", ".tsv")) for row in _read_emocontext_file(file, split, options)
    ]
