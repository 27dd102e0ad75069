"""`emopillars synth`: corpus -> passages -> characters -> contextual utterances -> blind soft labels
-> context-less rewrites -> their soft labels -> de-duplication -> splits by passage -> export + report.

Every LLM stage goes through `run_stage` (batched, cached, retried); everything after the LLM is
deterministic, so an identical rerun answers from the cache and writes identical files.
"""

from __future__ import annotations

import fcntl
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from emopillars import prompts
from emopillars.errors import EmopillarsError
from emopillars.records import EXPRESSIVENESS, MODES, Character, EmotionScores, Example, Passage
from emopillars.synth import fidelity
from emopillars.synth.backends import Backend
from emopillars.synth.cache import CallCache
from emopillars.synth.config import LLMConfig, SynthConfig
from emopillars.synth.export import SPLITS, assign_splits, example_id, write_outputs
from emopillars.synth.report import SynthReport, count_by
from emopillars.synth.runner import CallStats, run_stage
from emopillars.synth.schedule import deal, schedule_emotions
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

TEMPLATES = (CharactersStage.template, SceneStage.template, LabelStage.template, RewriteStage.template)


@dataclass(frozen=True)
class Candidate:
    """An utterance that passed the LLM stages, before de-duplication and split assignment."""

    mode: str
    passage: Passage
    character: Character
    target: str
    expressiveness: str
    context: str | None
    utterance: str
    soft: SoftLabel | None = None
    source_id: str | None = None

    @property
    def id(self) -> str:
        return example_id(self.mode, self.passage.id, self.character.name, self.target, self.context, self.utterance)


@dataclass(frozen=True)
class SoftLabel:
    """The agreement of several blind judgements of one utterance."""

    scores: dict[str, float]  # mean score over the usable samples, absent = 0, taxonomy order
    agreement: float | None  # mean pairwise Jaccard of the samples' label sets; None below two samples
    explication: str  # the first usable sample's account of the feeling

    @classmethod
    def from_samples(cls, samples: Sequence[EmotionScores], threshold: float) -> SoftLabel:
        vectors = [s.vector() for s in samples]
        scores = {label: round(sum(v[label] for v in vectors) / len(vectors), 4) for label in LABELS}
        sets = [frozenset(label for label, x in v.items() if x >= threshold) for v in vectors]
        return cls(scores, fidelity.jaccard_agreement(sets), samples[0].explication)

    @property
    def primary(self) -> str:
        return max(LABELS, key=lambda label: self.scores[label])  # ties: the first in taxonomy order


def prompt_hashes() -> dict[str, str]:
    """Versioned template file -> sha256 prefix, for config.json and the dataset card."""
    return {name: prompts.template_hash(name) for name in (*TEMPLATES, prompts.SCENE_EXAMPLES)}


def synthesize(config: SynthConfig, backend: Backend | None = None) -> SynthReport:
    """Run the whole pipeline into `config.out` and return its report (also saved as report.json).

    Args:
        config: the run's settings.
        backend: an already loaded backend to reuse (the caller closes it); by default one is built
            from `config` and closed at the end.
    """
    from emopillars.corpora import load_passages
    from emopillars.synth.card import write_card

    started = time.perf_counter()
    with exclusive(config.out):
        saved = {**json.loads(config.model_dump_json()), "prompts": prompt_hashes()}
        (config.out / "config.json").write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")
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
        candidates = contextual + contextless
        kept, removed, vectors = _deduplicate(candidates, config)
        stats.dropped["duplicate"] += sum(removed.values())
        splits = assign_splits([c.passage.id for c in kept], config.split_fractions, config.seed)
        examples = [_example(c, splits[c.passage.id], config.label_threshold) for c in kept]
        write_outputs(examples, config.out)
        names: dict[str, list[str]] = {}
        for passage, character in slots:
            names.setdefault(passage.id, []).append(character.name)
        measures = fidelity.compute(
            examples,
            labelled=llm.labelled,
            judgements=llm.judgements,
            scene_leaks=llm.scene_leaks,
            names_by_passage=names,
            candidates=len(candidates),
            duplicates=sum(removed.values()),
            answered=dict(stats.answered),
            usable=dict(stats.usable),
            slots=llm.scheduled,
            rewrites_per_example=config.contextless_per_example,
            target_threshold=config.target_threshold,
            vectors=vectors,
        )
        report = SynthReport(
            out=str(config.out),
            backend=config.backend,
            model=llm.backend.model,
            passages=len(passages),
            characters=len(slots),
            scheduled=llm.scheduled,
            llm_calls=stats.llm_calls,
            cached_calls=stats.cached_calls,
            examples={m: sum(e.mode == m for e in examples) for m in MODES},
            per_label=count_by(e.target_emotion for e in examples),
            per_label_by_mode={m: count_by(e.target_emotion for e in examples if e.mode == m) for m in MODES},
            expressiveness=count_by(e.expressiveness for e in examples),
            splits={s: count_by(e.mode for e in examples if e.split == s) for s in SPLITS},
            dropped=dict(sorted(stats.dropped.items())),
            dedup_removed_per_label=dict(sorted(removed.items())),
            dedup_threshold=config.dedup_threshold,
            prompt_tokens=stats.prompt_tokens,
            generated_tokens=stats.generated_tokens,
            prompts=prompt_hashes(),
            fidelity=measures,
            wall_seconds=round(time.perf_counter() - started, 2),
        )
        (config.out / "report.json").write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
        write_card(config, report)
    return report


class _LLM:
    """The LLM stages of one run, sharing a backend, call caches and counters, and what fidelity needs of them."""

    def __init__(self, config: SynthConfig, backend: Backend):
        self.config, self.backend, self.stats = config, backend, CallStats()
        self.caches: dict[str, CallCache] = {}  # one per stage: the label stage runs twice
        self.labeller = Labeller(config, backend, self.stats, self.caches)
        self.scheduled = 0
        self.scene_leaks: dict[str, int] = {}
        self.labelled: list[tuple[str, float]] = []  # (target, mean blind score of the target) per labelled draft

    @property
    def judgements(self) -> list[fidelity.Judgement]:
        return self.labeller.judgements

    def _run(self, stage: Stage, items: Sequence) -> list:
        return run_cached(stage, items, self.config, self.backend, self.stats, self.caches)

    def characters(self, passages: Sequence[Passage]) -> list[tuple[Passage, Character]]:
        casts = self._run(CharactersStage(self.config), passages)
        return [(p, c) for p, cast in zip(passages, casts, strict=True) if cast for c in cast.characters]

    def contextual(self, slots: Sequence[tuple[Passage, Character]]) -> list[Candidate]:
        plan = schedule_emotions(slots, self.config.emotions_per_character, self.config.seed)
        levels = deal(len(plan), EXPRESSIVENESS, self.config.seed)
        tasks = [SceneTask(p, c, emotion, level) for ((p, c), emotion), level in zip(plan, levels, strict=True)]
        self.scheduled = len(tasks)
        stage = SceneStage(self.config)
        scenes = self._run(stage, tasks)
        self.scene_leaks = stage.leaks
        drafts = [
            Candidate("contextual", t.passage, t.character, t.emotion, t.expressiveness, s.context, s.utterance)
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
            replace(c, mode="contextless", context=None, utterance=text, soft=None, source_id=c.id)
            for c, r in zip(contextual, rewrites, strict=True)
            if r is not None
            for text in r.rewrites
        ]
        return self._label(drafts)

    def _label(self, drafts: Sequence[Candidate]) -> list[Candidate]:
        """Blind soft labels; a draft stays only if the labeller, on average, saw its target emotion.

        A context-less rewrite is shown as said by "Someone": no name ties it to its story.
        """
        speakers = [d.character.name if d.mode == "contextual" else "Someone" for d in drafts]
        labels = self.labeller([(d.utterance, d.context, who) for d, who in zip(drafts, speakers, strict=True)])
        kept = []
        for draft, soft in zip(drafts, labels, strict=True):
            if soft is None:
                continue  # every sample failed: counted by the runner (unparseable / invalid)
            self.labelled.append((draft.target, soft.scores[draft.target]))
            if soft.scores[draft.target] < self.config.target_threshold:
                self.stats.dropped["target_not_recognised"] += 1
            else:
                kept.append(replace(draft, soft=soft))
        return kept


class Labeller:
    """The blind label stage: `label_samples` calls per utterance, each in its own label order, averaged.

    Shared by `synth` and `teacher-eval`, so that a teacher is checked exactly as it will label.
    """

    def __init__(self, config: LLMConfig, backend: Backend, stats: CallStats, caches: dict[str, CallCache]):
        self.config, self.backend, self.stats, self.caches = config, backend, stats, caches
        self.stage = LabelStage(config)
        self.judgements: list[fidelity.Judgement] = []

    def __call__(self, items: Sequence[tuple[str, str | None, str]]) -> list[SoftLabel | None]:
        """(utterance, context, speaker) -> soft label, or None when no sample parsed."""
        n = self.config.label_samples
        tasks = [LabelTask(u, c, who, sample) for u, c, who in items for sample in range(n)]
        results = run_cached(self.stage, tasks, self.config, self.backend, self.stats, self.caches)
        for task, result in zip(tasks, results, strict=True):
            if result is not None:
                first = result.emotions[0].emotion
                self.judgements.append(fidelity.Judgement(first, self.stage.order(task).index(first)))
        out: list[SoftLabel | None] = []
        for i in range(len(items)):
            samples = [r for r in results[i * n : (i + 1) * n] if r is not None]
            out.append(SoftLabel.from_samples(samples, self.config.label_threshold) if samples else None)
        return out


def run_cached(
    stage: Stage, items: Sequence, config: LLMConfig, backend: Backend, stats: CallStats, caches: dict[str, CallCache]
) -> list:
    """`run_stage` with the stage's call cache under `config.out/cache` (opened once per run)."""
    if stage.name not in caches:
        caches[stage.name] = CallCache(config.out / "cache", stage.name)
    return run_stage(stage, items, backend, caches[stage.name], stats, config.max_retries, config.chunk_size)


def build_backend(config: LLMConfig) -> Backend:
    """The backend `config` names, built (not loaded), on the embedded model unless one is given."""
    from emopillars.assets import generator_path
    from emopillars.synth.backends import backend_from_config

    return backend_from_config(config, config.model or generator_path())


def _deduplicate(candidates: list[Candidate], config: SynthConfig) -> tuple[list[Candidate], Counter, np.ndarray]:
    """Exact and near-duplicate removal within each mode; the first occurrence stays.

    Returns the kept candidates in input order, removals per target label, and the kept utterances' unit
    embeddings (row i belongs to kept[i]) for the diversity measures.
    """
    from emopillars.synth.dedup import deduplicate
    from emopillars.synth.embed import embed, embed_on_ray

    def vectors_of(texts: list[str]) -> np.ndarray:
        if config.backend == "ray":
            return embed_on_ray(texts, config.embedder, config.ray_address)
        return embed(texts, config.embedder)

    kept_ids: dict[int, np.ndarray] = {}
    removed: Counter = Counter()
    for mode in MODES:
        index = [i for i, c in enumerate(candidates) if c.mode == mode]
        if not index:
            continue
        texts = [candidates[i].utterance for i in index]
        vectors = vectors_of(texts)
        result = deduplicate(texts, vectors, config.dedup_threshold)
        kept_ids.update((index[k], vectors[k]) for k in result.keep)
        removed.update(candidates[index[k]].target for k in result.removed)
    order = sorted(kept_ids)
    dim = next(iter(kept_ids.values())).shape[0] if kept_ids else 0
    vectors = np.stack([kept_ids[i] for i in order]) if order else np.zeros((0, dim), dtype=np.float32)
    return [candidates[i] for i in order], removed, vectors


def _example(c: Candidate, split: str, label_threshold: float) -> Example:
    assert c.soft is not None  # only labelled candidates reach export
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
        expressiveness=c.expressiveness,
        soft_labels=c.soft.scores,
        labels=[label for label in LABELS if c.soft.scores[label] >= label_threshold],
        primary_emotion=c.soft.primary,
        label_agreement=c.soft.agreement,
        explication=c.soft.explication,
        source_id=c.source_id,
    )


@contextmanager
def exclusive(out: Path) -> Iterator[None]:
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
