"""Writing a synthesis run out in standard formats: JSONL plus a `datasets.DatasetDict` on disk.

Splits are assigned by passage, so no passage's examples span two splits (no leakage of a story
between train and test). Files are written to a temporary name and moved into place, so a kill
never leaves a half-written output.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Sequence
from pathlib import Path

from emopillars.console import datasets_bars_off
from emopillars.records import EXPRESSIVENESS, Example
from emopillars.sources import MODES, SPLITS
from emopillars.synth.files import write_atomic
from emopillars.taxonomy import LABELS


def example_id(*parts: str | None) -> str:
    """A stable, content-derived id."""
    return hashlib.sha256("\x1f".join(p or "" for p in parts).encode()).hexdigest()[:16]


def assign_splits(passage_ids: Sequence[str], fractions: tuple[float, float, float], seed: int) -> dict[str, str]:
    """Seeded split of passages; with three or more, validation and test each get at least one."""
    ordered = sorted(set(passage_ids))
    random.Random(seed).shuffle(ordered)
    n = len(ordered)
    n_val, n_test = (round(n * fractions[1]), round(n * fractions[2]))
    if n >= 3:
        n_val, n_test = max(n_val, 1 if fractions[1] > 0 else 0), max(n_test, 1 if fractions[2] > 0 else 0)
    n_train = n - n_val - n_test
    names = ["train"] * n_train + ["validation"] * n_val + ["test"] * n_test
    return dict(zip(ordered, names, strict=True))


def _features():
    """Typed as the `datasets` GoEmotions release types its labels (ClassLabel over the 28 names), so the corpus mixes
    with GoEmotions and feeds `datasets`/`transformers` tooling without a mapping step."""
    from datasets import ClassLabel, Features, List, Value

    emotion = ClassLabel(names=list(LABELS))
    return Features(
        {
            "id": Value("string"),
            "mode": ClassLabel(names=list(MODES)),
            "split": Value("string"),
            "passage_id": Value("string"),
            "character": Value("string"),
            "character_description": Value("string"),
            "context": Value("string"),
            "utterance": Value("string"),
            "target_emotion": emotion,
            "expressiveness": ClassLabel(names=list(EXPRESSIVENESS)),
            "soft_labels": {label: Value("float32") for label in LABELS},
            "labels": List(emotion),
            "primary_emotion": emotion,
            "label_agreement": Value("float32"),
            "explication": Value("string"),
            "source_id": Value("string"),
        }
    )


def write_outputs(examples: Sequence[Example], out: Path) -> None:
    """`out/examples.jsonl` (one record per line) and `out/dataset/` (train/validation/test)."""
    from datasets import Dataset, DatasetDict

    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "examples.jsonl", (json.dumps(ex.model_dump(), ensure_ascii=False) + "\n" for ex in examples))

    rows = [ex.model_dump() for ex in examples]
    features = _features()
    # Column-wise, so an empty split still carries its schema (from_list([]) saves none).
    columns = {s: {name: [r[name] for r in rows if r["split"] == s] for name in features} for s in SPLITS}
    # ClassLabel columns take the names; from_dict encodes them to ids.
    dataset = DatasetDict({s: Dataset.from_dict(columns[s], features=features) for s in SPLITS})
    staging, target = out / ".dataset.tmp", out / "dataset"
    shutil.rmtree(staging, ignore_errors=True)
    # One shard per split: datasets 5.2 writes no shard for an empty split and then cannot load it.
    with datasets_bars_off():
        dataset.save_to_disk(str(staging), num_shards=dict.fromkeys(SPLITS, 1))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)
