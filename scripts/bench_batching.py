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

A whole step differs: decode attention reads each call's own cache, so it gains less from batching, and the
scheduler and the structured-output masks, one thread per engine, run side by side on several replicas.
The last line is JSON.

    python scripts/bench_batching.py [--in-flight 6 52] [--batches 1 2 3 4 6 8 16 32 64 128] [--replicas 2]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable

import torch
from transformers import AutoConfig

from emopillars.assets import generator_path

# Each point is timed in REPEATS blocks of BLOCK_SECONDS after a warm-up call, and the fastest block counts: what
# else the machine runs only ever slows a block down.
REPEATS, BLOCK_SECONDS = 5, 0.1


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


def linear_ratios(curve: dict[int, dict[int, float]], in_flight: list[int], replicas: int) -> dict[int, dict]:
    """Per mean in flight: the linear layers' tokens/s streamed over one call at a time, and `replicas` engines over
    one."""
    whole, part = curve[max(curve)], curve[min(curve)]
    return {
        flight: {
            "ratio_vs_sequential": round(whole[flight] / whole[1], 2),
            "replicas_ratio_vs_one": round(replicas * part[max(1, round(flight / replicas))] / whole[flight], 2),
        }
        for flight in in_flight
    }


def print_ratios(ratios: dict[int, dict], replicas: int, cores: int, share: int) -> None:
    print(f"\nthe linear layers' ratios ({replicas} replicas of {share} core(s) vs one engine of {cores})")
    print(f"{'in flight':>10}{'streaming / one at a time':>28}{f'{replicas} replicas / one engine':>26}")
    for flight, c in ratios.items():
        print(f"{flight:>10}{c['ratio_vs_sequential']:>28.2f}{c['replicas_ratio_vs_one']:>26.2f}")


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
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    share = max(1, cores // args.replicas)  # one replica's cores
    shapes = layer_shapes(args.model or str(generator_path()))
    batches = set(args.batches) | needed_batches(args.in_flight, args.replicas)
    curve = batching_curve(shapes, batches, {cores, share})
    kernel = kernel_name()
    print(f"linear layers of one step ({kernel}), tokens/s (speed-up per token over one row)")
    print(f"{'batch':>6}" + "".join(f"{f'{t} thread(s)':>24}" for t in curve))
    for batch in curve[max(curve)]:
        print(f"{batch:>6}" + "".join(f"{c[batch]:>14,.0f} ({c[batch] / c[1]:>5.2f}x)" for c in curve.values()))
    ratios = linear_ratios(curve, args.in_flight, args.replicas)
    print_ratios(ratios, args.replicas, cores, share)
    print(json.dumps({"kernel": kernel, "cores": cores, "replicas": args.replicas,
                      "tokens_per_s": {t: {b: round(v) for b, v in c.items()} for t, c in curve.items()},
                      "linear_ratios": ratios}))  # fmt: skip


if __name__ == "__main__":
    main()
