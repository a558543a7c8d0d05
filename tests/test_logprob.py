"""Log-likelihoods: Normal densities, masking, reductions, one- vs two-layer, float32."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pirl_core.config import SamplerConfig
from pirl_core.logprob import (chain_logprob, gaussian_entropy, gaussian_logprob, joint_logprob,
                               step_logprobs)
from pirl_core.samplers import Chain


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**16), scale=st.floats(1e-3, 10.0))
def test_gaussian_logprob_equals_torch_normal(seed, scale):
    gen = torch.Generator().manual_seed(seed)
    x, mean = torch.randn(64, generator=gen) * 3, torch.randn(64, generator=gen)
    std = torch.rand(64, generator=gen) * scale + 1e-3
    ref = torch.distributions.Normal(mean, std).log_prob(x)
    torch.testing.assert_close(gaussian_logprob(x, mean, std), ref, rtol=1e-5, atol=1e-4)


def test_gaussian_entropy_equals_torch_normal():
    std = torch.rand(32) + 0.01
    torch.testing.assert_close(gaussian_entropy(std),
                               torch.distributions.Normal(torch.zeros(32), std).entropy())


def test_logprob_is_float32_for_bf16_inputs():
    x = torch.randn(8, dtype=torch.bfloat16)
    assert gaussian_logprob(x, x * 0, torch.ones_like(x)).dtype == torch.float32


def _toy_chain(b=3, k=3, h=2, d=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    states = torch.randn(b, k + 1, h, d, generator=gen)
    means = torch.randn(b, k, h, d, generator=gen)
    stds = torch.rand(b, k, h, d, generator=gen) + 0.1
    mask = torch.tensor([[True, False, True], [False, False, False], [True, True, True]])
    stds = torch.where(mask[..., None, None], stds, torch.zeros_like(stds))
    return states, means, stds, mask


def test_step_logprobs_mask_zero_std_steps_without_nan():
    states, means, stds, mask = _toy_chain()
    means.requires_grad_(True)
    lp = step_logprobs(states, means, stds, mask)
    assert lp.shape == (3, 3) and torch.isfinite(lp).all()
    assert torch.equal(lp[~mask], torch.zeros(int((~mask).sum())))
    lp.sum().backward()
    assert torch.isfinite(means.grad).all()
    assert torch.equal(means.grad[1], torch.zeros_like(means.grad[1]))


def test_step_logprob_is_the_sum_of_elementwise_normals():
    states, means, stds, mask = _toy_chain()
    lp = step_logprobs(states, means, stds, mask, "sum")
    ref = torch.distributions.Normal(means[0, 2], stds[0, 2]).log_prob(states[0, 3]).sum()
    torch.testing.assert_close(lp[0, 2], ref)
    lp_mean = step_logprobs(states, means, stds, mask, "mean")
    torch.testing.assert_close(lp_mean[0, 2], ref / 4)


def test_joint_logprob_adds_the_standard_normal_prior():
    states, means, stds, mask = _toy_chain()
    joint = joint_logprob(states, means, stds, mask, "sum", "sum", include_prior=True)
    prior = torch.distributions.Normal(0.0, 1.0).log_prob(states[:, 0]).flatten(1).sum(1)
    steps = step_logprobs(states, means, stds, mask).sum(1)
    torch.testing.assert_close(joint, prior + steps)
    # a chain with no stochastic step still has the prior, and a finite mean reduction
    mean_red = joint_logprob(states, means, stds, mask, "sum", "mean")
    torch.testing.assert_close(mean_red[1], prior[1])
    torch.testing.assert_close(mean_red[2], (prior[2] + steps[2]) / 4)
    no_prior = joint_logprob(states, means, stds, mask, "sum", "mean", include_prior=False)
    assert no_prior[1] == 0 and torch.isfinite(no_prior).all()


def test_chain_logprob_dispatches_on_mdp():
    states, means, stds, mask = _toy_chain()
    chain = Chain(states, means, stds, torch.linspace(0, 1, 4), mask)
    one = chain_logprob(chain, means, stds, SamplerConfig(mdp="one_layer"))
    two = chain_logprob(chain, means, stds, SamplerConfig(method="flow_sde", mdp="two_layer"))
    assert one.shape == (3,) and two.shape == (3, 3)


def test_unknown_reduction_is_named():
    states, means, stds, mask = _toy_chain()
    with pytest.raises(ValueError, match="'median'"):
        step_logprobs(states, means, stds, mask, "median")
