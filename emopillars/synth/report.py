"""The end-of-run report: what was made, what was dropped and why, what it cost."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel

from emopillars.taxonomy import LABELS

DROP_REASONS = ("unparseable", "invalid", "backend_error", "target_not_recognised", "duplicate")


class SynthReport(BaseModel):
    out: str
    backend: str
    model: str
    passages: int
    characters: int
    llm_calls: int
    cached_calls: int
    examples: dict[str, int]
    per_label: dict[str, int]
    per_label_by_mode: dict[str, dict[str, int]]
    splits: dict[str, dict[str, int]]
    dropped: dict[str, int]
    dedup_removed_per_label: dict[str, int]
    dedup_threshold: float
    prompt_tokens: int
    generated_tokens: int
    wall_seconds: float

    def summary(self) -> str:
        """A plain-text table for the terminal."""
        modes = ("contextual", "contextless")
        lines = [
            f"emopillars synth -> {self.out}",
            f"  backend {self.backend} ({self.model}); {self.passages} passages, {self.characters} characters",
            f"  LLM calls {self.llm_calls} sent, {self.cached_calls} cached; tokens {self.prompt_tokens} prompt, "
            f"{self.generated_tokens} generated; {self.wall_seconds:.1f} s",
            "",
            f"  {'label':<15}{'contextual':>12}{'contextless':>13}",
        ]
        for label in LABELS:
            counts = [self.per_label_by_mode[m].get(label, 0) for m in modes]
            lines.append(f"  {label:<15}{counts[0]:>12}{counts[1]:>13}")
        lines.append(f"  {'total':<15}{self.examples['contextual']:>12}{self.examples['contextless']:>13}")
        split_text = ", ".join(f"{s} {sum(c.values())}" for s, c in self.splits.items())
        lines += ["", f"  splits: {split_text}"]
        lines.append("  dropped: " + ", ".join(f"{r} {self.dropped.get(r, 0)}" for r in DROP_REASONS))
        return "\n".join(lines)


def count_by(values) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))
