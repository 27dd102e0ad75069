"""Pydantic models of every record that crosses a stage boundary.

LLM outputs (`CharacterList`, `Scene`, `Rewrites`, `EmotionScores`) are validated against these
after constrained decoding; the exported `Example` is one line of `examples.jsonl`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from emopillars.taxonomy import LABELS

Emotion = Literal[LABELS]  # type: ignore[valid-type]
Mode = Literal["contextual", "contextless"]
Split = Literal["train", "validation", "test"]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Passage(Record):
    """A bounded-length piece of narrative the LLM reads."""

    id: str
    source: str
    title: str | None = None
    text: str = Field(min_length=1)


def _clean(text: str) -> str:
    return " ".join(text.split())


class Character(Record):
    name: str = Field(min_length=1, max_length=80)
    description: str = Field(min_length=1, max_length=400)

    _strip = field_validator("name", "description", mode="before")(lambda v: _clean(v) if isinstance(v, str) else v)


class CharacterList(Record):
    """Stage 2 output: the main characters of a passage."""

    characters: list[Character] = Field(min_length=1, max_length=8)


class Scene(Record):
    """Stage 3 output: the moment in the story (third person) and what the character says (first person)."""

    context: str = Field(min_length=10, max_length=1200)
    utterance: str = Field(min_length=3, max_length=600)

    _strip = field_validator("context", "utterance", mode="before")(lambda v: _clean(v) if isinstance(v, str) else v)


class Rewrites(Record):
    """Stage 5 output: stand-alone rewrites of an utterance."""

    rewrites: list[str] = Field(min_length=1, max_length=10)


class EmotionScore(Record):
    emotion: Emotion
    score: float = Field(ge=0.0, le=1.0)


class EmotionScores(Record):
    """Stage 4 output: a score for each emotion the LLM sees; absent emotions score 0."""

    emotions: list[EmotionScore] = Field(min_length=1, max_length=len(LABELS))

    def vector(self) -> dict[str, float]:
        """The full 28-score vector in taxonomy order (the max where an emotion is repeated)."""
        scores = dict.fromkeys(LABELS, 0.0)
        for item in self.emotions:
            scores[item.emotion] = max(scores[item.emotion], round(item.score, 4))
        return scores


class Example(Record):
    """One line of `examples.jsonl`."""

    id: str
    mode: Mode
    split: Split
    passage_id: str
    character: str
    character_description: str
    context: str | None
    utterance: str
    target_emotion: Emotion
    soft_labels: dict[str, float]
    labels: list[str]
    source_id: str | None = None  # for a context-less rewrite: the contextual example it rewrites
