"""Versioned prompt templates (Jinja2 files `<stage>.v<N>.j2`) and the JSON schemas they ask for.

A prompt is changed by adding a new version file, so cached calls of the old version stay valid
for the runs that used it. Schemas take their label enum from `taxonomy.LABELS`, so constrained
decoding cannot produce an emotion outside the taxonomy.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import jinja2

from emopillars.taxonomy import LABELS

_DIR = Path(__file__).parent
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_DIR), undefined=jinja2.StrictUndefined, keep_trailing_newline=False
)


@functools.cache
def template_source(name: str) -> str:
    """The template's text: part of every cache key, so editing a template in place invalidates its calls."""
    return (_DIR / name).read_text(encoding="utf-8")


def render(template: str, **variables: Any) -> str:
    return _ENV.get_template(template).render(**variables).strip()


def characters_schema(max_characters: int) -> dict:
    return {
        "type": "object",
        "properties": {
            "characters": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_characters,
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "description": {"type": "string"}},
                    "required": ["name", "description"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["characters"],
        "additionalProperties": False,
    }


def scene_schema() -> dict:
    return {
        "type": "object",
        "properties": {"context": {"type": "string"}, "utterance": {"type": "string"}},
        "required": ["context", "utterance"],
        "additionalProperties": False,
    }


def label_schema(max_emotions: int) -> dict:
    return {
        "type": "object",
        "properties": {
            "emotions": {
                "type": "array",
                "minItems": 1,
                "maxItems": max_emotions,
                "items": {
                    "type": "object",
                    "properties": {
                        "emotion": {"type": "string", "enum": list(LABELS)},
                        "score": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                    "required": ["emotion", "score"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["emotions"],
        "additionalProperties": False,
    }


def rewrite_schema(k: int) -> dict:
    return {
        "type": "object",
        "properties": {
            "rewrites": {"type": "array", "minItems": k, "maxItems": k, "items": {"type": "string"}},
        },
        "required": ["rewrites"],
        "additionalProperties": False,
    }
