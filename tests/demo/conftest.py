"""A tiny synth-like run folder written by hand (Example rows of records.py, some v2 fields, a report), and the
demo servers the browser and API tests share: one locked to what it was started with, one with --allow-paths."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from emopillars.records import Example
from emopillars.taxonomy import LABELS


def _example(n: int, mode: str, split: str, utterance: str, target: str, v1: bool = False, **v2: object) -> dict:
    soft = dict.fromkeys(LABELS, 0.0) | {target: 0.8, "neutral": 0.1}
    row = Example(
        id=f"ex{n}", mode=mode, split=split, passage_id=f"p{n % 2}", character="Mara",
        character_description="Mara, a lighthouse keeper", utterance=utterance, target_emotion=target,
        context="The storm took the boat while Mara watched from the tower." if mode == "contextual" else None,
        soft_labels=soft, labels=[target], source_id=None,
        **({"expressiveness": "implicit", "primary_emotion": target, "label_agreement": None, "explication": ""} | v2),
    ).model_dump()  # fmt: skip
    if v1:  # a corpus written before synth v2 has none of its fields; the demo must still show it
        for key in ("expressiveness", "primary_emotion", "label_agreement", "explication"):
            del row[key]
    return row


EXAMPLES = [
    _example(0, "contextual", "train", "They will never come back to me.", "grief", expressiveness="explicit",
             explication="She mourns the crew she could not save.", primary_emotion="grief", label_agreement=0.8),
    _example(1, "contextless", "train", "I keep seeing the boat go under.", "grief", expressiveness="subtle",
             explication="A loss replayed over and over.", primary_emotion="grief", label_agreement=0.6),
    _example(2, "contextual", "validation", "The lamp is lit, right on time!", "pride", expressiveness="explicit"),
    _example(3, "contextless", "test", "Thank you for staying with me tonight.", "gratitude", v1=True),
    _example(4, "contextual", "train", "Who left this letter at my door?", "curiosity", expressiveness="subtle",
             explication="Wondering who came by.", primary_emotion="curiosity", label_agreement=1.0),
]  # fmt: skip
FIDELITY = {"primary_agreement": 0.75, "target_recognition": {"macro": 0.6, "min": 0.2}, "labels_per_example": 1.25}


def write_run(folder: Path, fidelity: dict | None = FIDELITY, examples: list[dict] = EXAMPLES) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in examples), encoding="utf-8")
    report = {"examples": {"contextual": 3, "contextless": 2}} | ({"fidelity": fidelity} if fidelity else {})
    (folder / "report.json").write_text(json.dumps(report), encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_run(tmp_path_factory.mktemp("run"))


# --- demo servers ------------------------------------------------------------------------------------


@dataclass
class Demo:
    proc: subprocess.Popen
    url: str
    log: Path

    def output(self) -> str:
        """What the server printed so far (stdout and stderr)."""
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_demo(log: Path, *args: str) -> Demo:
    """`emopillars demo ARGS` on a free port, its output to `log` (a pipe could fill and stall it); returns
    once the page answers."""
    port = _free_port()
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "emopillars.cli", "demo", *args, "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    demo = Demo(proc, f"http://127.0.0.1:{port}/", log)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"demo exited with {proc.returncode}:\n{demo.output()}")
        try:
            with urllib.request.urlopen(demo.url, timeout=5) as response:
                if response.status == 200:
                    return demo
        except OSError:
            time.sleep(1)
    proc.kill()
    raise AssertionError(f"demo did not answer on {demo.url} within 180 s")


@pytest.fixture(scope="session")
def second_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second run (two examples) offered beside `run_dir`."""
    return write_run(tmp_path_factory.mktemp("second"), examples=EXAMPLES[:2])


@pytest.fixture(scope="session")
def locked_demo(planted_model: Path, run_dir: Path, second_run: Path, tmp_path_factory) -> Iterator[Demo]:
    """The demo as its owner starts it: one model, two runs, requests worked on 4 at a time."""
    demo = start_demo(tmp_path_factory.mktemp("locked") / "demo.log", "--model", str(planted_model),
                      "--data", str(run_dir), "--data", str(second_run), "--concurrency", "4")  # fmt: skip
    yield demo
    demo.stop()


@pytest.fixture(scope="session")
def open_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo with --allow-paths and nothing named: the page loads whatever path it is given."""
    demo = start_demo(tmp_path_factory.mktemp("open") / "demo.log", "--allow-paths")
    yield demo
    demo.stop()
