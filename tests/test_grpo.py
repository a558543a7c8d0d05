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
