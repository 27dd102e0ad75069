"""`synth --backend openai` against a server that fails: real recorded answers, faults injected in a seeded pattern.

The fault server (`fault_server.py`) replays answers the embedded SmolLM2-135M gave through `vllm serve`, so these
tests need no engine. Each fault kind must heal into the same examples, be counted in report.json and never be cached;
a server down for good, or one that fails every call of a stage, stops the run with one line naming it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emopillars.errors import EmopillarsError
from emopillars.synth.backends import Request, Sampling
from emopillars.synth.backends.openai import OpenAIBackend
from emopillars.synth.config import SynthConfig
from emopillars.synth.pipeline import synthesize
from emopillars.synth.report import SynthReport, empty_run_message

sys.path.insert(0, str(Path(__file__).parent))
from fault_server import FAULTS, FaultServer, body_key, read_answers  # noqa: E402

SERVED = "smollm2-135m"
ANSWERS = Path(__file__).parent / "fixtures" / "openai_answers.jsonl"
# The run the fixture recorded (fault_server.py's docstring says how): change it and record again.
FAULT_RUN = dict(
    max_passages=1, max_characters=2, emotions_per_character=2, contextless_per_example=1, max_retries=1,
    target_threshold=0.0, seed=0,
)  # fmt: skip
# Picked for this recording and run so that every fault kind occurs (and one hang only, to keep it fast): after
# recording again, or when the run asks for other calls, pick anew by replaying `FaultServer.decide` over its keys.
FAULT_SEED = 13
TIMEOUT = 2.0  # --request-timeout of the faulty runs (a healthy answer takes milliseconds); a hung one waits longer
# The fault kinds as the client tells them apart (a truncated body and an HTML page are both malformed).
CLIENT_KIND = {"http_500": "http_5xx", "http_429": "http_429", "drop": "connection", "hang": "timeout"}
CLIENT_KIND |= {"truncated": "malformed_body", "not_json": "malformed_body"}


def _synth(server: FaultServer, out: Path, **backend_options) -> SynthReport:
    config = SynthConfig(out=out, backend="openai", base_url=server.base_url, model=SERVED, **FAULT_RUN)
    options = dict(concurrency=4, http_retries=3, request_timeout=TIMEOUT, retry_backoff=0.05) | backend_options
    with OpenAIBackend(model=SERVED, base_url=server.base_url, **options) as backend:
        return synthesize(config, backend=backend)


def _cli_synth(server: FaultServer, out: Path, *extra: str) -> subprocess.CompletedProcess:
    """The fault run through the command line (`emopillars synth`, quiet), against `server`."""
    args = ["--out", str(out), "--backend", "openai", "--base-url", server.base_url, "--model", SERVED, *extra]
    args += ["--no-progress", "-q", *(f"--{k.replace('_', '-')}={v}" for k, v in FAULT_RUN.items())]
    return subprocess.run(
        [sys.executable, "-m", "emopillars.cli", "synth", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        timeout=300,
    )


def _cache_lines(out: Path) -> list[dict]:
    return [json.loads(line) for path in sorted((out / "cache").glob("*.jsonl")) for line in path.open()]


@pytest.fixture(scope="module")
def answers() -> dict[str, dict]:
    return read_answers(ANSWERS)


@pytest.fixture(scope="module")
def healthy(answers, tmp_path_factory) -> tuple[Path, FaultServer]:
    out = tmp_path_factory.mktemp("healthy")
    with FaultServer(answers) as server:
        report = _synth(server, out)
    assert sum(report.examples.values()) and not report.backend_faults and not report.dropped.get("backend_error")
    return out, server


def test_every_fault_kind_heals_into_the_same_examples(answers, healthy, tmp_path, record_property):
    healthy_out, healthy_server = healthy
    with FaultServer(answers, seed=FAULT_SEED, fault_rate=0.35, max_faults=2, hang_seconds=TIMEOUT + 2.0) as server:
        report = _synth(server, tmp_path)
    injected = sum(server.injected.values())
    print(f"{injected} faults injected ({dict(server.injected)}), {server.served} requests served")
    record_property("faults_injected", injected)
    record_property("requests_served", server.served)
    assert set(server.injected) == set(FAULTS)  # FAULT_SEED was picked so that every kind occurs
    assert (tmp_path / "examples.jsonl").read_text() == (healthy_out / "examples.jsonl").read_text()
    expected: dict[str, int] = {}
    for fault, n in server.injected.items():
        expected[CLIENT_KIND[fault]] = expected.get(CLIENT_KIND[fault], 0) + n
    assert report.backend_faults == dict(sorted(expected.items()))
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["backend_faults"] == report.backend_faults and not saved["dropped"].get("backend_error")
    cached = _cache_lines(tmp_path)
    assert all(row.get("finish_reason", "stop") != "error" and not row.get("error") for row in cached)
    assert len(cached) == len(_cache_lines(healthy_out)) == server.served == healthy_server.served


def test_a_server_down_for_good_stops_the_run_naming_it(answers, tmp_path):
    with FaultServer(answers, stop_after=5) as server:
        started = time.monotonic()
        with pytest.raises(EmopillarsError) as caught:
            _synth(server, tmp_path)
    message = str(caught.value)
    # Which check stops it depends on how many calls were still to make when the server went: 8 failures in a
    # row, or the end of a run in which a stage had only failures (both name the server and its last error).
    assert re.search(r"stopped: (\d+ calls in a row failed|all \d+ \w+ call\(s\) failed) at backend", message)
    assert server.base_url in message and "Connection refused" in message and "\n" not in message
    assert time.monotonic() - started < 60
    # every answered call is kept for the rerun (calls already in flight when it stopped may finish too)
    assert len(_cache_lines(tmp_path)) == server.served >= 5


def test_a_stage_whose_every_call_fails_stops_the_run(answers, tmp_path):
    failing = pytest.raises(EmopillarsError, match=r"all \d+ rewrites call\(s\) failed")
    with FaultServer(answers, fail_matching="Rewrite this") as server, failing as caught:
        _synth(server, tmp_path, http_retries=1)
    assert server.base_url in str(caught.value) and "\n" not in str(caught.value)
    assert server.injected["http_500"] >= 2
    cached = _cache_lines(tmp_path)
    assert cached and all(row.get("finish_reason", "stop") != "error" for row in cached)


def test_cli_names_the_failing_server_in_one_line(answers, tmp_path):
    """The same stop through the command line: exit 1, one line on stderr, no traceback."""
    with FaultServer(answers, fail_matching="Rewrite this") as server:
        done = _cli_synth(server, tmp_path / "run", "--http-retries", "1")
    assert done.returncode == 1, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert server.base_url in last and "rewrites call(s) failed" in last and "Traceback" not in done.stderr


def test_retry_after_is_waited_for():
    request = Request(messages=[{"role": "user", "content": "Hi"}], sampling=Sampling(max_tokens=4, seed=1))
    backend = OpenAIBackend(model=SERVED, base_url="http://127.0.0.1:9/v1", retry_backoff=0.01)
    answer = {"content": "{}", "finish_reason": "stop", "usage": {}}
    answers = {body_key(backend._body(request)): answer}
    server = FaultServer(answers, faults=("http_429",), fault_rate=1.0, max_faults=1)
    with server as s, OpenAIBackend(model=SERVED, base_url=s.base_url, retry_backoff=0.01) as live:
        started = time.monotonic()
        (completion,) = live.generate([request])
    assert completion.finish_reason == "stop" and s.injected["http_429"] == 1
    assert time.monotonic() - started >= 1.0  # the server's Retry-After, not the 0.01 s backoff
    assert live.faults == {"http_429": 1}


def test_an_empty_run_of_backend_errors_says_so():
    report = SynthReport.model_construct(
        out="runs/x", backend="openai", model="m", dropped={"backend_error": 9, "unparseable": 2}
    )
    assert "failed at the backend openai" in empty_run_message(report)
    assert "survived the filters" not in empty_run_message(report)
    filtered = SynthReport.model_construct(out="runs/x", backend="openai", model="m", dropped={"unparseable": 5})
    assert "survived the filters" in empty_run_message(filtered)


def test_synth_into_a_full_disk_stops_in_one_line_and_keeps_its_cache(answers, healthy, tmp_path, tmpfs):
    """48 KB hold the run's config and its call cache, not its dataset and plots: one line naming the file, exit 1;
    every answered call is on the disk whole, so the same run elsewhere sends none and writes the same examples."""
    healthy_out, _ = healthy
    with FaultServer(answers) as server, tmpfs(tmp_path / "disk", 48 / 1024) as disk:
        done = _cli_synth(server, disk / "run")
        shutil.copytree(disk / "run" / "cache", tmp_path / "elsewhere" / "cache")
        assert done.returncode == 1, done.stderr[-2000:]
        assert done.stderr.strip().splitlines() == [done.stderr.strip()] and "No space left on device" in done.stderr
        assert str(disk / "run") in done.stderr and "Traceback" not in done.stderr
        report = _synth(server, tmp_path / "elsewhere")
    by_key = sorted(_cache_lines(tmp_path / "elsewhere"), key=lambda row: row["key"])
    assert by_key == sorted(_cache_lines(healthy_out), key=lambda row: row["key"]) and report.llm_calls == 0
    assert (tmp_path / "elsewhere" / "examples.jsonl").read_bytes() == (healthy_out / "examples.jsonl").read_bytes()
