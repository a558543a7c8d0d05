"""GRPO: group normalisation, flat groups, trajectory broadcast."""

from __future__ import annotations

import pytest
import torch

from pirl_core.losses.grpo import broadcast_over_trajectory, grpo_advantages


@pytest.mark.parametrize("eps", [1e-6, 0.0])
def test_equal_reward_group_is_exactly_zero(eps: float) -> None:
    returns = torch.tensor([0.1, 0.1, 0.1, 1.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    adv = grpo_advantages(returns, group_size=3, eps=eps)
    assert torch.equal(adv[:6], torch.zeros(6))
    assert not torch.isnan(adv).any()
    assert (adv[6:] != 0).all()


def test_binary_group_gives_plus_minus_one_with_population_std() -> None:
    returns = torch.tensor([1.0, 0.0, 0.0, 1.0])
    assert torch.equal(grpo_advantages(returns, 4, eps=0.0), torch.tensor([1.0, -1.0, -1.0, 1.0]))
    assert torch.allclose(grpo_advantages(returns, 4), torch.tensor([1.0, -1.0, -1.0, 1.0]),
                          atol=1e-5)


def test_groups_are_group_major() -> None:
    returns = torch.tensor([1.0, 0.0, 5.0, 5.0])
    assert torch.equal(grpo_advantages(returns, 2, eps=0.0), torch.tensor([1.0, -1.0, 0.0, 0.0]))


def test_bad_group_size_raises_naming_numbers() -> None:
    with pytest.raises(ValueError, match=r"M = 10.*group_size = 4"):
        grpo_advantages(torch.zeros(10), group_size=4)


def test_broadcast_over_trajectory() -> None:
    adv = torch.tensor([0.5, -1.0, 2.0])
    ids = torch.tensor([[0, 2], [0, 2], [1, 2]])
    expected = torch.tensor([[0.5, 2.0], [0.5, 2.0], [-1.0, 2.0]])
    assert torch.equal(broadcast_over_trajectory(adv, ids), expected)
    with pytest.raises(ValueError, match="episode_ids"):
        broadcast_over_trajectory(adv, torch.tensor([[-1, 0]]))


def test_group_advantages_are_not_normalised_again_in_the_update() -> None:
    """GRPO's loss uses the group advantages as they are: with norm_adv on, a batch whose
    advantages have a non-zero mean (failures run longer than successes) gives the same loss as
    with it off, and the rows of an equal-outcome group (advantage 0) carry no gradient. The
    PPO path (use_critic) still normalises."""
    from pirl_core.config import PPOConfig, SamplerConfig
    from pirl_core.policies.base import Observation
    from pirl_core.rollout import batch_from_steps
    from pirl_core.update import minibatch_loss
    from tests.helpers import tiny_agent

    agent = tiny_agent(SamplerConfig(method="flow_noise", num_steps=3, mdp="one_layer"))
    gen = torch.Generator().manual_seed(0)
    obs = Observation(torch.zeros(6, 64, 64, 3, dtype=torch.uint8), torch.zeros(6, 4),
                      ("reach the goal",) * 6)
    adv = torch.tensor([1.0, -1.0, -1.0, -1.0, 0.0, 0.0])
    mb = batch_from_steps([agent.act(obs, gen)], adv, adv)
    losses = {norm: minibatch_loss(agent, mb, PPOConfig(norm_adv=norm, ent_coef=0.0), False)[0]
              for norm in (True, False)}
    assert torch.equal(losses[True], losses[False])
    zero_rows = batch_from_steps([agent.act(obs, gen)], torch.zeros(6), torch.zeros(6))
    loss, _ = minibatch_loss(agent, zero_rows, PPOConfig(ent_coef=0.0), False)
    assert float(loss) == 0.0
    ppo = [minibatch_loss(agent, mb, PPOConfig(norm_adv=norm, ent_coef=0.0), True)[0]
           for norm in (True, False)]
    assert not torch.equal(ppo[0], ppo[1])
