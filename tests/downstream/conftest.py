"""Shared fixtures: the public-format fixtures, one 28-label MiniLM init model and one fine-tuned
model per task per session (a few optimizer steps each: these test plumbing, not accuracy)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
DATA = {
    "goemotions": FIXTURES / "goemotions" / "original",
    "isear": FIXTURES / "isear" / "isear.csv",
    "iemocap": FIXTURES / "iemocap" / "iemocap.csv",
    "emocontext": FIXTURES / "emocontext",
}
# Small and fast on a shared 2-core CPU: short sequences, batch 8, a few steps.
FAST: dict[str, Any] = {"max_steps": 4, "batch_size": 8, "eval_batch_size": 32, "max_length": 64}
FAST |= {"lr": 1e-4, "progress": False}


@pytest.fixture(scope="session")
def init28(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 28-label emopillars model folder (MiniLM encoder, seeded head) to fine-tune from."""
    import torch

    from emopillars.distill.model import load_classifier
    from emopillars.inference.classifier import EmotionClassifier
    from emopillars.taxonomy import LABELS

    torch.manual_seed(0)
    model, tokenizer = load_classifier(None, LABELS, "multi_label")
    folder = tmp_path_factory.mktemp("init28")
    EmotionClassifier(model, tokenizer, max_length=64).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def finetuned(init28: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], tuple[Path, dict]]:
    """task -> (model folder, finetune report), trained once per session on the task's fixture."""
    from emopillars.downstream.config import FinetuneConfig
    from emopillars.downstream.finetune import finetune

    done: dict[str, tuple[Path, dict]] = {}

    def get(task: str) -> tuple[Path, dict]:
        if task not in done:
            out = tmp_path_factory.mktemp(f"ft-{task}")
            cfg = FinetuneConfig(task=task, data=str(DATA[task]), init=str(init28), out=out, **FAST)
            done[task] = (out, finetune(cfg).report)
        return done[task]

    return get
