"""The demo under load: concurrent Classify requests through `gradio_client` to `emopillars demo` on 127.0.0.1.

Starts `emopillars demo --model M --concurrency C` (one server per --concurrency value), sends one warm-up
request, then --n requests (default 200) from --parallel client threads (default 16), each one text. Every
answer's predicted labels must equal `emopillars predict --batch-size 1` on the same text (the page answers
one text per request); a wrong or failed answer counts against `correct`. Each request also runs Integrated
Gradients for the top label, as the page does. The baseline, measured in the same run, is the page's own
handler called in this process one request at a time on the first --baseline texts (no server, no queue).
Prints a table; the last line is JSON with the figures of every row.

    python scripts/bench_demo.py [--model DIR] [--n 200] [--parallel 16] [--concurrency 4 ...]

Without --model the tiny classifier of the tests (MiniLM taught the made-up word "zorblax" = surprise) is
trained to a temporary folder; every other text carries that word, so answers differ.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _from_tests(relative: str):
    """A module of the test suite by file (the tests' tiny model and demo start-up, not copies of them)."""
    name = relative.replace("/", "_").removesuffix(".py")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / relative)
        sys.modules[name] = importlib.util.module_from_spec(spec)  # dataclasses look their module up there
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


def make_texts(n: int) -> list[str]:
    """n short sentences of the bundled corpus; every other one with the planted word after its first word."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_predict import make_texts as corpus_texts

    sentences = [t.split(". ")[0] for t in corpus_texts(n)]
    return [s if i % 2 else s.replace(" ", " zorblax ", 1) for i, s in enumerate(sentences)]


def expected_answers(model: str, texts: list[str], folder: Path) -> list[str]:
    """What the page should say for each text, from the `predict` command (one text per forward pass)."""
    from emopillars.demo.app import predicted_names

    (folder / "texts.txt").write_text("".join(t + "\n" for t in texts), encoding="utf-8")
    cmd = [sys.executable, "-m", "emopillars.cli", "predict", "--model", model, "--input", str(folder / "texts.txt"),
           "--out", str(folder / "predicted.jsonl"), "--batch-size", "1", "--no-progress", "-q"]  # fmt: skip
    subprocess.run(cmd, check=True, capture_output=True)
    rows = [json.loads(line) for line in (folder / "predicted.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in rows] == texts
    return [predicted_names(r["labels"]) for r in rows]


def summary(name: str, latencies: list[float], correct: int, wall: float) -> dict:
    ordered = sorted(latencies)
    return {
        "setting": name,
        "requests": len(latencies),
        "correct": correct,
        "p50_s": round(statistics.median(ordered), 3),
        "p95_s": round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 3),
        "max_s": round(ordered[-1], 3),
        "requests_per_s": round(len(latencies) / wall, 3),
    }


def in_process(model: str, texts: list[str], expected: list[str]) -> dict:
    """The page's Classify handler called directly, one text after another: the cost without server or queue.

    In one worker thread, as Gradio runs handlers: on a crowded CPU torch's two-thread kernels in the main
    thread ran Integrated Gradients ~5x slower here (29 s vs 6 s) than in a worker thread.
    """
    from emopillars.demo.app import classify
    from emopillars.demo.offer import Offer

    offer = Offer(models=(model,))

    def timed(text: str) -> tuple[str, float]:
        t0 = time.perf_counter()
        return classify(offer, model, text, "")[1], time.perf_counter() - t0

    with ThreadPoolExecutor(1) as worker:
        worker.submit(timed, texts[0]).result()  # warm-up: load, captum import
        start = time.perf_counter()
        results = list(worker.map(timed, texts))
        wall = time.perf_counter() - start
    correct = sum(answer == want for (answer, _), want in zip(results, expected, strict=True))
    return summary(f"in-process, one at a time ({len(texts)})", [s for _, s in results], correct, wall)


def served(model: str, texts: list[str], expected: list[str], parallel: int, concurrency: int, log: Path) -> dict:
    """`emopillars demo --concurrency C` answering len(texts) requests sent `parallel` at a time."""
    from gradio_client import Client

    demo = _from_tests("tests/demo/conftest.py").start_demo(log, "--model", model, "--concurrency", str(concurrency))
    try:
        client = Client(demo.url, verbose=False)
        client.predict(model, texts[0], "", api_name="/classify")  # warm-up: load, captum import

        def one(text: str) -> tuple[str | None, float]:
            t0 = time.perf_counter()
            try:
                answer = client.predict(model, text, "", api_name="/classify")[1]
            except Exception as exc:  # counted as wrong; the table says how many
                answer = f"{type(exc).__name__}: {exc}"
            return answer, time.perf_counter() - t0

        start = time.perf_counter()
        with ThreadPoolExecutor(parallel) as pool:
            results = list(pool.map(one, texts))
        wall = time.perf_counter() - start
    finally:
        demo.stop()
    wrong = [(t, a, w) for t, (a, _), w in zip(texts, results, expected, strict=True) if a != w]
    for text, got, want in wrong[:3]:
        print(f"wrong answer for {text!r}: page {got!r}, predict {want!r}", file=sys.stderr)
    name = f"demo --concurrency {concurrency}, {parallel} clients"
    return summary(name, [s for _, s in results], len(texts) - len(wrong), wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: the tests' tiny planted classifier)")
    parser.add_argument("--n", type=int, default=200, help="requests per server")
    parser.add_argument("--parallel", type=int, default=16, help="requests in flight at once")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4], help="the demo's --concurrency values")
    parser.add_argument("--baseline", type=int, default=32, help="texts of the in-process baseline")
    args = parser.parse_args()
    texts = make_texts(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        model = args.model or str(_from_tests("tests/conftest.py").train_planted(folder / "model"))
        print(f"model {args.model or 'planted (trained here)'} ready in {time.perf_counter() - t0:.0f} s")
        expected = expected_answers(model, texts, folder)
        rows = [in_process(model, texts[: args.baseline], expected[: args.baseline])]
        for c in args.concurrency:
            rows.append(served(model, texts, expected, args.parallel, c, folder / f"demo-{c}.log"))
    print(f"{args.n} Classify requests, {args.parallel} at a time; labels: {sorted(set(expected))}")
    print(f"{'setting':<40}{'requests':>9}{'correct':>9}{'p50 s':>8}{'p95 s':>8}{'max s':>8}{'req/s':>8}")
    for r in rows:
        print(f"{r['setting']:<40}{r['requests']:>9}{r['correct']:>9}{r['p50_s']:>8.2f}{r['p95_s']:>8.2f}"
              f"{r['max_s']:>8.2f}{r['requests_per_s']:>8.2f}")  # fmt: skip
    base = rows[0]["requests_per_s"]
    ratios = {r["setting"]: round(r["requests_per_s"] / base, 3) for r in rows[1:]}
    print(json.dumps({"rows": rows, "throughput_ratio_vs_in_process": ratios, "all_correct": all(
        r["correct"] == r["requests"] for r in rows)}))  # fmt: skip
    if not all(r["correct"] == r["requests"] for r in rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
