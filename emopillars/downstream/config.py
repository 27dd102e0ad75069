"""Settings of `emopillars finetune` and `emopillars evaluate`.

`FinetuneConfig` extends `TrainConfig`, so every trainer option (epochs, lr, batch size, losses,
early stopping, seeds...) carries over unchanged; the task fixes the label set and problem type.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator

from emopillars.config import StrictModel
from emopillars.distill.config import TrainConfig
from emopillars.downstream.readers import ReadOptions
from emopillars.downstream.tasks import TASKS
from emopillars.sources import SplitName

TaskName = Literal[tuple(TASKS)]  # the --task choices: the keys of TASKS
# Trainer fields about reading `train`-format data; a task reads its own release format instead.
TRAIN_ONLY = ("labels_column", "context_column", "data_config", "data_split")


class _ReadFields(StrictModel):
    """How a downstream dataset is read (the fields of `ReadOptions`)."""

    text_column: str | None = Field(None, description="Column holding the text (default: the format's usual one).")
    label_column: str | None = Field(None, description="Column holding the label (default: the format's usual one).")
    context_turns: int | None = Field(
        None, ge=0, le=100, description="IEMOCAP: previous turns in the context (default 3, or the model's)."
    )
    split_seed: int | None = Field(None, description="Seed of the hash split where a release has none (default 0).")
    hub_config: str | None = Field(None, description="Hub configuration (GoEmotions default: simplified).")

    def read_options(self, saved: dict[str, Any] | None = None) -> ReadOptions:
        """`ReadOptions` from these fields; unset ones from `saved` (the model's finetune config), then defaults."""
        saved = saved or {}
        context_turns = self.context_turns if self.context_turns is not None else saved.get("context_turns")
        split_seed = self.split_seed if self.split_seed is not None else saved.get("split_seed")
        return ReadOptions(
            text_column=self.text_column,
            label_column=self.label_column,
            context_turns=3 if context_turns is None else context_turns,
            split_seed=0 if split_seed is None else split_seed,
            hub_config=self.hub_config,
        )


class FinetuneConfig(TrainConfig, _ReadFields):
    """Every option of `emopillars finetune`: the trainer's plus the task, data reading and head init."""

    task: TaskName = Field(description="The downstream benchmark.")
    data: str = Field(description="Dataset file, folder (split files or save_to_disk) or Hugging Face id.")
    out: Path = Field(Path("runs/finetune"), description="Output model folder.")
    init: str | None = Field(
        None, description="Pretrained emopillars 28-label model (folder or Hub id org/name[@rev]) to start from."
    )
    head_init: Literal["mapped", "random"] = Field(
        "mapped", description="mapped: head rows averaged from the mapped pretrained labels; random: fresh head."
    )

    @model_validator(mode="before")
    @classmethod
    def _from_task(cls, data: Any) -> Any:
        """The task sets labels and problem type; the mode defaults to the task's."""
        if not isinstance(data, dict) or data.get("task") not in TASKS:
            return data
        task = TASKS[data["task"]]
        for key, value in (("labels", task.labels), ("problem_type", task.problem_type)):
            given = data.get(key)
            if given is not None and (tuple(given) if key == "labels" else given) != value:
                raise ValueError(f"{key} is fixed by task {task.name} ({value}); leave it out")
        return {**data, "labels": task.labels, "problem_type": task.problem_type, "mode": data.get("mode") or task.mode}

    @model_validator(mode="after")
    def _check_init(self) -> FinetuneConfig:
        if self.init and self.model:
            raise ValueError(f"give --init (an emopillars model) or --model (a plain encoder), not both: {self.init}")
        moot = [f for f in TRAIN_ONLY if getattr(self, f) != TrainConfig.model_fields[f].default]
        if moot:
            raise ValueError(f"{moot} apply to `train` data only; a task reads its release (see --hub-config)")
        if self.mode == "contextual" and TASKS[self.task].mode == "contextless":
            raise ValueError(f"task {self.task} has no context; mode must be contextless")
        return self

    def train_config(self, init_path: str | None = None) -> TrainConfig:
        """The plain trainer settings: the encoder is the `init` model (at `init_path` once resolved) when given."""
        fields = {k: getattr(self, k) for k in TrainConfig.model_fields if k != "task"}  # ours is the benchmark
        return TrainConfig(**(fields | {"model": init_path or self.init or self.model}))


class EvaluateConfig(_ReadFields):
    """Every option of `emopillars evaluate`."""

    model: str = Field(description="Model folder or Hub id (org/name[@rev]) from train or finetune.")
    data: str = Field(description="Dataset: a public release (with --task) or any `train` input.")
    task: TaskName | None = Field(None, description="Read --data in this benchmark's public format.")
    split: SplitName = Field("test", description="Which split to score.")
    out: Path | None = Field(
        None, validation_alias=AliasChoices("out", "output"), description="Write the metrics as JSON here."
    )
    batch_size: int = Field(64, ge=1, le=4096, description="Texts per forward pass.")
