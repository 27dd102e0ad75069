"""LLM backends behind one interface, picked by name; each imports its engine only when used."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from pydantic import Field, ValidationError

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
    "backend_options",
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


def backend_options() -> dict[str, Any]:
    """Every backend's own options (its fields but `model`), declared once in the backend classes, as
    `create_model` field definitions: `LLMConfig` is built from them. A field several backends declare
    must agree; one a backend requires is optional here (the backend checks it when it is picked)."""
    fields: dict[str, Any] = {}
    for kind in BACKEND_CLASSES:
        for name, info in backend_class(kind).model_fields.items():
            if name == "model":
                continue
            if name in fields:
                assert fields[name][1].default == info.default, f"backends disagree on {name}"
                continue
            if info.is_required():
                fields[name] = (info.annotation | None, Field(None, description=info.description))
            else:
                fields[name] = (info.annotation, info)
    return fields


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
