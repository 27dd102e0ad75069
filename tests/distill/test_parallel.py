"""Two training processes on the CPUs (gloo): equal steps, one writer, teacher logits split, a model that predicts."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emopillars.distill.config import TrainConfig
from emopillars.distill.trainer import train
from emopillars.errors import EmopillarsError
from emopillars.inference.classifier import EmotionClassifier

WORDS = {"joy": ["happy", "glad", "delighted"], "anger": ["furious", "angry", "mad"], "fear": ["scared", "afraid"]}
TRAIN_ROWS, BATCH, EPOCHS = 90, 7, 2  # 13 batches an epoch: an odd count


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, 32-wide BERT with MiniLM's tokenizer, and 100 rows (90 train, 10 validation)."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from emopillars.assets import embedder_path

    folder = tmp_path_factory.mktemp("tiny")
    tokenizer = AutoTokenizer.from_pretrained(embedder_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64)  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(folder / "model")
    tokenizer.save_pretrained(folder / "model")
    with (folder / "data.jsonl").open("w", encoding="utf-8") as fh:
        for i in range(TRAIN_ROWS + 10):
            label = list(WORDS)[i % 3]
            word = WORDS[label][i % len(WORDS[label])]
            split = "train" if i < TRAIN_ROWS else "validation"
            fh.write(json.dumps({"text": f"I am so {word} about {i}", "labels": [label], "split": split}) + "\n")
    return folder


def _options(tiny: Path) -> dict:
    return {"data": str(tiny / "data.jsonl"), "model": str(tiny / "model"), "batch_size": BATCH, "epochs": EPOCHS,
            "lr": 1e-3, "max_length": 32, "progress": False}  # fmt: skip


def test_two_processes_take_half_the_steps_and_write_once(tiny: Path, tmp_path: Path) -> None:
    single = train(TrainConfig(out=tmp_path / "one", **_options(tiny))).report["training"]
    per_epoch = math.ceil(TRAIN_ROWS / BATCH)
    assert single["steps"] == EPOCHS * per_epoch and single["processes"] == 1

    # KD from the one-process model: its logits are computed once per row, split across the processes.
    # A checkpoint every step would collide at once if both processes wrote.
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in _options(tiny).items() if k != "progress"]
    out, teacher = tmp_path / "two", tmp_path / "one"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "emopillars.cli", "train", *flags, "--no-progress", f"--out={out}", f"--teacher={teacher}",
               "--save-every=1", "--keep-checkpoints"]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-3000:]

    steps = dict(re.findall(r"process (\d) of 2: (\d+) optimizer steps", run.stderr))
    half = EPOCHS * math.ceil(per_epoch / 2)  # each epoch: ceil(13 / 2) = 7 steps per process
    assert steps == {"0": str(half), "1": str(half)}
    teacher_rows = re.findall(r"process \d of 2: the teacher's logits of (\d+) of (\d+) rows", run.stderr)
    assert sorted(teacher_rows) == [("45", "90"), ("45", "90")]
    report = json.loads((out / "metrics.json").read_text())
    assert report["training"]["processes"] == 2 and report["training"]["steps"] == half
    assert {"task", "kd"} <= set(report["history"][0])
    assert (out / "checkpoints" / "round-0" / "state.json").is_file()
    predicted = EmotionClassifier.from_pretrained(out).predict(["I am so happy", "I am so scared"])
    assert all(0.0 <= s <= 1.0 for p in predicted for s in p["scores"].values())


def test_a_second_run_into_the_same_folder_stops_at_once(tiny: Path, tmp_path: Path) -> None:
    from filelock import FileLock

    (tmp_path / "checkpoints").mkdir()
    with FileLock(tmp_path / "checkpoints" / "train.lock"), pytest.raises(EmopillarsError, match="another"):
        train(TrainConfig(out=tmp_path, **_options(tiny)))
