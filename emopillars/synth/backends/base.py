"""The one LLM backend interface: a request in, a future completion out.

A backend is a pydantic model of its settings (distilabel's `LLM`): `load()` does the heavy
imports and starts the engine (once per run), `submit()` hands one request to the engine and returns
at once with a future, so a caller can keep many requests in flight and act on each answer as it comes
(the streaming pipeline), `generate()` answers a list in order, `close()` frees it. `name` is the
backend's identity in cache keys, so it holds only what changes results (not batch size or memory share).

The class's fields are its options: `from_config` takes each one from the run's config field of the
same name, so adding a backend is one class and one line in the registry.
"""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from tqdm.auto import tqdm

from emopillars.console import progress_bars_disabled


class Sampling(BaseModel, frozen=True, extra="forbid"):
    """Sampling parameters of one request; part of its cache key."""

    temperature: float = Field(0.8, ge=0.0)
    top_p: float = Field(0.95, gt=0.0, le=1.0)
    max_tokens: int = Field(256, ge=1)
    seed: int | None = None


class Request(BaseModel, frozen=True, extra="forbid"):
    """One chat call: user/assistant turns, sampling, and an optional JSON schema for the output."""

    messages: list[dict[str, str]]
    sampling: Sampling = Sampling()
    json_schema: dict | None = None

    @field_validator("messages")
    @classmethod
    def _user_and_assistant_only(cls, messages: list[dict[str, str]]) -> list[dict[str, str]]:
        # Mistral-7B-Instruct's chat template rejects a system turn: instructions go in the user turn.
        if not messages or messages[-1].get("role") != "user":
            raise ValueError("messages must be non-empty and end with a user turn")
        for message in messages:
            if message.get("role") not in ("user", "assistant") or not isinstance(message.get("content"), str):
                raise ValueError(f"each message needs role user|assistant and a string content, got {message}")
        return messages


class Completion(BaseModel):
    """What a backend returns for one request; a failed call is a completion with its error, not a raise."""

    text: str
    finish_reason: Literal["stop", "length", "error"]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # prompt tokens the engine served from its prefix cache (as the engine reports them)
    error: str | None = None


class Backend(BaseModel, ABC):
    """Settings of an LLM backend plus its lifecycle; use as a context manager."""

    model_config = ConfigDict(extra="forbid")

    model: str

    @property
    @abstractmethod
    def name(self) -> str:
        """Identity in cache keys, e.g. "vllm:/path/to/model"."""

    @abstractmethod
    def load(self) -> None:
        """Import the heavy packages and start the engine (idempotent)."""

    @abstractmethod
    def close(self) -> None:
        """Free the engine (idempotent)."""

    @abstractmethod
    def submit(self, request: Request) -> Future[Completion]:
        """Hand one request to the engine; the future never raises for a bad request (an error completion),
        only when the engine itself is gone."""

    @property
    def faults(self) -> dict[str, int]:
        """Failed attempts by kind (e.g. `timeout`, `http_5xx`) since load, retried ones included; for the report."""
        return {}

    def generate(self, requests: Sequence[Request], desc: str = "generate") -> list[Completion]:
        """Answer all requests, in their order, with a progress bar labelled `desc`."""
        if not requests:
            return []
        self.load()
        futures = [self.submit(r) for r in requests]
        with tqdm(total=len(futures), desc=desc, disable=progress_bars_disabled()) as bar:
            for future in futures:
                future.add_done_callback(lambda _: bar.update(1))
            return [f.result() for f in futures]

    @classmethod
    def from_config(cls, config: Any, model: str) -> Backend:
        """This backend with each of its options read from the config attribute of the same name."""
        names = [name for name in cls.model_fields if name != "model" and hasattr(config, name)]
        options = {name: getattr(config, name) for name in names}
        return cls(model=model, **options)

    def __enter__(self) -> Backend:
        self.load()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def resolve_dtype(dtype: str) -> str:
    """`auto` means float32 on CPU (4x faster than bfloat16 without AVX-512; with AVX512-BF16, bfloat16 answers
    depend on the batch: `vllm.py`), bfloat16 on a GPU that has it."""
    if dtype != "auto":
        return dtype
    import torch

    if not torch.cuda.is_available():
        return "float32"
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


class Batcher:
    """`submit()` for an engine that only answers whole lists: a worker thread takes the requests waiting at
    that moment (at most `size`) and answers them in one call, so concurrent callers still share batches."""

    def __init__(self, answer: Callable[[list[Request]], list[Completion]], size: int):
        self.answer, self.size = answer, size
        self.waiting: queue.Queue[tuple[Request, Future[Completion]]] = queue.Queue()
        threading.Thread(target=self._work, daemon=True, name="emopillars-batcher").start()

    def submit(self, request: Request) -> Future[Completion]:
        future: Future[Completion] = Future()
        self.waiting.put((request, future))
        return future

    def _work(self) -> None:
        while True:
            batch = [self.waiting.get()]
            while len(batch) < self.size and not self.waiting.empty():
                batch.append(self.waiting.get())
            batch = [(r, f) for r, f in batch if f.set_running_or_notify_cancel()]  # withdrawn ones are not run
            if not batch:
                continue
            try:
                completions = self.answer([r for r, _ in batch])
            except Exception as e:  # the engine failed: every waiting caller learns it
                for _, future in batch:
                    future.set_exception(e)
                continue
            for (_, future), completion in zip(batch, completions, strict=True):
                future.set_result(completion)
