"""Benchmark the CPU engine's batching curve: how much faster its linear layers get per token as calls batch.

On the CPU a vLLM engine is compute-bound and most of a step is its linear layers (62% of the engine's samples
under py-spy in a synth run here, attention 28%), so how much a streaming run gains from keeping calls in flight
depends first on how much faster the machine's matrix multiply gets per row as rows are added. This times the
linear layers of one decode step of the generator (every layer's qkv, o, gate_up and down projections, and the LM
head; shapes from the model's config), fed `batch` tokens, through the kernel the engine dispatches them to on the
CPU (vLLM's oneDNN matmul, weights prepacked; torch's `linear` where vLLM has no oneDNN), at each batch size, on
all cores and on each replica's share of them. From the curve it gives, at a mean number of calls in flight
(`--in-flight`, `bench_synth.py`'s `mean_in_flight`), what the linear layers alone allow of its two ratios:

- streaming vs one call at a time: tokens/s at `in-flight` rows over tokens/s at one row;
- R replicas vs one engine: R x tokens/s of one replica (its share of the cores, in-flight / R rows) over tokens/s
  of one engine (all cores, in-flight rows).

A whole step differs: decode attention reads each call's own cache, so it gains less from batching, while the
rest of a step (scheduler, sampler, the model's Python between kernels) costs about the same at any batch, so it
gains more. `--engine` measures the whole step: it starts the `vllm` backend's own engine (synth's engine options,
eager unless `--compiled`) and times `batch` seeded calls of `--engine-tokens` generated tokens each (synth's
sampling, no early stop) at each batch size, then does the same on a replica's share of the threads (the
environment `--backend ray` gives each replica), and gives the same two ratios from that curve (~9 minutes on 2
cores with the default batches). The last line is JSON.

    python scripts/bench_batching.py [--in-flight 6 52] [--batches 1 2 3 4 6 8 16 32 64 128] [--replicas 2]
                                     [--engine] [--engine-tokens 64] [--compiled]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections.abc import Callable
from functools import partial

import torch
from transformers import AutoConfig

from emopillars.assets import generator_path
from emopillars.synth.backends.base import Request, Sampling
from emopillars.synth.backends.engine import ChatEngine
from emopillars.synth.backends.vllm import VllmBackend

# Each point is timed in REPEATS blocks of BLOCK_SECONDS after a warm-up call, and the fastest block counts: what
# else the machine runs only ever slows a block down.
REPEATS, BLOCK_SECONDS = 5, 0.1
STORY = "Tell a long story about a lighthouse."  # what each call of --engine is asked
ENGINE_ROUNDS = 2  # whole-engine rounds per point (each decodes --engine-tokens tokens per call)


def layer_shapes(model: str) -> list[tuple[int, int, int]]:
    """(in, out, count) of the linear layers one token passes through, from the model's config."""
    c = AutoConfig.from_pretrained(model)
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    kv_heads = getattr(c, "num_key_value_heads", c.num_attention_heads)
    layers = c.num_hidden_layers
    return [
        (c.hidden_size, (c.num_attention_heads + 2 * kv_heads) * head_dim, layers),  # qkv
        (c.num_attention_heads * head_dim, c.hidden_size, layers),  # o
        (c.hidden_size, 2 * c.intermediate_size, layers),  # gate_up
        (c.intermediate_size, c.hidden_size, layers),  # down
        (c.hidden_size, c.vocab_size, 1),  # LM head
    ]


def onednn_ops():
    """vLLM's CPU ops if they have oneDNN, the kernel the engine runs float32 linear layers with
    (`dispatch_cpu_unquantized_gemm`); None where they do not (torch's `linear` then)."""
    try:
        from vllm import _custom_ops as ops
    except ImportError:
        return None
    return ops if ops._supports_onednn else None


def kernel_name() -> str:
    return "vLLM oneDNN" if onednn_ops() else "torch linear"


def engine_linear(weight: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    if (ops := onednn_ops()) is None:
        return lambda x: torch.nn.functional.linear(x, weight)
    handler = ops.create_onednn_mm(weight.t(), 32)
    return lambda x: ops.onednn_mm(handler, x, None)


def tokens_per_s(shapes: list[tuple[int, int, int]], batch: int, threads: int) -> float:
    """Tokens a second through every linear layer of one step, `batch` tokens at a time, on `threads` threads."""
    torch.set_num_threads(threads)
    seconds = 0.0
    for fan_in, fan_out, count in shapes:
        linear = engine_linear(torch.randn(fan_out, fan_in))
        x = torch.randn(batch, fan_in)
        linear(x)
        seconds += min(_seconds_per_call(linear, x) for _ in range(REPEATS)) * count
    return batch / seconds


def _seconds_per_call(linear: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> float:
    calls, started = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - started) < BLOCK_SECONDS:
        linear(x)
        calls += 1
    return elapsed / calls


def batching_curve(shapes: list[tuple[int, int, int]], batches: set[int], threads: set[int]) -> dict[int, dict]:
    """Tokens/s by thread count and batch size."""
    # Most threads first: vLLM's oneDNN sizes its thread pool at its first call and never grows it afterwards.
    return {t: {b: tokens_per_s(shapes, b, t) for b in sorted(batches)} for t in sorted(threads, reverse=True)}


def needed_batches(in_flight: list[int], replicas: int) -> set[int]:
    """The batch sizes `linear_ratios` reads: one row, each mean in flight, and its share per replica."""
    return {1} | set(in_flight) | {max(1, round(b / replicas)) for b in in_flight}


def ratios(curve: dict[int, dict[int, float]], in_flight: list[int], replicas: int) -> dict[int, dict]:
    """Per mean in flight, from a curve of tokens/s by threads and batch: streamed over one call at a time, and
    `replicas` engines of the fewer threads over one of the most."""
    whole, part = curve[max(curve)], curve[min(curve)]
    return {
        flight: {
            "ratio_vs_sequential": round(whole[flight] / whole[1], 2),
            "replicas_ratio_vs_one": round(replicas * part[max(1, round(flight / replicas))] / whole[flight], 2),
        }
        for flight in in_flight
    }


def print_curve(title: str, curve: dict[int, dict[int, float]]) -> None:
    print(f"{title}, tokens/s (speed-up per token over one row)")
    print(f"{'batch':>6}" + "".join(f"{f'{t} thread(s)':>24}" for t in curve))
    for batch in curve[max(curve)]:
        print(f"{batch:>6}" + "".join(f"{c[batch]:>14,.0f} ({c[batch] / c[1]:>5.2f}x)" for c in curve.values()))


def print_ratios(what: str, by_flight: dict[int, dict], replicas: int, cores: int, share: int) -> None:
    print(f"\n{what} ratios ({replicas} replicas of {share} core(s) vs one engine of {cores})")
    print(f"{'in flight':>10}{'streaming / one at a time':>28}{f'{replicas} replicas / one engine':>26}")
    for flight, c in by_flight.items():
        print(f"{flight:>10}{c['ratio_vs_sequential']:>28.2f}{c['replicas_ratio_vs_one']:>26.2f}")


def engine_curve(model: str, batches: set[int], share: int, replicas: int, tokens: int, compiled: bool) -> dict:
    """Generated tokens/s of the `vllm` backend's engine by thread count and batch: one engine on the machine's
    cores as `synth` starts it, then one in the environment `--backend ray` gives each of `replicas` replicas (its
    `share` of the cores)."""
    from emopillars.synth.backends.ray import RayBackend

    curve = {}
    replica = RayBackend(model=model, num_replicas=replicas).replica_env()
    for threads, env in ((os.cpu_count() or 1, {}), (share, replica)):
        saved = dict(os.environ)
        os.environ.update(env)  # the engine's process is spawned with this environment
        try:
            backend = VllmBackend(model=model, enforce_eager=not compiled)
            with backend:
                _engine_tokens_per_s(backend, min(max(batches), 16), tokens)  # warm-up: its first steps are slow
                curve[threads] = {b: _engine_tokens_per_s(backend, b, tokens) for b in sorted(batches)}
        finally:
            os.environ.clear()
            os.environ.update(saved)
    return curve


def _engine_tokens_per_s(backend: VllmBackend, batch: int, tokens: int) -> float:
    """The best of ENGINE_ROUNDS rounds of `batch` calls decoding `tokens` tokens each, side by side."""
    rounds = [partial(_decode, batch=batch, tokens=tokens, seed=seed) for seed in range(ENGINE_ROUNDS)]
    return max(backend.run(decode) for decode in rounds)


async def _decode(engine: ChatEngine, batch: int, tokens: int, seed: int) -> float:
    def call(i: int) -> Request:
        sampling = Sampling(max_tokens=tokens, seed=seed * 1000 + i)  # synth's temperature and top-p
        return Request(messages=[{"role": "user", "content": STORY}], sampling=sampling)

    async def decode(request: Request, request_id: str) -> None:
        params = engine.sampling_params(request, ignore_eos=True)
        async for _ in engine.engine.generate(engine.prompt(request), params, request_id=request_id):
            pass

    started = time.perf_counter()
    await asyncio.gather(*(decode(call(i), f"{batch}-{seed}-{i}") for i in range(batch)))
    return batch * tokens / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 3, 4, 6, 8, 16, 32, 64, 128])
    parser.add_argument(
        "--in-flight",
        type=int,
        nargs="+",
        default=[6, 52],
        help="Mean calls in flight to give the ratios at (bench_synth's ~6, the main job's ~52).",
    )
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--model", default=None, help="Generator whose layer shapes to time (default: embedded).")
    parser.add_argument("--engine", action="store_true", help="Also time the whole engine's steps (starts it twice).")
    parser.add_argument("--engine-tokens", type=int, default=64, help="Tokens each call of --engine generates.")
    parser.add_argument("--compiled", action="store_true", help="--engine with torch.compile (default: eager).")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    share = max(1, cores // args.replicas)  # one replica's cores
    model = args.model or str(generator_path())
    batches = set(args.batches) | needed_batches(args.in_flight, args.replicas)
    curve = batching_curve(layer_shapes(model), batches, {cores, share})
    kernel = kernel_name()
    print_curve(f"linear layers of one step ({kernel})", curve)
    linear = ratios(curve, args.in_flight, args.replicas)
    print_ratios("the linear layers'", linear, args.replicas, cores, share)
    result = {"kernel": kernel, "cores": cores, "replicas": args.replicas,
              "tokens_per_s": {t: {b: round(v) for b, v in c.items()} for t, c in curve.items()},
              "linear_ratios": linear}  # fmt: skip
    if args.engine:
        whole = engine_curve(model, batches, share, args.replicas, args.engine_tokens, args.compiled)
        print()
        print_curve(f"the whole engine ({'compiled' if args.compiled else 'eager'}), generated", whole)
        result["engine_tokens_per_s"] = {t: {b: round(v, 1) for b, v in c.items()} for t, c in whole.items()}
        result["engine_ratios"] = ratios(whole, args.in_flight, args.replicas)
        print_ratios("the whole engine's", result["engine_ratios"], args.replicas, cores, share)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
