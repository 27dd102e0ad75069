"""Batches for training and inference: coverage, padding, weighted draws, equal shares per process."""

from __future__ import annotations

import numpy as np
import torch

from emopillars.distill.batching import Collator, length_grouped_batches, pad_multiple, shard_batches


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


def test_collator_rounds_the_width_up_to_the_multiple_within_the_limit() -> None:
    rows = [{"input_ids": list(range(1, n + 1)), "attention_mask": [1] * n} for n in (3, 9)]
    assert Collator(0, multiple=8)(rows)["input_ids"].shape == (2, 16)
    assert Collator(0, multiple=8, limit=12)(rows)["input_ids"].shape == (2, 12)  # never past --max-length
    assert Collator(0, multiple=8, limit=5)(rows)["input_ids"].shape == (2, 9)  # nor below the longest row
    assert (pad_multiple(torch.device("cpu")), pad_multiple(torch.device("cuda"))) == (1, 8)
    assert Collator.on(torch.device("cpu"), 0, 128)(rows)["input_ids"].shape == (2, 9)  # the CPU's default: tight
    assert Collator.on(torch.device("cuda"), 0, 128)(rows)["input_ids"].shape == (2, 16)  # the GPU's: 8
    assert Collator.on(torch.device("cuda"), 0, 128, multiple=1)(rows)["input_ids"].shape == (2, 9)  # the option's


def test_padding_to_a_multiple_leaves_the_logits_unchanged() -> None:
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    model = BertForSequenceClassification(config).eval()
    rows = [{"input_ids": [2, 7, 9, 11, 3], "attention_mask": [1] * 5, "token_type_ids": [0] * 5},
            {"input_ids": [2, 5, 3], "attention_mask": [1] * 3, "token_type_ids": [0] * 3}]  # fmt: skip
    with torch.no_grad():
        tight, padded = (model(**Collator(0, multiple=m)(rows)).logits for m in (1, 8))
    assert torch.allclose(tight, padded, atol=1e-5)


def test_shard_batches_gives_every_process_the_same_count() -> None:
    batches = [[i] for i in range(13)]  # an odd count
    shares = [shard_batches(batches, rank, 2) for rank in range(2)]
    assert [len(s) for s in shares] == [7, 7]
    assert sorted(i for s in shares for b in s for i in b) == [0, *range(13)]  # all once, the first again
    assert shard_batches(batches, 0, 1) == batches
    assert [len(shard_batches([[0]], r, 4)) for r in range(4)] == [1, 1, 1, 1]  # fewer batches than processes
