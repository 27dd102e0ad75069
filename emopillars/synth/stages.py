"""The LLM stages of synthesis, each a prompt template, a JSON schema and a parser (distilabel's tasks).

A stage turns one input item into one `Request`, reads one completion back into a record from `records.py`
and checks it, raising `ParseError` (reason "unparseable" or "invalid") when the output is unusable. Stages hold
no run state: what a run counts of their answers they return from `tally`, and the runner (`runner.py`) keeps it,
with the caching and retries. Prompts put their long shared parts first (instructions, definitions, the passage)
so the engine's prefix cache serves them to every call that shares them.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from emopillars import prompts
from emopillars.records import Character, CharacterList, EmotionScores, Expressiveness, Passage, Rewrites, Scene
from emopillars.synth.backends import Request, Sampling
from emopillars.synth.config import LLMConfig, SynthConfig
from emopillars.synth.dedup import normalise_text
from emopillars.taxonomy import DEFINITIONS, LABELS, names_label

In = TypeVar("In")
Out = TypeVar("Out", bound=BaseModel)


class ParseError(Exception):
    """An LLM output that cannot be used; `reason` is the counter it is dropped under after retries."""

    def __init__(self, reason: Literal["unparseable", "invalid", "target_word_leak"], message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SceneTask:
    passage: Passage
    character: Character
    emotion: str
    expressiveness: Expressiveness


@dataclass(frozen=True)
class LabelTask:
    """One blind judgement: `sample` tells apart the several label calls of one utterance (each its own order)."""

    utterance: str
    context: str | None
    speaker: str
    sample: int = 0


@dataclass(frozen=True)
class RewriteTask:
    character: Character
    utterance: str


class Stage(ABC, Generic[In, Out]):
    """One LLM call per input item; subclasses say what to ask and how to read the answer."""

    name: ClassVar[str]
    template: ClassVar[str]
    output: ClassVar[type[BaseModel]]

    def __init__(self, config: LLMConfig):
        self.config = config

    @abstractmethod
    def variables(self, item: In) -> dict: ...

    @abstractmethod
    def schema(self, item: In) -> dict: ...

    @abstractmethod
    def max_tokens(self, item: In) -> int: ...

    def check(self, item: In, record: Out) -> Out:
        """Semantic checks beyond the schema; may return a cleaned record or raise ParseError."""
        return record

    def tally(self, item: In, record: Out) -> dict[str, int]:
        """What the run counts of every answer that reads as a record, before `check` (for fidelity)."""
        return {}

    def temperature(self) -> float:
        """Generation stages write: they sample at the generation temperature."""
        return self.config.temperature

    def request(self, item: In, attempt: int) -> Request:
        prompt = prompts.render(self.template, **self.variables(item))
        # A per-request seed makes sampling reproducible; each retry samples anew.
        seed = int(hashlib.sha256(f"{self.config.seed}|{attempt}|{prompt}".encode()).hexdigest()[:8], 16)
        sampling = Sampling(
            temperature=self.temperature(), top_p=self.config.top_p, max_tokens=self.max_tokens(item), seed=seed
        )
        return Request(messages=[{"role": "user", "content": prompt}], sampling=sampling, json_schema=self.schema(item))

    def read(self, text: str) -> Out:
        """The record a completion holds (JSON, validated against the output model)."""
        span = _json_span(text)
        try:
            data = json.loads(span)
        except ValueError:
            try:  # unconstrained decoding often gets only the closing brackets wrong
                data = json.loads(balance_brackets(span))
            except ValueError:
                raise ParseError("unparseable", f"not JSON: {text[:80]!r}") from None
        try:
            return self.output.model_validate(data)
        except ValidationError as exc:
            raise ParseError("invalid", str(exc).splitlines()[0]) from None

    def parse(self, item: In, text: str) -> Out:
        """`read`, then `check`."""
        return self.check(item, self.read(text))


def _json_span(text: str) -> str:
    """The outermost {...} of a reply: servers without constrained decoding may wrap JSON in prose."""
    start, end = text.find("{"), text.rfind("}")
    return text[start : end + 1] if 0 <= start < end else text


def balance_brackets(text: str) -> str:
    """Make every closing bracket match its opener and close what is left open (outside strings)."""
    pairs, stack, out, in_string, escaped = {"{": "}", "[": "]"}, [], [], False, False
    for char in text:
        if in_string:
            in_string = char != '"' or escaped
            escaped = char == "\\" and not escaped
        elif char == '"':
            in_string = True
        elif char in pairs:
            stack.append(pairs[char])
        elif char in "}]":
            if not stack:
                break  # closes nothing: the JSON value is over
            char = stack.pop()
        out.append(char)
    return "".join(out) + ('"' if in_string else "") + "".join(reversed(stack))


def _words_of(key: str) -> set[str]:
    """The words of a `normalise_text` key, each also without a possessive "s" ("Mara's" keys as "maras")."""
    words = set(key.split(" "))
    return words | {w[:-1] for w in words if w.endswith("s")}


MIN_UTTERANCE_WORDS, MIN_CONTEXT_WORDS = 3, 6


def _words(text: str) -> int:
    """Words that contain a letter: "1987" or "emotion:joy" are not an utterance."""
    return sum(bool(re.search(r"[^\W\d_]{2,}", w)) and ":" not in w for w in text.split())


class CharactersStage(Stage[Passage, CharacterList]):
    """The main characters of a passage, each named in it."""

    name, template, output = "characters", "characters.v1.j2", CharacterList

    def variables(self, item: Passage) -> dict:
        return {"passage": item.text, "max_characters": self.config.max_characters}

    def schema(self, item: Passage) -> dict:
        return prompts.characters_schema(self.config.max_characters)

    def max_tokens(self, item: Passage) -> int:
        return 60 * self.config.max_characters + 40

    def check(self, item: Passage, record: CharacterList) -> CharacterList:
        # Keep only characters the passage names (small models copy names from the prompt's example).
        text, seen, kept = normalise_text(item.text), set(), []
        for character in record.characters:
            key = normalise_text(character.name)
            first = key.split(" ")[0] if key else ""
            if first and re.search(rf"\b{re.escape(first)}s?\b", text) and key not in seen:  # s: "Mara's"
                seen.add(key)
                kept.append(character)
        if not kept:
            raise ParseError("invalid", "no character named in the passage")
        return CharacterList(characters=kept[: self.config.max_characters])


EXPRESSIVENESS_MEANINGS: dict[str, str] = {  # what each level of `records.EXPRESSIVENESS` asks of a scene
    "explicit": "the feeling is unmistakable in the words and their tone",
    "implicit": "the feeling shows through what is said about the situation, not through talk about feelings",
    "subtle": "the feeling is only hinted at; an attentive listener would still notice it",
}
# Few-shot utterances per scene prompt, rotated so that no single opener is copied everywhere. They come first and
# without their contexts: shown as whole JSON answers next to the request, SmolLM2 pasted them in 25 of 36 scenes
# (2 usable); shown this way 1 of 36 was a copy and 8 were usable, as many as with no examples at all (7).
FEW_SHOT = 2


def _copies(scene: Scene, example: dict, n: int = 5) -> bool:
    """Whether the scene shares a run of `n` words with a few-shot example (small models paste them whole)."""

    def grams(text: str) -> set[tuple[str, ...]]:
        words = normalise_text(text).split(" ")
        return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}

    shown = grams(example["context"]) | grams(example["utterance"])
    return bool(shown & (grams(scene.context) | grams(scene.utterance)))


class SceneStage(Stage[SceneTask, Scene]):
    """The situation (third person) and what the character says, showing the target emotion.

    The prompt gives the target's definition and asks for it to be shown, not named; an utterance that names it
    (or an inflection) is retried and, at the end, dropped as `target_word_leak` unless `allow_emotion_words`.
    `tally` counts, over every scene that reads, the utterances and contexts that name their target.
    """

    name, template, output = "scenes", "scene.v3.j2", Scene
    config: SynthConfig

    def examples(self, item: SceneTask) -> list[dict]:
        """A seeded draw from the few-shot pool, never of the target emotion."""
        pool = [e for e in prompts.scene_examples() if e["emotion"] != item.emotion]
        key = f"{self.config.seed}|{item.passage.id}|{item.character.name}|{item.emotion}"
        return random.Random(key).sample(pool, FEW_SHOT)

    def variables(self, item: SceneTask) -> dict:
        c = item.character
        return {
            "passage": item.passage.text,
            "name": c.name,
            "description": c.description,
            "emotion": item.emotion,
            "definition": DEFINITIONS[item.emotion],
            "expressiveness": item.expressiveness,
            "expressiveness_meaning": EXPRESSIVENESS_MEANINGS[item.expressiveness],
            "examples": self.examples(item),
        }

    def schema(self, item: SceneTask) -> dict:
        return prompts.scene_schema()

    def max_tokens(self, item: SceneTask) -> int:
        return 220

    def check(self, item: SceneTask, record: Scene) -> Scene:
        if _words(record.utterance) < MIN_UTTERANCE_WORDS or _words(record.context) < MIN_CONTEXT_WORDS:
            raise ParseError("invalid", "utterance or context too short to be a scene")
        utterance = normalise_text(record.utterance)
        if utterance == normalise_text(record.context):
            raise ParseError("invalid", "utterance repeats the context")
        if any(_copies(record, e) for e in self.examples(item)):
            raise ParseError("invalid", "scene copies a few-shot example")
        if names_label(record.utterance, item.emotion) and not self.config.allow_emotion_words:
            raise ParseError("target_word_leak", f"utterance names its target emotion {item.emotion!r}")
        return record

    def tally(self, item: SceneTask, record: Scene) -> dict[str, int]:
        return {
            "scenes": 1,
            "utterance": names_label(record.utterance, item.emotion),
            "context": names_label(record.context, item.emotion),
        }


class LabelStage(Stage[LabelTask, EmotionScores]):
    """Blind soft labels of contextual utterances and of their rewrites; the target emotion is not shown.

    Every call starts with the same text, the instructions and the 28 definitions in the taxonomy's order (about
    900 tokens the engine's prefix cache serves after the first call); then the situation and the utterance; then
    the 28 names to choose from in the call's own seeded order (from `--seed` and the call), so that a labeller's
    taste for the top of a list spreads over all labels instead of favouring one. `order()` gives that order back
    for the fidelity measures, which also watch the definitions' fixed order.
    """

    name, template, output = "labels", "label.v4.j2", EmotionScores
    # Three, not five: SmolLM2 fills every slot it is given, repeating emotions once it runs out of ideas.
    max_emotions: ClassVar[int] = 3

    def order(self, item: LabelTask) -> list[str]:
        labels = list(LABELS)
        key = f"{self.config.seed}|{item.sample}|{item.speaker}|{item.context}|{item.utterance}"
        random.Random(key).shuffle(labels)
        return labels

    def variables(self, item: LabelTask) -> dict:
        return {
            "context": item.context,
            "speaker": item.speaker,
            "utterance": item.utterance,
            "definitions": [(label, DEFINITIONS[label]) for label in LABELS],
            "names": self.order(item),
            "max_emotions": self.max_emotions,
            "explain": self.explains(item),
        }

    def explains(self, item: LabelTask) -> bool:
        """Whether the call writes an explication first: only the first sample's is kept with the example."""
        return item.sample == 0 or self.config.label_explications == "all"

    def temperature(self) -> float:
        return self.config.label_temperature

    def schema(self, item: LabelTask) -> dict:
        return prompts.label_schema(self.max_emotions, self.explains(item))

    def max_tokens(self, item: LabelTask) -> int:
        # the explication (at most 200 characters) when asked for, then the scores
        return 24 * self.max_emotions + (80 if self.explains(item) else 20)

    def check(self, item: LabelTask, record: EmotionScores) -> EmotionScores:
        if self.explains(item) and not record.explication:
            raise ParseError("invalid", "no explication")  # servers without constrained decoding may skip it
        return record


class RewriteStage(Stage[RewriteTask, Rewrites]):
    """K context-less rewrites of an utterance, without names or story details."""

    name, template, output = "rewrites", "rewrite.v1.j2", Rewrites

    def variables(self, item: RewriteTask) -> dict:
        return {"name": item.character.name, "utterance": item.utterance, "k": self.config.contextless_per_example}

    def schema(self, item: RewriteTask) -> dict:
        return prompts.rewrite_schema(self.config.contextless_per_example)

    def max_tokens(self, item: RewriteTask) -> int:
        return 70 * self.config.contextless_per_example + 20

    def check(self, item: RewriteTask, record: Rewrites) -> Rewrites:
        names = {p for p in normalise_text(item.character.name).split(" ") if len(p) > 1}
        seen, kept = {normalise_text(item.utterance)}, []
        for rewrite in record.rewrites:
            text = " ".join(rewrite.split())
            key = normalise_text(text)
            if _words(text) < MIN_UTTERANCE_WORDS or key in seen or names & _words_of(key):
                continue  # a placeholder, a copy, or one that still names the character
            seen.add(key)
            kept.append(text)
        if not kept:
            raise ParseError("invalid", "no usable rewrite (copies, placeholders or named characters)")
        return Rewrites(rewrites=kept)
