"""`emopillars synth` end to end on the embedded SmolLM2-135M-Instruct with real backends."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from datasets import load_from_disk

from emopillars import prompts
from emopillars.records import EXPRESSIVENESS, EmotionScores, Example
from emopillars.synth.cache import CallCache, call_key
from emopillars.synth.config import SynthConfig
from emopillars.synth.fidelity import Judgement, first_picks
from emopillars.synth.labeller import SoftLabel
from emopillars.synth.pipeline import settled, synthesize
from emopillars.synth.stages import LabelStage, LabelTask, ParseError
from emopillars.taxonomy import LABELS, names_label

# Small, and a target threshold of 0 so that the weak 135M labeller still leaves both modes populated.
TINY = dict(
    max_passages=2, max_characters=2, emotions_per_character=2, contextless_per_example=2, max_retries=1,
    target_threshold=0.0, send_ahead="on",  # whatever the default, so its guarantees are tested
)  # fmt: skip


def _examples(out: Path) -> list[Example]:
    return [Example.model_validate_json(line) for line in (out / "examples.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def vllm_run(vllm_backend, tmp_path_factory):
    out = tmp_path_factory.mktemp("synth-vllm")
    config = SynthConfig(out=out, **TINY)
    return config, synthesize(config, backend=vllm_backend)


def test_records_follow_the_schema(vllm_run):
    config, report = vllm_run
    examples = _examples(config.out)
    assert examples and {e.mode for e in examples} == {"contextual", "contextless"}
    ids = [e.id for e in examples]
    assert len(ids) == len(set(ids))
    for e in examples:
        assert list(e.soft_labels) == list(LABELS) and all(0 <= s <= 1 for s in e.soft_labels.values())
        assert e.labels == [label for label in LABELS if e.soft_labels[label] >= config.label_threshold]
        assert e.target_emotion in LABELS and e.utterance.strip()
        assert e.primary_emotion == max(LABELS, key=lambda label: e.soft_labels[label])
        assert e.expressiveness in EXPRESSIVENESS and isinstance(e.explication, str)
        assert e.label_agreement is None or 0 <= e.label_agreement <= 1
        assert e.soft_labels[e.target_emotion] >= config.target_threshold
        if e.mode == "contextual":
            assert not names_label(e.utterance, e.target_emotion)  # leaks are dropped
        if e.mode == "contextual":
            assert e.context and e.source_id is None
        else:
            assert e.context is None and e.source_id
    contextual_ids = {e.id for e in examples if e.mode == "contextual"}
    assert any(e.source_id in contextual_ids for e in examples if e.mode == "contextless")
    # Only the first label call writes one (--label-explications first): empty where that call was unusable.
    assert any(e.explication.strip() for e in examples)


def test_report_and_dataset_match_the_examples(vllm_run):
    config, report = vllm_run
    examples = _examples(config.out)
    saved = json.loads((config.out / "report.json").read_text())
    for key in ("llm_calls", "cached_calls", "examples", "per_label", "dropped", "dedup_threshold",
                "prompt_tokens", "generated_tokens", "wall_seconds", "fidelity", "prompts",
                "prefix_cache"):  # fmt: skip
        assert key in saved
    # Prefix reuse as vLLM reported it, per stage: every stage's prompts share at least the chat template's
    # opening, and label calls (all starting with the same definitions) reuse most of their prompt.
    cache = saved["prefix_cache"]
    assert set(cache) == {"characters", "scenes", "labels", "rewrites"}
    assert sum(c["prompt_tokens"] for c in cache.values()) == saved["prompt_tokens"]
    assert all(0 <= c["cached_tokens"] <= c["prompt_tokens"] for c in cache.values())
    assert cache["labels"]["hit_rate"] > 0.5
    assert saved["examples"] == dict(Counter(e.mode for e in examples)) | saved["examples"]
    assert sum(saved["examples"].values()) == len(examples)
    assert saved["llm_calls"] > 0 and saved["generated_tokens"] > 0 and saved["dedup_threshold"] == 0.9
    dataset = load_from_disk(str(config.out / "dataset"))
    assert set(dataset) == {"train", "validation", "test"}
    assert sum(len(split) for split in dataset.values()) == len(examples)
    assert all(row["split"] == name for name, split in dataset.items() for row in split)


def test_retries_sent_ahead_leave_the_cache_as_a_one_at_a_time_run_would(vllm_run):
    """The 135M model fails many checks, so with room under max_in_flight later attempts go out early; only the
    attempts read in order (the first passing one wins) are cached and counted as LLM calls."""
    config, report = vllm_run
    assert report.sent_ahead > 0 and 0 <= report.withdrawn <= report.sent_ahead
    cached = sum(len(CallCache(config.out / "cache", stage)) for stage in report.prefix_cache)
    assert cached == report.llm_calls and report.cached_calls == 0
    assert f"retries sent ahead while the engine had room: {report.sent_ahead}" in report.summary()


def test_splits_are_by_passage(vllm_run):
    config, _ = vllm_run
    split_of: dict[str, set[str]] = {}
    for e in _examples(config.out):
        split_of.setdefault(e.passage_id, set()).add(e.split)
    assert all(len(splits) == 1 for splits in split_of.values())


def _label_samples(config: SynthConfig, backend_name: str) -> dict[tuple[str, str | None], list]:
    """Re-derive every labelled utterance's usable samples straight from the call cache, as the runner reads it:
    per sample, the first attempt whose cached completion parses."""
    stage, cache = LabelStage(config), CallCache(config.out / "cache", "labels")
    template = prompts.template_source(stage.template)
    samples: dict[tuple[str, str | None], list] = {}
    for e in _examples(config.out):
        speaker = e.character if e.mode == "contextual" else "Someone"
        found = []
        for sample in range(config.label_samples):
            task = LabelTask(e.utterance, e.context, speaker, sample)
            for attempt in range(config.max_retries + 1):
                key = call_key(template, backend_name, stage.request(task, attempt), attempt)
                if key not in cache or cache[key].finish_reason != "stop":
                    continue
                try:
                    found.append((stage.order(task), stage.parse(task, cache[key].text)))
                    break
                except ParseError:
                    continue
        samples[(e.utterance, e.context)] = found
    return samples


def test_soft_label_is_the_mean_of_the_cached_samples(vllm_run, vllm_backend):
    config, _ = vllm_run
    samples = _label_samples(config, vllm_backend.name)
    assert config.label_samples == 3
    for e in _examples(config.out):
        found = samples[(e.utterance, e.context)]
        assert found, e.utterance
        mean = {label: np.mean([scores.vector()[label] for _, scores in found]) for label in LABELS}
        assert e.soft_labels == pytest.approx(mean, abs=1e-4)
        assert e.explication == found[0][1].explication
        if len(found) >= 2:
            assert e.label_agreement is not None


def test_fidelity_recomputed_from_the_examples(vllm_run):
    config, report = vllm_run
    f = report.fidelity
    examples = _examples(config.out)
    assert f["primary_agreement"] == pytest.approx(np.mean([e.primary_emotion == e.target_emotion for e in examples]))
    mass = np.array([sum(e.soft_labels[label] for e in examples) for label in LABELS])
    p = mass[mass > 0] / mass.sum()
    assert f["label_entropy"] == pytest.approx(-(p * np.log(p)).sum() / np.log(28), abs=1e-4)
    assert f["labels_per_example"] == pytest.approx(np.mean([len(e.labels) for e in examples]), abs=1e-4)
    agreements = [e.label_agreement for e in examples if e.label_agreement is not None]
    assert f["label_agreement"] == pytest.approx(np.mean(agreements), abs=1e-4)
    assert f["target_recognition"]["drafts"] >= len(examples)
    assert 0 <= f["target_word_leak"]["utterance"] <= 1 and f["target_word_leak"]["scenes"] > 0
    assert set(f["yield"]) >= {"characters", "scenes", "labels", "rewrites", "kept_per_slot"}
    saved = json.loads((config.out / "report.json").read_text())["fidelity"]
    assert saved == f
    card = (config.out / "README.md").read_text()
    assert card.startswith("---\n") and "synthetic" in card and "first_pick_position_entropy_bits" in card
    assert all(name in card for name in report.prompts) and (config.out / "first_pick_positions.png").stat().st_size
    saved_config = json.loads((config.out / "config.json").read_text())
    assert saved_config["prompts"] == report.prompts and "label.v4.j2" in report.prompts
    assert SynthConfig.model_validate(saved_config) == config  # a run's config.json is a valid --config


def test_first_pick_measures_expose_a_labeller_that_takes_the_top_of_the_list(vllm_run, vllm_backend):
    config, report = vllm_run
    calls = [order_scores for found in _label_samples(config, vllm_backend.name).values() for order_scores in found]
    # The real labeller's calls, recomputed from the cache (kept examples' calls are a subset of all calls).
    assert 0 < len(calls) <= report.fidelity["label_calls"]
    assert sum(report.fidelity["first_pick_positions"]) == report.fidelity["label_calls"]
    # The orders the label stage shows for the run's kept utterances, eight samples each (a tiny run keeps few):
    stage = LabelStage(config)
    tasks = [
        LabelTask(e.utterance, e.context, e.character if e.mode == "contextual" else "Someone", sample)
        for e in _examples(config.out)
        for sample in range(8)
    ]
    orders = [stage.order(task) for task in tasks]
    assert len({tuple(o) for o in orders}) == len(orders) > 10  # every call shows its own order
    # A labeller that always answers the first name shown, on those orders:
    top = first_picks([Judgement(order[0], 0) for order in orders])
    assert top["first_pick_position_entropy_bits"] == 0.0
    assert top["first_pick_entropy_bits"] > 0.8 * np.log2(min(len(orders), 28))


def test_identical_rerun_sends_nothing_and_writes_identical_files(vllm_run, vllm_backend):
    config, first = vllm_run
    before = (config.out / "examples.jsonl").read_bytes()
    again = synthesize(config, backend=vllm_backend)
    assert again.llm_calls == 0
    assert again.cached_calls == first.llm_calls + first.cached_calls
    assert (config.out / "examples.jsonl").read_bytes() == before


@pytest.mark.slow
def test_output_does_not_depend_on_how_many_calls_are_in_flight(vllm_run, vllm_backend, tmp_path):
    """Answers arrive in another order with another batch around them; the examples are the same bytes."""
    config, first = vllm_run
    narrow = synthesize(config.model_copy(update={"out": tmp_path, "max_in_flight": 2}), backend=vllm_backend)
    assert narrow.llm_calls == first.llm_calls
    assert 0 < narrow.mean_in_flight <= 2 < first.mean_in_flight  # the wide run gave the engine more to batch
    assert (tmp_path / "examples.jsonl").read_bytes() == (config.out / "examples.jsonl").read_bytes()


def _cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "emopillars.cli", *args], capture_output=True, text=True, timeout=600, **kwargs
    )


def _run_with_two_scenes(tmp_path: Path, settings: dict) -> subprocess.Popen:
    """`emopillars synth` in a process of its own (and session), returned once two scene answers are cached."""
    config = tmp_path / "config.json"
    config.write_text(json.dumps(settings))
    command = [sys.executable, "-m", "emopillars.cli", "synth", "--config", str(config)]
    log = (tmp_path / "stderr.log").open("w")
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, start_new_session=True)
    scenes = Path(settings["out"]) / "cache" / "scenes.jsonl"
    deadline = time.monotonic() + 500  # the engine takes a minute or two to start on a busy CPU
    while time.monotonic() < deadline and proc.poll() is None:
        if scenes.exists() and len(scenes.read_text().splitlines()) >= 2:
            break
        time.sleep(0.5)
    assert proc.poll() is None, (
        f"the run ended before it could be killed: {(tmp_path / 'stderr.log').read_text()[-2000:]}"
    )
    return proc


@contextlib.contextmanager
def _engine_of(proc: subprocess.Popen) -> Iterator[list]:
    """The run's engine processes; whatever is left of the run and of them is killed at the end, so that a failed
    check does not slow the tests after it."""
    import psutil

    engine = psutil.Process(proc.pid).children(recursive=True)
    try:
        assert engine, "no engine process under the run"
        yield engine
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        for child in engine:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()


def _assert_gone(engine: list) -> None:
    import psutil

    _, alive = psutil.wait_procs(engine, timeout=60)
    assert not alive, f"the engine outlived the run: {alive}"


@pytest.mark.slow
def test_sigterm_stops_a_run_with_its_engine_and_keeps_its_calls(engine_options, tmp_path):
    """`kill` stops a run as Ctrl-C does: one line, exit 128 + 15, the vLLM engine's process gone with it (it
    outlived the run before, busy), the answered calls kept."""
    out = tmp_path / "run"
    proc = _run_with_two_scenes(tmp_path, {**TINY, **engine_options, "out": str(out)})
    with _engine_of(proc) as engine:
        proc.send_signal(signal.SIGTERM)  # the run alone, not its process group
        assert proc.wait(timeout=120) == 128 + signal.SIGTERM
        _assert_gone(engine)
    assert (tmp_path / "stderr.log").read_text().splitlines()[-1] == "stopped by SIGTERM"
    assert len((out / "cache" / "scenes.jsonl").read_text().splitlines()) >= 2


@pytest.mark.slow
def test_killed_run_resumes_without_losing_or_duplicating(vllm_backend, engine_options, tmp_path, monkeypatch):
    out = tmp_path / "run"
    small = {"contextless_per_example": 1, "label_samples": 2}
    settings = {**TINY, **small, **engine_options, "out": str(out)}
    proc = _run_with_two_scenes(tmp_path, settings)
    with _engine_of(proc) as engine:
        proc.kill()  # the run alone: its vLLM engine's process ends with it (`emopillars.orphans`)
        proc.wait()
        _assert_gone(engine)
    terminal = (tmp_path / "stderr.log").read_text()
    assert "Triton" not in terminal and "Warning" not in terminal, f"vLLM's noise on the terminal:\n{terminal}"
    done_before = sum(len(p.read_text().splitlines()) for p in (out / "cache").glob("*.jsonl"))
    assert done_before >= 2 and not (out / "examples.jsonl").exists()

    # The rerun on the suite's engine, with bars off (vLLM once divided by a disabled bar's elapsed time, 0),
    # and another in-flight limit (not part of a call's key).
    monkeypatch.setenv("TQDM_DISABLE", "1")
    rerun = SynthConfig(**{**settings, "max_in_flight": 64})
    resumed = synthesize(rerun, backend=vllm_backend)
    assert resumed.cached_calls >= done_before - 1  # at most the line torn by the kill is redone
    for cache in (out / "cache").glob("*.jsonl"):
        keys = [json.loads(line)["key"] for line in cache.read_text().splitlines()]
        assert len(keys) == len(set(keys)), f"duplicate calls in {cache.name}"
    ids = [e.id for e in _examples(out)]
    assert ids and len(ids) == len(set(ids))

    before = (out / "examples.jsonl").read_bytes()
    assert synthesize(rerun, backend=vllm_backend).llm_calls == 0
    assert (out / "examples.jsonl").read_bytes() == before


@pytest.mark.slow
def test_openai_backend_produces_the_same_records(openai_server, tmp_path):
    from emopillars.synth.backends import make_backend

    config = SynthConfig(
        out=tmp_path,
        backend="openai",
        base_url=openai_server,
        model="smollm2-135m",
        **{**TINY, "max_passages": 1, "contextless_per_example": 1, "label_samples": 2},
    )
    backend = make_backend("openai", model="smollm2-135m", base_url=openai_server)
    with backend:
        report = synthesize(config, backend=backend)
    assert report.llm_calls > 0
    assert all(e.mode in {"contextual", "contextless"} for e in _examples(tmp_path))
    # The server's own count of prompt tokens served from its prefix cache (usage.prompt_tokens_details).
    labels = report.prefix_cache["labels"]
    assert 0 < labels["cached_tokens"] < labels["prompt_tokens"]


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["--corpus", "/nonexistent/stories"], "/nonexistent/stories"),
        (["--dedup-threshold", "0"], "dedup_threshold"),
        (["--dedup-threshold", "1.2"], "dedup_threshold"),
        (["--contextless-per-example", "-1"], "contextless_per_example"),
        (["--backend", "openai", "--model", "m", "--base-url", "http://127.0.0.1:9/v1"], "http://127.0.0.1:9/v1"),
    ],
)
def test_bad_input_gets_one_line_naming_the_culprit(args, culprit, tmp_path):
    started = time.monotonic()
    result = _cli("synth", "--out", str(tmp_path / "o"), *args)
    assert result.returncode == 1
    assert culprit in result.stderr and "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if line.startswith("error:")]) == 1
    assert time.monotonic() - started < 60


def test_empty_corpus_is_an_error(tmp_path):
    corpus = tmp_path / "empty.jsonl"
    corpus.write_text("")
    result = _cli("synth", "--corpus", str(corpus), "--out", str(tmp_path / "o"))
    assert result.returncode == 1 and "empty.jsonl" in result.stderr and "Traceback" not in result.stderr


def test_send_ahead_auto_is_on_for_vllm_engines_and_never_for_a_paid_api():
    import torch

    assert SynthConfig().sends_ahead and SynthConfig(backend="ray").sends_ahead
    assert SynthConfig(backend="transformers").sends_ahead == torch.cuda.is_available()
    assert SynthConfig(send_ahead="on").sends_ahead and not SynthConfig(send_ahead="off").sends_ahead
    assert not SynthConfig(backend="openai", base_url="http://127.0.0.1:1/v1", model="m").sends_ahead


@pytest.mark.parametrize("threshold", [0.0, 0.1, 0.3333, 0.5])
def test_a_settled_target_is_recognised_whatever_the_other_samples_say(threshold):
    """The rewrites of a draft go out once its first label samples settle that it is kept; the full soft label,
    over every usable sample, must then keep it, whatever the other samples score or whether they fail."""
    rng = np.random.default_rng(0)
    settled_early = 0
    for _ in range(2000):
        samples = int(rng.integers(1, 6))
        scores = [round(float(x), 4) for x in rng.choice([0.0, 0.1, 0.2, 0.3333, 0.5, 1.0], size=samples)]
        usable = [i for i in range(samples) if rng.random() > 0.3]
        arrival = list(rng.permutation(usable))
        records = [
            EmotionScores(emotions=[{"emotion": "joy", "score": scores[i]}] if scores[i] else [
                {"emotion": "anger", "score": 1.0}]) for i in usable
        ]  # fmt: skip
        final = SoftLabel.from_samples(records, 0.3).scores["joy"] if records else None
        for k in range(1, len(arrival) + 1):
            if settled([scores[i] for i in arrival[:k]], samples, threshold):
                assert final is not None and final >= threshold
                settled_early += k < len(arrival)
                break
    assert settled_early > 0  # the rule does settle before the last sample
