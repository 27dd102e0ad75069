"""Readers of the downstream benchmarks (`tasks.TASKS`, each task names its reader) in their public formats.

Every reader returns the same shape, `{split: [row, ...]}` with splits `train`/`validation`/`test`
and rows in the `emopillars train` input format (`id`, `text`, `context`, `labels` as a list of the
task's label names, `split`), so the distillation trainer consumes them unchanged. A malformed file
stops with a one-line `EmopillarsError` naming the file and line. A reader is
`read(source, options, labels) -> rows`; `tasks.read_task` runs the one a task names.

Where a release has no split (a single ISEAR file, say) rows are split 80/10/10 by a seeded hash of
their id (of the dialogue, for IEMOCAP), so `finetune` and `evaluate` on the same file agree on
which rows are held out without storing anything.
"""

from emopillars.downstream.readers.shared import ReadOptions, Row, SplitRows, hash_split

__all__ = ["ReadOptions", "Row", "SplitRows", "hash_split"]
