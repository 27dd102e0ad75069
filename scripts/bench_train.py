"""Training throughput: the emopillars trainer vs a Hugging Face `Trainer` baseline.

Both train the same model on the same rows with the same batch size for the same number of
optimizer steps (after a few untimed warm-up steps), each in its own process so peak memory
is its own, alternating `--repeats` times. Throughput is batch size over the median time
between consecutive optimizer-step ends (everything per step: collation, forward, backward,
optimizer). The baseline is the stock recipe: `Trainer` + `DataCollatorWithPadding`, defaults.

    python scripts/bench_train.py                       # embedded MiniLM, CPU, ~2 min idle
    python scripts/bench_train.py --shape bert-base --batch-size 64 --steps 100   # on a GPU

Prints a table, then one JSON line with ratio_vs_hf_trainer (ours / baseline) and samples_per_s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HOPPER_BF16_DENSE_TFLOPS = 989.0  # H100 SXM and H200: the same dense bf16 peak
WORDS = (
    "i",
    "you",
    "we",
    "they",
    "she",
    "he",
    "was",
    "am",
    "feel",
    "so",
    "really",
    "never",
    "always",
    "today",
    "tonight",
    "again",
    "the",
    "a",
    "of",
    "to",
    "and",
    "but",
    "happy",
    "angry",
    "afraid",
    "grateful",
    "sad",
    "sorry",
    "proud",
    "lost",
    "won",
    "finally",
    "waited",
    "heard",
    "saw",
    "told",
    "thought",
    "maybe",
    "house",
    "road",
    "storm",
    "letter",
    "friend",
    "mother",
    "brother",
    "city",
    "night",
    "morning",
    "river",
    "door",
)


def make_rows(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """Texts of 4-90 words (a long-tailed spread like real utterances) and random multi-hot targets."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(2.8, 0.6, n).astype(int), 4, 90)
    texts = [" ".join(rng.choice(WORDS, size=k)) for k in lengths]
    targets = (rng.random((n, 28)) < 0.08).astype(np.float32)
    return texts, targets


def model_path(shape: str, workdir: Path) -> str:
    from emopillars.assets import embedder_path

    base = embedder_path()
    if shape == "minilm":
        return base
    # BERT-base shape, random weights, the MiniLM vocabulary: same tokens, 110M parameters.
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = workdir / "bert-base-shape"
    if not (folder / "config.json").is_file():
        BertForSequenceClassification(BertConfig(num_labels=28)).save_pretrained(folder)
        AutoTokenizer.from_pretrained(base).save_pretrained(folder)
    return str(folder)


def peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_ours(args: argparse.Namespace, path: str, texts: list[str], targets: np.ndarray) -> dict:
    import torch

    from emopillars.distill.config import TrainConfig
    from emopillars.distill.data import Split, Splits
    from emopillars.distill.model import load_classifier
    from emopillars.distill.trainer import fit
    from emopillars.taxonomy import LABELS

    gold = (targets > 0.5).astype(np.int8)
    train = Split(texts, None, targets, gold)
    tiny = train.subset(range(8))  # evaluation runs once at the end; keep it negligible
    data = Splits(train, tiny, tiny)
    model, tokenizer = load_classifier(path, LABELS, "multi_label")
    common = {"batch_size": args.batch_size, "max_length": args.max_length, "lr": 5e-5, "progress": False}
    fit(TrainConfig(max_steps=args.warmup, eval_every=10**6, **common), model, tokenizer, data)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    cfg = TrainConfig(max_steps=args.steps, eval_every=10**6, seed=1, **common)
    cpu = time.process_time()
    result = fit(cfg, model, tokenizer, data)
    return {"step_ends": [h["time"] for h in result.history], "cpu_seconds": time.process_time() - cpu}


def run_hf(args: argparse.Namespace, path: str, texts: list[str], targets: np.ndarray) -> dict:
    import torch
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    tokenizer = AutoTokenizer.from_pretrained(path)
    enc = tokenizer(texts, truncation=True, max_length=args.max_length)
    rows = [{key: enc[key][i] for key in enc} | {"labels": targets[i].tolist()} for i in range(len(texts))]
    model = AutoModelForSequenceClassification.from_pretrained(
        path, num_labels=28, problem_type="multi_label_classification"
    )
    cuda = torch.cuda.is_available()
    collator = DataCollatorWithPadding(tokenizer)

    def trainer(steps: int, seed: int) -> Trainer:
        targs = TrainingArguments(
            output_dir=tempfile.mkdtemp(prefix="hf-bench-"),
            per_device_train_batch_size=args.batch_size,
            max_steps=steps,
            learning_rate=5e-5,
            warmup_steps=int(0.1 * steps),
            save_strategy="no",
            eval_strategy="no",
            logging_strategy="no",
            report_to=[],
            disable_tqdm=True,
            bf16=cuda,
            use_cpu=not cuda,
            seed=seed,
        )
        return Trainer(model=model, args=targs, train_dataset=rows, data_collator=collator)

    trainer(args.warmup, 0).train()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    timed = trainer(args.steps, 1)
    step_ends: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_end(self, *_: object, **__: object) -> None:
            step_ends.append(time.perf_counter())

    timed.add_callback(StepClock())
    cpu = time.process_time()
    timed.train()
    return {"step_ends": step_ends, "cpu_seconds": time.process_time() - cpu}


def child(args: argparse.Namespace) -> None:
    import torch

    workdir = Path(args.workdir)
    path = model_path(args.shape, workdir)
    texts, targets = make_rows(args.batch_size * args.steps, seed=0)
    result = (run_ours if args.child == "ours" else run_hf)(args, path, texts, targets)
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(path)
    params = 12 * config.num_hidden_layers * config.hidden_size**2  # transformer blocks, no embeddings
    tokens = np.mean([min(len(t.split()) * 1.3 + 2, args.max_length) for t in texts])  # ~real tokens/row
    result.update(
        peak_mb=peak_memory_mb(),
        device=torch.cuda.get_device_name() if torch.cuda.is_available() else f"cpu x{torch.get_num_threads()}",
        train_flops_per_sample=6 * params * tokens,
    )
    print("RESULT " + json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=["minilm", "bert-base"], default="minilm")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2, help="Alternating runs of each trainer.")
    parser.add_argument("--child", choices=["ours", "hf"], help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as workdir:
        # Alternate the trainers so a burst of load on a shared machine hits both alike.
        for _ in range(args.repeats):
            for name in ("hf", "ours"):
                cmd = [sys.executable, __file__, "--child", name, "--workdir", workdir, "--shape", args.shape,
                       "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch-size",
                       str(args.batch_size), "--max-length", str(args.max_length)]  # fmt: skip
                proc = subprocess.run(cmd, capture_output=True, text=True)
                line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
                if proc.returncode or line is None:
                    sys.exit(f"{name} run failed:\n{proc.stderr[-3000:]}")
                run = json.loads(line[len("RESULT ") :])
                r = results.setdefault(name, run | {"step_seconds": [], "cpu_seconds": [], "peak_mb": 0.0})
                r["step_seconds"] += np.diff(run["step_ends"]).tolist()
                r["cpu_seconds"].append(run["cpu_seconds"])
                r["peak_mb"] = max(r["peak_mb"], run["peak_mb"])
    for r in results.values():
        # The median step time: robust to other processes' bursts on a shared CPU.
        r["samples_per_s"] = args.batch_size / float(np.median(r["step_seconds"]))
        r["tflops"] = r["samples_per_s"] * r["train_flops_per_sample"] / 1e12
        # CPU-seconds the process spent per sample (all its threads): a cross-check that other
        # processes' load barely moves, unlike wall time.
        r["samples_per_cpu_s"] = args.batch_size * args.steps / float(np.median(r["cpu_seconds"]))
    ours, hf = results["ours"], results["hf"]
    print(f"{args.shape}, batch {args.batch_size}, {args.steps} steps, max_length {args.max_length}, {ours['device']}")
    print(f"{'trainer':<22}{'samples/s':>11}{'samples/cpu-s':>15}{'peak MB':>10}{'TFLOP/s':>9}")
    for name, label in (("hf", "HF Trainer (baseline)"), ("ours", "emopillars fit")):
        r = results[name]
        row = f"{label:<22}{r['samples_per_s']:>11.1f}{r['samples_per_cpu_s']:>15.1f}"
        print(f"{row}{r['peak_mb']:>10.0f}{r['tflops']:>9.3f}")
    summary = {
        "shape": args.shape,
        "device": ours["device"],
        "batch_size": args.batch_size,
        "steps": args.steps,
        "repeats": args.repeats,
        "samples_per_s": round(ours["samples_per_s"], 2),
        "hf_trainer_samples_per_s": round(hf["samples_per_s"], 2),
        "ratio_vs_hf_trainer": round(ours["samples_per_s"] / hf["samples_per_s"], 3),
        "samples_per_cpu_s": round(ours["samples_per_cpu_s"], 2),
        "hf_trainer_samples_per_cpu_s": round(hf["samples_per_cpu_s"], 2),
        "ratio_cpu_time": round(ours["samples_per_cpu_s"] / hf["samples_per_cpu_s"], 3),
        "peak_mb": round(ours["peak_mb"]),
        "hf_trainer_peak_mb": round(hf["peak_mb"]),
    }
    if "H100" in ours["device"] or "H200" in ours["device"]:
        summary["fraction_of_bf16_peak"] = round(ours["tflops"] / HOPPER_BF16_DENSE_TFLOPS, 4)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
