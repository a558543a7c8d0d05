"""Conditional flow matching (SFT loss, and FPO's per-pair losses), pirl's time convention.

tau in [0, 1], tau = 0 pure noise, tau = 1 the action (see `pirl_core.flow`):
    A_tau = tau * A + (1 - tau) * eps,    target velocity u = A - eps,
    L_CFM = E || v_theta(A_tau, o, tau) - u ||^2  (mean over the chunk's H x D entries).

Action chunks always end in (H, D). Leading dims are [M] (one tau per sample) or [M, N] (FPO's
N (tau, eps) pairs per sample). `actions` may omit the pair dim ([M, H, D] against eps
[M, N, H, D]); it is then shared by the N pairs.

Shapes: M samples, N (tau, eps) pairs per sample, H actions per chunk, D action dim.
"""

from __future__ import annotations

import torch
from torch import Tensor

from pirl_core import flow

# pi0 draws its time t ~ Beta(1.5, 1) and maps it into [0.001, 1] (t = 1 is noise there).
_PI0_TIME_SCALE = 0.999
_PI0_TIME_OFFSET = 0.001


def _align_actions(actions: Tensor, eps: Tensor) -> Tensor:
    if actions.shape == eps.shape:
        return actions.float()
    if actions.dim() == eps.dim() - 1 and eps.dim() >= 4:
        shared = actions.unsqueeze(1)
        if shared.shape[0] == eps.shape[0] and shared.shape[2:] == eps.shape[2:]:
            return shared.float()
    raise ValueError(
        f"actions {tuple(actions.shape)} must match eps {tuple(eps.shape)} or omit its pair dim N"
    )


def interpolate(actions: Tensor, eps: Tensor, tau: Tensor) -> Tensor:
    """A_tau = tau * A + (1 - tau) * eps, float32 shaped like eps; exact at tau = 0 and 1."""
    if tau.shape != eps.shape[:-2]:
        raise ValueError(
            f"tau {tuple(tau.shape)} must match the leading dims of eps {tuple(eps.shape)}"
        )
    return flow.interpolate(_align_actions(actions, eps), eps.float(), tau.float())


def cfm_target(actions: Tensor, eps: Tensor) -> Tensor:
    """Target velocity u = A - eps (independent of tau for the linear path)."""
    return _align_actions(actions, eps) - eps.float()


def cfm_per_sample(pred_velocity: Tensor, actions: Tensor, eps: Tensor) -> Tensor:
    """Squared error averaged over the trailing (H, D) dims: [M] or [M, N]."""
    target = cfm_target(actions, eps)
    if pred_velocity.shape != target.shape:
        raise ValueError(
            f"pred_velocity {tuple(pred_velocity.shape)} must match eps {tuple(target.shape)}"
        )
    return ((pred_velocity.float() - target) ** 2).mean(dim=(-2, -1))


def cfm_loss(pred_velocity: Tensor, actions: Tensor, eps: Tensor) -> Tensor:
    """Scalar CFM loss, the mean of `cfm_per_sample`."""
    return cfm_per_sample(pred_velocity, actions, eps).mean()


def _sample_gamma(num: int, concentration: float, generator: torch.Generator) -> Tensor:
    """Gamma(concentration, 1) by Marsaglia-Tsang, every draw from `generator`.

    torch's own Gamma/Beta samplers ignore generators; this keeps SFT runs reproducible from
    one seeded generator. Alpha < 1 uses the boost Gamma(a) = Gamma(a + 1) * U^(1 / a).
    """
    device = generator.device
    boosted = concentration < 1.0
    d = (concentration + 1.0 if boosted else concentration) - 1.0 / 3.0
    c = 1.0 / (9.0 * d) ** 0.5
    out = torch.empty(num, device=device)
    pending = torch.arange(num, device=device)
    while pending.numel() > 0:
        n = pending.numel()
        x = torch.randn(n, generator=generator, device=device)
        u = torch.rand(n, generator=generator, device=device)
        v = (1.0 + c * x) ** 3
        log_v = torch.log(v.clamp_min(1e-30))
        accept = (v > 0) & (torch.log(u) < 0.5 * x**2 + d - d * v + d * log_v)
        out[pending[accept]] = d * v[accept]
        pending = pending[~accept]
    if boosted:
        out = out * torch.rand(num, generator=generator, device=device) ** (1.0 / concentration)
    return out


def sample_tau(
    num: int,
    generator: torch.Generator,
    distribution: str = "uniform",
    beta_alpha: float = 1.5,
    beta_beta: float = 1.0,
) -> Tensor:
    """Training times tau, float32 [num], reproducible from `generator`.

    "uniform": U[0, 1). "beta": pi0's schedule in pirl's convention. pi0 samples its own time
    t ~ Beta(beta_alpha, beta_beta) scaled into [0.001, 1], with t = 1 pure noise; here
    tau = 1 - t, in [0, 0.999], so the default Beta(1.5, 1) is skewed toward the NOISE end
    (tau near 0, mean about 0.4).
    """
    if distribution == "uniform":
        return torch.rand(num, generator=generator, device=generator.device)
    if distribution != "beta":
        raise ValueError(f"distribution must be 'uniform' or 'beta', got {distribution!r}")
    if beta_alpha <= 0 or beta_beta <= 0:
        raise ValueError(f"beta parameters must be > 0, got ({beta_alpha}, {beta_beta})")
    x = _sample_gamma(num, beta_alpha, generator)
    y = _sample_gamma(num, beta_beta, generator)
    t = x / (x + y)
    return 1.0 - (_PI0_TIME_SCALE * t + _PI0_TIME_OFFSET)
