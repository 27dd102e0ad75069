"""Benchmark `emopillars synth`: streaming vs one call at a time, Ray vs vLLM, and a corpus projection with prefill.

All runs happen in one process, on the same small synthesis (same config, same seeds, so the same prompts); the
de-duplication embedder is loaded before any timing, so no run pays for it alone:

1. Streaming vs sequential, on the same loaded engine. The streaming run keeps up to `--max-in-flight` calls out
   at once (the engine batches them); the baseline is the same config with `max_in_flight=1` (and
   `transformers_batch_size=1`): one call at a time, as a hand-written loop would send them. On the `vllm` backend the
   engine's prefix cache is emptied before the baseline, so it does not reuse the streaming run's prompts. Then
   the streaming run again on its cache (no LLM call). One row per run: seconds, kept examples, calls, prompt and
   generated tokens, generated tokens/s, the label stage's prefix hit rate, the engine busy share and the mean
   number of calls in flight (the batch the run gave the engine).
2. Prefix hit rate per stage of the streaming run: prompt tokens, those vLLM served from its prefix cache, share.
3. `--backend ray --num-replicas 2`: the same prompts through 2 engine actors (started once, in `backend.load()`,
   serving every stage and retry) beside one `vllm` engine. Each backend's load time is reported apart as
   `engine_start_s`; `ray_ratio_vs_vllm` is vllm seconds / ray seconds without it (and with it, beside). The
   `vllm` streaming row is Ray's baseline; `vllm` keeps its one-call-at-a-time row, so one run of the bench
   gives `ratio_vs_sequential` (of the `vllm` engine) too.
   The transformers table (its own streaming, sequential and cached rows) is off by default: add `--transformers`.
   Its outputs depend on what shares a batch, so its two runs need not make the same examples.
4. A projection of `--project` kept examples from the streaming run's tokens per kept example. GPU-hours =
   generated tokens / `--gpu-tokens-per-s` + prompt tokens not served from the prefix cache /
   `--gpu-prefill-tokens-per-s`, and beside it the same without prefix reuse (every prompt token prefilled).
   Then per replica count (1, 2, 4, 8, 16), each replica one GPU whose engine starts once per run
   (`--engine-start-s`); replicas share nothing and keep the measured hit rates.

Prints the tables and the projection; the last line is JSON (`ratio_vs_sequential`, `label_prefix_hit_rate`,
`ray_ratio_vs_vllm`, every row, the per-stage prefix table and the projection), also written to `--json-out`.

    python scripts/bench_synth.py [--backend vllm|ray|openai|transformers] [--num-replicas 2] [--max-passages 3]
                                  [--label-samples 3] [--max-in-flight 128] [--transformers] [--enforce-eager]
                                  [--max-retries 2] [--send-ahead auto|on|off] [--gpu-prefill-tokens-per-s 20000]
                                  [--json-out bench.json]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from emopillars.assets import generator_path
from emopillars.synth.backends import Backend
from emopillars.synth.backends.vllm import VllmBackend
from emopillars.synth.config import SynthConfig
from emopillars.synth.pipeline import build_backend, synthesize
from emopillars.synth.report import SynthReport
from emopillars.synth.runner import hit_rate

REPLICA_COUNTS = (1, 2, 4, 8, 16)
ROW_COLUMNS = ("seconds", "kept", "llm_calls", "prompt_tokens", "generated_tokens", "generated_tokens_per_s",
               "label_prefix_hit_rate", "engine_busy_share", "mean_in_flight", "sent_ahead", "withdrawn",
               "withdrawn_tokens")  # fmt: skip
SHARES = ("label_prefix_hit_rate", "engine_busy_share")


def measure(config: SynthConfig, backend: Backend) -> dict:
    """One synthesis on the loaded `backend`: its wall time and what the report says it sent, kept and reused."""
    started = time.perf_counter()
    report: SynthReport = synthesize(config, backend=backend)
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 1),
        "kept": sum(report.examples.values()),
        "llm_calls": report.llm_calls,
        "prompt_tokens": report.prompt_tokens,
        "generated_tokens": report.generated_tokens,
        "generated_tokens_per_s": round(report.generated_tokens / seconds, 1),
        "label_prefix_hit_rate": report.prefix_cache.get("labels", {}).get("hit_rate"),
        "engine_busy_share": report.engine_busy_share,
        "mean_in_flight": report.mean_in_flight,
        "sent_ahead": report.sent_ahead,
        "withdrawn": report.withdrawn,
        "withdrawn_tokens": report.withdrawn_tokens,
        "prefix_cache": report.prefix_cache,
    }


def reset_prefix_cache(backend: Backend) -> bool:
    """Empty the prefix cache of an in-process vLLM engine (`vllm` backend); False where there is none to empty.

    Without it, a second run of the same prompts on the same engine would find them all cached.
    """
    if type(backend) is not VllmBackend:
        return False
    backend.reset_prefix_cache()
    return True


def warm_embedder() -> None:
    """Load the de-duplication embedder before any timing, so the first run does not pay for it alone."""
    from emopillars.synth.embed import embed

    embed(["warm-up"])


def bench_backend(name: str, base: dict, root: Path, sequential: bool) -> dict:
    """Engine start, then the streaming run, the one-call-at-a-time baseline (if `sequential`) and the cached
    rerun, all on the one loaded backend."""
    config = SynthConfig(backend=name, out=root / f"{name}-streaming", **base)
    backend = build_backend(config)
    runs: dict[str, dict] = {}
    started = time.perf_counter()
    with backend:  # loads it: one engine for `vllm`, every replica's engine for `ray`
        engine_start_s = round(time.perf_counter() - started, 1)
        runs["streaming"] = measure(config, backend)
        if sequential:
            reset = reset_prefix_cache(backend)
            one_at_a_time = config.model_copy(
                update={"out": root / f"{name}-sequential", "max_in_flight": 1, "transformers_batch_size": 1}
            )
            runs["sequential"] = {**measure(one_at_a_time, backend), "prefix_cache_reset": reset}
        runs["cached_rerun"] = measure(config, backend)
    return {"engine_start_s": engine_start_s, "runs": runs}


def prefix_row(stage: str, prompt_tokens: int, cached_tokens: int) -> dict:
    return {"stage": stage, "prompt_tokens": prompt_tokens, "cached_tokens": cached_tokens,
            "hit_rate": hit_rate(prompt_tokens, cached_tokens)}  # fmt: skip


def prefix_rows(prefix_cache: dict[str, dict]) -> list[dict]:
    """Per stage, then in total: prompt tokens, those served from the prefix cache, and their share."""
    rows = [prefix_row(stage, c["prompt_tokens"], c["cached_tokens"]) for stage, c in prefix_cache.items()]
    total = prefix_row("total", sum(r["prompt_tokens"] for r in rows), sum(r["cached_tokens"] for r in rows))
    return rows + [total]


def per_kept_example(row: dict) -> dict | None:
    """Calls and tokens per kept example of a run; prefill counts only prompt tokens not served from the cache."""
    if not row["kept"]:
        return None
    kept = row["kept"]
    cached = sum(c["cached_tokens"] for c in row["prefix_cache"].values())
    return {
        "llm_calls": round(row["llm_calls"] / kept, 2),
        "prompt_tokens": round(row["prompt_tokens"] / kept, 1),
        "prefill_tokens": round((row["prompt_tokens"] - cached) / kept, 1),
        "generated_tokens": round(row["generated_tokens"] / kept, 1),
    }


def gpu_hours(examples: int, per_example: dict, decode_per_s: float, prefill_per_s: float) -> dict:
    """GPU-hours of `examples` kept examples on one GPU: decoding plus prefill, with and without prefix reuse."""
    decode = examples * per_example["generated_tokens"] / decode_per_s / 3600
    prefill = examples * per_example["prefill_tokens"] / prefill_per_s / 3600
    prefill_all = examples * per_example["prompt_tokens"] / prefill_per_s / 3600
    return {
        "decode_hours": round(decode, 2),
        "prefill_hours": round(prefill, 2),
        "gpu_hours": round(decode + prefill, 1),
        "prefill_hours_no_prefix_reuse": round(prefill_all, 2),
        "gpu_hours_no_prefix_reuse": round(decode + prefill_all, 1),
    }


def project(examples: int, row: dict, decode_per_s: float, prefill_per_s: float) -> dict | None:
    """The corpus of `examples` kept examples at the yield of `row`; None when the run kept nothing."""
    per_example = per_kept_example(row)
    if per_example is None:
        return None
    return {
        "examples": examples,
        "per_kept_example": per_example,
        "llm_calls": round(examples * per_example["llm_calls"]),
        "prompt_tokens": round(examples * per_example["prompt_tokens"]),
        "prefill_tokens": round(examples * per_example["prefill_tokens"]),
        "generated_tokens": round(examples * per_example["generated_tokens"]),
        "gpu_tokens_per_s": decode_per_s,
        "gpu_prefill_tokens_per_s": prefill_per_s,
        **gpu_hours(examples, per_example, decode_per_s, prefill_per_s),
    }


def replica_projection(projection: dict, engine_start_s: float) -> list[dict]:
    """GPU-hours and wall hours per replica count, each replica one GPU whose engine starts once per run.

    The work splits evenly (replicas share nothing, so throughput adds up); every replica pays `engine_start_s`.
    """
    start = engine_start_s / 3600
    rows = []
    for replicas in REPLICA_COUNTS:
        wall = projection["gpu_hours"] / replicas + start
        wall_all = projection["gpu_hours_no_prefix_reuse"] / replicas + start
        rows.append({
            "replicas": replicas,
            "gpu_hours": round(wall * replicas, 1),
            "wall_hours": round(wall, 2),
            "gpu_hours_no_prefix_reuse": round(wall_all * replicas, 1),
            "wall_hours_no_prefix_reuse": round(wall_all, 2),
        })  # fmt: skip
    return rows


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def print_runs(name: str, result: dict) -> None:
    print(f"\nbackend: {name} (engine start: {result['engine_start_s']} s)")
    print(f"{'run':<14}" + "".join(f"{c:>24}" for c in ROW_COLUMNS))
    for run, row in result["runs"].items():
        shown = [pct(row[c]) if c in SHARES else str(row[c]) for c in ROW_COLUMNS]
        print(f"{run:<14}" + "".join(f"{v:>24}" for v in shown))


def print_prefix(name: str, rows: list[dict]) -> None:
    print(f"\nprefix cache of the {name} streaming run (prompt tokens the engine did not prefill again):")
    print(f"  {'stage':<12}{'prompt_tokens':>16}{'cached_tokens':>16}{'hit_rate':>10}")
    for r in rows:
        print(f"  {r['stage']:<12}{r['prompt_tokens']:>16}{r['cached_tokens']:>16}{pct(r['hit_rate']):>10}")


def print_projection(projection: dict, replicas: list[dict], engine_start_s: float) -> None:
    p = projection
    print(
        f"\nprojection: {p['examples']:,} kept examples at this run's yield = {p['llm_calls']:,} calls, "
        f"{p['generated_tokens']:,} generated tokens, {p['prompt_tokens']:,} prompt tokens of which "
        f"{p['prefill_tokens']:,} to prefill (the rest from the prefix cache)"
    )
    print(
        f"  one GPU at {p['gpu_tokens_per_s']:,.0f} generated and {p['gpu_prefill_tokens_per_s']:,.0f} prefilled "
        f"tokens/s: {p['gpu_hours']} GPU-hours ({p['decode_hours']} decode + {p['prefill_hours']} prefill); "
        f"without prefix reuse {p['gpu_hours_no_prefix_reuse']} ({p['prefill_hours_no_prefix_reuse']} prefill)"
    )
    print(f"per replica count (each engine starts once: {engine_start_s:.0f} s):")
    for row in replicas:
        print(
            f"  {row['replicas']:>3} replicas: {row['gpu_hours']:>8} GPU-hours, {row['wall_hours']:>8} hours wall"
            f"   (no prefix reuse: {row['gpu_hours_no_prefix_reuse']:>8} GPU-hours, "
            f"{row['wall_hours_no_prefix_reuse']:>8} hours wall)"
        )


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / max(denominator, 1e-9), 2)


def summary(args: argparse.Namespace, results: dict, projection: dict | None, replicas: list[dict]) -> dict:
    """The JSON line: the headline ratios, the rows, the main streaming run's prefix table and the projection."""
    main_result = results[args.backend]
    streaming = main_result["runs"]["streaming"]
    # Streaming vs one call at a time on one engine: the `vllm` engine's, beside ray.
    own = results["vllm" if args.backend == "ray" else args.backend]["runs"]
    ray_ratio = ray_ratio_with_start = None
    if args.backend == "ray":
        # Same prompts, same seeds on both: the same work, so a ratio of wall times.
        vllm = results["vllm"]
        ray_ratio = ratio(vllm["runs"]["streaming"]["seconds"], streaming["seconds"])
        ray_ratio_with_start = ratio(vllm["runs"]["streaming"]["seconds"] + vllm["engine_start_s"],
                                     streaming["seconds"] + main_result["engine_start_s"])  # fmt: skip
    return {
        "backend": args.backend,
        "max_in_flight": args.max_in_flight,
        "ratio_vs_sequential": ratio(own["sequential"]["seconds"], own["streaming"]["seconds"]),
        "label_prefix_hit_rate": streaming["label_prefix_hit_rate"],
        "ray_ratio_vs_vllm": ray_ratio,
        "ray_ratio_vs_vllm_with_engine_start": ray_ratio_with_start,
        "engine_start_s": {name: r["engine_start_s"] for name, r in results.items()},
        "engine_busy_share": streaming["engine_busy_share"],
        "mean_in_flight": streaming["mean_in_flight"],
        "cached_rerun_seconds": main_result["runs"]["cached_rerun"]["seconds"],
        "cached_rerun_llm_calls": main_result["runs"]["cached_rerun"]["llm_calls"],
        "prefix_cache": prefix_rows(streaming["prefix_cache"]),
        "projection": projection,
        "replica_projection": replicas,
        "results": results,
    }


def main() -> None:
    default_in_flight = SynthConfig.model_fields["max_in_flight"].default
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="vllm", choices=["vllm", "ray", "openai", "transformers"])
    parser.add_argument("--num-replicas", type=int, default=2, help="Engines under Ray (backend ray).")
    parser.add_argument("--model", default=None, help="Default: the embedded SmolLM2-135M-Instruct.")
    parser.add_argument("--base-url", default=None, help="OpenAI-compatible server (backend openai).")
    parser.add_argument("--max-passages", type=int, default=3)
    parser.add_argument("--label-samples", type=int, default=3)
    parser.add_argument(
        "--max-in-flight", type=int, default=default_in_flight, help=f"Calls out at once (default {default_in_flight})."
    )
    parser.add_argument(
        "--transformers",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="Add the transformers backend's table (default: skipped; --no-transformers skips it).",
    )
    parser.add_argument("--enforce-eager", action="store_true", help="vLLM engines without torch.compile.")
    parser.add_argument("--max-retries", type=int, default=2, help="Retries of a call whose answer fails its checks.")
    parser.add_argument("--project", type=int, default=400_000, help="Corpus size (kept examples) to project.")
    parser.add_argument(
        "--gpu-tokens-per-s",
        type=float,
        default=2149.0,
        help="Generated (decode) tokens/s of the target GPU (default: Mistral-7B shape, batch 256, one H100, "
        "ENVIRONMENT.md).",
    )
    parser.add_argument(
        "--gpu-prefill-tokens-per-s",
        type=float,
        default=20_000.0,
        help="Prompt tokens/s the target GPU prefills. The default (a 7B model on one H100) is an assumption, not a "
        "measurement: set it from your own engine's figures.",
    )
    parser.add_argument(
        "--engine-start-s", type=float, default=120.0, help="Seconds a replica's 7B engine takes to start (once)."
    )
    parser.add_argument(
        "--send-ahead", default="auto", choices=["auto", "on", "off"], help="The streaming runs' (synth's option)."
    )
    parser.add_argument("--json-out", type=Path, default=None, help="Also write the JSON line's object here.")
    args = parser.parse_args()

    base = dict(
        model=args.model or generator_path(), base_url=args.base_url, max_passages=args.max_passages,
        max_characters=2, emotions_per_character=2, contextless_per_example=2, label_samples=args.label_samples,
        num_replicas=args.num_replicas, enforce_eager=args.enforce_eager, max_retries=args.max_retries,
        max_in_flight=args.max_in_flight, send_ahead=args.send_ahead,
    )  # fmt: skip
    backends = [args.backend] + (["vllm"] if args.backend == "ray" else [])
    backends += ["transformers"] if args.transformers and args.backend != "transformers" else []
    results = {}
    warm_embedder()
    with tempfile.TemporaryDirectory() as tmp:
        for name in backends:
            # Ray gets no one-call-at-a-time run (its baseline is the `vllm` streaming run); every other backend does.
            results[name] = bench_backend(name, base, Path(tmp), sequential=name != "ray")
            print_runs(name, results[name])
            print_prefix(name, prefix_rows(results[name]["runs"]["streaming"]["prefix_cache"]))
    streaming = results[args.backend]["runs"]["streaming"]
    projection = project(args.project, streaming, args.gpu_tokens_per_s, args.gpu_prefill_tokens_per_s)
    replicas: list[dict] = []
    if projection is None:
        print("\nno example kept: nothing to project from (raise --max-passages or --max-retries)")
    else:
        replicas = replica_projection(projection, args.engine_start_s)
        print_projection(projection, replicas, args.engine_start_s)
    line = json.dumps(summary(args, results, projection, replicas))
    if args.json_out is not None:
        args.json_out.write_text(line + "\n")
    print(line)


if __name__ == "__main__":
    main()
