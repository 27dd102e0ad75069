import json

from emopillars.synth.backends import Completion, Request, Sampling
from emopillars.synth.cache import CallCache, call_key


def _request(prompt="hi", seed=1, temperature=0.8):
    return Request(
        messages=[{"role": "user", "content": prompt}], sampling=Sampling(seed=seed, temperature=temperature)
    )


def test_key_changes_with_everything_that_changes_results():
    base = call_key("t.v1", "vllm:m", _request(), 0)
    assert base == call_key("t.v1", "vllm:m", _request(), 0)
    others = [
        call_key("t.v2", "vllm:m", _request(), 0),
        call_key("t.v1", "vllm:other", _request(), 0),
        call_key("t.v1", "vllm:m", _request(prompt="ho"), 0),
        call_key("t.v1", "vllm:m", _request(temperature=0.1), 0),
        call_key("t.v1", "vllm:m", _request(), 1),
    ]
    assert len({base, *others}) == 6


def test_entries_survive_reopening_and_a_torn_last_line_is_skipped(tmp_path):
    cache = CallCache(tmp_path, "scenes")
    cache.add([("a", Completion(text='{"x": 1}', finish_reason="stop", completion_tokens=3))])
    with cache.path.open("a") as f:  # what SIGKILL in the middle of a write leaves behind
        f.write('{"key": "b", "completion": {"text": "{\\"x\\"')
    reopened = CallCache(tmp_path, "scenes")
    assert "a" in reopened and "b" not in reopened
    assert reopened["a"].text == '{"x": 1}'
    # the torn line was cleaned away, so further appends start on a fresh line
    reopened.add([("c", Completion(text="{}", finish_reason="stop"))])
    lines = [json.loads(line) for line in cache.path.read_text().splitlines()]
    assert [line["key"] for line in lines] == ["a", "c"]


def test_transport_errors_are_not_cached(tmp_path):
    cache = CallCache(tmp_path, "labels")
    cache.add([("a", Completion(text="", finish_reason="error", error="timeout"))])
    assert "a" not in cache and len(CallCache(tmp_path, "labels")) == 0


def test_no_progress_hides_the_stage_bars_though_tqdm_was_imported_first(tmp_path, monkeypatch):
    """tqdm reads TQDM_DISABLE only when it is imported; `--no-progress` sets it later, so the runner asks."""
    from emopillars.synth.backends.openai import OpenAIBackend
    from emopillars.synth.runner import Runner

    backend = OpenAIBackend(base_url="http://127.0.0.1:9/v1", model="never-called")
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert not Runner(backend, tmp_path, 0, 1)._bar("labels").disable
    monkeypatch.setenv("TQDM_DISABLE", "1")  # what `--no-progress` does (console.disable_progress_bars)
    assert Runner(backend, tmp_path, 0, 1)._bar("labels").disable
