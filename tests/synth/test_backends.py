"""The three LLM backends on the embedded SmolLM2-135M: real engines, tiny requests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pydantic import ValidationError

from emopillars.errors import EmopillarsError
from emopillars.synth.backends import Request, Sampling, make_backend

EMOTIONS = ["joy", "anger", "fear"]
CONSTRAINED = ["vllm_backend", pytest.param("openai_backend", marks=pytest.mark.slow)]


def ask(content: str, **sampling) -> Request:
    return Request(messages=[{"role": "user", "content": content}], sampling=Sampling(**sampling))


def tagged_schema(tag: str) -> dict:
    """A schema whose `id` can only be `tag`: the output then says which request it answers."""
    return {
        "type": "object",
        "properties": {"id": {"type": "string", "enum": [tag]}, "emotion": {"type": "string", "enum": EMOTIONS}},
        "required": ["id", "emotion"],
        "additionalProperties": False,
    }


# --- construction and errors: no engine needed ---------------------------------------------------


def test_unknown_backend_names_the_allowed_ones():
    with pytest.raises(EmopillarsError, match="unknown backend 'llamacpp'.*vllm, openai, transformers"):
        make_backend("llamacpp", model="x")


def test_unknown_option_is_a_one_line_error():
    with pytest.raises(EmopillarsError, match="backend 'transformers'.*batch"):
        make_backend("transformers", model="x", batch=3)


def test_names_hold_only_what_changes_results():
    vllm = make_backend("vllm", model="/m", dtype="auto", tensor_parallel_size=1, gpu_memory_utilization=None)
    openai = make_backend("openai", model="m", base_url="http://127.0.0.1:8000/v1")
    assert vllm.name == "vllm:/m"
    assert openai.name == make_backend("openai", model="m", base_url="http://10.0.0.1:9999/v1").name == "openai:m"
    assert make_backend("transformers", model="/m", transformers_batch_size=1).name == "transformers:/m"


def test_llm_config_takes_every_backend_option_as_the_backend_declares_it():
    from emopillars.synth.backends import BACKEND_CLASSES, backend_class
    from emopillars.synth.config import LLMConfig

    def declared(info: object) -> tuple:
        return info.default, info.description, info.metadata

    for kind in BACKEND_CLASSES:
        for name, info in backend_class(kind).model_fields.items():
            if name != "model" and not info.is_required():
                assert declared(LLMConfig.model_fields[name]) == declared(info), name
    assert LLMConfig.model_fields["base_url"].default is None  # required by openai only, checked when picked


def test_engine_kwargs_reach_the_engine_and_cannot_shadow_an_option():
    from emopillars.synth.backends import backend_from_config
    from emopillars.synth.backends.engine import NUCLEUS_PROCESSOR
    from emopillars.synth.backends.vllm import CPU_BLOCK_TOKENS
    from emopillars.synth.config import SynthConfig

    vllm = backend_from_config(SynthConfig(engine_kwargs={"max_num_seqs": 4}), "/m")
    assert vllm.engine_options("float32", on_cpu=False)["max_num_seqs"] == 4
    assert "block_size" not in vllm.engine_options("float32", on_cpu=False)  # vLLM's own on a GPU
    assert vllm.engine_options("float32", on_cpu=True)["block_size"] == CPU_BLOCK_TOKENS
    assert vllm.engine_options("float32", on_cpu=True)["logits_processors"] == [NUCLEUS_PROCESSOR]  # CPU only
    assert "logits_processors" not in vllm.engine_options("float32", on_cpu=False)
    vllm = backend_from_config(SynthConfig(engine_kwargs={"block_size": 128}), "/m")
    assert vllm.engine_options("float32", on_cpu=True)["block_size"] == 128  # the user's value wins
    with pytest.raises(EmopillarsError, match="dtype has its own option \\(--dtype\\)"):
        backend_from_config(SynthConfig(engine_kwargs={"dtype": "half"}), "/m")


def test_requests_refuse_a_system_turn():
    with pytest.raises(ValidationError, match="role user\\|assistant"):
        Request(messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    with pytest.raises(ValidationError, match="end with a user turn"):
        Request(messages=[{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}])


def test_unreachable_server_fails_fast_naming_the_url():
    start = time.monotonic()
    with pytest.raises(EmopillarsError, match="http://127.0.0.1:9/v1: connection refused"):
        make_backend("openai", model="m", base_url="http://127.0.0.1:9/v1").load()
    assert time.monotonic() - start < 15


# --- real generation -----------------------------------------------------------------------------


@pytest.mark.parametrize("fixture", CONSTRAINED)
def test_json_schema_output_parses_respects_the_enum_and_keeps_order(fixture, request):
    backend = request.getfixturevalue(fixture)
    tags = [f"item{i}" for i in range(4)]
    requests = [
        Request(
            messages=[{"role": "user", "content": f"Which emotion is in: '{text}'? Answer in JSON."}],
            sampling=Sampling(max_tokens=48, seed=i),
            json_schema=tagged_schema(tag),
        )
        for i, (tag, text) in enumerate(zip(tags, ["I won!", "How dare you!", "Is someone there?", "Yay"], strict=True))
    ]
    completions = backend.generate(requests, desc="schema")
    outputs = [json.loads(c.text) for c in completions]
    assert [o["id"] for o in outputs] == tags
    assert all(o["emotion"] in EMOTIONS for o in outputs)
    assert all(c.finish_reason == "stop" and c.prompt_tokens > 0 and c.completion_tokens > 0 for c in completions)


@pytest.mark.parametrize("fixture", CONSTRAINED)
def test_same_seed_same_output(fixture, request):
    backend = request.getfixturevalue(fixture)
    poem = ask("Write a short poem about the sea.", temperature=1.0, max_tokens=24, seed=7)
    first, second = backend.generate([poem, poem])
    (again,) = backend.generate([poem])
    assert first.text == second.text == again.text
    other = [ask("Write a short poem about the sea.", temperature=1.0, max_tokens=24, seed=s) for s in (8, 9)]
    assert {c.text for c in backend.generate(other)} != {first.text}  # the seed does steer sampling


def test_transformers_repeats_a_seeded_batch(transformers_backend):
    # One generator per batch, seeded by its first request: a batch is reproducible, a row alone need not be.
    batch = [ask("Write a short poem about the sea.", temperature=1.0, max_tokens=24, seed=s) for s in (7, 8)]
    first = [c.text for c in transformers_backend.generate(batch)]
    assert [c.text for c in transformers_backend.generate(batch)] == first
    reseeded = [r.model_copy(update={"sampling": r.sampling.model_copy(update={"seed": 9})}) for r in batch]
    assert [c.text for c in transformers_backend.generate(reseeded)] != first


def test_vllm_seeded_stage_larger_than_one_step(vllm_backend):
    # On the CPU, a seeded request prefilled in chunks killed the engine ("CPU Generator does not
    # use offset"); a stage whose prompts overflow one step's 4096-token budget must still run.
    story = "The keeper Mara found a letter from her brother Tomas, lost at sea ten years before. " * 14
    distinct = [ask(f"{i}. {story} How does Mara feel?", temperature=1.0, max_tokens=8, seed=i) for i in range(8)]
    completions = vllm_backend.generate(distinct + distinct, desc="overflow")
    assert sum(c.prompt_tokens for c in completions) > 4096
    assert [c.text for c in completions[:8]] == [c.text for c in completions[8:]]


@pytest.mark.parametrize("fixture", ["vllm_backend", "transformers_backend"])
def test_order_token_counts_and_length_finish(fixture, request):
    backend = request.getfixturevalue(fixture)
    # Different prompt lengths and token budgets, deliberately out of order, so batching reorders them.
    budgets = [12, 5, 9, 3]
    requests = [
        ask("Tell me a long story about a dragon." + " Please." * i, max_tokens=b) for i, b in enumerate(budgets)
    ]
    completions = backend.generate(requests, desc="order")
    assert [c.completion_tokens for c in completions] == budgets
    assert all(c.finish_reason == "length" for c in completions)
    prompt_tokens = [c.prompt_tokens for c in completions]
    assert prompt_tokens == sorted(prompt_tokens) and len(set(prompt_tokens)) == 4
    assert all(c.text.strip() for c in completions)


def test_transformers_stop_at_eos(transformers_backend):
    (completion,) = transformers_backend.generate([ask("Say hi.", temperature=0.0, max_tokens=64)])
    assert completion.finish_reason == "stop"
    assert 0 < completion.completion_tokens < 64 and completion.text.strip()


def test_vllm_refused_request_fails_alone(vllm_backend):
    too_long = ask("word " * 5000, max_tokens=8)  # longer than max_model_len=4096
    completions = vllm_backend.generate([ask("Say hi.", max_tokens=8), too_long, ask("Say bye.", max_tokens=8)])
    assert [c.finish_reason == "error" for c in completions] == [False, True, False]
    assert "maximum context length" in completions[1].error


def test_a_reset_prefix_cache_prefills_a_repeated_prompt_again(vllm_backend):
    # bench_synth empties the cache between its runs, so its one-call-at-a-time baseline reuses nothing.
    prompt = ask("The lighthouse keeper counted the ships that never came back. " * 20, max_tokens=1, seed=0)
    vllm_backend.generate([prompt])
    assert vllm_backend.generate([prompt])[0].cached_tokens > 0
    vllm_backend.reset_prefix_cache()
    assert vllm_backend.generate([prompt])[0].cached_tokens == 0


def test_empty_batch_needs_no_engine():
    assert make_backend("vllm", model="/not/loaded").generate([]) == []


# --- the OpenAI-compatible client against a real vLLM server -------------------------------------


@pytest.mark.slow
def test_server_error_becomes_an_error_completion(openai_backend):
    good, bad = openai_backend.generate([ask("Say hi.", max_tokens=8), ask("word " * 5000, max_tokens=8)])
    assert good.finish_reason in ("stop", "length") and good.completion_tokens > 0
    assert bad.finish_reason == "error" and "HTTP 400" in bad.error


@pytest.mark.slow
def test_model_not_served_is_named(openai_server):
    with pytest.raises(EmopillarsError, match="does not serve model 'mistral'; it serves: smollm2-135m"):
        make_backend("openai", model="mistral", base_url=openai_server).load()


# --- the client's retry logic, against a scripted local HTTP server ------------------------------


class ScriptedServer:
    """Answers GET /models, and POST /chat/completions from a script of (status, body) replies."""

    def __init__(self, script: list[tuple[int, dict]]):
        self.script, self.bodies = list(script), []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                self._reply(200, {"data": [{"id": "m"}]})

            def do_POST(self):
                outer.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self._reply(*outer.script.pop(0))

            def _reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"


@pytest.fixture
def scripted() -> Iterator[type[ScriptedServer]]:
    servers = []

    def start(script):
        server = ScriptedServer(script)
        threading.Thread(target=server.httpd.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.httpd.shutdown()


OK = (
    200,
    {
        "choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2},
    },
)


def test_retries_5xx_and_429_then_succeeds(scripted):
    server = scripted([(503, {"error": "busy"}), (429, {"error": "slow down"}), OK])
    with make_backend("openai", model="m", base_url=server.url, http_retries=2) as backend:
        (completion,) = backend.generate([ask("Hi")])
    assert completion.finish_reason == "stop" and completion.completion_tokens == 2
    assert len(server.bodies) == 3


def test_gives_up_after_http_retries_without_raising(scripted):
    server = scripted([(500, {"error": "boom"})] * 2)
    with make_backend("openai", model="m", base_url=server.url, http_retries=1) as backend:
        (completion,) = backend.generate([ask("Hi")])
    assert completion.finish_reason == "error" and "HTTP 500" in completion.error
    assert len(server.bodies) == 2


def test_rejected_response_format_is_dropped_once(scripted, caplog):
    rejection = (400, {"error": {"message": "response_format json_schema is not supported"}})
    server = scripted([rejection, OK, OK])
    schema_request = Request(messages=[{"role": "user", "content": "Hi"}], json_schema=tagged_schema("a"))
    with make_backend("openai", model="m", base_url=server.url, concurrency=1) as backend:
        assert backend.generate([schema_request])[0].finish_reason == "stop"
        assert backend.generate([schema_request])[0].finish_reason == "stop"
    assert ["response_format" in body for body in server.bodies] == [True, False, False]
    assert server.bodies[0]["response_format"]["json_schema"]["strict"] is True
    assert sum("rejects JSON-schema response_format" in r.message for r in caplog.records) == 1
