"""LLM backends behind one interface, picked by name; each imports its engine only when used."""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import ValidationError

from emopillars.errors import EmopillarsError
from emopillars.synth.backends.base import Backend, Completion, Request, Sampling

__all__ = ["BACKEND_CLASSES", "Backend", "Completion", "Request", "Sampling", "make_backend"]

# name -> (module, class): importing a module is cheap; the engine is imported in `load()`.
BACKEND_CLASSES = {
    "vllm": ("emopillars.synth.backends.vllm", "VllmBackend"),
    "openai": ("emopillars.synth.backends.openai", "OpenAIBackend"),
    "transformers": ("emopillars.synth.backends.transformers", "TransformersBackend"),
}


def make_backend(kind: str, **options: Any) -> Backend:
    """Build (not load) the backend `kind` from its settings.

    Args:
        kind: one of "vllm", "openai", "transformers".
        **options: the backend's fields, e.g. `model=`, `base_url=`, `dtype=`.

    Raises:
        EmopillarsError: unknown kind, or an option the backend does not have or rejects.
    """
    if kind not in BACKEND_CLASSES:
        raise EmopillarsError(f"unknown backend '{kind}'; choose one of: {', '.join(BACKEND_CLASSES)}")
    module, cls_name = BACKEND_CLASSES[kind]
    cls: type[Backend] = getattr(importlib.import_module(module), cls_name)
    try:
        return cls(**options)
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise EmopillarsError(f"bad option for backend '{kind}': {problems}") from e
