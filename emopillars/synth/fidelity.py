"""Measures of how far a synthesized corpus can be trusted, computed on every run (report.json `fidelity`).

Each measure is a small pure function over the run's records; docs/fidelity.md gives the formulas. They answer:
does the blind labeller recognise the target (`target_recognition`, `primary_agreement`), does the order of the
label list sway it (`first_pick_*_entropy_bits`), do its samples agree (`label_agreement`), how spread and varied
is the data (`label_entropy`, `labels_per_example`, `distinct_n`, `embedding_diversity`, `near_duplicate_rate`),
what leaks (`target_word_leak`, `name_leak`), and what each stage yields.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from emopillars.records import Example
from emopillars.sources import MODES
from emopillars.taxonomy import LABELS, NUM_LABELS


@dataclass(frozen=True)
class Judgement:
    """One usable blind label call: the emotion listed first and its position in the order the call showed."""

    first: str
    position: int


def entropy_bits(counts: Iterable[float]) -> float:
    """Shannon entropy (bits) of the distribution proportional to `counts`; 0 for an empty one."""
    values = np.asarray([c for c in counts if c > 0], dtype=np.float64)
    if not values.size:
        return 0.0
    p = values / values.sum()
    return float(-(p * np.log2(p)).sum()) + 0.0  # + 0.0: one certain outcome gives 0.0, not -0.0


def target_recognition(labelled: Sequence[tuple[str, float]], threshold: float) -> dict:
    """Per target label, the share of labelled drafts whose mean blind score of the target reaches `threshold`."""
    seen: Counter = Counter(t for t, _ in labelled)
    hit: Counter = Counter(t for t, score in labelled if score >= threshold)
    per_label = {label: _r(hit[label] / seen[label]) if seen[label] else None for label in LABELS}
    shares = [v for v in per_label.values() if v is not None]
    return {
        "per_label": per_label,
        "macro": _r(sum(shares) / len(shares)) if shares else None,
        "min": min(shares) if shares else None,
        "drafts": len(labelled),
    }


def first_picks(judgements: Sequence[Judgement]) -> dict:
    """Entropy of the first-listed emotion and of its position in the shown list, plus the position histogram.

    The label prompt lists the definitions in the taxonomy's fixed order and then the names in the call's shuffled
    order, so a first pick has two positions: in the definitions (its emotion: `first_pick_entropy_bits`) and in the
    shown names (`first_pick_position_entropy_bits`). A labeller that reads the utterance spreads its first pick
    over both; one drawn to the top of either list has a low entropy there.
    """
    positions = Counter(j.position for j in judgements)
    return {
        "first_pick_entropy_bits": _r(entropy_bits(Counter(j.first for j in judgements).values())),
        "first_pick_position_entropy_bits": _r(entropy_bits(positions.values())),
        "first_pick_positions": [positions[i] for i in range(NUM_LABELS)],
        "label_calls": len(judgements),
    }


def position_bound_labellers(firsts_shown: Sequence[str], first_label_positions: Sequence[int]) -> dict:
    """`first_picks` of two simulated labellers on the run's own label calls, to show that each measure catches
    its bias: one always answers the first name shown, one the first definition (the taxonomy's first label).

    Args:
        firsts_shown: per call, the name shown first.
        first_label_positions: per call, where the taxonomy's first label stood in the shown names.
    """
    keys = ("first_pick_entropy_bits", "first_pick_position_entropy_bits")
    top_of_names = first_picks([Judgement(first, 0) for first in firsts_shown])
    top_of_definitions = first_picks([Judgement(LABELS[0], p) for p in first_label_positions])
    return {
        "top_of_names": {k: top_of_names[k] for k in keys},
        "top_of_definitions": {k: top_of_definitions[k] for k in keys},
    }


def label_entropy(examples: Sequence[Example]) -> float | None:
    """Entropy of the summed soft-label mass over the 28 labels, divided by log 28 (1 = evenly spread)."""
    mass = [sum(e.soft_labels[label] for e in examples) for label in LABELS]
    return _r(entropy_bits(mass) / math.log2(NUM_LABELS)) if sum(mass) > 0 else None


def distinct_n(texts: Sequence[str], n: int) -> float | None:
    """Distinct word n-grams over all n-grams of `texts` (Li et al., 2016)."""
    grams = [tuple(w[i : i + n]) for t in texts for w in [_tokens(t)] for i in range(len(w) - n + 1)]
    return _r(len(set(grams)) / len(grams)) if grams else None


def embedding_diversity(vectors: np.ndarray, groups: Sequence[str]) -> dict[str, float | None]:
    """Per group (target label), 1 - mean pairwise cosine of its unit-norm embeddings; None below two examples."""
    out: dict[str, float | None] = {}
    for label in LABELS:
        idx = [i for i, g in enumerate(groups) if g == label]
        if len(idx) < 2:
            out[label] = None
            continue
        v = vectors[idx]  # (k, D), unit rows
        sims = v @ v.T
        k = len(idx)
        out[label] = _r(1.0 - (sims.sum() - np.trace(sims)) / (k * (k - 1)))
    return out


def name_leak(examples: Sequence[Example], names_by_passage: dict[str, Sequence[str]]) -> float | None:
    """Share of context-less utterances that contain a word of a character name from their passage."""
    rows = [e for e in examples if e.mode == "contextless"]
    if not rows:
        return None
    leaked = 0
    for e in rows:
        words = set(_tokens(e.utterance))
        parts = {p for name in names_by_passage.get(e.passage_id, ()) for p in _tokens(name) if len(p) > 2}
        leaked += bool(words & parts)
    return _r(leaked / len(rows))


def compute(
    examples: Sequence[Example],
    *,
    labelled: Sequence[tuple[str, float]],
    judgements: Sequence[Judgement],
    simulated: dict,
    scene_leaks: dict[str, int],
    names_by_passage: dict[str, Sequence[str]],
    candidates: int,
    duplicates: int,
    answered: dict[str, int],
    usable: dict[str, int],
    slots: int,
    rewrites_per_example: int,
    target_threshold: float,
    vectors: np.ndarray,
) -> dict:
    """Every fidelity measure of a run; `vectors` are the unit embeddings of `examples`' utterances, in order."""
    n = len(examples)
    agreements = [e.label_agreement for e in examples if e.label_agreement is not None]
    by_mode = {m: [e for e in examples if e.mode == m] for m in MODES}
    diversity = embedding_diversity(vectors, [e.target_emotion for e in examples])
    shown = [v for v in diversity.values() if v is not None]
    scenes = scene_leaks.get("scenes", 0)
    scheduled = {"contextual": slots, "contextless": slots * rewrites_per_example}
    return {
        "target_recognition": target_recognition(labelled, target_threshold),
        "primary_agreement": _r(sum(e.primary_emotion == e.target_emotion for e in examples) / n) if n else None,
        **first_picks(judgements),
        "first_pick_simulated": simulated,
        "label_agreement": _r(sum(agreements) / len(agreements)) if agreements else None,
        "label_entropy": label_entropy(examples),
        "labels_per_example": _r(sum(len(e.labels) for e in examples) / n) if n else None,
        "distinct_1": {m: distinct_n([e.utterance for e in rows], 1) for m, rows in by_mode.items()},
        "distinct_2": {m: distinct_n([e.utterance for e in rows], 2) for m, rows in by_mode.items()},
        "embedding_diversity": {"per_label": diversity, "macro": _r(sum(shown) / len(shown)) if shown else None},
        "near_duplicate_rate": _r(duplicates / candidates) if candidates else None,
        "target_word_leak": {
            "utterance": _r(scene_leaks.get("utterance", 0) / scenes) if scenes else None,
            "context": _r(scene_leaks.get("context", 0) / scenes) if scenes else None,
            "scenes": scenes,
        },
        "name_leak": name_leak(examples, names_by_passage),
        "yield": {
            **{stage: _r(usable.get(stage, 0) / calls) for stage, calls in sorted(answered.items()) if calls},
            "kept_per_slot": {m: _r(len(by_mode[m]) / scheduled[m]) if scheduled[m] else None for m in MODES},
        },
    }


def jaccard_agreement(label_sets: Sequence[frozenset[str]]) -> float | None:
    """Mean pairwise Jaccard similarity of the label sets of one utterance's samples (two empty sets agree)."""
    pairs = [(a, b) for i, a in enumerate(label_sets) for b in label_sets[i + 1 :]]
    if not pairs:
        return None
    return _r(sum(len(a & b) / len(a | b) if a | b else 1.0 for a, b in pairs) / len(pairs))


def _tokens(text: str) -> list[str]:
    return re.findall(r"[^\W_]+(?:'[^\W_]+)?", text.casefold())


def _r(x: float) -> float:
    return round(float(x), 4)
