"""Target emotions are scheduled, not left to the model's taste: every label gets the same quota."""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence


class Deck:
    """Cards dealt in order from successive seeded shuffles of `values`: over n draws each value comes
    floor(n/len) or ceil(n/len) times, whatever order the draws are asked for in by the run."""

    def __init__(self, values: Sequence[str], seed: int):
        self.values, self.rng, self.cards = list(values), random.Random(seed), []

    def draw(self, holding: Collection[str] = ()) -> str:
        """The next card not in `holding`; cards passed over stay for later draws."""
        while True:
            pick = next((c for c in self.cards if c not in holding), None)
            if pick is not None:
                self.cards.remove(pick)
                return pick
            fresh = list(self.values)
            self.rng.shuffle(fresh)
            self.cards.extend(fresh)

    def hand(self, n: int) -> list[str]:
        """`n` distinct cards (a character's target emotions)."""
        if n > len(self.values):
            raise ValueError(f"a hand holds at most {len(self.values)} distinct cards, asked for {n}")
        chosen: list[str] = []
        for _ in range(n):
            chosen.append(self.draw(chosen))
        return chosen
