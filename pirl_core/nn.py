"""Small network pieces shared by policies: time embedding, MLP, the Flow-Noise head, and a plain
MLP velocity field (the model behind benchmarks, tests and the Gaussian-toy notebook).

No dropout anywhere: RL trains these parts, and dropout would make the policy at update time differ
from the one that sampled the chain (the first-minibatch ratio would not be 1).

Shapes: B batch, H actions per chunk, D action dim, F feature dim, C context dim.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def sinusoidal_embedding(tau: Tensor, dim: int, max_period: float = 100.0) -> Tensor:
    """[B] -> [B, dim] sin/cos features of tau in [0, 1] (periods from 1/(2 pi) up to max_period)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
    args = tau.float()[:, None] * freqs.to(tau.device)[None] * 2 * math.pi * 10
    emb = torch.cat([torch.sin(args), torch.cos(args)], -1)
    return emb if dim % 2 == 0 else torch.cat([emb, tau.float()[:, None]], -1)


def mlp(in_dim: int, hidden_dim: int, out_dim: int, num_layers: int,
        act: type[nn.Module] = nn.GELU) -> nn.Sequential:
    """`num_layers` Linear layers (1 = linear map) with `act` between them."""
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
    layers: list[nn.Module] = []
    for i in range(num_layers):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < num_layers - 1:
            layers.append(act())
    return nn.Sequential(*layers)


class NoiseHead(nn.Module):
    """Flow-Noise's sigma_theta'(features, tau): a per-element std bounded in [min_std, max_std].

    The paper's Tables 7-8 call the bounds "min/max log-var" (0.08 / 0.16 for pi0). Read as
    log-variances they would give std ~1.04-1.08, far above the a = 0.5 SDE noise they are said to
    match (Fig. 7); read as stds (ReinFlow's `min_std` / `max_std`) they match it. So pirl bounds the
    STANDARD DEVIATION: log-variance = tanh-squashed into [2 log min_std, 2 log max_std].
    """

    def __init__(self, in_dim: int, out_dim: int, hidden_dim: int = 64, num_layers: int = 2,
                 min_std: float = 0.08, max_std: float = 0.16, time_dim: int = 16):
        super().__init__()
        if not 0 < min_std <= max_std:
            raise ValueError(f"need 0 < min_std <= max_std, got {min_std}, {max_std}")
        self.time_dim = time_dim
        self.net = mlp(in_dim + time_dim, hidden_dim, out_dim, num_layers)
        self.register_buffer("logvar_min", torch.tensor(2 * math.log(min_std)))
        self.register_buffer("logvar_max", torch.tensor(2 * math.log(max_std)))

    def forward(self, features: Tensor, tau: Tensor) -> Tensor:
        """features [B, F], tau [B] -> std [B, out_dim]."""
        raw = self.net(torch.cat([features.float(), sinusoidal_embedding(tau, self.time_dim)], -1))
        unit = (torch.tanh(raw) + 1) / 2
        logvar = self.logvar_min + (self.logvar_max - self.logvar_min) * unit
        return torch.exp(0.5 * logvar)


class VelocityMLP(nn.Module):
    """u = v(x, tau, context) for chunks [B, H, D] with an optional context vector [B, C].

    Returns (u, features): the last hidden layer doubles as "expert features" for the Flow-Noise
    head and V_expert, the way a VLA's action expert exposes its hidden states.
    """

    def __init__(self, action_shape: tuple[int, int], context_dim: int = 0, hidden_dim: int = 128,
                 num_layers: int = 3, time_dim: int = 32):
        super().__init__()
        self.action_shape = tuple(action_shape)
        self.time_dim = time_dim
        flat = self.action_shape[0] * self.action_shape[1]
        self.trunk = mlp(flat + context_dim + time_dim, hidden_dim, hidden_dim, num_layers - 1)
        self.act = nn.GELU()
        self.out = nn.Linear(hidden_dim, flat)
        self.feature_dim = hidden_dim

    def forward(self, x: Tensor, tau: Tensor, context: Tensor | None = None) -> tuple[Tensor, Tensor]:
        parts = [x.flatten(1).float(), sinusoidal_embedding(tau, self.time_dim)]
        if context is not None:
            parts.append(context.float())
        feats = self.act(self.trunk(torch.cat(parts, -1)))
        return self.out(feats).view(-1, *self.action_shape), feats
