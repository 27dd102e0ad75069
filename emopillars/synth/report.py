"""The end-of-run report: what was made, what was dropped and why, what it cost, and how far to trust it."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel

from emopillars.taxonomy import LABELS

DROP_REASONS = ("unparseable", "invalid", "backend_error", "target_word_leak", "target_not_recognised", "duplicate")


class SynthReport(BaseModel):
    out: str
    backend: str
    model: str
    passages: int
    characters: int
    scheduled: int
    llm_calls: int
    cached_calls: int
    examples: dict[str, int]
    per_label: dict[str, int]
    per_label_by_mode: dict[str, dict[str, int]]
    expressiveness: dict[str, int]
    splits: dict[str, dict[str, int]]
    dropped: dict[str, int]
    backend_faults: dict[str, int] = {}  # failed attempts at the backend by kind, the retried (healed) ones included
    dedup_removed_per_label: dict[str, int]
    dedup_threshold: float
    prompt_tokens: int
    generated_tokens: int
    prefix_cache: dict[str, dict[str, float | int | None]]
    engine_busy_share: float | None  # of the LLM part's wall time, the share with at least one call at the engine
    prompts: dict[str, str]
    fidelity: dict
    wall_seconds: float

    def summary(self) -> str:
        """A plain-text table for the terminal."""
        modes = ("contextual", "contextless")
        lines = [
            f"emopillars synth -> {self.out}",
            f"  backend {self.backend} ({self.model}); {self.passages} passages, {self.characters} characters, "
            f"{self.scheduled} scenes scheduled",
            f"  LLM calls {self.llm_calls} sent, {self.cached_calls} cached; tokens {self.prompt_tokens} prompt, "
            f"{self.generated_tokens} generated; {self.wall_seconds:.1f} s",
            "  prefix cache hits (prompt tokens the engine did not prefill again): "
            + (", ".join(f"{s} {_pct(c['hit_rate'])}" for s, c in self.prefix_cache.items()) or "no call sent"),
            "",
            f"  {'label':<15}{'contextual':>12}{'contextless':>13}{'recognised':>12}{'diversity':>11}",
        ]
        recognised = self.fidelity["target_recognition"]["per_label"]
        diversity = self.fidelity["embedding_diversity"]["per_label"]
        for label in LABELS:
            counts = [self.per_label_by_mode[m].get(label, 0) for m in modes]
            lines.append(
                f"  {label:<15}{counts[0]:>12}{counts[1]:>13}{_fmt(recognised[label]):>12}{_fmt(diversity[label]):>11}"
            )
        lines.append(f"  {'total':<15}{self.examples['contextual']:>12}{self.examples['contextless']:>13}")
        split_text = ", ".join(f"{s} {sum(c.values())}" for s, c in self.splits.items())
        lines += ["", f"  splits: {split_text}"]
        lines.append("  dropped: " + ", ".join(f"{r} {self.dropped.get(r, 0)}" for r in DROP_REASONS))
        if self.backend_faults:
            faults = ", ".join(f"{k} {v}" for k, v in self.backend_faults.items())
            lines.append(f"  backend faults (failed attempts, retried): {faults}")
        rows = fidelity_rows(self.fidelity)
        width = max(len(name) for name, _ in rows) + 2
        lines += ["", "  fidelity (docs/fidelity.md)", *(f"    {k:<{width}}{v}" for k, v in rows)]
        return "\n".join(lines)


def empty_run_message(report: SynthReport) -> str:
    """Why a run made no example: the backend's failures when they were most of the drops, else the filters."""
    errors, drops = report.dropped.get("backend_error", 0), sum(report.dropped.values())
    where = f"see {report.out}/report.json"
    if errors and errors * 2 >= drops:
        return (
            f"no example made: {errors} of {drops} dropped items failed at the backend {report.backend} "
            f"({report.model}), not at the filters; check the server and its log, {where}"
        )
    return f"no example survived the filters; {where} for what was dropped"


def fidelity_rows(f: dict) -> list[tuple[str, str]]:
    """The headline fidelity measures as (name, value) rows, for the terminal and the dataset card."""
    rec, leak = f["target_recognition"], f["target_word_leak"]
    return [
        ("target_recognition macro / min", f"{_fmt(rec['macro'])} / {_fmt(rec['min'])} ({rec['drafts']} drafts)"),
        ("primary_agreement", _fmt(f["primary_agreement"])),
        ("first_pick_entropy_bits (definitions' order)", f"{_fmt(f['first_pick_entropy_bits'])} (max 4.81)"),
        ("first_pick_position_entropy_bits (names' order)",
         f"{_fmt(f['first_pick_position_entropy_bits'])} (max 4.81)"),
        *_simulated_rows(f.get("first_pick_simulated") or {}),
        ("label_agreement", _fmt(f["label_agreement"])),
        ("label_entropy", _fmt(f["label_entropy"])),
        ("labels_per_example", _fmt(f["labels_per_example"])),
        ("distinct_1 contextual / contextless", " / ".join(_fmt(v) for v in f["distinct_1"].values())),
        ("distinct_2 contextual / contextless", " / ".join(_fmt(v) for v in f["distinct_2"].values())),
        ("embedding_diversity macro", _fmt(f["embedding_diversity"]["macro"])),
        ("near_duplicate_rate", _fmt(f["near_duplicate_rate"])),
        ("target_word_leak utterance / context", f"{_fmt(leak['utterance'])} / {_fmt(leak['context'])}"),
        ("name_leak", _fmt(f["name_leak"])),
        ("yield " + ", ".join(k for k in f["yield"] if k != "kept_per_slot"),
         ", ".join(_fmt(v) for k, v in f["yield"].items() if k != "kept_per_slot")),
        ("kept per slot contextual / contextless", " / ".join(_fmt(v) for v in f["yield"]["kept_per_slot"].values())),
    ]  # fmt: skip


def _simulated_rows(simulated: dict) -> list[tuple[str, str]]:
    """What the two first-pick entropies read on the run's own orders for labellers bound to a list's top."""
    return [
        (f"  simulated {who.replace('_', '-')} labeller",
         f"{_fmt(m['first_pick_entropy_bits'])} / {_fmt(m['first_pick_position_entropy_bits'])} bits")
        for who, m in simulated.items()
    ]  # fmt: skip


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def count_by(values) -> dict[str, int]:
    return dict(sorted(Counter(values).items()))
