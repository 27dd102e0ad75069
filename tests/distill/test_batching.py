"""Batches for training and inference: coverage, padding, weighted draws, equal shares per process."""

from __future__ import annotations

import numpy as np

from emopillars.distill.batching import Collator, length_grouped_batches, shard_batches


def test_length_grouped_batches_cover_rows_and_cut_padding() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 120, size=1000).tolist()
    grouped = length_grouped_batches(lengths, 16, seed=3)
    plain = length_grouped_batches(lengths, 16, seed=3, group=False)
    assert sorted(i for b in grouped for i in b) == list(range(1000))

    def padded(batches: list[list[int]]) -> int:
        return sum(max(lengths[i] for i in b) * len(b) for b in batches)

    assert padded(grouped) < 0.7 * padded(plain)
    weights = np.array([1.0] * 999 + [1000.0])
    drawn = [i for b in length_grouped_batches(lengths, 16, seed=3, weights=weights) for i in b]
    assert drawn.count(999) > 300


def test_collator_pads_to_longest() -> None:
    rows = [{"input_ids": [1, 2, 3], "attention_mask": [1, 1, 1], "labels": np.zeros(2, np.float32)},
            {"input_ids": [4], "attention_mask": [1], "labels": np.ones(2, np.float32)}]  # fmt: skip
    batch = Collator(pad_id=0)(rows)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].shape == (2, 2)


def test_shard_batches_gives_every_process_the_same_count() -> None:
    batches = [[i] for i in range(13)]  # an odd count
    shares = [shard_batches(batches, rank, 2) for rank in range(2)]
    assert [len(s) for s in shares] == [7, 7]
    assert sorted(i for s in shares for b in s for i in b) == [0, *range(13)]  # all once, the first again
    assert shard_batches(batches, 0, 1) == batches
    assert [len(shard_batches([[0]], r, 4)) for r in range(4)] == [1, 1, 1, 1]  # fewer batches than processes
