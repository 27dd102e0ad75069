"""`emopillars predict` as a stream: inputs read a chunk at a time, each chunk's lines written as soon as it is done.

Memory stays flat in the input's size: a chunk holds `CHUNK_BATCHES` batches (length-sorted within it,
so padding stays short), and only one chunk is held at a time. Each chunk's JSON lines go out in one
write, flushed and fsynced, so a killed run leaves whole chunks behind (at worst a torn last line).
`--resume` counts the complete lines of `--out`, cuts a torn last line off and skips that many inputs:
line i of the output always answers input i, and chunks start at the same inputs as in an
uninterrupted run, so the resumed file is byte-equal to it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emopillars.errors import EmopillarsError

if TYPE_CHECKING:
    from emopillars.inference.classifier import EmotionClassifier
    from emopillars.inference.config import PredictConfig

CHUNK_BATCHES = 16  # batches per written chunk: what a kill can cost, and the span lengths are sorted over
Item = tuple[str, str | None]  # (text, context or None)


def finished_lines(out: Path) -> int:
    """The complete lines of `out` (0 when missing); a torn last line, from a kill mid-write, is cut off."""
    if not out.is_file():
        return 0
    count = end = pos = 0
    with out.open("rb+") as fh:
        while block := fh.read(1 << 20):
            if (n := block.count(b"\n")) > 0:
                count, end = count + n, pos + block.rindex(b"\n") + 1
            pos += len(block)
        if end < pos:
            fh.truncate(end)
    return count


def chunks(items: Iterable[Item], size: int) -> Iterator[tuple[list[str], list[str] | None]]:
    """(texts, contexts or None) of `size` items at a time."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        texts = [t for t, _ in chunk]
        yield texts, None if chunk[0][1] is None else [c or "" for _, c in chunk]


def prediction_lines(clf: EmotionClassifier, texts: list[str], contexts: list[str] | None, cfg: PredictConfig) -> str:
    """One JSON line per text, in order: what `predict` writes for them."""
    if cfg.format == "pipeline":
        rows: list[Any] = clf.predict_pipeline(texts, contexts, cfg.batch_size)
    else:
        rows = [{"text": t, **p} for t, p in zip(texts, clf.predict(texts, contexts, cfg.batch_size), strict=True)]
    if cfg.explain:
        for row, why in zip(rows, clf.explain(texts, contexts), strict=True):
            row["explanations"] = why["explanations"]
    return "".join(json.dumps(row) + "\n" for row in rows)


def _inputs(cfg: PredictConfig, texts: list[str]) -> Iterator[Item]:
    from emopillars.distill.data import iter_texts

    items = iter_texts(cfg.input) if cfg.input is not None else ((t, None) for t in texts)
    if cfg.context is None:
        return iter(items)
    return ((t, cfg.context) for t, _ in items)


def predict_stream(cfg: PredictConfig, texts: list[str], echo: Callable[[str], None]) -> tuple[int, int]:
    """Label `cfg.input` (or `texts`) into `cfg.out` (or `echo`, a line at a time); returns (written, skipped).

    The model loads only when something is left to label: resuming a finished output does nothing.
    """
    from emopillars.inference.classifier import EmotionClassifier

    skipped = finished_lines(cfg.out) if cfg.resume and cfg.out is not None else 0
    items = _inputs(cfg, texts)
    if skipped and sum(1 for _ in islice(items, skipped)) < skipped:
        source = cfg.input or "the TEXT arguments"
        raise EmopillarsError(f"{cfg.out} has {skipped} lines, more than {source} has inputs: not its output")
    written, clf, out = 0, None, None
    try:
        for chunk_texts, contexts in chunks(items, cfg.batch_size * CHUNK_BATCHES):
            clf = clf or EmotionClassifier.from_pretrained(cfg.model, task=cfg.task)
            lines = prediction_lines(clf, chunk_texts, contexts, cfg)
            if cfg.out is None:
                echo(lines.rstrip("\n"))
            else:  # opened at the first finished chunk: a run that fails before leaves the old file alone
                out = out or cfg.out.open("a" if cfg.resume else "w", encoding="utf-8")
                out.write(lines)
                out.flush()
                os.fsync(out.fileno())  # a chunk written is a chunk kept, whatever stops the run next
            written += len(chunk_texts)
    finally:
        if out is not None:
            out.close()
    if not written and not skipped:
        raise EmopillarsError("nothing to predict: give TEXT arguments or --input FILE")
    return written, skipped
