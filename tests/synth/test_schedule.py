from collections import Counter

import pytest

from emopillars.records import EXPRESSIVENESS
from emopillars.synth.schedule import Deck
from emopillars.taxonomy import LABELS


def _plan(slots: int, per_slot: int, seed: int) -> list[tuple[int, str]]:
    deck = Deck(LABELS, seed)
    return [(slot, emotion) for slot in range(slots) for emotion in deck.hand(per_slot)]


@pytest.mark.parametrize(("slots", "per_slot"), [(30, 3), (7, 28), (100, 5), (13, 27), (1, 1)])
def test_every_label_gets_the_same_quota_and_slots_get_distinct_emotions(slots, per_slot):
    plan = _plan(slots, per_slot, seed=0)
    assert len(plan) == slots * per_slot
    counts = Counter(emotion for _, emotion in plan)
    assert set(counts) <= set(LABELS)
    if slots * per_slot >= len(LABELS):
        assert set(counts) == set(LABELS)
    assert max(counts.values()) - min(counts.values()) <= 1
    for slot in range(slots):
        assert len({e for s, e in plan if s == slot}) == per_slot


def test_schedule_is_seeded():
    assert _plan(10, 3, seed=1) == _plan(10, 3, seed=1)
    assert _plan(10, 3, seed=1) != _plan(10, 3, seed=2)


def test_a_hand_larger_than_the_deck_is_refused():
    with pytest.raises(ValueError, match="at most 28"):
        Deck(LABELS, 0).hand(29)


def test_expressiveness_levels_are_dealt_evenly_and_seeded():
    def dealt(seed: int) -> list[str]:
        deck = Deck(EXPRESSIVENESS, seed)
        return [deck.draw() for _ in range(10)]

    levels = dealt(3)
    assert len(levels) == 10 and max(Counter(levels).values()) - min(Counter(levels).values()) <= 1
    assert levels == dealt(3) and levels != dealt(4)
