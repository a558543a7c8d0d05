"""GRPO rollouts: groups share initial states, one episode per env, masked chunks, advantages."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pirl_core.config import CriticConfig, PolicyConfig, SamplerConfig
from pirl_core.envs.metaworld import MetaWorldVecEnv
from pirl_core.agent import Agent
from pirl_core.policies.small import SmallVLA
from pirl_core.rollout_grpo import collect_group_rollout


@pytest.fixture(scope="module")
def envs():
    with MetaWorldVecEnv(("reach-v3", "button-press-topdown-v3"), 4, image_size=64,
                         max_episode_steps=12, seed=3, group_size=2) as env:
        yield env


def test_groups_share_initial_states_and_tasks(envs):
    assert envs.tasks == ["reach-v3", "reach-v3", "button-press-topdown-v3",
                          "button-press-topdown-v3"]
    first = envs.reset(episode=5)["privileged"]
    assert np.array_equal(first[0], first[1]) and np.array_equal(first[2], first[3])
    again = envs.reset(episode=5)["privileged"]
    assert np.array_equal(first, again)
    other = envs.reset(episode=6)["privileged"]
    assert not np.array_equal(first[0], other[0])


def test_group_rollout_masks_finished_episodes(envs):
    torch.manual_seed(0)
    policy = SmallVLA(4, 5, 4, PolicyConfig(hidden_dim=32, num_layers=1, num_heads=2), 64)
    policy.configure_stage("rl")
    agent = Agent(policy, SamplerConfig(method="flow_sde", schedule="hybrid", mdp="two_layer"),
                  CriticConfig(num_layers=1, hidden_dim=8))
    batch, stats = collect_group_rollout(envs, agent, 0, torch.Generator().manual_seed(0), 1e-6)
    # an untrained policy never succeeds in 12 steps: 3 chunks (5 + 5 + 2 steps) per episode
    assert len(stats.episode_lengths) == 4 and set(stats.episode_lengths) == {12}
    assert len(batch) == 4 * math.ceil(12 / 5) and stats.env_steps == 4 * 12
    assert torch.equal(batch.advantages, torch.zeros(len(batch)))  # equal returns in each group
