"""Versioned prompt templates (Jinja2 files `<stage>.v<N>.j2`) and the JSON schemas they ask for.

A prompt is changed by adding a new version file, so cached calls of the old version stay valid
for the runs that used it. Schemas are generated from the `records` models the outputs are validated
against, so constrained decoding cannot produce an emotion outside the taxonomy or a field out of bounds.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import jinja2
from pydantic import BaseModel

from emopillars.records import CharacterList, EmotionScores, Rewrites, Scene

_DIR = Path(__file__).parent
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_DIR), undefined=jinja2.StrictUndefined, keep_trailing_newline=False
)


@functools.cache
def template_source(name: str) -> str:
    """The template's text: part of every cache key, so editing a template in place invalidates its calls."""
    return (_DIR / name).read_text(encoding="utf-8")


def template_hash(name: str) -> str:
    """Short sha256 of a template file, recorded in config.json and the dataset card beside its versioned name."""
    return hashlib.sha256(template_source(name).encode()).hexdigest()[:12]


@functools.cache
def scene_examples() -> tuple[dict, ...]:
    """The hand-written few-shot pool of the scene prompt (each names its emotion and expressiveness)."""
    return tuple(json.loads(template_source(SCENE_EXAMPLES)))


SCENE_EXAMPLES = "scene_examples.v1.json"


def render(template: str, **variables: Any) -> str:
    return _ENV.get_template(template).render(**variables).strip()


def record_schema(record: type[BaseModel], tighter: dict[str, dict[str, int]] | None = None) -> dict:
    """The JSON schema of a record, as constrained decoding takes it: `$ref`s inlined, no annotations.

    The enum and length bounds come from the record's own fields, so decoding cannot produce what
    validation then rejects. `tighter` narrows bounds per call (`{"characters": {"maxItems": 3}}`,
    keyed by property path with dots); it only ever narrows, so the schema stays within the record.
    """
    schema = record.model_json_schema()
    defs = schema.pop("$defs", {})
    schema = _inline(schema, defs)
    for path, bounds in (tighter or {}).items():
        node = schema
        for key in path.split("."):
            node = node["properties"][key] if key != "[]" else node["items"]
        for bound, value in bounds.items():
            current = node.get(bound)
            narrower = max if bound.startswith("min") else min
            node[bound] = value if current is None else narrower(current, value)
    return schema


def _inline(node: Any, defs: dict) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        return _inline(defs[node["$ref"].rsplit("/", 1)[-1]], defs)
    # Titles and docstrings are annotations: left in, editing a docstring would change every cache key.
    return {k: _inline(v, defs) for k, v in node.items() if not (k in {"title", "description"} and isinstance(v, str))}


def characters_schema(max_characters: int) -> dict:
    return record_schema(CharacterList, {"characters": {"maxItems": max_characters}})


def scene_schema() -> dict:
    return record_schema(Scene)


def label_schema(max_emotions: int, explication: bool = True) -> dict:
    """With `explication`, it comes first (decoders keep property order), so it conditions the scores.

    It is held to 200 characters here (one or two sentences; the stage's token budget counts on it); without it,
    the call writes the scores only. No JSON-schema keyword says "unique by a field", so `records.EmotionScores`
    counts a repeated emotion once, with its first score.
    """
    schema = record_schema(EmotionScores, {"emotions": {"maxItems": max_emotions}})
    if explication:
        schema["properties"]["explication"] = {"type": "string", "minLength": 1, "maxLength": 200}
        schema["required"] = ["explication", "emotions"]
    else:
        del schema["properties"]["explication"]
    return schema


def rewrite_schema(k: int) -> dict:
    return record_schema(Rewrites, {"rewrites": {"minItems": k, "maxItems": k}})
