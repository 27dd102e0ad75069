"""The LLM stages of synthesis, each a prompt template, a JSON schema and a parser (distilabel's tasks).

A stage turns one input item into one `Request` and parses one completion back into a record from
`records.py`, raising `ParseError` (reason "unparseable" or "invalid") when the output is unusable.
The runner (`runner.py`) does the batching, caching and retries.
"""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from emopillars import prompts
from emopillars.records import Character, CharacterList, EmotionScores, Passage, Rewrites, Scene
from emopillars.synth.backends import Request, Sampling
from emopillars.synth.config import SynthConfig
from emopillars.taxonomy import LABELS

In = TypeVar("In")
Out = TypeVar("Out", bound=BaseModel)


class ParseError(Exception):
    """An LLM output that cannot be used; `reason` is the counter it is dropped under after retries."""

    def __init__(self, reason: Literal["unparseable", "invalid"], message: str):
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class SceneTask:
    passage: Passage
    character: Character
    emotion: str


@dataclass(frozen=True)
class LabelTask:
    utterance: str
    context: str | None
    speaker: str


@dataclass(frozen=True)
class RewriteTask:
    character: Character
    utterance: str


class Stage(ABC, Generic[In, Out]):
    """One LLM call per input item; subclasses say what to ask and how to read the answer."""

    name: ClassVar[str]
    template: ClassVar[str]
    output: ClassVar[type[BaseModel]]

    def __init__(self, config: SynthConfig):
        self.config = config

    @abstractmethod
    def variables(self, item: In) -> dict: ...

    @abstractmethod
    def schema(self) -> dict: ...

    @abstractmethod
    def max_tokens(self) -> int: ...

    def check(self, item: In, record: Out) -> Out:
        """Semantic checks beyond the schema; may return a cleaned record or raise ParseError."""
        return record

    def request(self, item: In, attempt: int) -> Request:
        prompt = prompts.render(self.template, **self.variables(item))
        # A per-request seed makes sampling reproducible; each retry samples anew.
        seed = int(hashlib.sha256(f"{self.config.seed}|{attempt}|{prompt}".encode()).hexdigest()[:8], 16)
        sampling = Sampling(
            temperature=self.config.temperature, top_p=self.config.top_p, max_tokens=self.max_tokens(), seed=seed
        )
        return Request(messages=[{"role": "user", "content": prompt}], sampling=sampling, json_schema=self.schema())

    def parse(self, item: In, text: str) -> Out:
        span = _json_span(text)
        try:
            data = json.loads(span)
        except ValueError:
            try:  # unconstrained decoding often gets only the closing brackets wrong
                data = json.loads(balance_brackets(span))
            except ValueError:
                raise ParseError("unparseable", f"not JSON: {text[:80]!r}") from None
        try:
            record = self.output.model_validate(data)
        except ValidationError as exc:
            raise ParseError("invalid", str(exc).splitlines()[0]) from None
        return self.check(item, record)


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


def _normalised(text: str) -> str:
    return re.sub(r"\W+", " ", text.casefold()).strip()


MIN_UTTERANCE_WORDS, MIN_CONTEXT_WORDS = 3, 6


def _words(text: str) -> int:
    """Words that contain a letter: "1987" or "emotion:joy" are not an utterance."""
    return sum(bool(re.search(r"[^\W\d_]{2,}", w)) and ":" not in w for w in text.split())


class CharactersStage(Stage[Passage, CharacterList]):
    """Stage 2: the main characters of a passage, each named in it."""

    name, template, output = "characters", "characters.v1.j2", CharacterList

    def variables(self, item: Passage) -> dict:
        return {"passage": item.text, "max_characters": self.config.max_characters}

    def schema(self) -> dict:
        return prompts.characters_schema(self.config.max_characters)

    def max_tokens(self) -> int:
        return 60 * self.config.max_characters + 40

    def check(self, item: Passage, record: CharacterList) -> CharacterList:
        # Keep only characters the passage names (small models copy names from the prompt's example).
        text, seen, kept = _normalised(item.text), set(), []
        for character in record.characters:
            key = _normalised(character.name)
            first = key.split(" ")[0] if key else ""
            if first and re.search(rf"\b{re.escape(first)}\b", text) and key not in seen:
                seen.add(key)
                kept.append(character)
        if not kept:
            raise ParseError("invalid", "no character named in the passage")
        return CharacterList(characters=kept[: self.config.max_characters])


class SceneStage(Stage[SceneTask, Scene]):
    """Stage 3: the situation (third person) and what the character says in the target emotion."""

    name, template, output = "scenes", "scene.v1.j2", Scene

    def variables(self, item: SceneTask) -> dict:
        c = item.character
        return {"passage": item.passage.text, "name": c.name, "description": c.description, "emotion": item.emotion}

    def schema(self) -> dict:
        return prompts.scene_schema()

    def max_tokens(self) -> int:
        return 220

    def check(self, item: SceneTask, record: Scene) -> Scene:
        if _words(record.utterance) < MIN_UTTERANCE_WORDS or _words(record.context) < MIN_CONTEXT_WORDS:
            raise ParseError("invalid", "utterance or context too short to be a scene")
        if _normalised(record.utterance) == _normalised(record.context):
            raise ParseError("invalid", "utterance repeats the context")
        return record


class LabelStage(Stage[LabelTask, EmotionScores]):
    """Stages 4 and 5b: blind soft labels; the target emotion is not shown."""

    name, template, output = "labels", "label.v1.j2", EmotionScores
    max_emotions: ClassVar[int] = 5

    def variables(self, item: LabelTask) -> dict:
        return {
            "context": item.context,
            "speaker": item.speaker,
            "utterance": item.utterance,
            "labels": LABELS,
            "max_emotions": self.max_emotions,
        }

    def schema(self) -> dict:
        return prompts.label_schema(self.max_emotions)

    def max_tokens(self) -> int:
        return 24 * self.max_emotions + 20


class RewriteStage(Stage[RewriteTask, Rewrites]):
    """Stage 5: K context-less rewrites of an utterance, without names or story details."""

    name, template, output = "rewrites", "rewrite.v1.j2", Rewrites

    def variables(self, item: RewriteTask) -> dict:
        return {"name": item.character.name, "utterance": item.utterance, "k": self.config.contextless_per_example}

    def schema(self) -> dict:
        return prompts.rewrite_schema(self.config.contextless_per_example)

    def max_tokens(self) -> int:
        return 70 * self.config.contextless_per_example + 20

    def check(self, item: RewriteTask, record: Rewrites) -> Rewrites:
        names = {p for p in _normalised(item.character.name).split(" ") if len(p) > 1}
        seen, kept = {_normalised(item.utterance)}, []
        for rewrite in record.rewrites:
            text = " ".join(rewrite.split())
            key = _normalised(text)
            if _words(text) < MIN_UTTERANCE_WORDS or key in seen or names & set(key.split(" ")):
                continue  # a placeholder, a copy, or one that still names the character
            seen.add(key)
            kept.append(text)
        if not kept:
            raise ParseError("invalid", "no usable rewrite (copies, placeholders or named characters)")
        return Rewrites(rewrites=kept)
