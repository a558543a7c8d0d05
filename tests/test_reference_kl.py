"""The optional KL anchor to the policy RL started from (ppo.ref_kl_coef)."""

from __future__ import annotations

import copy

import pytest
import torch

from pirl_core.config import PPOConfig, SamplerConfig
from pirl_core.logprob import transition_kl
from pirl_core.policies.base import Observation
from pirl_core.rollout import batch_from_steps
from pirl_core.update import ppo_update
from tests.helpers import tiny_agent


def test_transition_kl_is_the_equal_std_gaussian_kl_on_stochastic_steps():
    means = torch.zeros(2, 3, 1, 2)
    ref = means.clone()
    ref[0, 1] = 0.3  # a stochastic step of row 0
    ref[1, 2] = 5.0  # a deterministic step of row 1: ignored
    stds = torch.full_like(means, 0.1)
    stochastic = torch.tensor([[False, True, False], [True, False, False]])
    kl = transition_kl(means, ref, stds, stochastic)
    assert torch.allclose(kl, torch.tensor([2 * 0.5 * (0.3 / 0.1) ** 2, 0.0]))
    assert torch.equal(transition_kl(means, means, stds, stochastic), torch.zeros(2))


def _drift(ref_kl_coef: float, sampler: SamplerConfig) -> tuple[float, float]:
    """Parameter distance from the start after 6 updates on pure-noise advantages, and the first
    minibatch's KL to the reference."""
    agent = tiny_agent(sampler)
    reference = copy.deepcopy(agent.policy).requires_grad_(False)
    start = [p.detach().clone() for p in agent.policy.expert_parameters()]
    actor, critic = agent.trainable_parameters()
    opts = (torch.optim.Adam(actor, lr=3e-3), torch.optim.Adam(critic, lr=1e-3))
    ppo = PPOConfig(update_epochs=1, num_minibatches=1, ent_coef=0.0, ref_kl_coef=ref_kl_coef)
    gen = torch.Generator().manual_seed(0)
    obs = Observation(torch.zeros(64, 64, 64, 3, dtype=torch.uint8), torch.zeros(64, 4),
                      ("reach the goal",) * 64)
    first = None
    for _ in range(6):
        step = agent.act(obs, gen)
        adv = torch.randn(64, generator=gen)
        m = ppo_update(agent, batch_from_steps([step], adv, adv), ppo, *opts, gen, reference)
        first = m.get("losses/ref_kl") if first is None else first
    dist = sum(float((p.detach() - s).pow(2).sum())
               for p, s in zip(agent.policy.expert_parameters(), start))
    return dist ** 0.5, first


@pytest.mark.parametrize("sampler", [
    SamplerConfig(method="flow_noise", num_steps=3, mdp="one_layer"),
    SamplerConfig(method="flow_sde", num_steps=3, schedule="hybrid", mdp="two_layer"),
])
def test_the_anchor_holds_the_policy_near_where_rl_started(sampler):
    free, first_free = _drift(0.0, sampler)
    anchored, first_anchored = _drift(1.0, sampler)
    assert first_free is None  # off: no penalty computed, nothing logged
    assert first_anchored == 0.0  # the first step starts at the reference
    assert anchored < 0.8 * free, (anchored, free)


def test_a_copied_policy_shares_the_frozen_instruction_encoder():
    policy = tiny_agent(SamplerConfig()).policy
    assert copy.deepcopy(policy).text_encoder is policy.text_encoder
