"""Target emotions are scheduled, not left to the model's taste: every label gets the same quota."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

from emopillars.taxonomy import LABELS

T = TypeVar("T")


def schedule_emotions(slots: Sequence[T], per_slot: int, seed: int) -> list[tuple[T, str]]:
    """Assign `per_slot` distinct target emotions to each slot (a passage's character).

    Emotions are dealt from successive seeded shuffles of the 28 labels, so over the whole run
    each label is the target of either floor(n/28) or ceil(n/28) of the n assignments.
    """
    if per_slot > len(LABELS):
        raise ValueError(f"per_slot must be at most {len(LABELS)}, got {per_slot}")
    rng = random.Random(seed)
    deck: list[str] = []
    plan: list[tuple[T, str]] = []
    for slot in slots:
        chosen: list[str] = []
        while len(chosen) < per_slot:
            if not deck:
                deck = list(LABELS)
                rng.shuffle(deck)
            # The next card this slot does not hold yet; a fresh deck always has one (per_slot <= 28).
            pick = next((e for e in deck if e not in chosen), None)
            if pick is None:  # only cards this slot already holds remain: they go to later slots
                fresh = list(LABELS)
                rng.shuffle(fresh)
                deck.extend(fresh)
                continue
            deck.remove(pick)
            chosen.append(pick)
        plan.extend((slot, emotion) for emotion in chosen)
    return plan


def deal(n: int, values: Sequence[str], seed: int) -> list[str]:
    """`n` values dealt from successive seeded shuffles of `values`, each floor or ceil of n/len(values) times."""
    rng = random.Random(seed)
    dealt: list[str] = []
    while len(dealt) < n:
        deck = list(values)
        rng.shuffle(deck)
        dealt.extend(deck)
    return dealt[:n]
