"""Does one PPO update move a flow policy toward higher reward? A contextual-free bandit on the
real agent (tiny SmallVLA + Flow-Noise head or Flow-SDE hybrid), no simulator: the reward of a
chunk is -||a - target||^2, advantages are the centred rewards, and a handful of PPO updates must
raise the mean reward of fresh samples. This separates "the RL math points the right way" from
everything a simulator adds (perception, credit assignment, sparse rewards)."""

from __future__ import annotations

import pytest
import torch

from pirl_core.config import PPOConfig, SamplerConfig
from pirl_core.policies.base import Observation
from pirl_core.rollout import batch_from_steps
from pirl_core.update import ppo_update
from tests.helpers import tiny_agent

TARGET = torch.tensor([0.5, -0.5, 0.3, 0.0])  # one action, repeated over the chunk


def _obs(n: int) -> Observation:
    return Observation(torch.zeros(n, 64, 64, 3, dtype=torch.uint8), torch.zeros(n, 4),
                       ("reach the goal",) * n)


def _reward(actions: torch.Tensor) -> torch.Tensor:
    return -((actions - TARGET) ** 2).sum((1, 2))


@pytest.mark.parametrize("sampler", [
    SamplerConfig(method="flow_noise", num_steps=4, mdp="one_layer"),
    SamplerConfig(method="flow_sde", num_steps=4, schedule="hybrid", mdp="two_layer"),
])
def test_ppo_updates_raise_the_bandit_reward(sampler):
    agent = tiny_agent(sampler)
    actor, critic = agent.trainable_parameters()
    opts = (torch.optim.Adam(actor, lr=3e-3), torch.optim.Adam(critic, lr=1e-3))
    ppo = PPOConfig(update_epochs=2, num_minibatches=2, ent_coef=0.0)
    gen, obs = torch.Generator().manual_seed(0), _obs(128)

    def mean_reward() -> float:
        probe = torch.Generator().manual_seed(123)  # the same noise before and after
        return float(_reward(agent.act(obs, probe).chain.actions).mean())

    before = mean_reward()
    for _ in range(10):
        step = agent.act(obs, gen)
        reward = _reward(step.chain.actions)
        batch = batch_from_steps([step], reward - reward.mean(), reward)
        ppo_update(agent, batch, ppo, *opts, gen)
    after = mean_reward()
    assert after > before + 0.25 * abs(before), (before, after)
