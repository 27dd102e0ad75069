"""The Ray backend on a local Ray with two SmolLM2 replicas: same answers and cache as `vllm`, and what survives
a dead engine actor or a killed driver. Every Ray job starts its engines afresh, so these tests keep jobs few."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emopillars.synth.backends import Request, Sampling
from emopillars.synth.config import SynthConfig
from emopillars.synth.pipeline import synthesize

pytestmark = pytest.mark.slow

# One passage, no rewrites, no retries: three Ray jobs (characters, scenes, labels) make a run.
TINY = dict(
    max_passages=1, max_characters=2, emotions_per_character=2, contextless_per_example=0, label_samples=2,
    max_retries=0, target_threshold=0.0,
)  # fmt: skip
EMOTIONS = ["joy", "anger", "fear"]
ENGINE_ACTOR = b"MapBatches(vLLMEngineStageUDF)"


def _requests() -> list[Request]:
    """Free text, schema-constrained JSON and a reply cut at max_tokens, each with its own seed."""
    schema = {
        "type": "object",
        "properties": {"emotion": {"type": "string", "enum": EMOTIONS}},
        "required": ["emotion"],
        "additionalProperties": False,
    }
    free = [f"Write one sentence about a {thing}." for thing in ("storm", "letter", "garden", "train", "dog")]
    constrained = [f"Which emotion is in '{s}'? Answer in JSON." for s in ("I lost my keys", "We won!", "A noise")]
    return [
        *(Request(messages=[{"role": "user", "content": c}], sampling=Sampling(max_tokens=40, seed=i)) for i, c in
          enumerate(free)),
        *(Request(messages=[{"role": "user", "content": c}], sampling=Sampling(max_tokens=32, seed=10 + i),
                  json_schema=schema) for i, c in enumerate(constrained)),
        Request(messages=[{"role": "user", "content": "Tell a long story."}], sampling=Sampling(max_tokens=5, seed=20)),
    ]  # fmt: skip


def test_same_answers_as_vllm_streamed_back_in_batches(ray_backend, vllm_backend):
    requests = _requests()
    batches = list(ray_backend.stream(requests, "ray"))
    positions = [p for ps, _ in batches for p in ps]
    assert sorted(positions) == list(range(len(requests)))  # each answered exactly once
    assert len(batches) >= 3  # batches of 4 come back one by one
    answers = {p: c for ps, cs in batches for p, c in zip(ps, cs, strict=True)}
    expected = vllm_backend.generate(requests)
    for i, want in enumerate(expected):
        got = answers[i]
        assert (got.text, got.finish_reason, got.prompt_tokens, got.completion_tokens) == (
            want.text,
            want.finish_reason,
            want.prompt_tokens,
            want.completion_tokens,
        ), f"request {i}"
    assert expected[-1].finish_reason == "length" and expected[0].finish_reason == "stop"
    assert all(json.loads(answers[i].text)["emotion"] in EMOTIONS for i in range(5, 8))


def _engine_pids() -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if ENGINE_ACTOR in (entry / "cmdline").read_bytes():
                    pids.add(int(entry.name))
            except OSError:
                continue
    return pids


def test_a_killed_engine_actor_is_replaced_and_the_stage_completes(ray_backend, vllm_backend):
    # The first batch is short; the later ones are long, so they are still generating when an engine dies.
    requests = [
        Request(messages=[{"role": "user", "content": f"Say hi to {n}."}], sampling=Sampling(max_tokens=4, seed=n))
        for n in range(4)
    ] + [
        Request(
            messages=[{"role": "user", "content": f"Count from 1 to 300, starting at {n}."}],
            sampling=Sampling(max_tokens=160, seed=n),
        )
        for n in range(8)
    ]
    answers: dict[int, str] = {}
    killed: list[int] = []
    for positions, completions in ray_backend.stream(requests, "kill"):
        if not killed:
            pid = min(_engine_pids())
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        for p, c in zip(positions, completions, strict=True):
            assert p not in answers and c.finish_reason != "error", c.error
            answers[p] = c.text
    assert killed and len(answers) == len(requests)
    assert [answers[i] for i in range(len(requests))] == [c.text for c in vllm_backend.generate(requests)]


@pytest.fixture(scope="module")
def ray_run(ray_backend, tmp_path_factory):
    config = SynthConfig(backend="ray", num_replicas=2, out=tmp_path_factory.mktemp("synth-ray"), **TINY)
    return config, synthesize(config, backend=ray_backend)


def test_a_ray_run_finishes_on_vllm_from_the_cache_with_identical_output(ray_run, vllm_backend):
    config, first = ray_run
    before = (config.out / "examples.jsonl").read_bytes()
    assert first.llm_calls > 0 and before
    again = synthesize(config.model_copy(update={"backend": "vllm"}), backend=vllm_backend)
    assert again.llm_calls == 0
    assert again.cached_calls == first.llm_calls
    assert (config.out / "examples.jsonl").read_bytes() == before


def _cache_keys(out: Path) -> dict[str, list[str]]:
    """Call keys per cache file, in file order (a line torn by a kill is left out, as the cache does)."""
    keys: dict[str, list[str]] = {}
    for cache in sorted((out / "cache").glob("*.jsonl")):
        keys[cache.name] = []
        for line in cache.read_text().splitlines():
            try:
                keys[cache.name].append(json.loads(line)["key"])
            except ValueError:
                continue
    return keys


def test_a_killed_driver_resumes_without_losing_or_duplicating(ray_run, vllm_backend, tmp_path):
    reference, _ = ray_run
    out = tmp_path / "run"
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps({**TINY, "backend": "ray", "num_replicas": 2, "out": str(out)}))
    log = (tmp_path / "stderr.log").open("w")
    command = [sys.executable, "-m", "emopillars.cli", "synth", "--config", str(config_file)]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    scenes = out / "cache" / "scenes.jsonl"
    deadline = time.monotonic() + 500  # a fresh Ray and two engines take minutes on a busy CPU
    try:
        while time.monotonic() < deadline and driver.poll() is None:
            if scenes.exists() and scenes.read_text().strip():  # the scene job's first batch is in
                break
            time.sleep(0.2)
        assert driver.poll() is None, f"the run ended before it was killed: {(tmp_path / 'stderr.log').read_text()}"
        driver.send_signal(signal.SIGKILL)  # the driver only: Ray's own processes die with it
        driver.wait()
    finally:
        _kill_group(driver.pid)
    done = _cache_keys(out)
    assert not (out / "examples.jsonl").exists()

    rerun = SynthConfig(**{**json.loads(config_file.read_text()), "backend": "vllm"})
    resumed = synthesize(rerun, backend=vllm_backend)
    after = _cache_keys(out)
    for name, keys in after.items():
        assert len(keys) == len(set(keys)), f"duplicate calls in {name}"
        assert keys[: len(done.get(name, []))] == done.get(name, [])  # what was cached stays, once
    assert resumed.cached_calls == sum(map(len, done.values()))
    assert {n: set(k) for n, k in after.items()} == {n: set(k) for n, k in _cache_keys(reference.out).items()}
    assert (out / "examples.jsonl").read_bytes() == (reference.out / "examples.jsonl").read_bytes()


def _kill_group(pgid: int) -> None:
    """Whatever the killed driver left in its session (an orphaned engine process, say)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
