"""`emopillars synth`: corpus -> passages -> characters -> contextual utterances -> blind soft labels
-> context-less rewrites -> their soft labels -> de-duplication -> splits by passage -> export + report.

Every LLM stage goes through `run_stage` (batched, cached, retried); everything after the LLM is
deterministic, so an identical rerun answers from the cache and writes identical files.
"""

from __future__ import annotations

import fcntl
import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from emopillars.config import save_config
from emopillars.errors import EmopillarsError
from emopillars.records import Character, Example, Passage
from emopillars.synth.backends import Backend
from emopillars.synth.cache import CallCache
from emopillars.synth.config import SynthConfig
from emopillars.synth.export import SPLITS, assign_splits, example_id, write_outputs
from emopillars.synth.report import SynthReport, count_by
from emopillars.synth.runner import CallStats, run_stage
from emopillars.synth.schedule import schedule_emotions
from emopillars.synth.stages import (
    CharactersStage,
    LabelStage,
    LabelTask,
    RewriteStage,
    RewriteTask,
    SceneStage,
    SceneTask,
    Stage,
)
from emopillars.taxonomy import LABELS

log = logging.getLogger(__name__)

MODES = ("contextual", "contextless")


@dataclass(frozen=True)
class Candidate:
    """An utterance that passed the LLM stages, before de-duplication and split assignment."""

    mode: str
    passage: Passage
    character: Character
    target: str
    context: str | None
    utterance: str
    scores: dict[str, float]
    source_id: str | None = None

    @property
    def id(self) -> str:
        return example_id(self.mode, self.passage.id, self.character.name, self.target, self.context, self.utterance)


def synthesize(config: SynthConfig, backend: Backend | None = None) -> SynthReport:
    """Run the whole pipeline into `config.out` and return its report (also saved as report.json).

    Args:
        config: the run's settings.
        backend: an already loaded backend to reuse (the caller closes it); by default one is built
            from `config` and closed at the end.
    """
    from emopillars.corpora import load_passages

    started = time.perf_counter()
    with _exclusive(config.out):
        save_config(config, config.out / "config.json")
        passages = load_passages(
            config.corpus,
            text_field=config.text_field,
            max_chars=config.passage_chars,
            max_passages=config.max_passages,
        )
        llm = _LLM(config, backend or build_backend(config))
        try:
            slots = llm.characters(passages)
            contextual = llm.contextual(slots)
            contextless = llm.contextless(contextual)
        finally:
            if backend is None:
                llm.backend.close()
        stats = llm.stats
        kept, removed = _deduplicate(contextual + contextless, config)
        stats.dropped["duplicate"] += sum(removed.values())
        splits = assign_splits([c.passage.id for c in kept], config.split_fractions, config.seed)
        examples = [_example(c, splits[c.passage.id], config.label_threshold) for c in kept]
        write_outputs(examples, config.out)
        report = SynthReport(
            out=str(config.out),
            backend=config.backend,
            model=llm.backend.model,
            passages=len(passages),
            characters=len(slots),
            llm_calls=stats.llm_calls,
            cached_calls=stats.cached_calls,
            examples={m: sum(e.mode == m for e in examples) for m in MODES},
            per_label=count_by(e.target_emotion for e in examples),
            per_label_by_mode={m: count_by(e.target_emotion for e in examples if e.mode == m) for m in MODES},
            splits={s: count_by(e.mode for e in examples if e.split == s) for s in SPLITS},
            dropped=dict(sorted(stats.dropped.items())),
            dedup_removed_per_label=dict(sorted(removed.items())),
            dedup_threshold=config.dedup_threshold,
            prompt_tokens=stats.prompt_tokens,
            generated_tokens=stats.generated_tokens,
            wall_seconds=round(time.perf_counter() - started, 2),
        )
        (config.out / "report.json").write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return report


class _LLM:
    """The LLM stages of one run, sharing a backend, call caches and counters."""

    def __init__(self, config: SynthConfig, backend: Backend):
        self.config, self.backend, self.stats = config, backend, CallStats()
        self.caches: dict[str, CallCache] = {}  # one per stage: the label stage runs twice

    def _run(self, stage: Stage, items: Sequence) -> list:
        if stage.name not in self.caches:
            self.caches[stage.name] = CallCache(self.config.out / "cache", stage.name)
        c = self.config
        return run_stage(stage, items, self.backend, self.caches[stage.name], self.stats, c.max_retries, c.chunk_size)

    def characters(self, passages: Sequence[Passage]) -> list[tuple[Passage, Character]]:
        casts = self._run(CharactersStage(self.config), passages)
        return [(p, c) for p, cast in zip(passages, casts, strict=True) if cast for c in cast.characters]

    def contextual(self, slots: Sequence[tuple[Passage, Character]]) -> list[Candidate]:
        plan = schedule_emotions(slots, self.config.emotions_per_character, self.config.seed)
        tasks = [SceneTask(passage, character, emotion) for (passage, character), emotion in plan]
        scenes = self._run(SceneStage(self.config), tasks)
        drafts = [
            Candidate("contextual", t.passage, t.character, t.emotion, s.context, s.utterance, {})
            for t, s in zip(tasks, scenes, strict=True)
            if s is not None
        ]
        return self._label(drafts)

    def contextless(self, contextual: Sequence[Candidate]) -> list[Candidate]:
        if not self.config.contextless_per_example:
            return []
        tasks = [RewriteTask(c.character, c.utterance) for c in contextual]
        rewrites = self._run(RewriteStage(self.config), tasks)
        drafts = [
            Candidate("contextless", c.passage, c.character, c.target, None, text, {}, source_id=c.id)
            for c, r in zip(contextual, rewrites, strict=True)
            if r is not None
            for text in r.rewrites
        ]
        return self._label(drafts)

    def _label(self, drafts: Sequence[Candidate]) -> list[Candidate]:
        """Blind soft labels; a draft stays only if the labeller saw its target emotion.

        A context-less rewrite is shown as said by "Someone": no name ties it to its story.
        """
        tasks = [
            LabelTask(d.utterance, d.context, d.character.name if d.mode == "contextual" else "Someone") for d in drafts
        ]
        labels = self._run(LabelStage(self.config), tasks)
        kept = []
        for draft, scores in zip(drafts, labels, strict=True):
            if scores is None:
                continue  # counted by the runner (unparseable / invalid)
            vector = scores.vector()
            if vector[draft.target] < self.config.target_threshold:
                self.stats.dropped["target_not_recognised"] += 1
            else:
                kept.append(replace(draft, scores=vector))
        return kept


def build_backend(config: SynthConfig) -> Backend:
    """The backend `config` names, built (not loaded), on the embedded model unless one is given."""
    from emopillars.assets import generator_path
    from emopillars.synth.backends import make_backend

    model = config.model or generator_path()
    if config.backend == "vllm":
        options = dict(
            dtype=config.dtype,
            tensor_parallel_size=config.tensor_parallel_size,
            gpu_memory_utilization=config.gpu_memory_utilization,
            max_model_len=config.max_model_len,
        )
    elif config.backend == "openai":
        options = dict(
            base_url=config.base_url,
            api_key_env=config.api_key_env,
            concurrency=config.concurrency,
            max_retries=3,
            request_timeout=config.request_timeout,
        )
    else:
        options = dict(dtype=config.dtype, batch_size=config.batch_size)
    return make_backend(config.backend, model=model, **options)


def _deduplicate(candidates: list[Candidate], config: SynthConfig) -> tuple[list[Candidate], Counter]:
    """Exact and near-duplicate removal within each mode; the first occurrence stays."""
    from emopillars.synth.dedup import deduplicate
    from emopillars.synth.embed import embed

    kept_ids: set[int] = set()
    removed: Counter = Counter()
    for mode in MODES:
        index = [i for i, c in enumerate(candidates) if c.mode == mode]
        if not index:
            continue
        texts = [candidates[i].utterance for i in index]
        result = deduplicate(texts, embed(texts, config.embedder), config.dedup_threshold)
        kept_ids.update(index[k] for k in result.keep)
        removed.update(candidates[index[k]].target for k in result.removed)
    return [c for i, c in enumerate(candidates) if i in kept_ids], removed


def _example(c: Candidate, split: str, label_threshold: float) -> Example:
    return Example(
        id=c.id,
        mode=c.mode,
        split=split,
        passage_id=c.passage.id,
        character=c.character.name,
        character_description=c.character.description,
        context=c.context,
        utterance=c.utterance,
        target_emotion=c.target,
        soft_labels=c.scores,
        labels=[label for label in LABELS if c.scores[label] >= label_threshold],
        source_id=c.source_id,
    )


@contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """One run per output folder: two writers would interleave the cache."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / ".lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EmopillarsError(
                f"another emopillars synth is writing to {out}; wait for it or use another --out"
            ) from None
        yield
