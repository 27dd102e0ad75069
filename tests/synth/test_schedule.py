from collections import Counter

import pytest

from emopillars.synth.schedule import schedule_emotions
from emopillars.taxonomy import LABELS


@pytest.mark.parametrize(("slots", "per_slot"), [(30, 3), (7, 28), (100, 5), (13, 27), (1, 1)])
def test_every_label_gets_the_same_quota_and_slots_get_distinct_emotions(slots, per_slot):
    plan = schedule_emotions(list(range(slots)), per_slot, seed=0)
    assert len(plan) == slots * per_slot
    counts = Counter(emotion for _, emotion in plan)
    assert set(counts) <= set(LABELS)
    if slots * per_slot >= len(LABELS):
        assert set(counts) == set(LABELS)
    assert max(counts.values()) - min(counts.values()) <= 1
    for slot in range(slots):
        assert len({e for s, e in plan if s == slot}) == per_slot


def test_schedule_is_seeded():
    assert schedule_emotions(range(10), 3, seed=1) == schedule_emotions(range(10), 3, seed=1)
    assert schedule_emotions(range(10), 3, seed=1) != schedule_emotions(range(10), 3, seed=2)


def test_expressiveness_levels_are_dealt_evenly_and_seeded():
    from emopillars.records import EXPRESSIVENESS
    from emopillars.synth.schedule import deal

    dealt = deal(10, EXPRESSIVENESS, seed=3)
    assert len(dealt) == 10 and max(Counter(dealt).values()) - min(Counter(dealt).values()) <= 1
    assert dealt == deal(10, EXPRESSIVENESS, seed=3) and dealt != deal(10, EXPRESSIVENESS, seed=4)
