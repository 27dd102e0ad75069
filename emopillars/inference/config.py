"""Settings of `emopillars predict`, `export` and `demo`: what a trained model folder is used for."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from emopillars.config import StrictModel


class PredictConfig(StrictModel):
    """Every option of `emopillars predict` (the texts themselves are arguments)."""

    model: str = Field("runs/train", description="Model folder or Hub id (org/name[@rev]) from train or finetune.")
    task: str | None = Field(None, description="The task head of a multi-task model; default: its first task.")
    context: str | None = Field(None, description="Context for every text (contextual models).")
    input: Path | None = Field(None, description="Texts to label: .txt (one per line), .jsonl or .csv.")
    out: Path | None = Field(None, description="Write JSONL here instead of printing (a chunk at a time).")
    resume: bool = Field(
        False, description="Continue a killed run: keep the complete lines of --out and label the inputs after them."
    )
    batch_size: int = Field(64, ge=1, le=4096, description="Texts per forward pass.")
    format: Literal["emopillars", "pipeline"] = Field(
        "emopillars",
        description="emopillars: {text, labels, scores}; pipeline: [{label, score}] per text, highest first, "
        "as transformers' text-classification pipeline with top_k=None.",
    )
    explain: bool = Field(False, description="Add word attributions (Integrated Gradients) for the predicted labels.")

    @model_validator(mode="after")
    def _consistent(self) -> PredictConfig:
        if self.explain and self.format == "pipeline":
            raise ValueError("--explain adds `explanations` to the emopillars format; drop --format pipeline")
        if self.resume and self.out is None:
            raise ValueError("--resume continues an --out file; give --out")
        return self


class ExportConfig(StrictModel):
    """Every option of `emopillars export`."""

    model: Path = Field(Path("runs/train"), description="Model folder written by `emopillars train` or `finetune`.")
    out: Path = Field(Path("runs/onnx"), description="Folder for the exported model.")
    format: Literal["onnx"] = Field("onnx", description="Export format (onnxruntime).")
    quantize: Literal["int8"] | None = Field(None, description="int8: dynamically quantized weights.")


class DemoConfig(StrictModel):
    """Every option of `emopillars demo`. The page loads only the models and runs named here (see
    `emopillars/demo/offer.py`), unless `allow_paths` opens it to any path typed into it."""

    model: tuple[str, ...] = Field(
        (), description="Model folder (torch or exported ONNX) or Hub id offered on the Classify tab; repeat for more."
    )
    data: tuple[str, ...] = Field((), description="A `synth` output folder offered on the Corpus tab; repeat for more.")
    host: str = Field("127.0.0.1", description="Interface to bind; 0.0.0.0 exposes the page to the network.")
    port: int = Field(7860, ge=1, le=65535, description="Port to serve on.")
    allow_paths: bool = Field(
        False,
        description="Also load any model folder, Hub id or run folder typed into the page. With a non-loopback "
        "--host anyone who reaches the page can: the demo starts with a warning.",
    )
    concurrency: int = Field(
        4, ge=1, le=64, description="Requests the page works on at once (Gradio's queue); model calls take turns."
    )

    @field_validator("model", "data", mode="before")
    @classmethod
    def _one_is_a_list(cls, value: object) -> object:
        """A config file may name one model or run as a plain string, as before several were allowed."""
        return (value,) if isinstance(value, str) else value
