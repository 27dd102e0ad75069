"""Streaming `predict`: a killed run resumes to the same bytes as an uninterrupted one, for every input format."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emopillars.cli import app
from emopillars.inference.stream import CHUNK_BATCHES, finished_lines

runner = CliRunner()
BATCH = 4
CHUNK = BATCH * CHUNK_BATCHES
SENTENCE = "the old man fed ducks by a quiet river at noon while rain fell on every roof"
WORDS = SENTENCE.split()


@pytest.fixture(scope="module")
def contextual_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random contextual BERT (2 layers, hidden 32) over MiniLM's tokenizer, 28 labels, 32 tokens: inputs
    with contexts need a contextual model, and a small one keeps the runs short on two busy cores."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from emopillars.distill.model import resolve_model_path
    from emopillars.inference.classifier import EmotionClassifier
    from emopillars.taxonomy import LABELS

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(None))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=len(LABELS), id2label=dict(enumerate(LABELS)),
                        problem_type="multi_label_classification")  # fmt: skip
    folder = tmp_path_factory.mktemp("contextual")
    model = BertForSequenceClassification(config).eval()
    EmotionClassifier(model, tokenizer, mode="contextual", max_length=32).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def contextual_onnx(contextual_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Its ONNX export: a `predict` process starts in about a second (no torch)."""
    from emopillars.inference.export import export_onnx

    return Path(export_onnx(contextual_model, tmp_path_factory.mktemp("onnx") / "model")["out"])


def _text(i: int) -> str:
    return " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(3 + i % 9))  # lengths vary, as real ones do


def _write_input(path: Path, n: int) -> Path:
    if path.suffix == ".txt":
        path.write_text("".join(_text(i) + "\n" for i in range(n)))
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps({"utterance": _text(i), "context": _text(i + 1)}) + "\n" for i in range(n)))
    else:
        path.write_text("text,context\n" + "".join(f'"{_text(i)}","{_text(i + 3)}, said he"\n' for i in range(n)))
    return path


def _args(model: Path, src: Path, out: Path, *extra: str) -> list[str]:
    return ["predict", "--model", str(model), "--input", str(src), "--out", str(out), "--batch-size", str(BATCH),
            *extra]  # fmt: skip


def _subprocess(*args: str) -> subprocess.Popen:
    """`emopillars ARGS` with Ctrl-C's default meaning, as in a terminal: a shell starts background jobs (a CI
    runner's, say) with SIGINT ignored, and their children would never see a KeyboardInterrupt."""
    return subprocess.Popen([sys.executable, "-m", "emopillars.cli", *args], stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip


def test_finished_lines_cuts_a_torn_last_line(tmp_path: Path) -> None:
    out = tmp_path / "pred.jsonl"
    assert finished_lines(out) == 0
    out.write_bytes(b'{"a": 1}\n{"b": 2}\n{"c"')
    assert finished_lines(out) == 2 and out.read_bytes() == b'{"a": 1}\n{"b": 2}\n'
    assert finished_lines(out) == 2


@pytest.fixture(scope="module")
def uninterrupted(contextual_onnx: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """An input of 60 chunks and the output of one uninterrupted run over it."""
    folder = tmp_path_factory.mktemp("uninterrupted")
    src, out = _write_input(folder / "in.jsonl", CHUNK * 60), folder / "straight.jsonl"
    assert _subprocess(*_args(contextual_onnx, src, out)).wait(timeout=600) == 0
    return src, out.read_bytes()


@pytest.mark.parametrize(
    ("signum", "code", "last_line"),
    [
        (signal.SIGKILL, -signal.SIGKILL, None),
        (signal.SIGINT, 130, "aborted"),
        (signal.SIGTERM, 143, "stopped by SIGTERM"),
    ],
    ids=["SIGKILL", "Ctrl-C", "SIGTERM"],
)
def test_a_run_stopped_mid_file_then_resumed_equals_an_uninterrupted_run(
    contextual_onnx: Path, uninterrupted: tuple[Path, bytes], tmp_path: Path, signum: int, code: int, last_line: str
) -> None:
    """Killed outright or stopped (Ctrl-C, `kill`): whole lines kept, one line said, and --resume finishes the file."""
    src, straight = uninterrupted
    n, killed = straight.count(b"\n"), tmp_path / "killed.jsonl"
    proc = _subprocess(*_args(contextual_onnx, src, killed))
    deadline = time.monotonic() + 300
    while not (killed.is_file() and killed.stat().st_size) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    if last_line is not None:
        assert err.strip().splitlines()[-1] == last_line
    done = killed.read_bytes().count(b"\n")
    assert 0 < done < n, f"the signal should land mid-file ({done} of {n} lines written)"
    resumed = _subprocess(*_args(contextual_onnx, src, killed, "--resume"))
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err
    assert killed.read_bytes() == straight
    assert json.loads(straight.decode().splitlines()[-1])["text"] == _text(n - 1)


@pytest.mark.parametrize("suffix", [".txt", ".csv"])
def test_resume_after_a_torn_line_equals_an_uninterrupted_run(
    planted_model: Path, contextual_model: Path, tmp_path: Path, suffix: str
) -> None:
    model = planted_model if suffix == ".txt" else contextual_model  # .csv carries contexts; .txt on MiniLM
    src = _write_input(tmp_path / f"in{suffix}", CHUNK * 3 + 5)
    straight, torn = tmp_path / "straight.jsonl", tmp_path / "torn.jsonl"
    assert runner.invoke(app, _args(model, src, straight)).exit_code == 0
    whole = straight.read_bytes()
    cut = whole.index(b"\n", len(whole) // 2) + 40  # a chunk and a half, then part of a line: a kill mid-write
    torn.write_bytes(whole[:cut])
    kept = whole[:cut].count(b"\n")
    result = runner.invoke(app, _args(model, src, torn, "--resume"))
    assert result.exit_code == 0, result.output
    assert f"after the {kept} already there" in result.output
    assert torn.read_bytes() == whole


def test_resume_of_a_finished_output_does_nothing(planted_model: Path, tmp_path: Path) -> None:
    src = _write_input(tmp_path / "in.txt", 10)
    out = tmp_path / "pred.jsonl"
    assert runner.invoke(app, _args(planted_model, src, out)).exit_code == 0
    before = (out.read_bytes(), out.stat().st_mtime_ns)
    result = runner.invoke(app, _args(tmp_path / "no-model-needed", src, out, "--resume"))
    assert result.exit_code == 0, result.output
    assert "wrote 0 predictions" in result.output and "after the 10 already there" in result.output
    assert (out.read_bytes(), out.stat().st_mtime_ns) == before


def test_resume_refuses_an_output_longer_than_the_input(tmp_path: Path) -> None:
    src = _write_input(tmp_path / "in.txt", 2)
    out = tmp_path / "pred.jsonl"
    out.write_text("{}\n{}\n{}\n")
    result = runner.invoke(app, _args(tmp_path / "model", src, out, "--resume"))
    assert result.exit_code == 1
    assert f"{out} has 3 lines, more than {src} has inputs" in str(result.exception)
    assert out.read_text() == "{}\n{}\n{}\n"


def test_resume_needs_out(tmp_path: Path) -> None:
    result = runner.invoke(app, ["predict", "--input", str(_write_input(tmp_path / "in.txt", 1)), "--resume"])
    assert result.exit_code != 0 and "--resume continues an --out file" in str(result.exception or result.output)
