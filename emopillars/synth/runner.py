"""Runs a stage over all its items: cached calls are reused, the rest go to the backend in large
batches (in item order, so prompts of one passage sit together for vLLM's prefix cache) and are
cached batch by batch as the backend hands them back, and
outputs that fail to parse are retried with a fresh sample up to `max_retries` times.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from emopillars import prompts
from emopillars.synth.backends import Backend, Completion
from emopillars.synth.cache import CallCache, call_key
from emopillars.synth.stages import ParseError, Stage

log = logging.getLogger(__name__)


@dataclass
class CallStats:
    """Counts of one run, summed over stages; `dropped` is keyed by reason, `answered` and `usable` by stage
    (completions read, and those that parsed and passed the checks: the stage's yield)."""

    llm_calls: int = 0
    cached_calls: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    dropped: Counter = field(default_factory=Counter)
    answered: Counter = field(default_factory=Counter)
    usable: Counter = field(default_factory=Counter)

    def record_sent(self, completions: Sequence[Completion]) -> None:
        self.llm_calls += len(completions)
        self.prompt_tokens += sum(c.prompt_tokens for c in completions)
        self.generated_tokens += sum(c.completion_tokens for c in completions)


def run_stage(
    stage: Stage,
    items: Sequence,
    backend: Backend,
    cache: CallCache,
    stats: CallStats,
    max_retries: int,
    chunk_size: int,
) -> list:
    """One parsed output per item, or None where every attempt failed (counted in `stats.dropped`)."""
    template = prompts.template_source(stage.template)
    results: list = [None] * len(items)
    reasons: dict[int, str] = {}
    pending = list(range(len(items)))
    for attempt in range(max_retries + 1):
        if not pending:
            break
        requests = {i: stage.request(items[i], attempt) for i in pending}
        keys = {i: call_key(template, backend.name, requests[i], attempt) for i in pending}
        todo = [i for i in pending if keys[i] not in cache]
        stats.cached_calls += len(pending) - len(todo)
        if todo:
            backend.load()  # lazy: a fully cached rerun never starts the engine
        desc = stage.name + (f" (retry {attempt})" if attempt else "")
        for positions, completions in backend.stream([requests[i] for i in todo], desc, chunk_size):
            batch = [todo[p] for p in positions]
            stats.record_sent(completions)
            cache.add((keys[i], c) for i, c in zip(batch, completions, strict=True))
            for i, c in zip(batch, completions, strict=True):
                if c.finish_reason == "error":
                    reasons[i] = "backend_error"
                    log.warning("%s: call failed: %s", stage.name, c.error)
        still = []
        for i in pending:
            if keys[i] not in cache:  # a transport error: not cached, retried now and on a rerun
                still.append(i)
                continue
            completion = cache[keys[i]]
            stats.answered[stage.name] += 1
            try:
                if completion.finish_reason == "length":
                    raise ParseError("unparseable", "output cut at max_tokens")
                results[i] = stage.parse(items[i], completion.text)
                stats.usable[stage.name] += 1
            except ParseError as exc:
                reasons[i] = exc.reason
                log.debug("%s item %d attempt %d: %s", stage.name, i, attempt, exc)
                still.append(i)
        pending = still
    for i in pending:
        stats.dropped[reasons[i]] += 1
    if pending:
        log.info(
            "%s: %d of %d items dropped after %d attempt(s)", stage.name, len(pending), len(items), max_retries + 1
        )
    return results
