"""Settings of `emopillars train`: one pydantic model, saved as config.json beside the model.

The label set and problem type are fields so the downstream fine-tuning reuses the
same trainer with its own labels (e.g. ISEAR's 7 single-label classes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from emopillars.config import SplitFractions, StrictModel
from emopillars.sources import Mode, ProblemType
from emopillars.taxonomy import LABELS


class TrainConfig(StrictModel):
    """Every option of `emopillars train`; CLI flags mirror these fields (`--batch-size` sets `batch_size`)."""

    # Data
    data: str | None = Field(
        None, description="synth run folder, .jsonl/.json/.csv/.parquet file, save_to_disk folder or Hub dataset id."
    )
    data_config: str | None = Field(None, description="Configuration name of a Hub dataset.")
    data_split: str | None = Field(
        None, description="Read only this split of the data (e.g. train); its rows are split 80/10/10."
    )
    text_column: str | None = Field(None, description="Column holding the text; default: utterance or text.")
    labels_column: str | None = Field(
        None,
        description="Column holding the targets (label->score, 28 floats, names or ClassLabel ids); "
        "default: soft_labels or labels.",
    )
    task: tuple[str, ...] = Field(
        (),
        description="Multi-task: NAME=DATA[:labels-column], once per task (instead of --data); one head per task "
        "over a shared encoder, the first is the default.",
    )
    context_column: str = Field("context", description="Column holding the context (contextual mode).")
    out: Path = Field(Path("runs/train"), description="Output model folder.")
    mode: Mode = Field("contextless", description="contextual pairs the utterance with its context.")
    labels: tuple[str, ...] = Field(LABELS, min_length=2, description="Label set in head order.")
    problem_type: ProblemType = Field("multi_label", description="sigmoid+thresholds or softmax.")
    target_threshold: float = Field(0.5, gt=0.0, lt=1.0, description="Soft score at which a label counts as present.")
    split_fractions: SplitFractions = Field((0.8, 0.1, 0.1), description="Seeded split when none is given.")
    max_length: int = Field(128, ge=8, le=4096, description="Token limit of utterance (+ context).")
    # Model
    model: str | None = Field(None, description="HF encoder id or path; default: the embedded all-MiniLM-L6-v2.")
    dropout: float | None = Field(None, ge=0.0, lt=1.0, description="Classifier dropout; default: the encoder's.")
    head: Literal["linear", "tanh"] | None = Field(
        None,
        description="linear: transformers' sequence classifier; tanh: dense -> Tanh -> dropout -> out over [CLS]; "
        "default: the --model folder's head (linear for a plain encoder).",
    )
    # Optimisation
    epochs: float = Field(3.0, gt=0.0, le=1000.0, description="Passes over the training split.")
    max_steps: int | None = Field(None, ge=1, description="Stop after this many optimizer steps (overrides epochs).")
    batch_size: int = Field(16, ge=1, le=4096, description="Rows per micro-batch.")
    eval_batch_size: int = Field(64, ge=1, le=4096, description="Rows per batch when predicting.")
    grad_accum: int = Field(1, ge=1, le=1024, description="Micro-batches per optimizer step.")
    lr: float = Field(5e-5, gt=0.0, le=1.0, description="Peak learning rate (AdamW).")
    weight_decay: float = Field(0.01, ge=0.0, le=1.0, description="AdamW weight decay (not on biases/norms).")
    schedule: Literal["linear", "cosine", "constant"] = Field("linear", description="Decay after warmup.")
    warmup_ratio: float = Field(0.1, ge=0.0, lt=1.0, description="Share of steps with a linear warmup.")
    clip_grad: float = Field(1.0, ge=0.0, description="Max gradient norm (0: no clipping).")
    group_by_length: bool = Field(True, description="Batch similar lengths together (less padding).")
    pad_to_multiple_of: int | None = Field(
        None,
        ge=1,
        le=512,
        description="Round each batch's padded width up to a multiple of N; default: 8 on a GPU (cuDNN builds "
        "its attention plans once per width), 1 on the CPU.",
    )
    weighted_sampling: bool = Field(False, description="Sample rows by inverse frequency of their labels.")
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = Field("auto", description="auto: bf16 on a GPU.")
    seed: int = Field(0, description="Seeds the split, the batches and the head.")
    # Loss
    loss: Literal["bce", "focal"] = Field("bce", description="Loss on the soft targets.")
    focal_gamma: float = Field(2.0, ge=0.0, le=10.0, description="Focusing exponent of the focal loss.")
    focal_alpha: bool = Field(True, description="Focal per-label alpha from inverse label frequency.")
    pos_weight: bool = Field(False, description="BCE/focal per-label positive weight neg/pos from the train split.")
    label_smoothing: float = Field(0.0, ge=0.0, lt=0.5, description="Pull targets towards 0.5 by this much.")
    ortho_weight: float = Field(0.0, ge=0.0, description="Weight lambda of the classifier-row orthogonality term.")
    # Knowledge distillation and pseudo-labelling
    teacher: str | None = Field(
        None,
        description="Model folder or Hub id (org/name[@rev]) whose soft predictions the student also learns; "
        "multi-task: it teaches each task it has a head for (same name, or its own head's label set).",
    )
    task_teacher: tuple[str, ...] = Field(
        (),
        description="Multi-task KD: NAME=MODEL, once per task whose teacher is its own (e.g. a single-task model, "
        "as in BAM!); takes precedence over --teacher for that task.",
    )
    kd_weight: float = Field(0.5, ge=0.0, le=1.0, description="Share of the KD term: (1-w)*loss + w*T^2*KL.")
    temperature: float = Field(2.0, gt=0.0, le=20.0, description="KD temperature T.")
    teacher_annealing: bool = Field(
        False,
        description="Target = lambda*gold + (1-lambda)*teacher probabilities, lambda 0 -> 1 by step (BAM!); "
        "replaces the KD term; needs a teacher (--teacher, --task-teacher, --born-again or --rounds).",
    )
    born_again: int = Field(
        1, ge=1, le=20, description="Generations of the same architecture, each distilling from the previous one."
    )
    rounds: int = Field(1, ge=1, le=20, description="Pseudo-label rounds (needs --unlabeled when > 1).")
    unlabeled: str | None = Field(None, description="Unlabelled pool (.txt/.jsonl/.csv) for pseudo-labelling.")
    pseudo_threshold: float = Field(0.9, gt=0.0, lt=1.0, description="Confidence a pseudo-label needs to join.")
    # Evaluation, checkpoints
    eval_every: int | None = Field(None, ge=1, description="Evaluate every N steps; default: once per epoch.")
    save_every: int | None = Field(None, ge=1, description="Checkpoint every N steps; default: at each evaluation.")
    patience: int | None = Field(None, ge=1, description="Stop after N evaluations without a better macro-F1.")
    resume: bool = Field(False, description="Continue from the checkpoints in --out.")
    keep_checkpoints: bool = Field(False, description="Keep --out/checkpoints after a finished run.")
    progress: bool = Field(True, description="Show progress bars (all of them).")
    # Tracking
    report_to: Literal["none", "tensorboard", "wandb"] = Field(
        "none", description="Log loss, lr and validation metrics through accelerate's tracker (under --out/runs)."
    )
    run_name: str | None = Field(None, description="Name of the tracked run; default: the --out folder's name.")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be unique, got {list(self.labels)}")
        if self.rounds > 1 and not self.unlabeled:
            raise ValueError(f"rounds={self.rounds} needs an unlabeled pool (--unlabeled PATH)")
        if self.born_again > 1 and self.rounds > 1:
            raise ValueError("born_again and rounds are the same loop of students; give one (rounds with a pool)")
        if self.teacher_annealing and not (self.teacher or self.task_teacher or self.born_again > 1 or self.rounds > 1):
            raise ValueError("teacher_annealing needs a teacher: --teacher, --task-teacher, --born-again or --rounds")
        tasks = self.task if isinstance(self.task, tuple) else ()  # FinetuneConfig's `task` is its benchmark name
        if tasks and (self.data or len(tasks) < 2):
            raise ValueError("multi-task training takes two or more --task NAME=DATA[:column] and no --data")
        if self.task_teacher and not tasks:
            raise ValueError("--task-teacher NAME=MODEL is for multi-task training (--task); use --teacher")
        if tasks and self.resume:
            raise ValueError("multi-task training keeps no checkpoints to resume from; rerun it without --resume")
        if self.problem_type == "single_label" and (self.loss == "focal" or self.pos_weight):
            raise ValueError("loss 'focal' and pos_weight apply to problem_type multi_label only")
        return self

    @property
    def multi_label(self) -> bool:
        return self.problem_type == "multi_label"


class TuneConfig(StrictModel):
    """The options of `emopillars tune` that are its own; every `train` option is passed through to each trial."""

    out: Path = Field(
        Path("runs/tune"),
        description="Study folder: study.db, trials/N, best_model, best_config.json, trials.csv and plots.",
    )
    space: Path | None = Field(
        None,
        description="YAML/JSON search space (option: [choices] or {low, high, log, step}); default: lr, "
        "batch_size, dropout, warmup_ratio, weight_decay, loss, less the options given as flags.",
    )
    n_trials: int = Field(
        20,
        ge=1,
        description="Finished or pruned trials the study holds in all: a rerun after a kill completes this total "
        "rather than adding as many again.",
    )
    timeout: float | None = Field(None, gt=0, description="Start no new trial after this many seconds.")
    pruner: Literal["none", "median", "hyperband"] = Field(
        "median", description="Stops trials whose validation macro-F1 lags at an evaluation."
    )
    storage: str | None = Field(
        None,
        description="Optuna storage URL (sqlite:///F.db, postgresql://..., mysql://...) that several tune "
        "processes or machines share; default: sqlite in --out.",
    )
    study_name: str = Field("emopillars-tune", min_length=1, description="Name of the study in the storage.")
    heartbeat: int = Field(
        60,
        ge=1,
        description="Seconds between a running trial's heartbeats; a trial silent for twice as long (its "
        "process was killed) is marked failed and retried.",
    )
