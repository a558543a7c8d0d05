"""CFM primitives in pirl's convention (tau = 0 noise, tau = 1 action) and tau sampling."""

from __future__ import annotations

import pytest
import torch

from pirl_core.losses.cfm import cfm_loss, cfm_per_sample, cfm_target, interpolate, sample_tau


def _batch(m: int = 6, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    actions = torch.randn(m, 4, 3, generator=g)
    eps_shape = (m, 4, 3) if n is None else (m, n, 4, 3)
    return actions, torch.randn(eps_shape, generator=g)


def test_interpolate_endpoints_exact() -> None:
    actions, eps = _batch()
    assert torch.equal(interpolate(actions, eps, torch.zeros(6)), eps)
    assert torch.equal(interpolate(actions, eps, torch.ones(6)), actions)
    mid = interpolate(actions, eps, torch.full((6,), 0.25))
    assert torch.allclose(mid, 0.25 * actions + 0.75 * eps)


def test_interpolate_with_pairs_shares_actions() -> None:
    actions, eps = _batch(n=5)
    tau = torch.rand(6, 5, generator=torch.Generator().manual_seed(1))
    out = interpolate(actions, eps, tau)
    assert out.shape == (6, 5, 4, 3)
    assert torch.allclose(out[2, 3], tau[2, 3] * actions[2] + (1 - tau[2, 3]) * eps[2, 3])
    with pytest.raises(ValueError, match="tau"):
        interpolate(actions, eps, torch.rand(6))


def test_cfm_zero_at_exact_target_and_mean_otherwise() -> None:
    actions, eps = _batch(n=5)
    target = cfm_target(actions, eps)
    assert torch.equal(cfm_per_sample(target, actions, eps), torch.zeros(6, 5))
    assert cfm_loss(target, actions, eps) == 0.0
    pred = target + 2.0
    assert torch.allclose(cfm_per_sample(pred, actions, eps), torch.full((6, 5), 4.0))
    actions1, eps1 = _batch()
    assert cfm_per_sample(cfm_target(actions1, eps1), actions1, eps1).shape == (6,)


@pytest.mark.parametrize("dist", ["uniform", "beta"])
def test_sample_tau_range_and_reproducible(dist: str) -> None:
    tau = sample_tau(5000, torch.Generator().manual_seed(3), distribution=dist)
    assert tau.shape == (5000,) and tau.dtype == torch.float32
    assert tau.min() >= 0 and tau.max() < 1
    again = sample_tau(5000, torch.Generator().manual_seed(3), distribution=dist)
    assert torch.equal(tau, again)
    other = sample_tau(5000, torch.Generator().manual_seed(4), distribution=dist)
    assert not torch.equal(tau, other)


def test_beta_schedule_skewed_toward_noise_end() -> None:
    tau = sample_tau(20000, torch.Generator().manual_seed(0), distribution="beta")
    # t ~ Beta(1.5, 1): E[t] = 0.6, Var[t] = 1.5 / (2.5^2 * 3.5); tau = 1 - (0.999 t + 0.001)
    expected_mean = 1 - (0.999 * 0.6 + 0.001)
    expected_std = 0.999 * (1.5 / (2.5**2 * 3.5)) ** 0.5
    assert abs(tau.mean().item() - expected_mean) < 0.01  # standard error ~0.002
    assert abs(tau.std().item() - expected_std) < 0.01
    # P(tau < 0.5) = P(t > ~0.5) = 1 - 0.5^1.5 ~ 0.646 (uniform would give 0.5)
    assert abs((tau < 0.5).float().mean().item() - 0.646) < 0.02


def test_beta_small_alpha_matches_mean() -> None:
    tau = sample_tau(20000, torch.Generator().manual_seed(0), "beta", beta_alpha=0.5, beta_beta=2.0)
    assert abs(tau.mean().item() - (1 - (0.999 * 0.2 + 0.001))) < 0.01


def test_sample_tau_rejects_unknown_distribution() -> None:
    with pytest.raises(ValueError, match="distribution"):
        sample_tau(3, torch.Generator(), distribution="logit_normal")
