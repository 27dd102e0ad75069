"""Append-only on-disk store of LLM calls, so a killed run resumes and an identical rerun sends nothing.

One JSONL file per stage. A line is written (and flushed to the operating system) as soon as its call returns, so
SIGKILL loses at most the calls in flight. Lines reach the disk itself (fsync) at most `SYNC_EVERY_S` after they
are written: a power cut may lose the last second of calls (they are sent again), and the event loop that caches
hundreds of answers a second does not wait on the disk for each. A torn last line from a kill is skipped on load.
Calls that failed at the transport level (`finish_reason == "error"`) are never stored: a rerun sends them again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

from emopillars.synth.backends import Completion, Request
from emopillars.synth.files import write_atomic

log = logging.getLogger(__name__)

SYNC_EVERY_S = 1.0  # longest a cached call stays in the page cache only


def call_key(template: str, backend_name: str, request: Request, sample_index: int) -> str:
    """sha256 of (template text, model, sampling params, rendered prompt, schema, sample index).

    Batch size, concurrency and memory settings stay out: they change speed, not results.
    """
    payload = {
        "template": template,
        "backend": backend_name,
        "sampling": request.sampling.model_dump(),
        "messages": request.messages,
        "schema": request.json_schema,
        "sample": sample_index,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class CallCache:
    """Completions by call key for one stage, backed by `<dir>/<stage>.jsonl`."""

    def __init__(self, directory: Path, stage: str):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"{stage}.jsonl"
        self._entries: dict[str, Completion] = {}
        self._synced = time.monotonic()
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        torn = 0
        with self.path.open("rb") as f:
            lines = f.read().split(b"\n")
        for raw in lines:
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw)
                self._entries[entry["key"]] = Completion.model_validate(entry["completion"])
            except (ValueError, KeyError):
                torn += 1  # a line cut by a kill: its call is simply sent again
        if torn:
            log.warning("%s: skipped %d incomplete line(s) left by an interrupted run", self.path, torn)
            self._rewrite()

    def _rewrite(self) -> None:
        write_atomic(self.path, (_line(key, completion) for key, completion in self._entries.items()))

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def __getitem__(self, key: str) -> Completion:
        return self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, items: Iterable[tuple[str, Completion]]) -> None:
        """Store finished calls (safe from a kill at once, on disk within `SYNC_EVERY_S`), skipping transport errors."""
        with self.path.open("a", encoding="utf-8") as f:
            for key, completion in items:
                if completion.finish_reason == "error":
                    continue
                self._entries[key] = completion
                f.write(_line(key, completion))
            f.flush()
            if time.monotonic() - self._synced >= SYNC_EVERY_S:
                os.fsync(f.fileno())
                self._synced = time.monotonic()


def _line(key: str, completion: Completion) -> str:
    return json.dumps({"key": key, "completion": completion.model_dump()}, ensure_ascii=False) + "\n"
