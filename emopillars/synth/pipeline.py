"""`emopillars synth`: corpus -> passages -> characters -> contextual utterances -> blind soft labels
-> context-less rewrites -> their soft labels -> de-duplication -> splits by passage -> export + report.

The LLM part is one stream (`Drafting`): each passage, scene and utterance moves to its next stage as soon as
its own call is answered and checked, through one `Runner` (cached, retried, at most `max_in_flight` calls out).
Everything after the LLM is deterministic and keyed by item, not by arrival, so an identical rerun answers from
the cache and writes identical files, whatever order the answers came in.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from emopillars import prompts
from emopillars.records import EXPRESSIVENESS, MODES, Character, EmotionScores, Example, Passage
from emopillars.synth import fidelity
from emopillars.synth.backends import Backend
from emopillars.synth.config import LLMConfig, SynthConfig
from emopillars.synth.export import SPLITS, assign_splits, example_id, write_outputs
from emopillars.synth.files import exclusive, write_atomic
from emopillars.synth.labeller import Labeller, SoftLabel
from emopillars.synth.report import SynthReport, count_by
from emopillars.synth.runner import Runner
from emopillars.synth.schedule import Deck
from emopillars.synth.stages import CharactersStage, LabelStage, RewriteStage, RewriteTask, SceneStage, SceneTask
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
        write_atomic(config.out / "config.json", json.dumps(saved, indent=2) + "\n")
        passages = load_passages(
            config.corpus,
            text_field=config.text_field,
            max_chars=config.passage_chars,
            max_passages=config.max_passages,
        )
        llm = backend or build_backend(config)
        runner = Runner(llm, config.out, config.max_retries, config.max_in_flight, config.sends_ahead)
        drafting = Drafting(config, runner)
        try:
            contextual, contextless = runner.run(lambda: drafting.run(passages))
        finally:
            if backend is None:
                llm.close()
        stats = runner.stats
        candidates = contextual + contextless
        kept, removed, vectors = _deduplicate(candidates, config)
        stats.dropped["duplicate"] += sum(removed.values())
        splits = assign_splits([c.passage.id for c in kept], config.split_fractions, config.seed)
        examples = [_example(c, splits[c.passage.id], config.label_threshold) for c in kept]
        write_outputs(examples, config.out)
        measures = drafting.fidelity(examples, len(candidates), removed, vectors)
        seconds = round(time.perf_counter() - started, 2)
        report = _report(config, llm.model, len(passages), drafting, examples, removed, measures, seconds)
        write_atomic(config.out / "report.json", report.model_dump_json(indent=2) + "\n")
        write_card(config, report)
    return report


def _report(
    config: SynthConfig,
    model: str,
    passages: int,
    drafting: Drafting,
    examples: list[Example],
    removed: Counter,
    measures: dict,
    wall_seconds: float,
) -> SynthReport:
    """What the run sent, kept, dropped and measured: report.json."""
    stats = drafting.runner.stats
    return SynthReport(
        out=str(config.out),
        backend=config.backend,
        model=model,
        passages=passages,
        characters=len(drafting.slots),
        scheduled=drafting.scheduled,
        llm_calls=stats.total("sent"),
        cached_calls=stats.total("cached"),
        sent_ahead=stats.total("sent_ahead"),
        withdrawn=stats.total("withdrawn"),
        withdrawn_tokens=stats.total("withdrawn_tokens"),
        examples={m: sum(e.mode == m for e in examples) for m in MODES},
        per_label=count_by(e.target_emotion for e in examples),
        per_label_by_mode={m: count_by(e.target_emotion for e in examples if e.mode == m) for m in MODES},
        expressiveness=count_by(e.expressiveness for e in examples),
        splits={s: count_by(e.mode for e in examples if e.split == s) for s in SPLITS},
        dropped=dict(sorted(stats.dropped.items())),
        backend_faults=dict(sorted(stats.faults.items())),
        dedup_removed_per_label=dict(sorted(removed.items())),
        dedup_threshold=config.dedup_threshold,
        prompt_tokens=stats.total("prompt_tokens"),
        generated_tokens=stats.total("generated_tokens"),
        prefix_cache=stats.prefix_cache(),
        engine_busy_share=stats.engine_busy_share,
        mean_in_flight=stats.mean_in_flight,
        prompts=prompt_hashes(),
        fidelity=measures,
        wall_seconds=wall_seconds,
    )


class Drafting:
    """The LLM part of a run as one stream: passage -> characters -> scenes -> labels -> rewrites -> labels.

    Every passage flows on its own; targets are dealt in passage order (each passage waits only for the earlier
    passages' casts), so the schedule is the same whatever order answers arrive in. Results are gathered by item,
    never by arrival.
    """

    def __init__(self, config: SynthConfig, runner: Runner):
        self.config, self.runner = config, runner
        self.characters, self.scenes, self.rewrites = CharactersStage(config), SceneStage(config), RewriteStage(config)
        self.labeller = Labeller(config, runner)
        self.emotions, self.levels = Deck(LABELS, config.seed), Deck(EXPRESSIVENESS, config.seed)
        self.slots: list[tuple[Passage, Character]] = []  # in passage order
        self.labelled: list[tuple[str, float]] = []  # (target, mean blind score of the target) per labelled draft

    @property
    def scheduled(self) -> int:
        """Scenes scheduled: every character gets `emotions_per_character` targets."""
        return len(self.slots) * self.config.emotions_per_character

    def fidelity(self, examples: list[Example], candidates: int, removed: Counter, vectors: np.ndarray) -> dict:
        """The run's fidelity measures (`fidelity.compute`) from what was drafted, labelled and kept."""
        stats = self.runner.stats
        names: dict[str, list[str]] = {}
        for passage, character in self.slots:
            names.setdefault(passage.id, []).append(character.name)
        return fidelity.compute(
            examples,
            labelled=self.labelled,
            judgements=self.labeller.judgements,
            simulated=self.labeller.simulated(),
            scene_leaks=dict(stats.tallies[SceneStage.name]),
            names_by_passage=names,
            candidates=candidates,
            duplicates=sum(removed.values()),
            answered=stats.per_stage("answered"),
            usable=stats.per_stage("usable"),
            slots=self.scheduled,
            rewrites_per_example=self.config.contextless_per_example,
            target_threshold=self.config.target_threshold,
            vectors=vectors,
        )

    async def run(self, passages: list[Passage]) -> tuple[list[Candidate], list[Candidate]]:
        """The kept contextual candidates and their kept context-less rewrites, each in schedule order.

        Passages enter in order, a bounded number at a time, so memory stays flat on a large corpus.
        """
        admitted = asyncio.Semaphore(max(1, -(-self.config.max_in_flight // 8)))
        flows, previous = [], None
        for passage in passages:
            await admitted.acquire()
            dealt = asyncio.Event()  # set once this passage's targets are dealt: the next one deals after it
            flow = asyncio.ensure_future(self._passage(passage, previous, dealt))
            flow.add_done_callback(lambda _: admitted.release())
            flows.append(flow)
            previous = dealt
        drafts = [d for flow in await asyncio.gather(*flows) for d in flow]
        contextual = [c for c, _ in drafts if c is not None]
        return contextual, [r for _, rewrites in drafts for r in rewrites]

    async def _passage(
        self, passage: Passage, previous: asyncio.Event | None, dealt: asyncio.Event
    ) -> list[tuple[Candidate | None, list[Candidate]]]:
        cast = await self.runner.ask(self.characters, passage)
        if previous is not None:
            await previous.wait()
        tasks = self._deal(passage, cast.characters if cast else [])
        dealt.set()
        return list(await asyncio.gather(*(self._scene(t) for t in tasks)))

    def _deal(self, passage: Passage, characters: list[Character]) -> list[SceneTask]:
        tasks = []
        for character in characters:
            self.slots.append((passage, character))
            for emotion in self.emotions.hand(self.config.emotions_per_character):
                tasks.append(SceneTask(passage, character, emotion, self.levels.draw()))
        return tasks

    async def _scene(self, task: SceneTask) -> tuple[Candidate | None, list[Candidate]]:
        """One scheduled scene: its kept contextual example (or None) and its kept context-less rewrites."""
        scene = await self.runner.ask(self.scenes, task)
        if scene is None:
            return None, []
        draft = Candidate(
            "contextual",
            task.passage,
            task.character,
            task.emotion,
            task.expressiveness,
            scene.context,
            scene.utterance,
        )
        if not self.config.contextless_per_example:
            return await self._label(draft), []
        recognised = asyncio.Event()
        labelling = asyncio.ensure_future(self._label(draft, recognised))
        await _either(labelling, recognised)
        if labelling.done() and labelling.result() is None:
            return None, []
        # The draft is kept: its rewrites go out now, while the rest of its label samples are still out.
        example, rewrites = await asyncio.gather(
            labelling, self.runner.ask(self.rewrites, RewriteTask(draft.character, draft.utterance))
        )
        assert example is not None  # `recognised` is set only when the samples so far settle it
        if rewrites is None:
            return example, []
        drafts = [
            replace(example, mode="contextless", context=None, utterance=text, soft=None, source_id=example.id)
            for text in rewrites.rewrites
        ]
        labelled = await asyncio.gather(*(self._label(d) for d in drafts))
        return example, [c for c in labelled if c is not None]

    async def _label(self, draft: Candidate, recognised: asyncio.Event | None = None) -> Candidate | None:
        """The draft with its blind soft label, if the labeller, on average, saw its target emotion.

        `recognised` is set as soon as the samples so far settle that it did (`settled`), so what follows a draft
        (its rewrites) need not wait for its slowest sample, usually the one that writes the explication. A
        context-less rewrite is shown as said by "Someone": no name ties it to its story.
        """
        speaker = draft.character.name if draft.mode == "contextual" else "Someone"
        seen: list[float] = []  # the target's score in each usable sample so far

        def on_sample(record: EmotionScores) -> None:
            seen.append(record.vector()[draft.target])
            if recognised is not None and settled(seen, self.config.label_samples, self.config.target_threshold):
                recognised.set()

        soft = await self.labeller(draft.utterance, draft.context, speaker, on_sample)
        if soft is None:
            return None  # every sample failed: counted by the runner (unparseable / invalid)
        self.labelled.append((draft.target, soft.scores[draft.target]))
        if soft.scores[draft.target] < self.config.target_threshold:
            self.runner.stats.dropped["target_not_recognised"] += 1
            return None
        return replace(draft, soft=soft)


def settled(scores: Sequence[float], samples: int, threshold: float) -> bool:
    """Whether the target scores of some usable samples of `samples` already make the mean over all usable ones
    reach `threshold`, whatever the others score or whether they fail: their sum reaches threshold x samples.

    The margin covers summing the same scores in another order (scores have 4 decimals).
    """
    return bool(scores) and (threshold <= 0 or sum(scores) / samples >= threshold + 1e-6)


async def _either(task: asyncio.Future, event: asyncio.Event) -> None:
    """Wait until `task` is done or `event` is set, whichever comes first."""
    waiter = asyncio.ensure_future(event.wait())
    await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()


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
