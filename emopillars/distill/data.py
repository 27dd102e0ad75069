"""Reading labelled emotion data into splits (token ids and batches: `emopillars.distill.batching`).

Data preparation lives apart from training (as in nanoGPT): the trainer only takes `Splits`.

Public API (stable; the downstream fine-tuning reuses it):
    read_records(path) -> list[dict]
        A synth output folder (its `dataset/` DatasetDict, else `examples.jsonl`), a `.jsonl` or
        `.csv` file, or a Hugging Face dataset (id or `save_to_disk` folder).
    build_splits(records, cfg, where) -> Splits
        Validates columns and label names, filters by mode, builds targets in `cfg.labels` order,
        and makes a seeded train/validation/test split when the records carry none.
    load_splits(cfg) -> Splits                      # read_records(cfg.data) then build_splits
    Split.from_labels(texts, labels, label_set, contexts=None, single_label=False) -> Split
        For callers that already parsed their dataset (hard label names per row).
    read_texts(path) -> (texts, contexts | None)    # .txt (one per line), .jsonl, .csv
    iter_texts(path) -> Iterator[(text, context | None)]   # the same, a line at a time
    pair_context(context, character_description) -> str   # the second segment in contextual mode

A `Split` holds `texts`, `contexts` (None in contextless mode), `targets` (N, L) float32 soft
targets (a distribution per row for single_label) and `gold` (N, L) int8 hard labels for metrics.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emopillars.errors import EmopillarsError
from emopillars.labels import label_matrix, parse_label_names
from emopillars.sources import (
    SPLIT_ALIASES,
    SPLITS,
    dataset_parts,
    first_line,
    is_saved_dataset,
    load_dataset,
    split_name,
    streamed_rows,
    text_lines,
)
from emopillars.taxonomy import LABELS

if TYPE_CHECKING:
    from emopillars.distill.config import TrainConfig

log = logging.getLogger(__name__)

TEXT_COLUMNS = ("utterance", "text")
TARGET_COLUMNS = ("soft_labels", "labels")


def pair_context(context: str | None, character_description: str | None = None) -> str:
    """The second tokenizer segment: "character description: context" (either part may be absent)."""
    parts = [p.strip() for p in (character_description, context) if p and p.strip()]
    return ": ".join(parts)


@dataclass
class Split:
    texts: list[str]
    contexts: list[str] | None
    targets: np.ndarray  # (N, L) float32
    gold: np.ndarray  # (N, L) int8

    def __post_init__(self) -> None:
        assert len(self.texts) == len(self.targets) == len(self.gold)
        assert self.contexts is None or len(self.contexts) == len(self.texts)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: list[int] | np.ndarray) -> Split:
        idx = list(idx)
        return Split(
            [self.texts[i] for i in idx],
            None if self.contexts is None else [self.contexts[i] for i in idx],
            self.targets[idx],
            self.gold[idx],
        )

    def concat(self, other: Split) -> Split:
        if (self.contexts is None) != (other.contexts is None):
            raise ValueError("cannot join a contextual split with a contextless one")
        return Split(
            self.texts + other.texts,
            None if self.contexts is None else self.contexts + other.contexts,
            np.concatenate([self.targets, other.targets]),
            np.concatenate([self.gold, other.gold]),
        )

    @classmethod
    def from_labels(
        cls,
        texts: list[str],
        labels: list[list[str]] | list[str],
        label_set: tuple[str, ...] | list[str],
        contexts: list[str] | None = None,
        single_label: bool = False,
    ) -> Split:
        """Hard label names per row (a list per row, or one name per row) -> a Split."""
        gold = label_matrix(labels, label_set)
        targets = gold.astype(np.float32)
        if single_label and (gold.sum(1) != 1).any():
            bad = int(np.flatnonzero(gold.sum(1) != 1)[0])
            raise EmopillarsError(f"row {bad}: single_label data needs exactly one label per row")
        return cls(list(texts), None if contexts is None else list(contexts), targets, gold)


@dataclass
class Splits:
    train: Split
    validation: Split
    test: Split
    summary: dict[str, Any] = field(default_factory=dict)

    def items(self) -> list[tuple[str, Split]]:
        return [(name, getattr(self, name)) for name in SPLITS]


# --- reading ----------------------------------------------------------------------------------------


def _decoder(feature: Any) -> Any:
    """ids -> names for a ClassLabel column or a list of ClassLabels; None for any other column."""
    import datasets

    if isinstance(feature, datasets.ClassLabel):
        return lambda v: v if v is None or isinstance(v, str) else feature.int2str(int(v))
    inner = getattr(feature, "feature", None)  # Sequence(ClassLabel) / List(ClassLabel)
    if isinstance(inner, datasets.ClassLabel):
        return lambda v: v if v is None else [x if isinstance(x, str) else inner.int2str(int(x)) for x in v]
    return None


def records_from_dataset(ds: Any, cfg: TrainConfig | None = None) -> list[dict]:
    """Rows of a `datasets.Dataset` or `DatasetDict` (its split names become the `split` column).

    Label columns declared as `ClassLabel` (or a sequence of them), as GoEmotions and the synth export
    declare them, come back as label names, so ids and names read the same way.
    """
    import datasets

    if isinstance(ds, datasets.DatasetDict):
        if cfg is not None and cfg.data_split:
            if cfg.data_split not in ds:
                raise EmopillarsError(f"{cfg.data}: no split {cfg.data_split!r} (has {sorted(ds)})")
            return records_from_dataset(ds[cfg.data_split], cfg)
        rows = []
        for name, part in dataset_parts(ds):
            split = split_name(name) or name
            rows.extend({**r, "split": r.get("split") or split} for r in records_from_dataset(part))
        return rows
    if not isinstance(ds, datasets.Dataset):
        raise EmopillarsError(f"expected a datasets.Dataset or DatasetDict, got {type(ds).__name__}")
    decoders = {name: d for name, f in ds.features.items() if (d := _decoder(f)) is not None}
    rows = ds.to_list()
    for row in rows:
        for name, decode in decoders.items():
            row[name] = decode(row[name])
    return rows


def read_dataset(path: str | Path, config: str | None = None, split: str | None = None) -> Any:
    """The `datasets` object behind a synth output folder, or any source `sources.load_dataset` opens."""
    p = Path(path)
    if p.is_dir() and not is_saved_dataset(p):
        if is_saved_dataset(p / "dataset"):
            return load_dataset(p / "dataset")
        if (p / "examples.jsonl").is_file():
            return load_dataset(p / "examples.jsonl")
        raise EmopillarsError(f"{p} holds neither a synth output (examples.jsonl, dataset/) nor a saved dataset")
    return load_dataset(path, config, split)


def read_records(path: str | Path, cfg: TrainConfig | None = None) -> list[dict]:
    """Rows of `path` (see `read_dataset`); `cfg` picks the Hub configuration and split."""
    import pyarrow as pa

    config, split = (cfg.data_config, cfg.data_split) if cfg is not None else (None, None)
    dataset = read_dataset(path, config, split)
    try:
        return records_from_dataset(dataset, cfg)
    except (UnicodeDecodeError, pa.ArrowException) as exc:  # a damaged file datasets opened: its rows do not decode
        raise EmopillarsError(f"cannot read {path}: {first_line(exc)}") from None


def iter_texts(path: str | Path) -> Iterator[tuple[str, str | None]]:
    """(text, context or None) to label, read a line at a time (memory flat in the file's size): .txt (one
    per line), or .jsonl/.csv with utterance|text (+ optional context: None on every row when no row has one)."""
    p = Path(path)
    if not p.is_file():
        raise EmopillarsError(f"input file not found: {p}")
    if p.suffix not in {".jsonl", ".csv"}:
        return ((line.strip(), None) for line in text_lines(p) if line.strip())
    first = next(streamed_rows(p), None)
    if first is None:
        raise EmopillarsError(f"{p} holds no rows")
    column = next((c for c in TEXT_COLUMNS if c in first[1]), None)
    if column is None:
        raise EmopillarsError(f"{p}: missing column 'utterance' or 'text' (has {sorted(first[1])})")
    has_context = any(row.get("context") for _, row in streamed_rows(p))  # a first pass, to the first context
    return _texts(p, column, has_context)


def _texts(path: Path, column: str, has_context: bool) -> Iterator[tuple[str, str | None]]:
    for where, row in streamed_rows(path):
        for name in (column, "context", "character_description"):  # the text must be there, the others may not
            if not isinstance(row.get(name), str) and (name == column or row.get(name) is not None):
                raise EmopillarsError(f"{where}: '{name}' is {str(row.get(name))[:40]!r}, not text")
        context = pair_context(row.get("context"), row.get("character_description")) if has_context else None
        yield row[column], context


def read_texts(path: str | Path) -> tuple[list[str], list[str] | None]:
    """`iter_texts` whole: (texts, contexts or None)."""
    rows = list(iter_texts(path))
    contexts = [c for _, c in rows] if rows and rows[0][1] is not None else None
    return [t for t, _ in rows], contexts


# --- building splits ----------------------------------------------------------------------------------


def _soft_vector(value: Any, labels: tuple[str, ...], where: str) -> np.ndarray:
    """A row's scores in `labels` order; each must be a number in [0, 1] (BCE on 1.7 or NaN trains on nonsense)."""
    if isinstance(value, str):  # CSV cells hold JSON
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise EmopillarsError(f"{where}: soft_labels is not JSON: {value[:60]!r}") from None
    if isinstance(value, dict):
        unknown = sorted(set(value) - set(labels) - set(LABELS), key=str)
        if unknown:
            raise EmopillarsError(f"{where}: soft_labels has label(s) {unknown} outside {list(labels)}")
        scores = [(name, value.get(name)) for name in labels]
    elif isinstance(value, (list, tuple)) and len(value) == len(labels):
        scores = list(zip(labels, value, strict=True))
    else:
        raise EmopillarsError(f"{where}: soft_labels must be an object label->score or {len(labels)} floats")
    for name, score in scores:
        number = score is None or (isinstance(score, (int, float, np.number)) and not isinstance(score, bool))
        if not number or not (score is None or 0.0 <= score <= 1.0):  # NaN fails both comparisons
            raise EmopillarsError(f"{where}: soft_labels[{name!r}] is {score!r}, not a score between 0 and 1")
    return np.array([score or 0.0 for _, score in scores], dtype=np.float32)


def build_splits(records: list[dict], cfg: TrainConfig, where: str = "data") -> Splits:
    """Rows -> train/validation/test `Split`s in `cfg.labels` order (see module docstring)."""
    if not records:
        raise EmopillarsError(f"{where}: no rows")
    first = records[0]
    text_col = _column(first, (cfg.text_column,) if cfg.text_column else TEXT_COLUMNS, where)
    target_col = _column(first, (cfg.labels_column,) if cfg.labels_column else TARGET_COLUMNS, where)
    # A column of label->score maps or float vectors holds soft targets; names or ids are hard labels.
    soft_col = target_col if target_col == "soft_labels" or _is_soft(first[target_col]) else None
    if soft_col is None:
        hard_col: str | None = target_col
    else:  # soft targets; hard labels (for metrics) from a `labels` column when there is one
        hard_col = "labels" if "labels" in first and target_col != "labels" else None
    context_col = cfg.context_column
    labels = tuple(cfg.labels)

    if cfg.mode == "contextual":
        kept = [(n, r) for n, r in enumerate(records, 1) if r.get(context_col)]
        if not kept:
            raise EmopillarsError(f"{where}: mode 'contextual' needs rows with a non-empty {context_col!r} column")
    else:
        kept = list(enumerate(records, 1))
    texts, contexts, targets, gold, splits = [], [], [], [], []
    dropped = 0
    for n, row in kept:
        at = f"{where}: row {n}"
        text = _row_text(row, text_col, context_col, at)
        pair = _row_targets(row, hard_col, soft_col, cfg, at)
        if pair is None:  # single-label: none of this label set's classes, nothing to learn from the row
            dropped += 1
            continue
        soft, hard = pair
        texts.append(text)
        contexts.append(pair_context(row.get(context_col), row.get("character_description")))
        targets.append(soft)
        gold.append(hard)
        split = row.get("split")
        splits.append(split_name(split) or split)
    if not texts:
        raise EmopillarsError(f"{where}: no row has a label of the label set {list(labels)}")
    bad = sorted({s for s in splits if s not in (None, "", *SPLITS)})
    if bad:
        raise EmopillarsError(f"{where}: column 'split' has value(s) {bad}; allowed: {', '.join(SPLIT_ALIASES)}")
    data = Split(texts, contexts if cfg.mode == "contextual" else None, np.stack(targets), np.stack(gold))
    assignment = _assign_splits(splits, cfg)
    result = Splits(*(data.subset(np.flatnonzero(assignment == name)) for name in SPLITS))
    if len(result.train) == 0 or len(result.validation) == 0:
        raise EmopillarsError(
            f"{where}: needs train and validation rows (got {len(result.train)} and {len(result.validation)})"
        )
    result.summary = {
        "source": where,
        "mode": cfg.mode,
        "rows_read": len(records),
        "rows_without_a_class": dropped,
        "rows": {name: len(s) for name, s in result.items()},
        "label_counts_train": {name: int(c) for name, c in zip(labels, result.train.gold.sum(0), strict=True)},
    }
    return result


def _row_targets(
    row: dict, hard_col: str | None, soft_col: str | None, cfg: TrainConfig, at: str
) -> tuple[np.ndarray, np.ndarray] | None:
    """A row's soft targets (L,) and hard labels (L,) in `cfg.labels` order; None for a single-label row
    with none of the label set's classes."""
    labels = tuple(cfg.labels)
    hard = None
    if hard_col and row.get(hard_col) is not None:
        names = parse_label_names(row[hard_col], at, labels)
        unknown = sorted(set(names) - set(labels) - set(LABELS))
        if unknown:
            raise EmopillarsError(f"{at}: label(s) {unknown} outside the label set {list(labels)}")
        hard = label_matrix([[name for name in names if name in labels]], labels)[0]  # taxonomy names outside drop
    if soft_col:
        soft = _soft_vector(row.get(soft_col), labels, at)
        if hard is None:
            hard = (soft >= cfg.target_threshold).astype(np.int8)
    else:
        if hard is None:
            raise EmopillarsError(f"{at}: missing {hard_col!r}")
        soft = hard.astype(np.float32)
    if cfg.problem_type == "single_label":
        if soft.sum() <= 0:
            return None
        # A distribution over classes; gold is its argmax (one class per row).
        soft = soft / soft.sum()
        hard = np.eye(len(labels), dtype=np.int8)[int(np.argmax(soft))]
    return soft, hard


def _row_text(row: dict, text_col: str, context_col: str, at: str) -> str:
    """The row's stripped text, once its text, context, description and split cells are checked to be text."""
    text = row.get(text_col)
    if not isinstance(text, str) or not text.strip():
        raise EmopillarsError(f"{at}: empty '{text_col}'")
    for column in (context_col, "character_description", "split"):
        if row.get(column) is not None and not isinstance(row[column], str):
            raise EmopillarsError(f"{at}: '{column}' is {type(row[column]).__name__}, not text")
    return text.strip()


def _column(row: dict, candidates: tuple[str, ...], where: str) -> str:
    found = next((c for c in candidates if c in row), None)
    if found is None:
        wanted = " or ".join(repr(c) for c in candidates)
        raise EmopillarsError(f"{where}: missing column {wanted} (has {sorted(row)})")
    return found


def _is_soft(value: Any) -> bool:
    """Scores (a label->score map, or floats), as opposed to label names or integer ids."""
    if isinstance(value, str) and value.strip().startswith("{"):
        return True
    if isinstance(value, dict):
        return True
    return isinstance(value, (list, tuple)) and any(isinstance(v, float) for v in value)


def _assign_splits(splits: list[str | None], cfg: TrainConfig) -> np.ndarray:
    """Keep given splits; a seeded split of rows without one; carve validation from train if absent."""
    out = np.array([s or "" for s in splits], dtype=object)
    rng = np.random.default_rng(cfg.seed)
    missing = np.flatnonzero(out == "")
    if len(missing):
        perm = rng.permutation(missing)
        n_train = round(cfg.split_fractions[0] * len(perm))
        n_val = max(1, round(cfg.split_fractions[1] * len(perm)))
        out[perm[:n_train]] = "train"
        out[perm[n_train : n_train + n_val]] = "validation"
        out[perm[n_train + n_val :]] = "test"
    if not (out == "validation").any():
        train = rng.permutation(np.flatnonzero(out == "train"))
        out[train[: max(1, round(cfg.split_fractions[1] * len(train)))]] = "validation"
    return out


def load_splits(cfg: TrainConfig) -> Splits:
    if not cfg.data:
        raise EmopillarsError("no training data: pass --data PATH (synth folder, .jsonl, .csv or HF dataset)")
    return build_splits(read_records(cfg.data, cfg), cfg, where=str(cfg.data))
