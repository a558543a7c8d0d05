"""A flow whose exact velocity field is known in closed form: data A ~ N(m, s^2) per element.

With A_tau = tau A + (1 - tau) eps, (A, eps, A_tau) are jointly Gaussian, so
    q_tau = N(tau m, v),  v = tau^2 s^2 + (1 - tau)^2
    u(x, tau) = E[A - eps | A_tau = x] = m + (tau s^2 - (1 - tau)) / v * (x - tau m).
Samplers are checked against it: a correct sampler ends at N(m, s^2) as K grows, and every
marginal-preserving SDE must keep q_tau at every tau (tests/test_gaussian_toy.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from pirl_core.config import SamplerConfig
from pirl_core.flow import expand_tau
from pirl_core.samplers import sample_chain


@dataclass(frozen=True)
class GaussianFlow:
    """Exact velocity field of the linear path to N(mean, std^2); callable as a VelocityField."""

    mean: float = 1.5
    std: float = 0.3

    def marginal(self, tau: Tensor | float) -> tuple[Tensor, Tensor]:
        """(mean, std) of q_tau."""
        tau = torch.as_tensor(tau)
        tau = tau if tau.is_floating_point() else tau.float()
        var = tau**2 * self.std**2 + (1 - tau) ** 2
        return tau * self.mean, torch.sqrt(var)

    def __call__(self, x: Tensor, tau: Tensor, context: Any = None) -> Tensor:
        t = expand_tau(tau, x)
        var = t**2 * self.std**2 + (1 - t) ** 2
        return self.mean + (t * self.std**2 - (1 - t)) / var * (x - t * self.mean)

    def score(self, x: Tensor, tau: Tensor) -> Tensor:
        """grad log q_tau(x), straight from the Gaussian marginal (independent of the velocity)."""
        t = expand_tau(tau, x)
        m, s = self.marginal(t)
        return -(x - m) / s**2


def final_moments(flow: GaussianFlow, method: str, num_steps: int, noise_level: float,
                  num_samples: int, seed: int) -> tuple[float, float]:
    """(mean, std) of the final state of `num_samples` chains sampled with the exact velocity."""
    cfg = SamplerConfig(method=method, num_steps=num_steps, noise_level=noise_level)
    gen = torch.Generator().manual_seed(seed)
    final = sample_chain(flow, None, cfg, num_samples, (1, 1), gen).actions
    return final.mean().item(), final.std().item()


def sampler_study(flow: GaussianFlow, steps: tuple[int, ...], noise_levels: tuple[float, ...],
                  num_samples: int, seed: int) -> list[dict]:
    """Final mean / std of ODE and Flow-SDE / Flow-CPS per (K, a): one row per run."""
    rows = []
    for k in steps:
        m, s = final_moments(flow, "ode", k, 0.0, num_samples, seed)
        rows.append({"method": "ode", "K": k, "a": 0.0, "mean": m, "std": s})
        for method in ("flow_sde", "flow_cps"):
            for a in noise_levels:
                m, s = final_moments(flow, method, k, a, num_samples, seed)
                rows.append({"method": method, "K": k, "a": a, "mean": m, "std": s})
    return rows
