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

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from emopillars.downstream.readers import emocontext, goemotions, iemocap, isear
from emopillars.downstream.readers.shared import ReadOptions, Row, Splits, hash_split
from emopillars.downstream.tasks import Task, get_task
from emopillars.errors import EmopillarsError
from emopillars.sources import SPLITS

__all__ = ["READERS", "ReadOptions", "Row", "Splits", "hash_split", "read_task"]

log = logging.getLogger(__name__)

READERS: dict[str, Callable[[str | Path, ReadOptions], list[Row]]] = {
    "goemotions": goemotions.read,
    "isear": isear.read,
    "iemocap": iemocap.read,
    "emocontext": emocontext.read,
}


def read_task(task: str | Task, source: str | Path, options: ReadOptions | None = None) -> Splits:
    """`{"train": rows, "validation": rows, "test": rows}` of a release file, a folder of split files, a
    `save_to_disk` folder or a Hub id; a validation split is carved from train where the release has none."""
    task = get_task(task) if isinstance(task, str) else task
    options = options or ReadOptions()
    rows = READERS[task.name](source, options)
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
