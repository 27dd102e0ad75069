"""Top-p without a sort: the tokens vLLM's own top-p keeps, and the same answers from an engine that uses it."""

from __future__ import annotations

import pytest
import torch

from emopillars.synth.backends import Request, Sampling, make_backend
from emopillars.synth.backends.nucleus import FIRST_LOOK, nucleus_mask


def _logits(rows: int, vocab: int, seed: int) -> torch.Tensor:
    """Logits shaped like a language model's: a few likely tokens over a long tail, some rows flat enough that the
    nucleus runs past `FIRST_LOOK`, some with tokens a grammar forbids (-inf)."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, vocab, generator=g) * torch.linspace(0.5, 4.0, rows).unsqueeze(1)
    logits[:, :8] += torch.rand(rows, 8, generator=g) * torch.linspace(0.0, 12.0, rows).unsqueeze(1)
    logits[::3, vocab // 2 :] = float("-inf")
    return logits


@pytest.mark.parametrize("seed", range(4))
def test_the_kept_tokens_are_the_ones_vllm_keeps(seed: int) -> None:
    from vllm.v1.sample.ops.topk_topp_sampler import apply_top_k_top_p_pytorch

    logits = _logits(48, 8192, seed)
    top_p = torch.tensor([0.95, 0.5, 0.1, 1.0, 0.99, 0.8] * 8)
    expected = apply_top_k_top_p_pytorch(logits.clone(), None, top_p, allow_cpu_sync=True)
    kept = nucleus_mask(logits.clone(), top_p.unsqueeze(1))
    assert torch.equal(kept, expected)  # same tokens masked, the others untouched
    sizes = (kept > float("-inf")).sum(dim=-1)
    assert sizes.min() >= 1 and sizes.max() > FIRST_LOOK  # the long-nucleus path ran too
    assert torch.equal(sizes[3::6], (logits[3::6] > float("-inf")).sum(dim=-1))  # p = 1 keeps every token


@pytest.mark.slow
def test_an_engine_with_it_answers_as_one_with_vllms_own_top_p(
    vllm_backend, generator_model: str, engine_options: dict
) -> None:
    """The suite's engine (this top-p) and one with vLLM's sorting top-p give the same text for the same calls."""
    assert vllm_backend._engine.own_top_p
    prompts = ["Name three colours.", "Say something kind to a friend who lost a game.", "Describe rain in a line."]
    requests = [
        Request(
            messages=[{"role": "user", "content": text}],
            sampling=Sampling(temperature=1.0, top_p=top_p, max_tokens=48, seed=seed),
        )
        for text in prompts
        for top_p, seed in ((0.95, 1), (0.6, 2), (1.0, 3))
    ]
    ours = vllm_backend.generate(requests)
    with make_backend(
        "vllm", model=generator_model, engine_kwargs={"logits_processors": []}, **engine_options
    ) as vllms:
        assert not vllms._engine.own_top_p
        theirs = vllms.generate(requests)
    assert [c.text for c in ours] == [c.text for c in theirs]
    assert len({c.text for c in ours}) > len(prompts)  # the samples differ: sampling, not greedy decoding, was compared
