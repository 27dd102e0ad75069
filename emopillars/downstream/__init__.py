"""Downstream adaptation: read a benchmark of `TASKS`, fine-tune with a label-mapped head, evaluate."""

from emopillars.downstream.config import EvaluateConfig, FinetuneConfig
from emopillars.downstream.evaluate import evaluate
from emopillars.downstream.finetune import FinetuneResult, finetune
from emopillars.downstream.mapping import map_head_rows, mapped_head
from emopillars.downstream.readers import ReadOptions
from emopillars.downstream.references import comparison_table, references
from emopillars.downstream.tasks import TASKS, Task, get_task, read_task

__all__ = [
    "TASKS",
    "EvaluateConfig",
    "FinetuneConfig",
    "FinetuneResult",
    "ReadOptions",
    "Task",
    "comparison_table",
    "evaluate",
    "finetune",
    "get_task",
    "map_head_rows",
    "mapped_head",
    "read_task",
    "references",
]
