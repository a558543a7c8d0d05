"""PPO: clipped surrogate, its gradient where the clip binds, value loss, metrics."""

from __future__ import annotations

import math

import pytest
import torch

from pirl_core.losses.ppo import (
    explained_variance,
    normalize_advantages,
    ppo_policy_loss,
    ppo_total_loss,
    value_loss,
)

CLIP = 0.2


def test_ratio_one_gives_zero_kl_zero_clipfrac_and_minus_mean_advantage() -> None:
    g = torch.Generator().manual_seed(0)
    logp = torch.randn(64, generator=g)
    adv = torch.randn(64, generator=g)
    loss, metrics = ppo_policy_loss(logp.clone(), logp.clone(), adv, CLIP)
    assert metrics["losses/approx_kl"] == 0.0
    assert metrics["losses/clipfrac"] == 0.0
    assert metrics["losses/ratio_mean"] == 1.0
    assert torch.allclose(loss, -adv.mean(), atol=1e-7, rtol=0)
    assert metrics["losses/policy_loss"] == loss.detach()
    assert all(not v.requires_grad for v in metrics.values())


def test_gradient_zero_exactly_where_clip_binds() -> None:
    ratios = torch.tensor([1.5, 0.5, 1.5, 0.5, 1.05, 0.95])
    adv = torch.tensor([1.0, -1.0, -1.0, 1.0, 1.0, -1.0])
    binds = torch.tensor([True, True, False, False, False, False])
    old = torch.zeros(6)
    new = ratios.log().requires_grad_(True)
    loss, metrics = ppo_policy_loss(new, old, adv, CLIP)
    loss.backward()
    assert torch.equal(new.grad[binds], torch.zeros(2))
    # d/dlogp of -A * exp(logp - old) / n, where the unclipped branch is active
    expected = -adv[~binds] * ratios[~binds] / 6
    assert torch.allclose(new.grad[~binds], expected, atol=1e-7)
    assert (new.grad[~binds] != 0).all()
    assert metrics["losses/clipfrac"] == pytest.approx(4 / 6)


def test_approx_kl_formula() -> None:
    new = torch.tensor([0.1, -0.3])
    loss, metrics = ppo_policy_loss(new, torch.zeros(2), torch.ones(2), CLIP)
    expected = ((new.exp() - 1) - new).mean()
    assert torch.allclose(metrics["losses/approx_kl"], expected)


@pytest.mark.parametrize("adv_shape", [(8,), (8, 1)])
def test_advantages_broadcast_over_denoising_steps(adv_shape: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(1)
    new, old = torch.randn(8, 4, generator=g), torch.randn(8, 4, generator=g)
    adv = torch.randn(8, generator=g)
    loss, _ = ppo_policy_loss(new, old, adv.reshape(adv_shape), CLIP)
    loss_full, _ = ppo_policy_loss(new, old, adv[:, None].expand(8, 4), CLIP)
    assert torch.equal(loss, loss_full)


def test_bad_advantage_shapes_raise() -> None:
    with pytest.raises(ValueError, match="more dims"):
        ppo_policy_loss(torch.zeros(8), torch.zeros(8), torch.zeros(8, 4), CLIP)
    with pytest.raises(ValueError, match="broadcast"):
        ppo_policy_loss(torch.zeros(8, 4), torch.zeros(8, 4), torch.zeros(5), CLIP)


def test_bf16_logprobs_computed_in_float32() -> None:
    new = torch.tensor([0.01, 0.02]).bfloat16()
    loss, metrics = ppo_policy_loss(new, torch.zeros(2).bfloat16(), torch.ones(2), CLIP)
    assert loss.dtype == torch.float32 and metrics["losses/approx_kl"].dtype == torch.float32


def test_value_loss_unclipped_and_clipped_by_hand() -> None:
    new, ret, old = torch.tensor([1.0, 3.0]), torch.tensor([2.0, 2.0]), torch.tensor([0.0, 2.5])
    # unclipped: (1-2)^2 = 1, (3-2)^2 = 1 -> 0.5 * 1 = 0.5
    assert value_loss(new, ret).item() == pytest.approx(0.5)
    # clipped: old + clamp(new - old, +-0.5) = [0.5, 3.0] -> [2.25, 1]; max with [1, 1] -> 0.8125
    assert value_loss(new, ret, old, 0.5).item() == pytest.approx(0.8125)


def test_value_loss_rejects_silent_broadcast_and_half_clipping() -> None:
    with pytest.raises(ValueError, match="differ"):
        value_loss(torch.zeros(4, 1), torch.zeros(4))
    with pytest.raises(ValueError, match="both"):
        value_loss(torch.zeros(4), torch.zeros(4), old_values=torch.zeros(4))


def test_total_loss() -> None:
    pg, v, ent = torch.tensor(0.5), torch.tensor(2.0), torch.tensor([1.0, 3.0])
    total = ppo_total_loss(pg, v, ent, vf_coef=0.5, ent_coef=0.01)
    assert total.item() == pytest.approx(0.5 - 0.01 * 2.0 + 0.5 * 2.0)
    assert ppo_total_loss(pg, v, None, 0.5, 0.01).item() == pytest.approx(1.5)


def test_explained_variance() -> None:
    y = torch.tensor([1.0, 2.0, 4.0, 7.0])
    assert explained_variance(y, y) == 1.0
    mean_pred = torch.full_like(y, y.mean().item())
    assert explained_variance(mean_pred, y) == pytest.approx(0.0, abs=1e-6)
    assert math.isnan(explained_variance(torch.zeros(3), torch.ones(3)))


def test_normalize_advantages() -> None:
    assert torch.equal(normalize_advantages(torch.tensor([3.0])), torch.zeros(1))
    out = normalize_advantages(torch.tensor([1.0, 2.0, 3.0, 10.0]))
    assert out.mean().abs() < 1e-6 and (out.std() - 1).abs() < 1e-6
