"""Pydantic models of every record that crosses a stage boundary.

LLM outputs (`CharacterList`, `Scene`, `Rewrites`, `EmotionScores`) are validated against these
after constrained decoding; the exported `Example` is one line of `examples.jsonl`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from emopillars.sources import MODES as MODES  # re-exported: synth.pipeline reads the modes here
from emopillars.sources import Mode, SplitName
from emopillars.taxonomy import LABELS

Emotion = Literal[LABELS]  # type: ignore[valid-type]


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Passage(Record):
    """A bounded-length piece of narrative the LLM reads."""

    id: str
    source: str
    title: str | None = None
    text: str = Field(min_length=1)


def _fold(value: object) -> object:
    return " ".join(value.split()) if isinstance(value, str) else value


# LLM text with its white space folded before the length bounds apply: a run of newlines is not content.
Folded = Annotated[str, BeforeValidator(_fold)]


class Character(Record):
    name: Folded = Field(min_length=1, max_length=80)
    description: Folded = Field(min_length=1, max_length=400)


class CharacterList(Record):
    """The characters stage's output: the main characters of a passage."""

    characters: list[Character] = Field(min_length=1, max_length=8)


class Scene(Record):
    """The scene stage's output: the moment in the story (third person) and what the character says (first person)."""

    context: Folded = Field(min_length=10, max_length=1200)
    utterance: Folded = Field(min_length=3, max_length=600)


class Rewrites(Record):
    """The rewrite stage's output: stand-alone rewrites of an utterance."""

    rewrites: list[str] = Field(min_length=1, max_length=10)


class EmotionScore(Record):
    emotion: Emotion
    score: float = Field(ge=0.0, le=1.0)


class EmotionScores(Record):
    """Label stage output: the labeller's account of the feeling, then a score per emotion it sees (absent = 0).

    The account comes first so that it conditions the scores; calls not asked for one leave it empty. An emotion
    listed again counts once, with its first score: a small labeller given three slots fills them with the one
    emotion it sees ("fear 0.5, fear 0.5, fear 0.5"), which is a judgement, not a malformed answer (no JSON-schema
    keyword can say "unique by a field" to the decoder).
    """

    explication: Folded = Field("", max_length=600)
    emotions: list[EmotionScore] = Field(min_length=1, max_length=len(LABELS))

    @field_validator("emotions")
    @classmethod
    def _once_each(cls, emotions: list[EmotionScore]) -> list[EmotionScore]:
        first: dict[str, EmotionScore] = {}
        for e in emotions:
            first.setdefault(e.emotion, e)
        return list(first.values())

    def vector(self) -> dict[str, float]:
        """The full 28-score vector in taxonomy order."""
        scores = dict.fromkeys(LABELS, 0.0)
        for item in self.emotions:
            scores[item.emotion] = round(item.score, 4)
        return scores


EXPRESSIVENESS = ("explicit", "implicit", "subtle")  # how openly a scene shows its emotion, scheduled like targets
Expressiveness = Literal[EXPRESSIVENESS]  # type: ignore[valid-type]


class Example(Record):
    """One line of `examples.jsonl` (every field is documented in the README's synth section)."""

    id: str
    mode: Mode
    split: SplitName
    passage_id: str
    character: str
    character_description: str
    context: str | None
    utterance: str
    target_emotion: Emotion
    expressiveness: Expressiveness
    soft_labels: dict[str, float]
    labels: list[str]
    primary_emotion: Emotion
    label_agreement: float | None  # None when fewer than two label samples parsed
    explication: str
    source_id: str | None = None  # for a context-less rewrite: the contextual example it rewrites
