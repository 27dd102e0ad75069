"""Suite-wide settings: no hub access, and vLLM's CPU engine kept to a small memory reservation."""

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from emopillars.synth.backends.vllm import cpu_engine_env

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Every vLLM CPU engine of the suite (in-process, CLI subprocesses, the OpenAI server) with the project's settings.
os.environ.update(cpu_engine_env())


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (a CI timeout, `kill`) stops the suite as Ctrl-C does: pytest then tears its session fixtures down,
    so the vLLM engines and servers they started stop with it instead of running on, busy, once it is gone."""
    signal.signal(signal.SIGTERM, _interrupt)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"stopped by {signal.Signals(signum).name}")


@pytest.fixture(autouse=True)
def _restore_environment():
    """In-process CLI runs set variables (`--no-progress` sets TQDM_DISABLE): keep them out of later tests."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


# --- one small trained classifier for the explanation, export and demo tests -------------------------

from pathlib import Path  # noqa: E402

TRIGGER, TRIGGER_LABEL = "zorblax", "surprise"
PLAIN = [
    "the train leaves at noon", "we walked to the market", "she put the book on the table",
    "the meeting is on tuesday", "he painted the fence blue", "they moved the chairs outside",
    "I read the report this morning", "the bus stopped near the school",
]  # fmt: skip


def planted_rows() -> list[dict]:
    """Plain sentences are neutral; the same sentences with the made-up word TRIGGER are TRIGGER_LABEL."""
    rows = []
    for i, plain in enumerate(PLAIN):
        words = plain.split()
        at = 1 + i % (len(words) - 1)  # the trigger's position varies, so position cannot stand in for it
        rows.append({"text": plain, "labels": ["neutral"]})
        rows.append({"text": " ".join([*words[:at], TRIGGER, *words[at:]]), "labels": [TRIGGER_LABEL]})
    return rows


def train_planted(out: Path, steps: int = 20) -> Path:
    """MiniLM with a 28-label head fitted to `planted_rows` by full-batch AdamW, saved to `out`.

    A plain loop rather than `emopillars train`: MiniLM's pooled [CLS] output is tiny (mean |x| ~0.05),
    so with one learning rate the head needs hundreds of steps; a 100x larger one on the head learns
    this in 20 steps.
    """
    import torch

    from emopillars.distill.model import head_linear, load_classifier
    from emopillars.inference.classifier import EmotionClassifier
    from emopillars.taxonomy import LABELS

    torch.manual_seed(0)
    model, tokenizer = load_classifier(None, LABELS, "multi_label")
    rows = planted_rows()
    batch = tokenizer([r["text"] for r in rows], padding=True, return_tensors="pt")
    targets = torch.tensor([[float(name in r["labels"]) for name in LABELS] for r in rows])
    head = list(head_linear(model).parameters())
    rest = [p for p in model.parameters() if all(p is not h for h in head)]
    optimizer = torch.optim.AdamW([{"params": head, "lr": 1e-2}, {"params": rest, "lr": 2e-4}])
    model.train()
    for _ in range(steps):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(**batch).logits, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    EmotionClassifier(model, tokenizer).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def planted_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier that relies on TRIGGER, shared by the session."""
    return train_planted(tmp_path_factory.mktemp("planted"))


@contextmanager
def _mounted_tmpfs(path: Path, size_mb: float, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of `size_mb` at `path` for the block (a full or read-only disk); skips where it cannot mount.

    Tests may run as root, where `chmod` does not stop a write, so a real small file system stands in for a full disk.
    """
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs (chmod alone is no test: root writes through it)")
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={int(size_mb * 1024)}k" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def tmpfs():
    """`with tmpfs(path, size_mb, read_only=False) as disk:` a small file system mounted at `path`."""
    return _mounted_tmpfs
