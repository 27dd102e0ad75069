"""Plain transformers `generate`: the fallback for machines without vLLM.

No constrained decoding here: the caller validates every output and retries what fails.
Requests are grouped by sampling parameters and sorted by prompt length so each left-padded
batch wastes little compute on padding; results come back in the original order. Streamed requests
(`submit`) are answered in batches of whatever is waiting, so their outputs depend on what shares a batch.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from itertools import groupby
from typing import Any

from pydantic import Field, PrivateAttr
from tqdm.auto import tqdm

from emopillars.console import progress_bars_disabled
from emopillars.errors import EmopillarsError, require
from emopillars.synth.backends.base import Backend, Batcher, Completion, Request, resolve_dtype

log = logging.getLogger(__name__)


class TransformersBackend(Backend):
    """`AutoModelForCausalLM.generate` on batches of `transformers_batch_size` prompts of similar length."""

    dtype: str = Field("auto", description="Model dtype; auto picks float32 on CPU, bfloat16 on GPU.")
    transformers_batch_size: int = Field(16, ge=1, description="Prompts per generate call (backend transformers).")

    _model: Any = PrivateAttr(None)
    _tokenizer: Any = PrivateAttr(None)
    _stop_ids: set[int] = PrivateAttr(default_factory=set)
    _batcher: Batcher | None = PrivateAttr(None)

    @property
    def name(self) -> str:
        return f"transformers:{self.model}"

    def load(self) -> None:
        if self._model is not None:
            return
        require("transformers", "backend 'transformers'", '"emopillars[cpu]"')
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            tokenizer = AutoTokenizer.from_pretrained(self.model)
            model = AutoModelForCausalLM.from_pretrained(self.model, dtype=getattr(torch, resolve_dtype(self.dtype)))
        except OSError as e:
            raise EmopillarsError(f"cannot load model '{self.model}' with transformers: {e}") from e
        if tokenizer.chat_template is None:
            raise EmopillarsError(f"model '{self.model}' has no chat template; use an instruction-tuned chat model")
        tokenizer.padding_side = "left"  # decoder-only: new tokens follow the prompt, so pad on the left
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        eos = model.generation_config.eos_token_id
        self._stop_ids = {eos} if isinstance(eos, int) else set(eos or ())
        if tokenizer.eos_token_id is not None:
            self._stop_ids.add(tokenizer.eos_token_id)
        self._model = model.to(device).eval()
        self._tokenizer = tokenizer
        self._batcher = Batcher(self._answer, self.transformers_batch_size)

    def close(self) -> None:
        self._model = None
        self._tokenizer = None

    def submit(self, request: Request) -> Future[Completion]:
        self.load()
        assert self._batcher is not None
        return self._batcher.submit(request)

    def generate(self, requests: Sequence[Request], desc: str = "generate") -> list[Completion]:
        if not requests:
            return []
        self.load()
        with tqdm(total=len(requests), desc=desc, disable=progress_bars_disabled()) as bar:
            return self._answer(requests, bar.update)

    def _answer(self, requests: Sequence[Request], done: Callable[[int], None] = lambda n: None) -> list[Completion]:
        """Completions in request order; `done(n)` after each batch of n."""
        tokenizer = self._tokenizer
        primers = [json_primer(r.json_schema) for r in requests]
        prompts = [
            tokenizer(
                tokenizer.apply_chat_template(r.messages, add_generation_prompt=True, tokenize=False) + primer,
                add_special_tokens=False,  # the template already wrote the special tokens
            )["input_ids"]
            for r, primer in zip(requests, primers, strict=True)
        ]
        # Same sampling (seed aside) in one generate call; shortest prompts first within a group.
        order = sorted(range(len(requests)), key=lambda i: (_sampling_key(requests[i]), len(prompts[i])))
        results: list[Completion | None] = [None] * len(requests)
        for _, group in groupby(order, key=lambda i: _sampling_key(requests[i])):
            group = list(group)
            for start in range(0, len(group), self.transformers_batch_size):
                batch = group[start : start + self.transformers_batch_size]
                completions = self._generate_batch([prompts[i] for i in batch], requests[batch[0]])
                for i, completion in zip(batch, completions, strict=True):
                    results[i] = completion.model_copy(update={"text": primers[i] + completion.text})
                done(len(batch))
        return results  # type: ignore[return-value]

    def _generate_batch(self, prompts: list[list[int]], first: Request) -> list[Completion]:
        """One left-padded `generate`; sampled from a generator seeded by the batch's first request."""
        import torch

        sampling = first.sampling
        device = self._model.device
        inputs = self._tokenizer.pad({"input_ids": prompts}, padding=True, return_tensors="pt").to(device)
        options: dict[str, Any] = {"max_new_tokens": sampling.max_tokens, "do_sample": sampling.temperature > 0}
        if options["do_sample"]:
            options.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
        else:
            options.update(temperature=None, top_p=None, top_k=None)
        # fork_rng: seeding for this batch must not change the caller's global random state.
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.inference_mode():
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            output = self._model.generate(
                **inputs, pad_token_id=self._tokenizer.pad_token_id, eos_token_id=sorted(self._stop_ids), **options
            )
        new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()  # (B, new)
        return [self._completion(len(prompt), tokens) for prompt, tokens in zip(prompts, new_tokens, strict=True)]

    def _completion(self, prompt_tokens: int, tokens: list[int]) -> Completion:
        stop = next((n for n, token in enumerate(tokens) if token in self._stop_ids), None)
        kept = tokens if stop is None else tokens[: stop + 1]
        return Completion(
            text=self._tokenizer.decode(kept, skip_special_tokens=True),
            finish_reason="length" if stop is None else "stop",
            prompt_tokens=prompt_tokens,
            completion_tokens=len(kept),
        )


def _sampling_key(request: Request) -> tuple[float, float, int]:
    sampling = request.sampling
    return sampling.temperature, sampling.top_p, sampling.max_tokens


def json_primer(schema: dict | None) -> str:
    """The opening a schema forces, e.g. `{"characters": [{"name": "`, written into the reply.

    Without constrained decoding a small model often answers in prose; starting its reply with
    the JSON the schema dictates makes it continue in JSON (the caller validates the rest).
    """
    if not schema:
        return ""
    kind = schema.get("type")
    if kind == "object" and schema.get("properties"):
        key = (schema.get("required") or list(schema["properties"]))[0]
        return '{"' + key + '": ' + json_primer(schema["properties"][key])
    if kind == "array":
        return "[" + json_primer(schema.get("items"))
    if kind == "string" and "enum" not in schema:
        return '"'
    return ""
