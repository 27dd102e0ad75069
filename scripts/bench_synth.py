"""Benchmark `emopillars synth`: the batched pipeline against a one-call-at-a-time baseline.

Both run the same small synthesis on the same loaded engine in one process: the pipeline submits
each stage's calls at once (`chunk_size` large), the baseline sends the same prompts one call per
`generate` (`chunk_size=1`), as a hand-written loop would. Every request carries its own seed, so
both make the same examples. Then the pipeline is rerun on its cache (no LLM call). The same figures follow for
the transformers backend. Prints one table per backend, then a projection of a large corpus on one GPU from the
measured calls and tokens per kept example; the last line is JSON.

    python scripts/bench_synth.py [--backend vllm] [--max-passages 2] [--label-samples 3] [--no-transformers]
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


def bench_backend(name: str, base: dict, root: Path) -> dict:
    """Pipeline, sequential baseline and cached rerun on one loaded backend."""
    config = SynthConfig(backend=name, out=root / f"{name}-batched", **base)
    backend = build_backend(config)
    with backend:
        ours = measure(config, backend)
        sequential_config = config.model_copy(
            update={"out": root / f"{name}-sequential", "chunk_size": 1, "batch_size": 1}
        )
        sequential = measure(sequential_config, backend)
        cached = measure(config, backend)
    return {"pipeline": ours, "sequential": sequential, "cached_rerun": cached}


def print_table(name: str, rows: dict) -> None:
    cols = ["seconds", "kept", "kept_per_minute", "llm_calls", "calls_per_kept_example", "tokens_per_kept_example",
            "generated_tokens_per_s"]  # fmt: skip
    print(f"\nbackend: {name}")
    print(f"{'run':<14}" + "".join(f"{c:>24}" for c in cols))
    for run, figures in rows.items():
        print(f"{run:<14}" + "".join(f"{figures[c]:>24}" for c in cols))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="vllm", choices=["vllm", "openai", "transformers"])
    parser.add_argument("--model", default=None, help="Default: the embedded SmolLM2-135M-Instruct.")
    parser.add_argument("--base-url", default=None)
    parser.add_argument("--max-passages", type=int, default=3)
    parser.add_argument("--label-samples", type=int, default=3)
    parser.add_argument("--no-transformers", action="store_true", help="Skip the transformers backend table.")
    parser.add_argument("--project", type=int, default=400_000, help="Corpus size (kept examples) to project.")
    parser.add_argument(
        "--gpu-tokens-per-s", type=float, default=2149.0,
        help="Generated tokens/s of the target GPU (default: Mistral-7B shape, batch 256, one H100, ENVIRONMENT.md).",
    )  # fmt: skip
    args = parser.parse_args()

    base = dict(
        model=args.model or generator_path(), base_url=args.base_url, max_passages=args.max_passages,
        max_characters=2, emotions_per_character=2, contextless_per_example=2, label_samples=args.label_samples,
    )  # fmt: skip
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        backends = [args.backend] + ([] if args.no_transformers or args.backend == "transformers" else ["transformers"])
        for name in backends:
            results[name] = bench_backend(name, base, Path(tmp))
            print_table(name, results[name])
    main_rows = results[args.backend]
    ratio = main_rows["pipeline"]["kept_per_minute"] / max(main_rows["sequential"]["kept_per_minute"], 1e-9)
    ours = main_rows["pipeline"]
    # Generation-bound: prefill of the (shared-prefix) prompts is far cheaper per token than decoding on a GPU.
    projection = {
        "examples": args.project,
        "llm_calls": round(args.project * ours["calls_per_kept_example"]),
        "generated_tokens": round(args.project * ours["generated_tokens_per_kept_example"]),
        "gpu_hours": round(args.project * ours["generated_tokens_per_kept_example"] / args.gpu_tokens_per_s / 3600, 1),
        "gpu_tokens_per_s": args.gpu_tokens_per_s,
    }
    print(
        f"\nprojection: {args.project:,} kept examples at this run's yield = {projection['llm_calls']:,} calls, "
        f"{projection['generated_tokens']:,} generated tokens, {projection['gpu_hours']} GPU-hours at "
        f"{args.gpu_tokens_per_s:,.0f} generated tokens/s"
    )
    print(
        json.dumps(
            {
                "backend": args.backend,
                "ratio_vs_sequential": round(ratio, 2),
                "kept_per_minute": main_rows["pipeline"]["kept_per_minute"],
                "tokens_per_kept_example": main_rows["pipeline"]["tokens_per_kept_example"],
                "calls_per_kept_example": main_rows["pipeline"]["calls_per_kept_example"],
                "cached_rerun_seconds": main_rows["cached_rerun"]["seconds"],
                "projection": projection,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
