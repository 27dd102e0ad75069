"""The runner of one synth (or teacher-eval) run: it owns the backend's stream, the call caches and the statistics.

`ask(stage, item)` is the one way a stage's call is made. The answer comes from the call cache when the call was
made before (an identical rerun sends nothing); otherwise the request goes to the backend at once, with at most
`max_in_flight` requests out, and its answer is cached the moment it arrives (a SIGKILL loses only the calls in
flight). An answer that fails its stage's checks is asked again at once with the next attempt's seed, up to
`max_retries` times. Callers are coroutines that `run()` drives side by side, so an item moves on to its next
stage as soon as its own call passes: no stage waits for another, and the engine batches whatever is in flight.

A failed call (the backend's own retries spent) is never cached. When `FAILURES_TO_STOP` calls in a row fail (the
server is down) or a stage's calls all fail (the server refuses that stage's requests), the run stops with a one-line
error naming the backend's last error; every call answered so far is in the cache, so a rerun resumes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tqdm.auto import tqdm

from emopillars import prompts
from emopillars.console import progress_bars_disabled
from emopillars.errors import EmopillarsError
from emopillars.synth.backends import Backend, Completion
from emopillars.synth.cache import CallCache, call_key
from emopillars.synth.stages import ParseError, Stage

log = logging.getLogger(__name__)
T = TypeVar("T")

# Failed calls in a row (each after the backend's own retries) that mean the backend is down for good; also the
# failures with no answer that condemn a stage before it ends (a smaller stage is judged when the run ends).
FAILURES_TO_STOP = 8


def hit_rate(prompt_tokens: int, cached_tokens: int) -> float | None:
    """The share of prompt tokens the engine served from its prefix cache; None when nothing was sent."""
    return round(cached_tokens / prompt_tokens, 4) if prompt_tokens else None


@dataclass
class StageStats:
    """One stage's calls: sent and cached, tokens of the sent ones, and how many answers were read and usable."""

    sent: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    cached_prompt_tokens: int = 0  # served from the engine's prefix cache, as the engine reports it
    generated_tokens: int = 0
    failed: int = 0  # sent calls that came back as errors (not cached)
    answered: int = 0
    usable: int = 0

    def record(self, completion: Completion) -> None:
        self.sent += 1
        self.failed += completion.finish_reason == "error"
        self.prompt_tokens += completion.prompt_tokens
        self.cached_prompt_tokens += completion.cached_tokens
        self.generated_tokens += completion.completion_tokens


@dataclass
class CallStats:
    """The run's counts: per stage, drops by reason, and what stages tally of their answers (`Stage.tally`)."""

    stages: defaultdict[str, StageStats] = field(default_factory=lambda: defaultdict(StageStats))
    dropped: Counter = field(default_factory=Counter)
    tallies: defaultdict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    faults: Counter = field(default_factory=Counter)  # the backend's failed attempts by kind, retried ones included
    llm_seconds: float = 0.0  # wall time of the LLM part (`Runner.run`)
    busy_seconds: float = 0.0  # of which at least one call was out at the engine

    @property
    def engine_busy_share(self) -> float | None:
        return round(self.busy_seconds / self.llm_seconds, 4) if self.llm_seconds else None

    def total(self, name: str) -> int:
        """A `StageStats` count summed over stages, e.g. `total("sent")`: the run's LLM calls."""
        return sum(getattr(s, name) for s in self.stages.values())

    def per_stage(self, name: str) -> dict[str, int]:
        return {stage: getattr(s, name) for stage, s in self.stages.items()}

    def prefix_cache(self) -> dict[str, dict[str, float | int | None]]:
        """Per stage: prompt tokens sent, those the engine served from its prefix cache, and their share."""
        return {
            stage: {
                "prompt_tokens": s.prompt_tokens,
                "cached_tokens": s.cached_prompt_tokens,
                "hit_rate": hit_rate(s.prompt_tokens, s.cached_prompt_tokens),
            }
            for stage, s in self.stages.items()
        }


class Runner:
    """Stages' calls for one output folder: cached, streamed to `backend`, retried; one progress bar per stage."""

    def __init__(self, backend: Backend, out: Path, max_retries: int, max_in_flight: int):
        self.backend, self.directory, self.max_retries = backend, out / "cache", max_retries
        self.max_in_flight = max_in_flight
        self.stats = CallStats()
        self.caches: dict[str, CallCache] = {}
        self.bars: dict[str, tqdm] = {}
        self._slots: asyncio.Semaphore | None = None
        self._out, self._busy_since = 0, 0.0  # calls out at the engine, and since when it has had one
        self._failures_in_row, self._last_error = 0, ""

    def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Drive `work()` (coroutines that `ask`) to its end; the bars close with it."""

        async def main() -> T:
            self._slots = asyncio.Semaphore(self.max_in_flight)
            return await work()

        started, faults_before = time.perf_counter(), Counter(self.backend.faults)
        try:
            result = asyncio.run(main())
        finally:
            self.stats.llm_seconds += time.perf_counter() - started
            self.stats.faults += Counter(self.backend.faults) - faults_before
            for bar in self.bars.values():
                bar.close()
            self.bars.clear()
        for name, s in self.stats.stages.items():
            if s.failed and not s.answered:
                raise self._stopped(f"all {s.failed} {name} call(s) failed", self._last_error)
        return result

    async def ask(self, stage: Stage, item: object) -> object | None:
        """The stage's checked record for `item`, or None when every attempt failed (counted in `stats.dropped`)."""
        stats, cache, bar = self.stats.stages[stage.name], self._cache(stage.name), self._bar(stage.name)
        template = prompts.template_source(stage.template)
        reason = "backend_error"
        for attempt in range(self.max_retries + 1):
            request = stage.request(item, attempt)
            key = call_key(template, self.backend.name, request, attempt)
            if key in cache:
                stats.cached += 1
                completion = cache[key]
            else:
                completion = await self._send(request)
                stats.record(completion)
                if completion.finish_reason == "error":  # not cached: retried now and on a rerun
                    log.warning("%s: call failed: %s", stage.name, completion.error)
                    reason = "backend_error"
                    self._failed(stage.name, stats, completion.error or "unknown error")
                    continue
                self._failures_in_row = 0
                cache.add([(key, completion)])
            stats.answered += 1
            try:
                if completion.finish_reason == "length":
                    raise ParseError("unparseable", "output cut at max_tokens")
                record = stage.read(completion.text)
                self.stats.tallies[stage.name].update(stage.tally(item, record))
                record = stage.check(item, record)
            except ParseError as exc:
                reason = exc.reason
                log.debug("%s attempt %d: %s", stage.name, attempt, exc)
                continue
            stats.usable += 1
            bar.update(1)
            return record
        self.stats.dropped[reason] += 1
        bar.update(1)
        return None

    def _failed(self, stage: str, stats: StageStats, error: str) -> None:
        """Count a failed call; stop the run when the backend looks down or refuses every call of `stage`."""
        self._failures_in_row += 1
        self._last_error = error
        if self._failures_in_row >= FAILURES_TO_STOP:
            raise self._stopped(f"{self._failures_in_row} calls in a row failed", error)
        if stats.failed >= FAILURES_TO_STOP and not stats.answered:
            raise self._stopped(f"all {stats.failed} {stage} calls so far failed", error)

    def _stopped(self, what: str, error: str) -> EmopillarsError:
        kept = sum(len(c) for c in self.caches.values())
        error = " ".join(error.split())[:300]  # a server's error page may span lines: the message stays one
        return EmopillarsError(
            f"stopped: {what} at backend {self.backend.name} (last error: {error}); the {kept} answered calls are "
            f"kept in {self.directory}, a rerun resumes from them"
        )

    async def _send(self, request) -> Completion:
        assert self._slots is not None, "ask() runs inside run()"
        async with self._slots:
            if not self._out:
                self._busy_since = time.perf_counter()
            self._out += 1
            try:
                return await asyncio.wrap_future(self.backend.submit(request))
            finally:
                self._out -= 1
                if not self._out:
                    self.stats.busy_seconds += time.perf_counter() - self._busy_since

    def _cache(self, stage: str) -> CallCache:
        if stage not in self.caches:
            self.caches[stage] = CallCache(self.directory, stage)
        return self.caches[stage]

    def _bar(self, stage: str) -> tqdm:
        """The stage's bar; its total grows as items reach the stage."""
        if stage not in self.bars:
            self.bars[stage] = tqdm(
                total=0, desc=f"{stage:<10}", position=len(self.bars), unit="item", disable=progress_bars_disabled()
            )
        bar = self.bars[stage]
        bar.total += 1
        bar.refresh()
        return bar
