"""Blind soft labels: `label_samples` calls per utterance, each showing the names in its own order, averaged.

Shared by `synth` and `teacher-eval`, so that a teacher is checked exactly as it will label.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from emopillars.records import EmotionScores
from emopillars.synth import fidelity
from emopillars.synth.config import LLMConfig
from emopillars.synth.runner import Runner
from emopillars.synth.stages import LabelStage, LabelTask
from emopillars.taxonomy import LABELS


@dataclass(frozen=True)
class SoftLabel:
    """The agreement of several blind judgements of one utterance."""

    scores: dict[str, float]  # mean score over the usable samples, absent = 0, taxonomy order
    agreement: float | None  # mean pairwise Jaccard of the samples' label sets; None below two samples
    explication: str  # the first account of the feeling among the usable samples ("" when none wrote one)

    @classmethod
    def from_samples(cls, samples: Sequence[EmotionScores], threshold: float) -> SoftLabel:
        vectors = [s.vector() for s in samples]
        scores = {label: round(sum(v[label] for v in vectors) / len(vectors), 4) for label in LABELS}
        sets = [frozenset(label for label, x in v.items() if x >= threshold) for v in vectors]
        explication = next((s.explication for s in samples if s.explication), "")
        return cls(scores, fidelity.jaccard_agreement(sets), explication)

    @property
    def primary(self) -> str:
        return max(LABELS, key=lambda label: self.scores[label])  # ties: the first in taxonomy order


class Labeller:
    """Labels utterances through `runner`, and keeps what the first-pick measures need of every usable call."""

    def __init__(self, config: LLMConfig, runner: Runner):
        self.config, self.runner, self.stage = config, runner, LabelStage(config)
        self.judgements: list[fidelity.Judgement] = []
        self.firsts_shown: list[str] = []  # per usable call, the name shown first
        self.first_label_positions: list[int] = []  # per usable call, where LABELS[0] stood among the names

    async def __call__(
        self,
        utterance: str,
        context: str | None,
        speaker: str,
        on_sample: Callable[[EmotionScores], None] | None = None,
    ) -> SoftLabel | None:
        """The soft label of one utterance, or None when no sample was usable; `on_sample` sees each usable sample
        as it arrives, so a caller can act on what the first ones already settle."""

        async def sample(task: LabelTask) -> EmotionScores | None:
            result = await self.runner.ask(self.stage, task)
            if result is not None and on_sample is not None:
                on_sample(result)
            return result

        tasks = [LabelTask(utterance, context, speaker, s) for s in range(self.config.label_samples)]
        results = await asyncio.gather(*(sample(t) for t in tasks))
        for task, result in zip(tasks, results, strict=True):
            if result is not None:
                order, first = self.stage.order(task), result.emotions[0].emotion
                self.judgements.append(fidelity.Judgement(first, order.index(first)))
                self.firsts_shown.append(order[0])
                self.first_label_positions.append(order.index(LABELS[0]))
        samples = [r for r in results if r is not None]
        return SoftLabel.from_samples(samples, self.config.label_threshold) if samples else None

    def simulated(self) -> dict:
        """The first-pick measures of labellers bound to the top of either list, on this run's calls."""
        return fidelity.position_bound_labellers(self.firsts_shown, self.first_label_positions)
