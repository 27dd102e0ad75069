"""`train` into a full or read-only disk: one line, exit 1, and the checkpoint already written stays whole.

Tests may run as root, where `chmod` does not stop a write: they mount a small tmpfs instead (`tmpfs` in
tests/conftest.py), and skip (saying why) where mounting is not allowed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _train(synth_dir: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    args = ["train", "--data", str(synth_dir), "--out", str(out), "--batch-size", "4", "--max-length", "32",
            "--eval-batch-size", "32", "--no-progress", *extra]  # fmt: skip
    return subprocess.run([sys.executable, "-m", "emopillars.cli", *args], capture_output=True, text=True)


def test_train_into_a_full_disk_keeps_the_last_checkpoint(synth_dir: Path, tmp_path: Path, tmpfs) -> None:
    # MiniLM's state (weights + AdamW moments) is ~270 MB: the first checkpoint fits in 400 MB, a second beside it not.
    with tmpfs(tmp_path / "disk", 400) as disk:
        proc = _train(synth_dir, disk / "model", "--max-steps", "8", "--eval-every", "2", "--save-every", "2")
        assert proc.returncode == 1, proc.stderr
        lines = proc.stderr.strip().splitlines()  # the step logs (INFO), then one error line
        assert [line for line in lines if "error" in line.lower()] == lines[-1:], lines
        assert "model/checkpoints/round-0" in lines[-1] and "No space left on device" in lines[-1], lines[-1]
        run = disk / "model" / "checkpoints" / "round-0"
        record = json.loads((run / "state.json").read_text())
        assert record["fit_state"]["step"] == 2 and (run / record["tensors"]).is_file()
        assert not list(run.glob("*.tmp"))


def test_train_into_a_read_only_disk_is_one_line(synth_dir: Path, tmp_path: Path, tmpfs) -> None:
    with tmpfs(tmp_path / "disk", 1, read_only=True) as disk:
        proc = _train(synth_dir, disk / "model", "--max-steps", "1")
        assert proc.returncode == 1
        assert proc.stderr.strip().splitlines() == [f"error: cannot write {disk / 'model'}: Read-only file system"]
