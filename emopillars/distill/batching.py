"""Token ids and batches, shared by training and inference.

encode(tokenizer, texts, contexts, max_length) -> list[dict]   # token ids per row, no padding
Collator.on(device, pad_id, limit, multiple)(rows) -> dict[str, Tensor]  # dynamic padding, rounded up on a GPU
length_order(lengths, batch_size) -> list[index array]        # inference batches, longest first
length_grouped_batches(lengths, batch_size, seed, weights=None) -> list[list[int]]   # one epoch
sample_weights(gold) -> (N,) weights                           # inverse frequency of the rarest label
shard_batches(batches, process_index, num_processes) -> list[list[int]]   # equal counts per process
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch


def encode(tokenizer: Any, texts: list[str], contexts: list[str] | None, max_length: int) -> list[dict]:
    """Token ids per row, unpadded. Pairs truncate the context side first."""
    if contexts is None:
        enc = tokenizer(texts, truncation=True, max_length=max_length)
    else:
        enc = tokenizer(texts, contexts, truncation="only_second", max_length=max_length)
    rows = [{k: enc[k][i] for k in enc} for i in range(len(texts))]
    if contexts is not None:  # an utterance longer than the limit alone: cut both sides instead
        for i, row in enumerate(rows):
            if len(row["input_ids"]) > max_length:
                one = tokenizer(texts[i], contexts[i], truncation="longest_first", max_length=max_length)
                rows[i] = {k: one[k] for k in one}
    return rows


def pad_multiple(device: torch.device) -> int:
    """The multiple a batch's padded width is rounded up to on `device`.

    8 on a GPU: cuDNN builds its attention plans once per width, and length-grouped batches bring a new width
    nearly every step. On an H200 (BERT-base, batch 64, 60 steps, one process) the first run trained at 264
    samples/s unpadded (1,936 once its plans were built) and at 1,048 padded to 8 (1,672 once built): 16
    widths at most instead of up to 128. 1 on the CPU, where padding is only extra work.
    """
    return 8 if device.type == "cuda" else 1


class Collator:
    """Pads a list of encoded rows to the longest in the batch (dynamic padding), rounded up to `multiple`
    tokens, never past `limit` (the encoder's --max-length)."""

    def __init__(self, pad_id: int, multiple: int = 1, limit: int | None = None) -> None:
        self.pad_id, self.multiple, self.limit = pad_id, multiple, limit

    @classmethod
    def on(cls, device: torch.device, pad_id: int, limit: int, multiple: int | None = None) -> Collator:
        """The collator for batches on `device`: widths rounded up to `multiple`, by default its `pad_multiple`."""
        return cls(pad_id, multiple or pad_multiple(device), limit)

    def __call__(self, rows: list[dict]) -> dict[str, torch.Tensor]:
        import torch

        longest = max(len(r["input_ids"]) for r in rows)
        width = -(-longest // self.multiple) * self.multiple
        width = max(longest, min(width, self.limit or width))
        batch: dict[str, torch.Tensor] = {}
        for key in rows[0]:
            if isinstance(rows[0][key], np.ndarray):  # float targets: labels, teacher_logits
                batch[key] = torch.as_tensor(np.stack([r[key] for r in rows]))
                continue
            pad = self.pad_id if key == "input_ids" else 0
            batch[key] = torch.tensor([r[key] + [pad] * (width - len(r[key])) for r in rows], dtype=torch.long)
        return batch


def length_order(lengths: list[int], batch_size: int) -> list[np.ndarray]:
    """Row indices in inference batches, longest first: rows of similar length waste little padding."""
    order = np.argsort([-n for n in lengths], kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def length_grouped_batches(
    lengths: list[int], batch_size: int, seed: int, weights: np.ndarray | None = None, group: bool = True
) -> list[list[int]]:
    """One epoch of batches: rows shuffled (or drawn by `weights`), sorted by length within mega-batches.

    Sorting inside windows of 50 batches keeps randomness while cutting most padding
    (the idea of transformers' LengthGroupedSampler).
    """
    rng = np.random.default_rng(seed)
    n = len(lengths)
    if weights is not None:
        order = rng.choice(n, size=n, replace=True, p=weights / weights.sum())
    else:
        order = rng.permutation(n)
    if group:
        window = batch_size * 50
        order = np.concatenate(
            [sorted(order[i : i + window], key=lambda j: -lengths[j]) for i in range(0, n, window)]
        ).astype(int)
    batches = [order[i : i + batch_size].tolist() for i in range(0, n, batch_size)]
    if group:
        rng.shuffle(batches)
    return batches


def sample_weights(gold: np.ndarray) -> np.ndarray:
    """Per-row sampling weight: inverse frequency of the row's rarest label (label-less rows count as a class)."""
    counts = gold.sum(0).astype(float)
    none = gold.sum(1) == 0
    inv = np.where(counts > 0, 1.0 / np.maximum(counts, 1.0), 0.0)
    weights = (gold * inv).max(1)
    weights[none] = 1.0 / max(1, none.sum())
    return weights


def shard_batches(batches: list[list[int]], process_index: int, num_processes: int) -> list[list[int]]:
    """This process's share of an epoch's batches; every process gets ceil(len / num_processes).

    Data parallelism needs every process to take the same number of optimizer steps: one that runs
    out first leaves the others waiting in the gradient all-reduce. As accelerate's `even_batches`,
    the short processes take batches again from the start of the epoch (a few rows count twice).
    """
    if num_processes == 1:
        return batches
    total = -(-len(batches) // num_processes) * num_processes
    padded = [batches[i % len(batches)] for i in range(total)]
    return padded[process_index::num_processes]
