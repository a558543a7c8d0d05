"""Flow-matching time convention and identities, stated once for the whole project.

pirl follows the paper (Sec. 3.2): tau in [0, 1], tau = 0 is pure noise, tau = 1 is the action.

    A_tau = tau * A + (1 - tau) * eps        target velocity u = A - eps
    x_data  = x + (1 - tau) * u              (predicted action from state x at time tau)
    x_noise = x - tau * u                    (predicted noise)

Sampling integrates tau upward on the uniform grid tau_k = k / K, k = 0..K, step delta = 1 / K.

openpi / LeRobot pi0 checkpoints use t = 1 - tau (noise at t = 1) and predict v_t = eps - A, so
u = -v_t. Adapters convert once, at the model boundary, with `tau_to_openpi_time` and
`velocity_from_openpi`; nothing else in pirl knows about their convention.

Shapes: B batch, K denoising steps, H actions per chunk, D action dim.
"""

from __future__ import annotations

import torch
from torch import Tensor


def time_grid(num_steps: int, device: torch.device | str | None = None) -> Tensor:
    """The denoising grid tau_k = k / K, k = 0..K, float32 [K+1]; exact at both ends."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be >= 1, got {num_steps}")
    return torch.arange(num_steps + 1, device=device, dtype=torch.float32) / num_steps


def expand_tau(tau: Tensor | float, like: Tensor) -> Tensor:
    """Broadcast a scalar or per-sample tau [B] against a state [B, ...]."""
    tau = torch.as_tensor(tau, dtype=like.dtype, device=like.device)
    if tau.dim() == 0:
        return tau
    return tau.reshape(tau.shape + (1,) * (like.dim() - tau.dim()))


def interpolate(actions: Tensor, eps: Tensor, tau: Tensor | float) -> Tensor:
    """A_tau = tau * A + (1 - tau) * eps."""
    t = expand_tau(tau, actions)
    return t * actions + (1 - t) * eps


def predicted_action(x: Tensor, u: Tensor, tau: Tensor | float) -> Tensor:
    """x_data = x + (1 - tau) u: where the straight path through x at time tau lands at tau = 1."""
    return x + (1 - expand_tau(tau, x)) * u


def predicted_noise(x: Tensor, u: Tensor, tau: Tensor | float) -> Tensor:
    """x_noise = x - tau u: where the straight path through x started at tau = 0."""
    return x - expand_tau(tau, x) * u


def score_from_velocity(x: Tensor, u: Tensor, tau: Tensor | float) -> Tensor:
    """grad log q_tau(x) = -(x - tau u) / (1 - tau) for the linear path; undefined at tau = 1.

    Used by tests that re-derive the SDE drift independently; samplers use the simplified form.
    """
    return -predicted_noise(x, u, tau) / (1 - expand_tau(tau, x))


def tau_to_openpi_time(tau: Tensor) -> Tensor:
    """pirl tau (noise at 0) -> openpi / LeRobot t (noise at 1)."""
    return 1 - tau


def velocity_from_openpi(v_t: Tensor) -> Tensor:
    """openpi predicts v_t = eps - A; pirl's u = A - eps."""
    return -v_t
