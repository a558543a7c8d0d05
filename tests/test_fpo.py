"""FPO: CFM-loss ratio proxy and its stored (tau, eps) pairs."""

from __future__ import annotations

import math

import pytest
import torch

from pirl_core.losses.fpo import draw_fpo_pairs, fpo_policy_loss, fpo_ratio


def test_identical_losses_give_ratio_one_and_minus_mean_advantage() -> None:
    g = torch.Generator().manual_seed(0)
    cfm = torch.rand(16, 8, generator=g)
    adv = torch.randn(16, generator=g)
    ratio, logratio = fpo_ratio(cfm, cfm.clone())
    assert torch.equal(ratio, torch.ones(16)) and torch.equal(logratio, torch.zeros(16))
    loss, metrics = fpo_policy_loss(cfm, cfm.clone(), adv, clip_coef=0.2)
    assert torch.allclose(loss, -adv.mean(), atol=1e-7, rtol=0)
    assert metrics["losses/approx_kl"] == 0.0 and metrics["losses/clipfrac"] == 0.0


def test_lower_new_loss_raises_ratio_by_exp_of_mean_difference() -> None:
    cfm_old = torch.tensor([[1.0, 2.0], [1.0, 1.0]])
    cfm_new = torch.tensor([[0.5, 1.5], [1.0, 1.0]])  # sample 0: mean 1.5 -> 1.0
    ratio, logratio = fpo_ratio(cfm_old, cfm_new)
    assert torch.equal(logratio, torch.tensor([0.5, 0.0]))
    assert torch.equal(ratio[0], torch.tensor(0.5).exp())
    assert ratio[0].item() == pytest.approx(math.exp(0.5))
    assert ratio[1] == 1.0


def test_gradient_flows_only_through_new_losses() -> None:
    cfm_old = torch.rand(4, 3, requires_grad=True)
    cfm_new = cfm_old.detach().clone().requires_grad_(True)
    loss, _ = fpo_policy_loss(cfm_old, cfm_new, torch.ones(4), clip_coef=0.2)
    loss.backward()
    assert cfm_old.grad is None
    # d/dl_new of -A * exp(mean l_old - mean l_new) at ratio 1 = A / (N * M)
    assert torch.allclose(cfm_new.grad, torch.full((4, 3), 1 / 12))


def test_draw_fpo_pairs_shapes_and_reproducibility() -> None:
    taus, eps = draw_fpo_pairs(5, 3, (4, 2), torch.Generator().manual_seed(7))
    assert taus.shape == (5, 3) and eps.shape == (5, 3, 4, 2)
    assert taus.min() >= 0 and taus.max() < 1
    taus2, eps2 = draw_fpo_pairs(5, 3, (4, 2), torch.Generator().manual_seed(7))
    assert torch.equal(taus, taus2) and torch.equal(eps, eps2)
    taus3, _ = draw_fpo_pairs(5, 3, (4, 2), torch.Generator().manual_seed(8))
    assert not torch.equal(taus, taus3)
