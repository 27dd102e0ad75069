"""The Ray backend on a local Ray with two SmolLM2 replicas: same answers and cache as `vllm`, and what survives
a dead engine actor or a killed driver.

Every Ray job starts its engines afresh (about a minute each here, eager, the two side by side), so these tests
keep jobs few: one for the answers, three for a run, one or two before the driver is killed.
"""

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

# No rewrites, no retries: three Ray jobs (characters, scenes, labels) make a run.
TINY = dict(
    max_passages=2, max_characters=2, emotions_per_character=2, contextless_per_example=0, label_samples=2,
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


def _processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (parent pid, command line) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                table[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), (entry / "cmdline").read_bytes())
            except (OSError, IndexError, ValueError):
                continue
    return table


def _descendants(pid: int, table: dict[int, tuple[int, bytes]]) -> set[int]:
    children = {p for p, (parent, _) in table.items() if parent == pid}
    return children.union(*(_descendants(c, table) for c in children))


def test_same_answers_as_vllm_in_batches_even_when_an_engine_actor_dies(ray_backend, vllm_backend):
    # The first batch is short; the last ones are long, so they are still generating when an engine dies.
    requests = _requests() + [
        Request(
            messages=[{"role": "user", "content": f"Count from 1 to 300, starting at {n}."}],
            sampling=Sampling(max_tokens=160, seed=n),
        )
        for n in range(6)
    ]
    batches = []
    orphans: set[int] = set()  # the dead actor's engine processes, which vLLM leaves running
    try:
        for positions, completions in ray_backend.stream(requests, "ray"):
            if not orphans:
                table = _processes()
                actor = min(p for p, (_, cmd) in table.items() if ENGINE_ACTOR in cmd)
                orphans = _descendants(actor, table)
                os.kill(actor, signal.SIGKILL)
            batches.append((positions, completions))
    finally:
        for pid in orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert orphans and len(batches) >= 3  # an actor was killed; batches of 4 came back one by one
    positions = [p for ps, _ in batches for p in ps]
    assert sorted(positions) == list(range(len(requests)))  # each answered exactly once
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
    assert expected[8].finish_reason == "length"  # cut at max_tokens is told apart from a stop
    assert all(
        json.loads(answers[i].text)["emotion"] in EMOTIONS for i in range(5, 8) if answers[i].finish_reason == "stop"
    )


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


def test_a_killed_driver_resumes_without_losing_or_duplicating(ray_run, vllm_backend, engine_options, tmp_path):
    reference, _ = ray_run
    out = tmp_path / "run"
    config_file = tmp_path / "config.json"
    # One request a batch: the driver dies after the first character list is cached, the second still in flight.
    settings = {**TINY, **engine_options, "backend": "ray", "num_replicas": 2, "ray_batch_size": 1, "out": str(out)}
    config_file.write_text(json.dumps(settings))
    log = (tmp_path / "stderr.log").open("w")
    command = [sys.executable, "-m", "emopillars.cli", "synth", "--config", str(config_file)]
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    first_stage = out / "cache" / "characters.jsonl"
    deadline = time.monotonic() + 900  # a fresh Ray and two engines take minutes on a busy CPU
    try:
        while time.monotonic() < deadline and driver.poll() is None:
            if first_stage.exists() and first_stage.read_text().strip():
                break
            time.sleep(0.1)
        assert driver.poll() is None, f"the run ended before it was killed: {(tmp_path / 'stderr.log').read_text()}"
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    finally:
        _kill_session(driver.pid)
    done = _cache_keys(out)
    assert not (out / "examples.jsonl").exists()

    rerun = SynthConfig(**{**settings, "backend": "vllm"})
    resumed = synthesize(rerun, backend=vllm_backend)
    after = _cache_keys(out)
    for name, keys in after.items():
        assert len(keys) == len(set(keys)), f"duplicate calls in {name}"
        assert keys[: len(done.get(name, []))] == done.get(name, [])  # what was cached stays, once
    assert resumed.cached_calls == sum(map(len, done.values()))
    assert {n: set(k) for n, k in after.items()} == {n: set(k) for n, k in _cache_keys(reference.out).items()}
    assert (out / "examples.jsonl").read_bytes() == (reference.out / "examples.jsonl").read_bytes()


def _kill_session(sid: int) -> None:
    """Whatever the killed driver left in its session (Ray's processes, orphaned engine processes)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                session = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[3])
            except (OSError, IndexError, ValueError):
                continue
            if session == sid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(entry.name), signal.SIGKILL)
