"""Settings of `emopillars synth` and `emopillars teacher-eval`: pydantic models, saved beside the output.

Both commands talk to the same LLM through the same label stage, so they share `LLMConfig`: a teacher checked with
`teacher-eval` labels exactly as it will label during `synth`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, create_model, model_validator

from emopillars.config import SplitFractions, StrictModel
from emopillars.synth.backends import BackendName, backend_options


class _Teacher(StrictModel):
    """Which LLM answers, and how the label stage samples it."""

    backend: BackendName = Field("vllm", description="Where completions come from.")
    model: str | None = Field(None, description="Model id or path; default: the embedded SmolLM2-135M-Instruct.")
    seed: int = Field(0, description="Seeds sampling, label-list shuffles, schedules and splits.")
    max_retries: int = Field(2, ge=0, le=10, description="Retries of a call whose output fails to parse or validate.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling for every stage.")
    label_temperature: float = Field(
        0.2, ge=0.0, le=2.0, description="Sampling temperature of the label stage (low: a judgement, not a story)."
    )
    label_samples: int = Field(
        3, ge=1, le=10, description="Blind label calls per utterance, each with its own label order; scores averaged."
    )
    label_explications: Literal["first", "all"] = Field(
        "first",
        description="Which label calls of an utterance write an explication before their scores: only the first (the "
        "one kept with the example) or all. See the README for what asking all of them measured.",
    )
    label_threshold: float = Field(
        0.3, gt=0.0, le=1.0, description="A label is in `labels` when its (mean) score reaches this."
    )
    max_in_flight: int = Field(
        128, ge=1, le=4096, description="LLM calls out at once (the engine batches them); each is cached as it returns."
    )
    send_ahead: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Send a stage's next attempts before the current one fails when its pass rate says they will be "
        "needed and --max-in-flight has room; auto: on for vLLM engines (vllm, ray: a few more sequences in a batch "
        "cost little, on the CPU too), for transformers on a GPU only, never for --backend openai (a paid API bills "
        "a withdrawn call it had answered).",
    )

    @property
    def sends_ahead(self) -> bool:
        if self.send_ahead != "auto":
            return self.send_ahead == "on"
        if self.backend == "transformers":
            import torch

            return torch.cuda.is_available()
        return self.backend != "openai"


# Each backend's options, declared once in its class (`backends/*.py`), each read by the backends that have a
# field of that name; left out of cache keys: they change speed, not results.
class LLMConfig(create_model("BackendOptions", __base__=_Teacher, **backend_options())):  # type: ignore[misc]
    """The LLM backend, its engine options, and how the label stage samples it."""

    @model_validator(mode="after")
    def _check_backend(self) -> LLMConfig:
        if self.backend == "openai" and not self.base_url:
            raise ValueError("backend 'openai' needs --base-url (e.g. http://127.0.0.1:8000/v1)")
        if self.backend == "openai" and not self.model:
            raise ValueError("backend 'openai' needs --model (the name the server serves the model under)")
        return self


class SynthConfig(LLMConfig):
    """Every option of `emopillars synth`; CLI flags mirror these fields."""

    corpus: str | None = Field(None, description="Folder of .txt, a .jsonl, or a HF dataset id/path; default: bundled.")
    text_field: str = Field("text", description="Field holding the narrative in a .jsonl or HF dataset.")
    out: Path = Field(Path("runs/synth"), description="Output folder (also holds the LLM call cache).")
    max_passages: int | None = Field(12, ge=1, description="Use at most this many passages (None: all).")
    passage_chars: int = Field(1500, ge=200, le=20000, description="Upper bound on a passage's length.")
    max_characters: int = Field(3, ge=1, le=8, description="Characters kept per passage.")
    emotions_per_character: int = Field(3, ge=1, le=28, description="Target emotions scheduled per character.")
    contextless_per_example: int = Field(3, ge=0, le=10, description="Context-less rewrites per contextual example.")
    target_threshold: float = Field(
        0.1, ge=0.0, le=1.0, description="Drop examples whose target's mean blind score is below this."
    )
    allow_emotion_words: bool = Field(
        False, description="Keep utterances that name their target emotion (dropped as target_word_leak otherwise)."
    )
    dedup_threshold: float = Field(
        0.9, gt=0.0, le=1.0, description="Cosine similarity at which two examples are duplicates."
    )
    temperature: float = Field(0.8, ge=0.0, le=2.0, description="Sampling temperature of the generation stages.")
    split_fractions: SplitFractions = Field((0.8, 0.1, 0.1), description="train/validation/test by passage.")
    embedder: str | None = Field(
        None, description="sentence-transformers model for de-duplication and diversity; default: embedded MiniLM."
    )

    @model_validator(mode="before")
    @classmethod
    def _provenance_is_not_a_setting(cls, data: object) -> object:
        # A run's config.json records its prompt hashes beside the settings; it stays a valid --config.
        return {k: v for k, v in data.items() if k != "prompts"} if isinstance(data, dict) else data


class TeacherEvalConfig(LLMConfig):
    """Every option of `emopillars teacher-eval`: the synth label stage run on human-labelled utterances."""

    gold: Path | None = Field(
        None, description="Human-labelled utterances: .jsonl, GoEmotions .tsv or text<TAB>labels."
    )
    out: Path = Field(Path("runs/teacher-eval"), description="Output folder (also holds the LLM call cache).")
    max_examples: int | None = Field(None, ge=1, description="Use at most this many gold utterances.")
