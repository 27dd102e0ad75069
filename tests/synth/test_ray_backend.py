"""The Ray backend on a local Ray with two SmolLM2 replicas: the same answers and cache as `vllm`, while an engine
actor dies mid-stage, and nothing lost or duplicated when the driver is killed.

The engine actors start once per backend (about a minute here, eager, the two side by side): the tests share one
run on the session's two replicas, and the killed driver gets one replica of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from emopillars.synth.config import SynthConfig
from emopillars.synth.pipeline import synthesize

pytestmark = pytest.mark.slow

# No rewrites, no retries: a short run whose label stage is still going when the first label is cached.
TINY = dict(
    max_passages=2, max_characters=2, emotions_per_character=2, contextless_per_example=0, label_samples=2,
    max_retries=0, target_threshold=0.0,
)  # fmt: skip
ENGINE_ACTOR = b"ray::EngineActor"


def _processes() -> dict[int, tuple[int, int, bytes]]:
    """pid -> (parent pid, session id, command line) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                table[int(entry.name)] = (int(fields[1]), int(fields[3]), (entry / "cmdline").read_bytes())
            except (OSError, IndexError, ValueError):
                continue
    return table


def _descendants(pid: int, table: dict[int, tuple[int, int, bytes]]) -> set[int]:
    children = {p for p, (parent, _, _) in table.items() if parent == pid}
    return children.union(*(_descendants(c, table) for c in children))


class ActorKiller(threading.Thread):
    """SIGKILLs one engine actor as soon as `cache` has a line, i.e. after the stage's first batch came back."""

    def __init__(self, cache: Path) -> None:
        super().__init__(daemon=True)
        self.cache, self.killed, self.orphans, self.done = cache, False, set(), threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            if self.cache.exists() and self.cache.read_text().strip():
                table = _processes()
                actors = [p for p, (_, _, cmd) in table.items() if ENGINE_ACTOR in cmd]
                if actors:
                    actor = max(actors)  # either replica will do
                    self.orphans = _descendants(actor, table)  # its engine processes, which vLLM leaves running
                    os.kill(actor, signal.SIGKILL)
                    self.killed = True
                return

    def stop(self) -> None:
        self.done.set()
        self.join()
        for pid in self.orphans:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def ray_run(ray_backend, tmp_path_factory):
    """A two-replica run in batches of 4; one engine actor is SIGKILLed once the first label batch is cached."""
    config = SynthConfig(backend="ray", num_replicas=2, out=tmp_path_factory.mktemp("synth-ray"), **TINY)
    killer = ActorKiller(config.out / "cache" / "labels.jsonl")
    killer.start()
    try:
        report = synthesize(config, backend=ray_backend)
    finally:
        killer.stop()
    assert killer.killed, "the label stage ended before an engine actor could be killed"
    return config, report


def _cache_rows(out: Path) -> dict[str, list[dict]]:
    """The cached calls of each stage, in file order (a line torn by a kill is left out, as the cache does)."""
    rows: dict[str, list[dict]] = {}
    for cache in sorted((out / "cache").glob("*.jsonl")):
        rows[cache.name] = []
        for line in cache.read_text().splitlines():
            with contextlib.suppress(ValueError):
                rows[cache.name].append(json.loads(line))
    return rows


def _answers(out: Path) -> dict[str, dict[str, dict]]:
    """Every cached call's completion (text, finish reason, token counts) by key, per stage; prefix-cache hits
    depend on what the replica served before, so they are left out."""
    return {
        name: {row["key"]: {k: v for k, v in row["completion"].items() if k != "cached_tokens"} for row in rows}
        for name, rows in _cache_rows(out).items()
    }


def _cache_keys(out: Path) -> dict[str, list[str]]:
    return {name: [row["key"] for row in rows] for name, rows in _cache_rows(out).items()}


def test_a_run_whose_engine_actor_died_equals_a_vllm_run(ray_run, vllm_backend, tmp_path):
    config, first = ray_run
    assert first.llm_calls > 0 and sum(first.examples.values()) > 0
    alone = synthesize(config.model_copy(update={"backend": "vllm", "out": tmp_path}), backend=vllm_backend)
    assert alone.llm_calls == first.llm_calls  # each request answered once, the dead actor's batch included
    assert _answers(tmp_path) == _answers(config.out)  # the same answer to every request
    assert (tmp_path / "examples.jsonl").read_bytes() == (config.out / "examples.jsonl").read_bytes()


def test_a_ray_run_finishes_on_vllm_from_the_cache_with_identical_output(ray_run, vllm_backend):
    config, first = ray_run
    before = (config.out / "examples.jsonl").read_bytes()
    assert first.llm_calls > 0 and before
    again = synthesize(config.model_copy(update={"backend": "vllm"}), backend=vllm_backend)
    assert again.llm_calls == 0
    assert again.cached_calls == first.llm_calls
    assert (config.out / "examples.jsonl").read_bytes() == before


def test_a_killed_driver_resumes_without_losing_or_duplicating(ray_run, vllm_backend, engine_options, tmp_path):
    reference, _ = ray_run
    out = tmp_path / "run"
    config_file = tmp_path / "config.json"
    # One replica (the kill is of the driver): the driver dies once the first character list is cached.
    settings = {**TINY, **engine_options, "backend": "ray", "num_replicas": 1, "out": str(out)}
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
    for pid, (_, session, _) in _processes().items():
        if session == sid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
