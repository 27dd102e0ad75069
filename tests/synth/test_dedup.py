import numpy as np
import pytest

from emopillars.errors import EmopillarsError
from emopillars.synth.dedup import deduplicate, normalise_text
from emopillars.synth.embed import embed

TEXTS = [
    "I can't believe you did this for me, thank you so much!",  # 0
    "I am so nervous about the exam tomorrow.",  # 1
    "I cannot believe you did that for me, thanks so much!",  # 2 paraphrase of 0
    "The storm knocked out the power across the valley.",  # 3
    "How dare you read my diary without asking!",  # 4
    "I'm really nervous about tomorrow's exam.",  # 5 paraphrase of 1
    "My grandmother taught me to bake bread.",  # 6
    "You read my diary without asking? How dare you!",  # 7 paraphrase of 4
    "I feel so grateful for everything you have done.",  # 8 related to 0, not a paraphrase
]


@pytest.fixture(scope="module")
def vectors():
    return embed(TEXTS)  # the real embedded MiniLM, loaded once per process


def test_embed_returns_unit_float32_rows(vectors):
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_real_paraphrases_removed_distinct_sentences_kept(vectors):
    result = deduplicate(TEXTS, vectors, 0.9)
    assert result.keep == [0, 1, 3, 4, 6, 8]
    assert result.removed == {2: ("near", 0), 5: ("near", 1), 7: ("near", 4)}


def test_lower_threshold_removes_more_and_one_keeps_all_distinct(vectors):
    assert len(deduplicate(TEXTS, vectors, 0.2).keep) < 6
    assert deduplicate(TEXTS, vectors, 1.0).keep == list(range(len(TEXTS)))


def test_exact_duplicates_after_normalisation():
    assert normalise_text("Hello, World!") == normalise_text("  hello   world ") == "hello world"
    assert normalise_text("Don\u2019t STOP") == normalise_text("dont stop")
    texts = ["Hello, World!", "Something else entirely.", "hello world", "HELLO... world?"]
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(texts), 16)).astype(np.float32)  # unrelated vectors: the text decides
    result = deduplicate(texts, vectors, 0.9)
    assert result.keep == [0, 1]
    assert result.removed == {2: ("exact", 0), 3: ("exact", 0)}


def test_first_occurrence_kept_and_removed_maps_to_a_kept_item(vectors):
    order = [7, 2, 4, 0, 5, 1]  # paraphrase pairs, the later-written one first
    result = deduplicate([TEXTS[i] for i in order], vectors[order], 0.9)
    assert result.keep == [0, 1, 4]
    assert result.removed == {2: ("near", 0), 3: ("near", 1), 5: ("near", 4)}


def test_an_item_is_compared_with_kept_items_only():
    # b is close to a, c is close to b but not to a: b goes, so c (whose only match was b) stays.
    a = np.array([1.0, 0.0])
    b = np.array([np.cos(0.4), np.sin(0.4)])
    c = np.array([np.cos(0.8), np.sin(0.8)])
    result = deduplicate(["a", "b", "c"], np.stack([a, b, c]), 0.9)
    assert result.keep == [0, 2] and result.removed == {1: ("near", 0)}


@pytest.mark.parametrize("threshold", [0.0, -0.5, 1.01, float("nan")])
def test_threshold_out_of_range(threshold):
    with pytest.raises(EmopillarsError, match="threshold must be in \\(0, 1\\]"):
        deduplicate(["a"], np.ones((1, 4), dtype=np.float32), threshold)


def test_empty_input():
    result = deduplicate([], np.zeros((0, 8), dtype=np.float32), 0.9)
    assert result.keep == [] and result.removed == {}


def _planted(n: int, dim: int, copies: int, seed: int) -> tuple[np.ndarray, dict[int, int]]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    chosen = rng.choice(np.arange(40, n), size=copies, replace=False).tolist()
    planted = {}
    for c in chosen:  # rows below 20 stay originals that nothing copies, free for other checks
        src = int(rng.integers(20, c))
        while src in chosen:  # copy an original, so the expected mapping is unambiguous
            src = int(rng.integers(20, c))
        noisy = vectors[src] + rng.uniform(0.05, 0.3) * rng.standard_normal(dim) / np.sqrt(dim)
        vectors[c] = noisy / np.linalg.norm(noisy)
        planted[c] = src
    return vectors, planted


def test_approximate_index_matches_exact_on_planted_duplicates():
    n = 3000
    vectors, planted = _planted(n, 64, copies=90, seed=1)
    texts = [f"text {i}" for i in range(n)]
    texts[10] = texts[5].upper()  # one exact duplicate too
    exact = deduplicate(texts, vectors, 0.9)
    approximate = deduplicate(texts, vectors, 0.9, exact_below=0)
    assert approximate.keep == exact.keep and approximate.removed == exact.removed
    expected = {c: ("near", src) for c, src in planted.items()}
    expected[10] = ("exact", 5)
    assert exact.removed == expected
