"""Versioned prompt templates (Jinja2 files `<stage>.v<N>.j2`) and the JSON schemas they ask for.

A prompt is changed by adding a new version file, so cached calls of the old version stay valid
for the runs that used it. Schemas take their label enum from `taxonomy.LABELS`, so constrained
decoding cannot produce an emotion outside the taxonomy.
"""

from __future__ import annotations

import functools
import hashlib
import json
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
    # Length bounds as in records.Scene, so that decoding cannot produce what validation rejects.
    return {
        "type": "object",
        "properties": {
            "context": {"type": "string", "minLength": 10, "maxLength": 1200},
            "utterance": {"type": "string", "minLength": 3, "maxLength": 600},
        },
        "required": ["context", "utterance"],
        "additionalProperties": False,
    }


def label_schema(max_emotions: int) -> dict:
    """The explication comes first (decoders keep property order), so it conditions the scores.

    No JSON-schema keyword says "unique by a field", so `records.EmotionScores` rejects a repeated emotion and the
    runner samples again.
    """
    return {
        "type": "object",
        "properties": {
            "explication": {"type": "string", "minLength": 1, "maxLength": 200},
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
            },
        },
        "required": ["explication", "emotions"],
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
