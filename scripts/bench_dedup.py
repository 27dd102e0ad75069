"""Benchmark near-duplicate removal: emopillars' faiss index vs an exact all-pairs search.

N random unit vectors (384-d, the MiniLM width) with a share of planted near duplicates: noisy
copies of earlier items at cosine 0.93-0.99. Both methods resolve duplicates in input order
(first occurrence kept); the table reports time, recall of the planted pairs and removals.
The last line is JSON: ratio_vs_exact (exact seconds / ours) and recall.

    python scripts/bench_dedup.py --n 100000 [--threads 1]

On a shared machine, --threads 1 keeps both methods from fighting other jobs for cores.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections.abc import Callable

import numpy as np

from emopillars.synth.dedup import EXACT_BELOW, DedupResult, deduplicate


def planted_corpus(n: int, dim: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors where `share` of the rows copy an earlier, original row at cosine 0.93-0.99.

    Returns:
        (N, dim) float32 vectors and, per row, the index of the row it copies (-1 for originals).
    """
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    source = np.full(n, -1)
    copies = rng.choice(np.arange(1, n), size=int(share * n), replace=False)
    source[copies] = [rng.integers(0, c) for c in copies]
    source[source >= 0] = _original(source)[source >= 0]  # a copy of a copy copies the original
    for c in copies:
        v = vectors[source[c]]
        noise = rng.standard_normal(dim).astype(np.float32)
        noise -= (noise @ v) * v  # orthogonal to v, so the cosine is exactly `cos`
        noise /= np.linalg.norm(noise)
        cos = rng.uniform(0.93, 0.99)
        vectors[c] = cos * v + np.sqrt(1 - cos**2) * noise
    return vectors, source


def _original(source: np.ndarray) -> np.ndarray:
    root = source.copy()
    for i in range(len(root)):
        if root[i] >= 0 and root[root[i]] >= 0:
            root[i] = root[root[i]]
    return root


def exact_all_pairs(vectors: np.ndarray, threshold: float, block: int = 4096) -> DedupResult:
    """The baseline: every pair scored by blocked matrix products, then resolved in input order."""
    earlier: dict[int, list[tuple[float, int]]] = {}
    for start in range(0, len(vectors), block):
        sims = vectors[start : start + block] @ vectors.T  # (B, N)
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            if c < start + r:
                earlier.setdefault(start + r, []).append((float(sims[r, c]), c))
    result = DedupResult()
    kept = np.zeros(len(vectors), dtype=bool)
    for i in range(len(vectors)):
        hits = [(s, j) for s, j in earlier.get(i, []) if kept[j]]
        if hits:
            result.removed[i] = ("near", max(hits)[1])
        else:
            kept[i] = True
            result.keep.append(i)
    return result


def timed(run: Callable[[], DedupResult]) -> tuple[DedupResult, float, float]:
    """The result, wall seconds and CPU seconds (all threads): on a shared machine CPU time is steadier."""
    cpu_before, wall_before = _cpu_seconds(), time.perf_counter()
    result = run()
    return result, time.perf_counter() - wall_before, _cpu_seconds() - cpu_before


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def recall(result: DedupResult, source: np.ndarray) -> float:
    planted = np.flatnonzero(source >= 0)
    return sum(int(i) in result.removed for i in planted) / max(1, len(planted))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--share", type=float, default=0.02, help="share of rows that are planted copies")
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--nprobe", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="BLAS and faiss threads for both (default: all)")
    args = parser.parse_args()
    if args.threads:
        import faiss
        from threadpoolctl import threadpool_limits

        faiss.omp_set_num_threads(args.threads)
        threadpool_limits(args.threads)

    vectors, source = planted_corpus(args.n, args.dim, args.share, args.seed)
    texts = [f"item {i}" for i in range(args.n)]  # all distinct: only the embeddings matter here

    ours, ours_s, ours_cpu = timed(lambda: deduplicate(texts, vectors, args.threshold, nprobe=args.nprobe))
    exact, exact_s, exact_cpu = timed(lambda: exact_all_pairs(vectors, args.threshold))

    method = "faiss IVF (ours)" if args.n >= EXACT_BELOW else "faiss flat (ours)"
    rows = [
        (method, ours_s, ours_cpu, recall(ours, source), len(ours.removed)),
        ("exact all-pairs", exact_s, exact_cpu, recall(exact, source), len(exact.removed)),
    ]
    planted = int((source >= 0).sum())
    print(f"N={args.n} dim={args.dim} planted={planted} threshold={args.threshold} threads={args.threads or 'all'}")
    print(f"{'method':<20} {'seconds':>9} {'cpu_s':>9} {'recall':>8} {'removed':>8}")
    for name, seconds, cpu, rec, removed in rows:
        print(f"{name:<20} {seconds:>9.2f} {cpu:>9.2f} {rec:>8.4f} {removed:>8}")
    agree = ours.removed == exact.removed
    print(f"same decisions as exact: {agree}")
    summary = {
        "n": args.n,
        "threads": args.threads,
        "ours_seconds": round(ours_s, 3),
        "exact_seconds": round(exact_s, 3),
        "ratio_vs_exact": round(exact_s / ours_s, 2),
        "cpu_ratio_vs_exact": round(exact_cpu / ours_cpu, 2),
        "recall": round(rows[0][3], 5),
        "exact_recall": round(rows[1][3], 5),
        "same_as_exact": agree,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
