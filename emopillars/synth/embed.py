"""Sentence embeddings for near-duplicate detection (sentence-transformers, one model load per process).

With Ray, the embedding runs as a Ray task (on a GPU when the cluster has one), so a head node without a
GPU does not embed a whole corpus on its CPU; every node has the same environment, so the same model.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np

from emopillars.console import progress_bars_disabled

log = logging.getLogger(__name__)

_PROGRESS_FROM = 1000  # texts; below this a bar is noise


@lru_cache(maxsize=4)
def _load(model: str):
    from sentence_transformers import SentenceTransformer

    log.info("loading sentence embedder %s", model)
    return SentenceTransformer(model)  # picks the GPU when there is one


def embed(texts: list[str], model: str | None = None, batch_size: int = 64) -> np.ndarray:
    """Embed texts as unit vectors, so an inner product is a cosine similarity.

    Args:
        texts: the strings to embed.
        model: a sentence-transformers folder or hub id; None for the embedded all-MiniLM-L6-v2.
        batch_size: texts per forward pass.

    Returns:
        float32 array of shape (N, D), each row L2-normalised.
    """
    if model is None:
        from emopillars.assets import embedder_path

        model = embedder_path()
    encoder = _load(model)
    if not texts:
        return np.zeros((0, encoder.get_embedding_dimension()), dtype=np.float32)
    vectors = encoder.encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        # sentence-transformers passes tqdm an explicit `disable`, which would override TQDM_DISABLE
        show_progress_bar=len(texts) >= _PROGRESS_FROM and not progress_bars_disabled(),
    )
    return np.ascontiguousarray(vectors, dtype=np.float32)


def embed_on_ray(texts: list[str], model: str | None = None, address: str | None = None) -> np.ndarray:
    """`embed` as one Ray task on the cluster at `address` (default: the running or a new local Ray)."""
    from emopillars.synth.backends.ray import cluster_has_gpus, connect

    connect(address)
    import ray

    task = ray.remote(num_cpus=1, num_gpus=1 if cluster_has_gpus() else 0)(embed)
    return ray.get(task.remote(texts, model))
