"""One vLLM `AsyncLLM` engine with the model's chat template: the engine of the `vllm` backend and of each Ray
replica, so both send the same tokens with the same sampling and answer alike.

Requests are added one by one as the caller has them and answered as they finish; vLLM batches whatever is in
flight at each step and serves shared prompt prefixes from its cache (`num_cached_tokens` comes back with each
answer). The prompt is the chat template's text tokenized without special tokens, as `vllm.LLM.chat` does.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from emopillars.errors import EmopillarsError
from emopillars.synth.backends.base import Completion, Request

log = logging.getLogger(__name__)
# Top-p without sorting the vocabulary (`nucleus.py`), as vLLM's `logits_processors` engine argument names it.
NUCLEUS_PROCESSOR = "emopillars.synth.backends.nucleus:NucleusSampling"


class ChatEngine:
    """An `AsyncLLM` and the model's tokenizer; create and use it inside the event loop that serves it."""

    def __init__(self, options: dict[str, Any]):
        from transformers import AutoTokenizer
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        model = options["model"]
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model)
            self.engine = AsyncLLM.from_engine_args(AsyncEngineArgs(**options, disable_log_stats=True))
        except Exception as e:  # engine start fails on user input (bad path, memory); keep the cause
            raise EmopillarsError(f"cannot start the vLLM engine for model '{model}': {e}") from e
        self.ids = itertools.count()
        self.own_top_p = NUCLEUS_PROCESSOR in options.get("logits_processors", ())  # else vLLM's sorting top-p

    def prompt(self, request: Request) -> dict[str, list[int]]:
        text = self.tokenizer.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
        return {"prompt_token_ids": self.tokenizer.encode(text, add_special_tokens=False)}

    def sampling_params(self, request: Request, **more: Any) -> Any:
        """vLLM's `SamplingParams` for `request` (and any of its other fields in `more`); the call's top-p goes to
        `nucleus.py` when the engine has it."""
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        s = request.sampling
        return SamplingParams(
            temperature=s.temperature,
            top_p=1.0 if self.own_top_p else s.top_p,
            max_tokens=s.max_tokens,
            seed=s.seed,
            structured_outputs=StructuredOutputsParams(json=request.json_schema) if request.json_schema else None,
            extra_args={"top_p": s.top_p} if self.own_top_p else None,
            **more,
        )

    async def complete(self, request: Request) -> Completion:
        """The answer to one request; a request vLLM refuses (too long, a schema it cannot compile) is an error
        completion, a dead engine an `EmopillarsError`."""
        from vllm.exceptions import VLLMClientError
        from vllm.v1.engine.exceptions import EngineDeadError

        params = self.sampling_params(request)
        final = None
        try:
            async for output in self.engine.generate(self.prompt(request), params, request_id=str(next(self.ids))):
                final = output
        except EngineDeadError as e:
            raise EmopillarsError(f"the vLLM engine died ({e}); rerun the command to resume from the cache") from e
        except (ValueError, VLLMClientError) as e:
            log.warning("vLLM refused a request: %s", e)
            return Completion(text="", finish_reason="error", error=str(e))
        assert final is not None  # generate yields at least the finished output
        return _completion(final)

    def shutdown(self) -> None:
        self.engine.shutdown()
        del self.engine  # its finaliser runs now, not at interpreter exit when vLLM's modules are gone


def _completion(output: Any) -> Completion:
    """A finished `vllm.RequestOutput` as a Completion; aborted requests become errors."""
    sample = output.outputs[0]
    reason = sample.finish_reason
    return Completion(
        text=sample.text,
        finish_reason=reason if reason in ("stop", "length") else "error",
        prompt_tokens=len(output.prompt_token_ids or ()),
        completion_tokens=len(sample.token_ids),
        cached_tokens=output.num_cached_tokens or 0,
        error=None if reason in ("stop", "length") else f"vLLM finished the request with reason {reason!r}",
    )
