"""Batched prediction: `EmotionClassifier.predict` (torch, and exported ONNX fp32 / int8 on onnxruntime)
against `transformers.pipeline("text-classification")`, plus the start-up of a one-sentence `predict`.

Same model folder, same texts (default 2,000 of 1-4 sentences from the bundled corpus, so lengths
vary as real inputs do), same batch size and token limit. Each row runs in its own fresh process
so its peak memory is its own: peak RSS on the CPU (and the increase over the loaded model), peak
allocated CUDA memory on a GPU (ONNX rows run on the CPU). The ONNX folders come from
`emopillars export` of the same model. "predict s" is the wall time of the command
`emopillars predict --model DIR "one sentence"` (process start to exit: imports, load, one text).
Prints a table; the last line is JSON with `ratio_vs_pipeline` (torch texts/s over the pipeline;
target >= 1.0), `onnx_int8_ratio_vs_pipeline` (target >= 2.5 on the CPU) and the figures of every row.

    python scripts/bench_predict.py [--model DIR] [--n 2000] [--batch-size 64] [--max-length 128]

Without --model a 28-label classifier over the embedded MiniLM is saved to a temporary folder.

`--memory` measures instead that streaming `predict --input FILE --out FILE` keeps memory flat in the
input's size: the command runs on `--sizes` input lines (default 10,000 and 200,000; texts of the
bundled corpus), one fresh process per size, and the table gives each one's peak RSS (its own VmHWM,
read as it exits), wall time and lines/s, then the ratio of the largest to the smallest (target <= 1.2).
The model is the ONNX export of `--model` or, by default, of a tiny random 2-layer BERT over MiniLM's
tokenizer (inputs cut at 32 tokens): the model's size does not change how memory grows with the input,
and it keeps 200K lines within minutes on two cores.

    python scripts/bench_predict.py --memory [--model DIR] [--sizes 10000 200000] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def make_texts(n: int) -> list[str]:
    """n texts of 1-4 consecutive sentences of the bundled corpus (deterministic)."""
    from emopillars.corpora.loaders import bundled_corpus_path

    sentences = []
    for line in bundled_corpus_path().read_text(encoding="utf-8").splitlines():
        text = json.loads(line)["text"]
        sentences += [s for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 3]
    return [" ".join(sentences[(i * 7) % len(sentences) :][: 1 + i % 4]) for i in range(n)]


def _rss_mb() -> float:
    # VmHWM: the peak resident set of this address space. Not ru_maxrss, which survives exec: a spawned
    # child would report the parent's peak (measured: every row read 1,364 MB, the exporting parent's).
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024


def _current_rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def _run(method: str, model: str, texts: list[str], batch_size: int, max_length: int, queue: mp.Queue) -> None:
    """One row of the benchmark in a fresh process: load, warm up, time, report peaks."""
    if method == "pipeline":
        import torch
        from transformers import pipeline

        device = "cuda" if torch.cuda.is_available() else "cpu"
        pipe = pipeline("text-classification", model=model, top_k=None, device=device)

        def predict(items: list[str]) -> list:
            return pipe(items, batch_size=batch_size, truncation=True, max_length=max_length)

    else:  # torch, onnx-fp32, onnx-int8: `model` is the matching folder
        from emopillars.inference.classifier import EmotionClassifier

        clf = EmotionClassifier.from_pretrained(model)
        clf.max_length = max_length
        device = "cpu" if clf.backend == "onnx" else str(next(clf.model.parameters()).device.type)

        def predict(items: list[str]) -> list:
            return clf.predict(items, batch_size=batch_size)

    cuda = device == "cuda"
    if cuda:
        import torch
    predict(texts[:batch_size])  # warm-up: lazy inits, allocator
    loaded_mb = _current_rss_mb()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    out = predict(texts)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    assert len(out) == len(texts)
    queue.put(
        {
            "method": method,
            "device": device,
            "seconds": seconds,
            "texts_per_s": len(texts) / seconds,
            "peak_rss_mb": _rss_mb(),
            "rss_increase_mb": _rss_mb() - loaded_mb,
            "peak_cuda_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        }
    )


def predict_startup(model: str) -> float:
    """Wall seconds of `emopillars predict --model MODEL "one sentence"` in a new process."""
    start = time.perf_counter()
    cmd = [sys.executable, "-m", "emopillars.cli", "predict", "--model", model, "What a lovely surprise!"]
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def measure(method: str, model: str, texts: list[str], batch_size: int, max_length: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run, args=(method, model, texts, batch_size, max_length, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def default_model(folder: Path) -> str:
    """A 28-label classifier over the embedded MiniLM (the shape `emopillars train` writes)."""
    import torch

    from emopillars.distill.model import load_classifier
    from emopillars.inference.classifier import EmotionClassifier
    from emopillars.taxonomy import LABELS

    torch.manual_seed(0)
    model, tokenizer = load_classifier(None, LABELS, "multi_label")
    EmotionClassifier(model, tokenizer).save_pretrained(folder)
    return str(folder)


ROWS = {
    "torch": "emopillars EmotionClassifier.predict (torch)",
    "pipeline": 'transformers.pipeline("text-classification")',
    "onnx-fp32": "emopillars ONNX fp32 (onnxruntime)",
    "onnx-int8": "emopillars ONNX int8 (onnxruntime)",
}


# Runs `emopillars predict` and, as it exits (even by sys.exit), writes its own peak RSS (VmHWM, kB) to argv[1].
# Not ru_maxrss from wait4: that one keeps the parent's peak across fork and exec.
_PEAK = """import sys
from pathlib import Path
from emopillars.cli import main
peak, sys.argv = Path(sys.argv[1]), ["emopillars", *sys.argv[2:]]
try:
    main()
finally:
    status = Path("/proc/self/status").read_text()
    peak.write_text(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
"""


def tiny_onnx(folder: Path, model: str | None) -> str:
    """The ONNX export of `model`, or of a random 2-layer BERT (hidden 64, inputs cut at 32 tokens) with MiniLM's
    tokenizer and 28 labels."""
    from emopillars.inference.export import export_onnx

    if model is None:
        from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

        from emopillars.distill.model import resolve_model_path
        from emopillars.inference.classifier import EmotionClassifier
        from emopillars.taxonomy import LABELS

        tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(None))
        config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2,
                            num_attention_heads=2, intermediate_size=128, num_labels=len(LABELS),
                            id2label=dict(enumerate(LABELS)), label2id={n: i for i, n in enumerate(LABELS)},
                            problem_type="multi_label_classification")  # fmt: skip
        model = str(folder / "tiny")
        clf = EmotionClassifier(BertForSequenceClassification(config).eval(), tokenizer, max_length=32)
        clf.save_pretrained(model)
    return export_onnx(model, folder / "onnx")["out"]


def memory_table(args: argparse.Namespace) -> None:
    """Peak RSS of streaming `predict` per input size, each in a fresh process (see the module docstring)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        # The export runs in a child too: this process stays small, so nothing it holds counts in a row.
        code = "import sys; from pathlib import Path; sys.path[:0] = [sys.argv[3]]; import bench_predict as b; "
        code += "print(b.tiny_onnx(Path(sys.argv[1]), sys.argv[2] or None))"
        model = subprocess.run([sys.executable, "-c", code, tmp, args.model or "", str(Path(__file__).parent)],
                               check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]  # fmt: skip
        rows = []
        for n in args.sizes:
            src, out, peak = folder / f"in-{n}.txt", folder / f"out-{n}.jsonl", folder / f"peak-{n}"
            pool = make_texts(min(n, 5000))
            with src.open("w", encoding="utf-8") as fh:
                fh.writelines(pool[i % len(pool)] + "\n" for i in range(n))
            cmd = [sys.executable, "-c", _PEAK, str(peak), "predict", "--model", model, "--input", str(src),
                   "--out", str(out), "--batch-size", str(args.batch_size)]  # fmt: skip
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            seconds = time.perf_counter() - start
            assert out.read_bytes().count(b"\n") == n
            rows.append({"lines": n, "peak_rss_mb": int(peak.read_text()) / 1024, "seconds": seconds})
    print(f"streaming predict on ONNX ({'tiny BERT' if args.model is None else args.model}), batch {args.batch_size}")
    print(f"{'input lines':>12}{'peak RSS MB':>13}{'seconds':>10}{'lines/s':>10}")
    for r in rows:
        print(f"{r['lines']:>12}{r['peak_rss_mb']:>13.1f}{r['seconds']:>10.1f}{r['lines'] / r['seconds']:>10.0f}")
    ratio = rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]
    print(f"peak RSS ratio {rows[-1]['lines']} / {rows[0]['lines']} lines: {ratio:.3f} (target <= 1.2)")
    print(json.dumps({"peak_rss_ratio": round(ratio, 3), "rows": rows}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder (default: a 28-label MiniLM classifier)")
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=None, help="default 64 (256 with --memory)")
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--memory", action="store_true", help="peak RSS of streaming predict per input size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 200_000])
    args = parser.parse_args()
    if args.memory:
        args.batch_size = args.batch_size or 256
        return memory_table(args)
    args.batch_size = args.batch_size or 64
    from emopillars.inference.export import export_onnx

    texts = make_texts(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or default_model(Path(tmp) / "model")
        folders = {"torch": model, "pipeline": model}
        for kind, quantize in (("onnx-fp32", None), ("onnx-int8", "int8")):
            folders[kind] = export_onnx(model, Path(tmp) / kind, quantize)["out"]
        results = {k: measure(k, folders[k], texts, args.batch_size, args.max_length) for k in ROWS}
        for k in ("torch", "onnx-fp32", "onnx-int8"):
            results[k]["predict_s"] = predict_startup(folders[k])
    base = results["pipeline"]
    print(f"{args.n} texts, batch {args.batch_size}, max_length {args.max_length}, device {results['torch']['device']}")
    head = f"{'method':<46}{'texts/s':>10}{'seconds':>10}{'peak RSS MB':>13}{'RSS +MB':>10}{'peak CUDA MB':>14}"
    print(head + f"{'predict s':>11}")
    for k, name in ROWS.items():
        r = results[k]
        cuda = f"{r['peak_cuda_mb']:.0f}" if r["peak_cuda_mb"] is not None else "-"
        startup = f"{r['predict_s']:.2f}" if "predict_s" in r else "-"
        print(
            f"{name:<46}{r['texts_per_s']:>10.1f}{r['seconds']:>10.2f}{r['peak_rss_mb']:>13.0f}"
            f"{r['rss_increase_mb']:>10.0f}{cuda:>14}{startup:>11}"
        )
    ours = results["torch"]
    summary = {
        "ratio_vs_pipeline": round(ours["texts_per_s"] / base["texts_per_s"], 3),
        "onnx_int8_ratio_vs_pipeline": round(results["onnx-int8"]["texts_per_s"] / base["texts_per_s"], 3),
        "onnx_fp32_ratio_vs_pipeline": round(results["onnx-fp32"]["texts_per_s"] / base["texts_per_s"], 3),
        "texts_per_s": round(ours["texts_per_s"], 1),
        "pipeline_texts_per_s": round(base["texts_per_s"], 1),
        "onnx_fp32_texts_per_s": round(results["onnx-fp32"]["texts_per_s"], 1),
        "onnx_int8_texts_per_s": round(results["onnx-int8"]["texts_per_s"], 1),
        "peak_rss_mb": round(ours["peak_rss_mb"]),
        "pipeline_peak_rss_mb": round(base["peak_rss_mb"]),
        "onnx_fp32_peak_rss_mb": round(results["onnx-fp32"]["peak_rss_mb"]),
        "onnx_int8_peak_rss_mb": round(results["onnx-int8"]["peak_rss_mb"]),
        "peak_cuda_mb": ours["peak_cuda_mb"] and round(ours["peak_cuda_mb"]),
        "pipeline_peak_cuda_mb": base["peak_cuda_mb"] and round(base["peak_cuda_mb"]),
        "predict_startup_s": {k: round(results[k]["predict_s"], 2) for k in ("torch", "onnx-fp32", "onnx-int8")},
        "n_texts": args.n,
        "batch_size": args.batch_size,
        "device": ours["device"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
