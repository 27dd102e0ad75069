"""LLM backends behind one interface, picked by name; each imports its engine only when used."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import ValidationError

from emopillars.errors import EmopillarsError
from emopillars.synth.backends.base import Backend, Completion, Request, Sampling

__all__ = [
    "BACKEND_CLASSES",
    "Backend",
    "BackendName",
    "Completion",
    "Request",
    "Sampling",
    "backend_class",
    "backend_from_config",
    "make_backend",
]

# name -> (module, class): importing a module is cheap; the engine is imported in `load()`.
BACKEND_CLASSES = {
    "vllm": ("emopillars.synth.backends.vllm", "VllmBackend"),
    "openai": ("emopillars.synth.backends.openai", "OpenAIBackend"),
    "transformers": ("emopillars.synth.backends.transformers", "TransformersBackend"),
    "ray": ("emopillars.synth.backends.ray", "RayBackend"),
}
BackendName = Literal[tuple(BACKEND_CLASSES)]  # the choices of --backend


def backend_class(kind: str) -> type[Backend]:
    """The class registered as `kind`.

    Raises:
        EmopillarsError: unknown kind.
    """
    if kind not in BACKEND_CLASSES:
        raise EmopillarsError(f"unknown backend '{kind}'; choose one of: {', '.join(BACKEND_CLASSES)}")
    module, cls_name = BACKEND_CLASSES[kind]
    return getattr(importlib.import_module(module), cls_name)


def make_backend(kind: str, **options: Any) -> Backend:
    """Build (not load) the backend `kind` from its settings.

    Args:
        kind: a name in `BACKEND_CLASSES`.
        **options: the backend's fields, e.g. `model=`, `base_url=`, `dtype=`.

    Raises:
        EmopillarsError: unknown kind, or an option the backend does not have or rejects.
    """
    cls = backend_class(kind)
    with _one_line_errors(kind):
        return cls(**options)


def backend_from_config(config: Any, model: str) -> Backend:
    """Build (not load) the backend `config.backend` names, its options read from `config`'s fields."""
    cls = backend_class(config.backend)
    with _one_line_errors(config.backend):
        return cls.from_config(config, model)


@contextmanager
def _one_line_errors(kind: str) -> Iterator[None]:
    try:
        yield
    except ValidationError as e:
        problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
        raise EmopillarsError(f"bad option for backend '{kind}': {problems}") from e
