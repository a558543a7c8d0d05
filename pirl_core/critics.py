"""Critic heads and placements (paper Sec. 4.3.2, Eq. 16; ablation Fig. 6).

Placements:
- "vlm" (pi0.5-style, V_vlm): the head reads prefix / VLM features of the observation.
- "expert" (pi0-style, V_expert): the state enters the action expert, whose features also depend
  on the noisy action A^tau, so the value is averaged over the denoising chain (Eq. 16):
  V_expert(o) ~ E_tau[V_expert(o, A^tau)].

ValueHead choices: GELU between layers (transformer features are unbounded and GELU matches the
backbone; tanh would saturate on large-norm features); no dropout, since dropout would change
the shared actor-critic between rollout and update. Init follows CleanRL's orthogonal scheme
(gain sqrt(2) on hidden layers, zero biases) except the output layer gets gain 0.01 instead of
CleanRL's critic 1.0: initial values then start near 0, so the untrained critic's early
advantages are close to the plain returns instead of random feature projections.

Shapes: B batch, K denoising states along the chain (K or K + 1), F feature dim.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

PLACEMENTS = ("expert", "vlm")


def _init_linear(layer: nn.Linear, gain: float) -> nn.Linear:
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


class ValueHead(nn.Module):
    """MLP with `num_layers` Linear layers: 1 is a linear probe (hidden_dim unused), 4 is three
    GELU hidden layers of width hidden_dim plus the output. forward: [..., F] -> [...]."""

    def __init__(self, in_dim: int, hidden_dim: int, num_layers: int) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.in_dim = in_dim
        layers: list[nn.Module] = []
        width = in_dim
        for _ in range(num_layers - 1):
            layers += [_init_linear(nn.Linear(width, hidden_dim), math.sqrt(2.0)), nn.GELU()]
            width = hidden_dim
        layers.append(_init_linear(nn.Linear(width, 1), 0.01))
        self.net = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        if features.shape[-1] != self.in_dim:
            raise ValueError(
                f"ValueHead expects features [..., {self.in_dim}], got {tuple(features.shape)}"
            )
        # Features may arrive in bf16 from the backbone; the head keeps its own (float32) dtype.
        weight_dtype = self.net[-1].weight.dtype
        return self.net(features.to(weight_dtype)).squeeze(-1).float()


def average_over_chain(values: Tensor, mask: Tensor | None = None) -> Tensor:
    """Eq. 16: mean of per-state values [B, K] over the chain (masked states only) -> [B]."""
    if values.dim() != 2:
        raise ValueError(f"values must be [B, K], got {tuple(values.shape)}")
    values = values.float()
    if mask is None:
        return values.mean(dim=1)
    if mask.shape != values.shape:
        raise ValueError(f"mask {tuple(mask.shape)} must match values {tuple(values.shape)}")
    mask = mask.bool()
    counts = mask.sum(dim=1)
    if (counts == 0).any():
        empty = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"mask selects no denoising state for rows {empty}")
    # where, not multiply: values at masked-out states may be NaN/garbage.
    total = torch.where(mask, values, torch.zeros_like(values)).sum(dim=1)
    return total / counts


def critic_values(
    head: nn.Module, features: Tensor, placement: str, mask: Tensor | None = None
) -> Tensor:
    """Values [B]: "expert" reads chain features [B, K, F], "vlm" prefix features [B, F]."""
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    if placement == "expert":
        if features.dim() != 3:
            raise ValueError(
                f"placement 'expert' expects features [B, K, F], got {tuple(features.shape)}"
            )
        return average_over_chain(head(features), mask)
    if features.dim() != 2:
        raise ValueError(f"placement 'vlm' expects features [B, F], got {tuple(features.shape)}")
    if mask is not None:
        raise ValueError("mask applies to the 'expert' placement only")
    return head(features)
