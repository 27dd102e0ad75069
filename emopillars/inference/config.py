"""Settings of `emopillars predict` and `emopillars export`: what a trained model folder is used for."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from emopillars.config import StrictModel


class PredictConfig(StrictModel):
    """Every option of `emopillars predict` (the texts themselves are arguments)."""

    model: str = Field("runs/train", description="Model folder or Hub id (org/name[@rev]) from train or finetune.")
    task: str | None = Field(None, description="The task head of a multi-task model; default: its first task.")
    context: str | None = Field(None, description="Context for every text (contextual models).")
    input: Path | None = Field(None, description="Texts to label: .txt (one per line), .jsonl or .csv.")
    out: Path | None = Field(None, description="Write JSONL here instead of printing.")
    batch_size: int = Field(64, ge=1, le=4096, description="Texts per forward pass.")
    format: Literal["emopillars", "pipeline"] = Field(
        "emopillars",
        description="emopillars: {text, labels, scores}; pipeline: [{label, score}] per text, highest first, "
        "as transformers' text-classification pipeline with top_k=None.",
    )
    explain: bool = Field(False, description="Add word attributions (Integrated Gradients) for the predicted labels.")

    @model_validator(mode="after")
    def _explain_needs_objects(self) -> PredictConfig:
        if self.explain and self.format == "pipeline":
            raise ValueError("--explain adds `explanations` to the emopillars format; drop --format pipeline")
        return self


class ExportConfig(StrictModel):
    """Every option of `emopillars export`."""

    model: Path = Field(Path("runs/train"), description="Model folder written by `emopillars train` or `finetune`.")
    out: Path = Field(Path("runs/onnx"), description="Folder for the exported model.")
    format: Literal["onnx"] = Field("onnx", description="Export format (onnxruntime).")
    quantize: Literal["int8"] | None = Field(None, description="int8: dynamically quantized weights.")
