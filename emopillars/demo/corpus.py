"""A `synth` output folder as the demo browses it: examples, filters, counts and the fidelity table.

Pure Python (no gradio), so the page only lays out what this module computes. Fields that older runs
lack (`expressiveness`, `explication`, `primary_emotion`, `label_agreement`; `report["fidelity"]`)
are optional: a missing one shows as absent, never as an error.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from emopillars.errors import EmopillarsError
from emopillars.sources import jsonl_rows

ALL = "all"


@dataclass(frozen=True)
class Corpus:
    folder: Path
    examples: tuple[dict, ...]
    report: dict = field(default_factory=dict)

    def choices(self, name: str) -> list[str]:
        """The distinct values of a filter field in this run (ALL first); labels count targets and labels."""
        values: set[str] = set()
        for row in self.examples:
            if name == "label":
                values.update(v for v in [row.get("target_emotion"), *(row.get("labels") or [])] if v)
            elif row.get(name) is not None:
                values.add(str(row[name]))
        return [ALL, *sorted(values)]

    def select(self, label: str = ALL, mode: str = ALL, split: str = ALL, expressiveness: str = ALL) -> list[dict]:
        """Examples matching every filter; a label matches the target emotion or any of the labels."""

        def keep(row: dict) -> bool:
            if label != ALL and label != row.get("target_emotion") and label not in (row.get("labels") or []):
                return False
            return all(
                want == ALL or str(row.get(name)) == want
                for name, want in (("mode", mode), ("split", split), ("expressiveness", expressiveness))
            )

        return [row for row in self.examples if keep(row)]

    def fidelity_rows(self) -> list[list[Any]]:
        """`report["fidelity"]` flattened to [metric, value] rows (dotted paths for nested values)."""
        rows: list[list[Any]] = []

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for key, inner in value.items():
                    walk(f"{prefix}.{key}" if prefix else str(key), inner)
            else:
                rows.append([prefix, round(value, 4) if isinstance(value, float) else value])

        walk("", self.report.get("fidelity") or {})
        return rows


def per_label_counts(rows: list[dict]) -> dict[str, Counter]:
    """Target-emotion counts per mode: {mode: Counter(label -> n)}."""
    counts: dict[str, Counter] = {}
    for row in rows:
        counts.setdefault(str(row.get("mode")), Counter())[str(row.get("target_emotion"))] += 1
    return counts


def load_corpus(folder: str | Path) -> Corpus:
    """Read `examples.jsonl` (required) and `report.json` (optional) of a synth output folder."""
    path = Path(folder).expanduser()
    examples = path / "examples.jsonl"
    if not examples.is_file():
        raise EmopillarsError(f"not a synth output folder (no examples.jsonl): {path}")
    report = path / "report.json"
    stamp = (examples.stat().st_mtime_ns, report.stat().st_mtime_ns if report.is_file() else 0)
    return _read(path, stamp)


@lru_cache(maxsize=4)
def _read(path: Path, stamp: tuple[int, int]) -> Corpus:
    """Cached per folder and file times: every filter change reads the run again otherwise."""
    examples = path / "examples.jsonl"
    numbered = list(jsonl_rows(examples))
    for number, row in numbered:
        if not isinstance(row.get("utterance"), str):
            raise EmopillarsError(f"{examples}:{number}: no 'utterance' text")
    rows = tuple(row for _, row in numbered)
    report: Any = {}
    if stamp[1]:
        try:
            report = json.loads((path / "report.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise EmopillarsError(f"{path / 'report.json'}: not valid JSON ({exc.msg})") from None
    return Corpus(path, rows, report if isinstance(report, dict) else {})
