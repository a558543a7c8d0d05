"""Flow Policy Optimization: a PPO ratio proxy without likelihoods (McAllister et al. 2025).

For each rollout sample (o, A), N pairs (tau_i, eps_i) are drawn once at rollout time, stored,
and reused in every update epoch. The per-pair CFM losses l_i (see `cfm.cfm_per_sample`) under
the behaviour and current parameters give

    log rho = mean_i l_old,i - mean_i l_new,i,     rho = exp(log rho),

which goes into the same clipped surrogate as PPO (`ppo.clipped_surrogate`). Lower CFM loss
under the new parameters means the action became more likely, so rho > 1.

Shapes: M samples, N (tau, eps) pairs per sample, H actions per chunk, D action dim.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pirl_core.losses.ppo import clipped_surrogate


def fpo_ratio(cfm_old: Tensor, cfm_new: Tensor) -> tuple[Tensor, Tensor]:
    """(ratio [M], logratio [M]) from per-pair CFM losses [M, N] on the same stored pairs.

    cfm_old is detached: it comes from the behaviour parameters and must carry no gradient.
    """
    if cfm_old.dim() != 2 or cfm_old.shape != cfm_new.shape:
        raise ValueError(
            f"cfm_old {tuple(cfm_old.shape)} and cfm_new {tuple(cfm_new.shape)} must both be "
            "[M, N] per-pair losses on the same (tau, eps) pairs"
        )
    logratio = cfm_old.detach().float().mean(dim=1) - cfm_new.float().mean(dim=1)
    return logratio.exp(), logratio


def fpo_policy_loss(
    cfm_old: Tensor, cfm_new: Tensor, advantages: Tensor, clip_coef: float
) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO's clipped surrogate with the FPO ratio; same metric keys as `ppo_policy_loss`."""
    _, logratio = fpo_ratio(cfm_old, cfm_new)
    return clipped_surrogate(logratio, advantages, clip_coef)


def draw_fpo_pairs(
    num_samples: int,
    num_pairs: int,
    action_shape: tuple[int, ...] | torch.Size,
    generator: torch.Generator,
) -> tuple[Tensor, Tensor]:
    """taus [M, N] ~ U[0, 1) and eps [M, N, *action_shape] ~ N(0, I), all from `generator`."""
    device = generator.device
    taus = torch.rand((num_samples, num_pairs), generator=generator, device=device)
    eps = torch.randn(
        (num_samples, num_pairs, *action_shape), generator=generator, device=device
    )
    return taus, eps
