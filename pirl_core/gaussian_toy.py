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

from pirl_core.flow import expand_tau


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
