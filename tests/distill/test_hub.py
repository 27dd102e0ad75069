"""The Hub round trip without a network: a model by Hub id from an HF cache, the upload's file list, the card."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emopillars.cli import app
from emopillars.hub import detect_kind, upload_operations
from emopillars.taxonomy import LABELS

REVISION = "0123456789abcdef0123456789abcdef01234567"


def _hub_cache(model: Path, root: Path, repo_id: str = "someone/emo-student") -> Path:
    """`model` laid out as huggingface_hub lays out a downloaded repo: models--org--name/{snapshots,refs}."""
    repo = root / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / REVISION
    shutil.copytree(model, snapshot, ignore=shutil.ignore_patterns("checkpoints"))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(REVISION)
    return root


def test_predict_loads_a_hub_id_from_the_cache_offline(trained: tuple[Path, dict], tmp_path: Path) -> None:
    cache = _hub_cache(trained[0], tmp_path / "hub")
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    run = [sys.executable, "-m", "emopillars.cli", "predict", "I am so happy today", "--model"]
    for ref in ("someone/emo-student", f"someone/emo-student@{REVISION}"):
        done = subprocess.run([*run, ref], capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        assert set(json.loads(done.stdout)["scores"]) == set(LABELS)


def test_an_unknown_hub_id_offline_is_one_line() -> None:
    from emopillars.errors import EmopillarsError
    from emopillars.hub import resolve_model

    with pytest.raises(EmopillarsError, match="'someone/not-there' is neither a local folder nor a reachable Hub"):
        resolve_model("someone/not-there")


def test_model_upload_operations(trained: tuple[Path, dict]) -> None:
    folder = trained[0]
    assert detect_kind(folder) == "model"
    paths = {op.path_in_repo for op in upload_operations(folder, "model")}
    expected = {"config.json", "model.safetensors", "tokenizer.json", "thresholds.json", "README.md", "metrics.json"}
    assert expected <= paths and not any(p.startswith("checkpoints/") for p in paths)


def test_dataset_upload_operations_keep_features(tmp_path: Path) -> None:
    import datasets
    import pyarrow.parquet as pq

    features = datasets.Features(
        {"utterance": datasets.Value("string"), "labels": datasets.Sequence(datasets.ClassLabel(names=list(LABELS)))}
    )
    rows = {"utterance": ["a", "b"], "labels": [[17], [2, 3]]}
    split = datasets.Dataset.from_dict(rows, features=features)
    datasets.DatasetDict(train=split, test=split).save_to_disk(str(tmp_path / "dataset"))
    for name in ("README.md", "report.json", "fidelity.png", "examples.jsonl"):
        (tmp_path / name).write_text("x")
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / "scenes.jsonl").write_text("{}")
    assert detect_kind(tmp_path) == "dataset"
    ops = upload_operations(tmp_path, "dataset")
    assert sorted(op.path_in_repo for op in ops) == [
        "README.md",
        "data/test-00000-of-00001.parquet",
        "data/train-00000-of-00001.parquet",
        "fidelity.png",
        "report.json",
    ]
    parquet = tmp_path / "train.parquet"
    parquet.write_bytes(next(op for op in ops if "train" in op.path_in_repo).path_or_fileobj)
    back = datasets.Dataset.from_parquet(str(parquet))
    assert back.features == features and back["labels"] == [[17], [2, 3]]
    assert pq.read_table(parquet).num_rows == 2


def test_model_card_metadata_and_numbers_as_given(trained: tuple[Path, dict]) -> None:
    from huggingface_hub import ModelCard

    out, report = trained
    card = ModelCard.load(out / "README.md")
    assert card.data.pipeline_tag == "text-classification"
    assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
    splits = {r.dataset_split for r in card.data.eval_results}
    assert splits == {"validation", "test"}
    macro = next(r for r in card.data.eval_results if r.dataset_split == "test" and r.metric_type == "macro_f1")
    assert macro.metric_value == pytest.approx(report["test"]["macro_f1"], abs=1e-4)
    assert card.data.widget and "contextless" in card.text
    assert "| lr | 0.0001 |" in card.text and "| weight_decay | 0.01 |" in card.text
    assert 'pipeline("text-classification"' in card.text and "EmotionClassifier.from_pretrained" in card.text


def test_predict_pipeline_format_matches_transformers(trained: tuple[Path, dict]) -> None:
    from transformers import pipeline

    out, _ = trained
    texts = ["I am so happy today", "I am livid right now"]
    result = CliRunner().invoke(app, ["predict", "--model", str(out), "--format", "pipeline", *texts])
    assert result.exit_code == 0, result.output
    ours = [json.loads(line) for line in result.stdout.strip().splitlines()]
    theirs = pipeline("text-classification", model=str(out), top_k=None)(texts)
    for mine, ref in zip(ours, theirs, strict=True):
        assert [p["label"] for p in mine][:3] == [p["label"] for p in ref][:3]
        assert {p["label"]: p["score"] for p in mine} == pytest.approx({p["label"]: p["score"] for p in ref}, abs=1e-4)
