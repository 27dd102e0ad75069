"""Benchmark the synth call cache: calls stored per second, syncing to disk on every call vs at most once a second.

The runner stores each answer on its event loop the moment it arrives, so the store's rate caps how many answers a
run can take in (several GPU replicas feeding one driver reach hundreds a second). The baseline syncs every call
(`SYNC_EVERY_S = 0`, what the cache did before); the default syncs at most every `SYNC_EVERY_S` seconds. Both write
the same lines, flushed at once (a kill loses nothing written). The last line is JSON.

    python scripts/bench_cache.py [--calls 2000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from emopillars.synth import cache
from emopillars.synth.backends import Completion

ANSWER = Completion(text='{"emotions": [{"emotion": "joy", "score": 0.9}]}', finish_reason="stop",
                    prompt_tokens=1000, completion_tokens=30, cached_tokens=900)  # fmt: skip


def calls_per_s(calls: int, sync_every_s: float) -> float:
    """Store `calls` answers one by one (as the runner does) and check they all read back."""
    cache.SYNC_EVERY_S = sync_every_s
    with tempfile.TemporaryDirectory() as tmp:
        store = cache.CallCache(Path(tmp), "labels")
        started = time.perf_counter()
        for i in range(calls):
            store.add([(f"call-{i}", ANSWER)])
        seconds = time.perf_counter() - started
        assert len(cache.CallCache(Path(tmp), "labels")) == calls
    return calls / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    default = cache.SYNC_EVERY_S
    rows = {
        "fsync every call": calls_per_s(args.calls, 0.0),
        f"fsync every {default:g} s": calls_per_s(args.calls, default),
    }
    print(f"{'store':<22}{'calls/s':>12}")
    for name, rate in rows.items():
        print(f"{name:<22}{rate:>12,.0f}")
    baseline, grouped = rows.values()
    print(json.dumps({"calls": args.calls, "calls_per_s": {k: round(v) for k, v in rows.items()},
                      "ratio_vs_fsync_every_call": round(grouped / baseline, 1)}))  # fmt: skip


if __name__ == "__main__":
    main()
