"""Benchmark `emopillars synth`: the batched pipeline against a one-call-at-a-time baseline.

Both run the same small synthesis on the same loaded engine in one process: the pipeline submits
each stage's calls at once (`chunk_size` large), the baseline sends the same prompts one call per
`generate` (`chunk_size=1`), as a hand-written loop would. Every request carries its own seed, so
both make the same examples. Then the pipeline is rerun on its cache (no LLM call). The same figures follow for
the transformers backend. `--backend ray --num-replicas N` runs the same prompts through N engines under Ray
(one Ray job per stage attempt, so no one-call-at-a-time baseline) beside the `vllm` backend. Prints one table per
backend, then a projection of a large corpus from the measured calls and tokens per kept example, on one GPU and
per replica count; the last line is JSON.

    python scripts/bench_synth.py [--backend vllm|ray] [--num-replicas 2] [--max-passages 2] [--label-samples 3]
                                  [--no-transformers] [--enforce-eager] [--max-retries 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from emopillars.assets import generator_path
from emopillars.synth.config import SynthConfig
from emopillars.synth.pipeline import build_backend, synthesize
from emopillars.synth.report import SynthReport


def measure(config: SynthConfig, backend) -> dict:
    started = time.perf_counter()
    report: SynthReport = synthesize(config, backend=backend)
    seconds = time.perf_counter() - started
    kept = sum(report.examples.values())
    tokens = report.prompt_tokens + report.generated_tokens
    return {
        "seconds": round(seconds, 1),
        "kept": kept,
        "kept_per_minute": round(60 * kept / seconds, 2),
        "llm_calls": report.llm_calls,
        "calls_per_kept_example": round(report.llm_calls / max(kept, 1), 2),
        "tokens_per_kept_example": round(tokens / max(kept, 1), 1),
        "generated_tokens_per_s": round(report.generated_tokens / seconds, 1),
        "generated_tokens_per_kept_example": round(report.generated_tokens / max(kept, 1), 1),
    }


def bench_backend(name: str, base: dict, root: Path, sequential: bool = True) -> dict:
    """Engine start, pipeline, sequential baseline (not for ray: a job per call) and cached rerun on one backend.

    The pipeline row's `engine_start_s` is the time loading took: one engine for `vllm`; for `ray` only the
    processor is built, and every job starts its replicas inside the pipeline's time.
    """
    config = SynthConfig(backend=name, out=root / f"{name}-batched", **base)
    backend = build_backend(config)
    rows = {}
    started = time.perf_counter()
    with backend:  # loads it
        loaded = round(time.perf_counter() - started, 1)
        rows["pipeline"] = {**measure(config, backend), "engine_start_s": loaded}
        if sequential and name != "ray":
            sequential_config = config.model_copy(
                update={"out": root / f"{name}-sequential", "chunk_size": 1, "batch_size": 1}
            )
            rows["sequential"] = measure(sequential_config, backend)
        rows["cached_rerun"] = measure(config, backend)
    return rows


def replica_projection(examples: int, tokens_per_example: float, gpu_tokens_per_s: float, engine_start_s: float,
                       jobs: int) -> list[dict]:  # fmt: skip
    """GPU-hours and wall hours per replica count, each replica one GPU generating at `gpu_tokens_per_s`.

    Assumes decoding dominates and replicas share nothing (throughput adds up); each of `jobs` Ray jobs starts
    every replica's engine once, which costs every replica `engine_start_s`.
    """
    decode_hours = examples * tokens_per_example / gpu_tokens_per_s / 3600
    rows = []
    for replicas in (1, 2, 4, 8, 16):
        start_hours = jobs * engine_start_s / 3600
        wall = decode_hours / replicas + start_hours
        rows.append({"replicas": replicas, "gpu_hours": round(wall * replicas, 1), "wall_hours": round(wall, 2)})
    return rows


def print_table(name: str, rows: dict) -> None:
    cols = ["seconds", "kept", "kept_per_minute", "llm_calls", "calls_per_kept_example", "tokens_per_kept_example",
            "generated_tokens_per_s"]  # fmt: skip
    print(f"\nbackend: {name} (load: {rows['pipeline']['engine_start_s']} s)")
    print(f"{'run':<14}" + "".join(f"{c:>24}" for c in cols))
    for run, figures in rows.items():
        print(f"{run:<14}" + "".join(f"{figures[c]:>24}" for c in cols))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="vllm", choices=["vllm", "ray", "openai", "transformers"])
    parser.add_argument("--num-replicas", type=int, default=2, help="Engines under Ray (backend ray).")
    parser.add_argument("--model", default=None, help="Default: the embedded SmolLM2-135M-Instruct.")
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--max-passages", type=int, default=3)
    parser.add_argument("--label-samples", type=int, default=3)
    parser.add_argument("--no-transformers", action="store_true", help="Skip the transformers backend table.")
    parser.add_argument("--enforce-eager", action="store_true", help="vLLM engines without torch.compile.")
    parser.add_argument("--max-retries", type=int, default=2, help="Retries per call (on ray, each is another job).")
    parser.add_argument("--project", type=int, default=400_000, help="Corpus size (kept examples) to project.")
    parser.add_argument(
        "--gpu-tokens-per-s",
        type=float,
        default=2149.0,
        help="Generated tokens/s of the target GPU (default: Mistral-7B shape, batch 256, one H100, ENVIRONMENT.md).",
    )
    parser.add_argument("--engine-start-s", type=float, default=120.0, help="Seconds a 7B engine takes to start.")
    parser.add_argument("--jobs", type=int, default=15, help="Ray jobs in a run: stages x attempts (5 x 3).")
    args = parser.parse_args()

    base = dict(
        model=args.model or generator_path(), base_url=args.base_url, max_passages=args.max_passages,
        max_characters=2, emotions_per_character=2, contextless_per_example=2, label_samples=args.label_samples,
        num_replicas=args.num_replicas, enforce_eager=args.enforce_eager, max_retries=args.max_retries,
    )  # fmt: skip
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        backends = [args.backend] + (["vllm"] if args.backend == "ray" else [])
        backends += [] if args.no_transformers or args.backend == "transformers" else ["transformers"]
        for name in backends:
            # Beside ray, `vllm` is the baseline: its own one-call-at-a-time run is not needed.
            results[name] = bench_backend(name, base, Path(tmp), sequential=args.backend != "ray")
            print_table(name, results[name])
    main_rows = results[args.backend]
    ours = main_rows["pipeline"]
    baseline = main_rows.get("sequential") or results["vllm"]["pipeline"]  # ray: against the one vLLM engine
    # Both sent the same prompts with the same seeds, so the same work: the ratio is one of wall times.
    ratio = baseline["seconds"] / max(ours["seconds"], 1e-9)
    projection, replicas = None, []
    if not ours["kept"]:
        print("\nno example kept: nothing to project from (raise --max-passages or --max-retries)")
    else:
        # Generation-bound: prefill of the (shared-prefix) prompts is far cheaper per token than decoding on a GPU.
        per_example = ours["generated_tokens_per_kept_example"]
        projection = {
            "examples": args.project,
            "llm_calls": round(args.project * ours["calls_per_kept_example"]),
            "generated_tokens": round(args.project * per_example),
            "gpu_hours": round(args.project * per_example / args.gpu_tokens_per_s / 3600, 1),
            "gpu_tokens_per_s": args.gpu_tokens_per_s,
        }
        print(
            f"\nprojection: {args.project:,} kept examples at this run's yield = {projection['llm_calls']:,} calls, "
            f"{projection['generated_tokens']:,} generated tokens, {projection['gpu_hours']} GPU-hours at "
            f"{args.gpu_tokens_per_s:,.0f} generated tokens/s"
        )
        replicas = replica_projection(args.project, per_example, args.gpu_tokens_per_s, args.engine_start_s, args.jobs)
        print(f"per replica count (engine start {args.engine_start_s:.0f} s x {args.jobs} jobs):")
        for row in replicas:
            hours = f"{row['gpu_hours']:>8} GPU-hours, {row['wall_hours']:>8} hours wall"
            print(f"  {row['replicas']:>3} replicas: {hours}")
    print(
        json.dumps(
            {
                "backend": args.backend,
                "ratio_vs_sequential" if "sequential" in main_rows else "ratio_vs_vllm": round(ratio, 2),
                "kept_per_minute": ours["kept_per_minute"],
                "tokens_per_kept_example": ours["tokens_per_kept_example"],
                "calls_per_kept_example": ours["calls_per_kept_example"],
                "cached_rerun_seconds": main_rows["cached_rerun"]["seconds"],
                "projection": projection,
                "replica_projection": replicas,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
