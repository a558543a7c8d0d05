"""Per-dimension mean/std normalisation of actions and proprio state (LeRobot's MEAN_STD).

Why: flow matching draws A_0 ~ N(0, I) and regresses A - A_0, so an action dimension whose
demos spread over 0.05 (ManiSkill's joint deltas: std 0.04-0.33 per joint) is a faint signal
under unit noise, and the samplers' exploration noise (Flow-Noise: std 0.08-0.16 per
denoising step) exceeds the demos' own spread on the least-moving joints (std 0.04-0.05).
The policy's chain therefore lives in normalised units; the statistics come from the SFT demos,
are fitted once at the start of SFT, and travel in the policy's checkpoint as buffers.

The normaliser is an optional `normalizer` submodule of the policy (`attach_normalizer`):
without it everything runs on raw values, bit for bit as before.

Shapes: N rows, H chunk, D env action dim, P state dim.
"""

from __future__ import annotations

from typing import get_args

import torch
from torch import Tensor, nn

from pirl_core.config_schema import Normalization

MIN_STD = 1e-3  # a constant dimension (a padded state slot) maps to 0, not to inf


class Normalizer(nn.Module):
    """Buffers (action_mean, action_std [D], state_mean, state_std [P]); identity until fitted."""

    def __init__(self, action_dim: int, state_dim: int):
        super().__init__()
        self.register_buffer("action_mean", torch.zeros(action_dim))
        self.register_buffer("action_std", torch.ones(action_dim))
        self.register_buffer("state_mean", torch.zeros(state_dim))
        self.register_buffer("state_std", torch.ones(state_dim))

    @torch.no_grad()
    def fit(self, actions: Tensor, state: Tensor) -> None:
        """Statistics of demo actions [N, H, D] (or [N, D]) and states [N, P]."""
        a = actions.reshape(-1, actions.shape[-1]).float()
        if a.shape[-1] != self.action_mean.numel() or state.shape[-1] != self.state_mean.numel():
            raise ValueError(f"normalizer built for D={self.action_mean.numel()}, "
                             f"P={self.state_mean.numel()}; got actions {tuple(actions.shape)}, "
                             f"state {tuple(state.shape)}")
        self.action_mean.copy_(a.mean(0))
        self.action_std.copy_(a.std(0).clamp_min(MIN_STD))
        self.state_mean.copy_(state.float().mean(0))
        self.state_std.copy_(state.float().std(0).clamp_min(MIN_STD))

    def actions(self, a: Tensor) -> Tensor:
        """Env-unit actions [..., D] -> the chain's units."""
        return (a - self.action_mean) / self.action_std

    def unnormalize_actions(self, a: Tensor) -> Tensor:
        """The chain's actions [..., D] -> env units."""
        return a * self.action_std + self.action_mean

    def state(self, s: Tensor) -> Tensor:
        """Raw proprio state [..., P] -> the policy's input units."""
        return (s - self.state_mean) / self.state_std


def attach_normalizer(policy: nn.Module, mode: Normalization, action_dim: int,
                      state_dim: int) -> nn.Module:
    """Give `policy` a `normalizer` submodule for mode "mean_std" (saved with its weights)."""
    if mode not in get_args(Normalization):
        raise ValueError(f"normalization must be one of {get_args(Normalization)}, got {mode!r}")
    if mode == "mean_std":
        policy.normalizer = Normalizer(action_dim, state_dim)
    return policy


def normalizer_of(policy: nn.Module) -> Normalizer | None:
    return getattr(policy, "normalizer", None)
