"""The fidelity measures on small hand-made inputs whose values are known (the pipeline tests recompute them on a
real run)."""

import math

import numpy as np
import pytest

from emopillars.records import Example
from emopillars.synth import fidelity
from emopillars.synth.fidelity import Judgement
from emopillars.taxonomy import LABELS


def _example(target: str, scores: dict[str, float], utterance: str = "I can't wait!", mode: str = "contextless"):
    soft = {label: scores.get(label, 0.0) for label in LABELS}
    return Example(
        id=utterance, mode=mode, split="train", passage_id="p", character="Ada", character_description="d",
        context=None if mode == "contextless" else "A room.", utterance=utterance, target_emotion=target,
        expressiveness="explicit", soft_labels=soft, labels=[k for k, v in soft.items() if v >= 0.3],
        primary_emotion=max(LABELS, key=soft.__getitem__), label_agreement=0.5, explication="x",
    )  # fmt: skip


def test_entropy_in_bits():
    assert fidelity.entropy_bits([1, 1, 1, 1]) == pytest.approx(2.0)
    assert fidelity.entropy_bits([5, 0, 0]) == 0.0 and fidelity.entropy_bits([]) == 0.0


def test_first_picks_tell_a_list_reader_from_an_utterance_reader():
    rng = np.random.default_rng(0)
    orders = [list(rng.permutation(LABELS)) for _ in range(200)]
    top_of_list = [Judgement(o[0], 0) for o in orders]
    picks = fidelity.first_picks(top_of_list)
    assert picks["first_pick_position_entropy_bits"] == 0.0 and picks["first_pick_entropy_bits"] > 4.0
    reader = [Judgement("joy", o.index("joy")) for o in orders]
    picks = fidelity.first_picks(reader)
    assert picks["first_pick_entropy_bits"] == 0.0 and picks["first_pick_position_entropy_bits"] > 4.0
    assert sum(picks["first_pick_positions"]) == 200


def test_target_recognition_per_label_macro_and_min():
    labelled = [("joy", 0.9), ("joy", 0.05), ("fear", 0.5)]
    rec = fidelity.target_recognition(labelled, threshold=0.1)
    assert rec["per_label"]["joy"] == 0.5 and rec["per_label"]["fear"] == 1.0 and rec["per_label"]["anger"] is None
    assert rec["macro"] == 0.75 and rec["min"] == 0.5 and rec["drafts"] == 3


def test_jaccard_agreement():
    a, b = frozenset({"joy"}), frozenset({"joy", "relief"})
    assert fidelity.jaccard_agreement([a, b]) == 0.5
    assert fidelity.jaccard_agreement([a, b, frozenset()]) == pytest.approx((0.5 + 0 + 0) / 3, abs=1e-4)
    assert fidelity.jaccard_agreement([frozenset(), frozenset()]) == 1.0
    assert fidelity.jaccard_agreement([a]) is None


def test_label_entropy_distinct_n_and_name_leak():
    spread = [_example(label, {label: 1.0}, utterance=f"u{i}") for i, label in enumerate(LABELS)]
    assert fidelity.label_entropy(spread) == 1.0
    assert fidelity.label_entropy([_example("joy", {"joy": 1.0})]) == 0.0
    assert fidelity.distinct_n(["a b a b"], 1) == 0.5 and fidelity.distinct_n(["a b a b"], 2) == round(2 / 3, 4)
    rows = [_example("joy", {"joy": 1}, "Tell Tobias I said hi"), _example("joy", {"joy": 1}, "See you soon")]
    assert fidelity.name_leak(rows, {"p": ["Mara Quill", "Tobias"]}) == 0.5


def test_embedding_diversity_is_one_minus_mean_pairwise_cosine():
    v = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    div = fidelity.embedding_diversity(v, ["joy", "joy", "fear"])
    assert div["joy"] == 1.0 and div["fear"] is None
    same = fidelity.embedding_diversity(np.array([[0.6, 0.8], [0.6, 0.8]]), ["joy", "joy"])
    assert same["joy"] == pytest.approx(0.0, abs=1e-4)
    assert math.isclose(fidelity.entropy_bits([1] * 28), math.log2(28))


def test_each_position_bound_labeller_is_caught_by_its_own_entropy():
    import random

    orders = []
    for seed in range(200):
        order = list(LABELS)
        random.Random(seed).shuffle(order)
        orders.append(order)
    simulated = fidelity.position_bound_labellers([o[0] for o in orders], [o.index(LABELS[0]) for o in orders])
    names, definitions = simulated["top_of_names"], simulated["top_of_definitions"]
    assert names["first_pick_position_entropy_bits"] == 0.0 < 4.0 < names["first_pick_entropy_bits"]
    assert definitions["first_pick_entropy_bits"] == 0.0 < 4.0 < definitions["first_pick_position_entropy_bits"]
