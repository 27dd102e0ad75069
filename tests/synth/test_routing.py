"""Prefix-aware routing of requests among replicas: cache reuse within the load slack, load beyond it."""

from __future__ import annotations

from emopillars.synth.backends.routing import BLOCK_CHARS, PrefixRouter, prompt_blocks

INSTRUCTIONS = "Rate the feelings below. " * 40  # a long shared start, as every label call has


def _label_call(utterance: str, sample: int) -> list[dict[str, str]]:
    situation = f"{utterance} " * 30  # long enough to fill blocks of its own
    return [{"role": "user", "content": f"{INSTRUCTIONS}\n{situation}\nnames in order {sample}"}]


def test_samples_of_one_utterance_go_where_the_first_went_while_the_loads_are_close():
    router, in_flight = PrefixRouter(2), [0, 0]
    first = router.pick(_label_call("I lost the keys again", 0), in_flight)
    in_flight[first] += 1
    for sample in (1, 2):
        assert router.pick(_label_call("I lost the keys again", sample), in_flight) == first
        in_flight[first] += 1


def test_a_prompt_new_to_every_replica_goes_to_the_least_busy():
    router = PrefixRouter(3)
    assert router.pick(_label_call("We won the final", 0), [0, 0, 0]) == 0  # ties: the first
    assert router.pick([{"role": "user", "content": "a scene of another passage " * 20}], [1, 0, 0]) == 1
    assert router.pick([{"role": "user", "content": "something else entirely " * 20}], [2, 3, 1]) == 2


def test_load_wins_beyond_the_slack():
    router = PrefixRouter(2)
    known = _label_call("My sister is getting married", 0)
    home = router.pick(known, [0, 0])
    busy = [0, 0]
    busy[home] = 3  # two more than the slack of 2 allows over the other's 0
    assert router.pick(known, busy) == 1 - home


def test_the_longest_shared_start_wins():
    router = PrefixRouter(2)
    a = router.pick(_label_call("The exam results are out", 0), [0, 0])
    b = router.pick(_label_call("The train was cancelled", 0), [3 if r == a else 0 for r in range(2)])
    assert b != a  # a was too busy; now both replicas were sent the instructions, each one situation
    assert router.pick(_label_call("The train was cancelled", 1), [1, 1]) == b
    assert router.pick(_label_call("The exam results are out", 2), [1, 1]) == a


def test_blocks_are_equal_only_up_to_the_first_difference():
    base = "x" * (3 * BLOCK_CHARS)
    same_start = prompt_blocks([{"role": "user", "content": base + "tail one"}])
    other_start = prompt_blocks([{"role": "user", "content": "y" + base[1:] + "tail one"}])
    longer = prompt_blocks([{"role": "user", "content": base + "tail two"}])
    assert same_start[:3] == longer[:3] and same_start[3] != longer[3]
    assert not set(other_start) & set(same_start)  # a block depends on everything before it
