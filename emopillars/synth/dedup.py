"""Exact and near-duplicate removal that keeps the first occurrence, in input order.

An item is compared only with items already KEPT, exactly as a reader walking the list would:
its normalised text against theirs ("exact"), then its embedding against theirs ("near", cosine
>= threshold). The kept items live in a faiss index that grows block by block, so each item costs
one nearest-neighbour search instead of a pass over all pairs: a flat (exact) index for small
inputs, an inverted-file index for large ones, whose recall of pairs above 0.9 is ~1.
"""

from __future__ import annotations

import logging
import math
import unicodedata
from dataclasses import dataclass, field

import numpy as np

from emopillars.errors import EmopillarsError

log = logging.getLogger(__name__)

EXACT_BELOW = 20_000  # inputs smaller than this use the exact flat index
_BLOCK = 512  # items resolved per step: a (B, B) similarity block (N*B*D flops in all) and one search
_TOLERANCE = 1e-6  # float32 inner products of identical unit vectors can land just under 1.0
_TRAIN_PER_LIST = 16  # k-means sample per inverted list (faiss asks 39; duplicates need no finer cells)
# Measured on 100k random 384-d unit vectors (the hardest case: no cluster structure), copies at
# cosine 0.93-0.99 found with nlist = 2 sqrt(N): recall 0.984 at nprobe 8, 0.996 at 16, 0.999 at 32,
# nearly independent of nlist and of k-means effort, so nprobe stays fixed: cost per item ~ sqrt(N).
_NPROBE = 24


@dataclass
class DedupResult:
    """Which inputs survive and why the others went.

    Attributes:
        keep: indices kept, in input order.
        removed: index -> ("exact" | "near", index of the kept item it duplicates).
    """

    keep: list[int] = field(default_factory=list)
    removed: dict[int, tuple[str, int]] = field(default_factory=dict)


class _PunctuationTable(dict):
    """str.translate table: apostrophes vanish ("can't" -> "cant"), other punctuation becomes a space.

    Filled lazily, one entry per distinct character met, instead of scanning all of Unicode.
    """

    def __missing__(self, code: int) -> str | int | None:
        char = chr(code)
        if char in "'\u2019\u02bc":
            value = None
        elif unicodedata.category(char)[0] == "P":
            value = " "
        else:
            value = code  # unchanged
        self[code] = value
        return value


_PUNCTUATION = _PunctuationTable()


def normalise_text(text: str) -> str:
    """The key for exact duplicates: case-folded, punctuation dropped, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().translate(_PUNCTUATION).split())


def deduplicate(
    texts: list[str],
    embeddings: np.ndarray,
    threshold: float,
    *,
    exact_below: int = EXACT_BELOW,
    nprobe: int | None = None,
) -> DedupResult:
    """Walk the inputs in order and drop each one that duplicates an item already kept.

    Args:
        texts: the texts, whose normalised form decides exact duplicates.
        embeddings: (N, D) sentence embeddings of `texts` (rows are L2-normalised here).
        threshold: cosine similarity at or above which an item is a near duplicate, in (0, 1].
        exact_below: inputs with fewer items use an exact flat index; larger ones an IVF index.
        nprobe: inverted lists the IVF index visits per query (default 24: recall >= 0.99).

    Returns:
        The kept indices and, for each removed index, the reason and the kept index it repeats
        (for "near", the most similar kept item).
    """
    if not 0.0 < threshold <= 1.0:
        raise EmopillarsError(f"dedup threshold must be in (0, 1], got {threshold}")
    vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise ValueError(f"embeddings of shape {vectors.shape} do not match {len(texts)} texts")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = vectors / np.maximum(norms, 1e-12)

    kept_index = _KeptIndex(vectors, approximate=len(texts) >= exact_below, nprobe=nprobe)
    result = DedupResult()
    keys = [normalise_text(t) for t in texts]
    kept_by_key: dict[str, int] = {}
    cut = threshold - _TOLERANCE
    for start in range(0, len(texts), _BLOCK):
        stop = min(start + _BLOCK, len(texts))
        block = vectors[start:stop]  # (B, D)
        prior_sim, prior_id = kept_index.nearest(start, stop)
        local = block @ block.T  # (B, B)
        hits = np.tril(local >= cut, k=-1)  # earlier items of the block above the threshold
        has_hit = hits.any(axis=1).tolist()
        kept = np.zeros(len(block), dtype=bool)
        for i in range(len(block)):
            g = start + i
            if keys[g] in kept_by_key:
                result.removed[g] = ("exact", kept_by_key[keys[g]])
                continue
            best_sim, best = prior_sim[i], prior_id[i]
            if has_hit[i]:
                candidates = np.flatnonzero(hits[i, :i] & kept[:i])
                if candidates.size:
                    j = int(candidates[np.argmax(local[i, candidates])])
                    if local[i, j] > best_sim:
                        best_sim, best = float(local[i, j]), start + j
            if best_sim >= cut:
                result.removed[g] = ("near", best)
                continue
            kept[i] = True
            kept_by_key[keys[g]] = g
            result.keep.append(g)
        kept_index.add(start + np.flatnonzero(kept))
    exact = sum(1 for reason, _ in result.removed.values() if reason == "exact")
    log.info(
        "dedup at %.3f: kept %d of %d (%d exact, %d near duplicates)",
        threshold,
        len(result.keep),
        len(texts),
        exact,
        len(result.removed) - exact,
    )
    return result


class _KeptIndex:
    """The kept items in a faiss inner-product index whose labels are input indices.

    Flat (exact) for small inputs. For large ones an IVF index trained on a sample of all the
    vectors, holding 8-bit codes (scans ~2x faster than floats; the top hit is re-scored exactly);
    every vector's nprobe nearest lists are found up front in one BLAS-sized batch and reused both
    to search (as a query) and to file it (as a kept item, in its nearest list).
    """

    def __init__(self, vectors: np.ndarray, *, approximate: bool, nprobe: int | None):
        import faiss

        self.vectors = vectors
        n, dim = vectors.shape
        self.assignment: tuple[np.ndarray, np.ndarray] | None = None
        if not approximate or n < 2:
            self.index = faiss.IndexIDMap(faiss.IndexFlatIP(dim))
            return
        nlist = max(1, min(int(2 * math.sqrt(n)), n // _TRAIN_PER_LIST))
        self.index = faiss.IndexIVFScalarQuantizer(
            faiss.IndexFlatIP(dim), dim, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        self.index.cp.spherical = True  # centroids on the unit sphere, like the vectors
        self.index.cp.niter = 5
        self.index.cp.min_points_per_centroid = 1
        sample = np.random.default_rng(0).choice(n, size=min(n, nlist * _TRAIN_PER_LIST), replace=False)
        self.index.train(vectors[np.sort(sample)])
        self.index.nprobe = min(nlist, nprobe or _NPROBE)
        self.assignment = self.index.quantizer.search(vectors, self.index.nprobe)  # (N, nprobe) x2

    def nearest(self, start: int, stop: int) -> tuple[list[float], list[int]]:
        """For rows start..stop: similarity to, and index of, the most similar kept item (-inf, -1 if none)."""
        if self.index.ntotal == 0:
            return [-math.inf] * (stop - start), [-1] * (stop - start)
        block = self.vectors[start:stop]
        if self.assignment is None:
            _, ids = self.index.search(block, 1)  # (B, 1)
        else:
            list_sims, lists = self.assignment
            _, ids = self.index.search_preassigned(block, 1, lists[start:stop], list_sims[start:stop])
        ids = ids[:, 0]  # -1 where no probed list held a kept item
        exact = np.einsum("bd,bd->b", block, self.vectors[np.maximum(ids, 0)])  # re-score the hit
        return np.where(ids >= 0, exact, -np.inf).tolist(), ids.tolist()

    def add(self, rows: np.ndarray) -> None:
        """File the given input rows as kept items."""
        import faiss

        ids = rows.astype(np.int64)
        if self.assignment is None:
            self.index.add_with_ids(self.vectors[rows], ids)
            return
        x = np.ascontiguousarray(self.vectors[rows])
        nearest_list = np.ascontiguousarray(self.assignment[1][rows, 0])
        self.index.add_core(len(rows), faiss.swig_ptr(x), faiss.swig_ptr(ids), faiss.swig_ptr(nearest_list))
