"""Generalized Advantage Estimation at chunk level (paper Sec. 4.3.1, Eq. 13).

One macro step t is one action chunk; rewards[t] is already the sum of its H per-step rewards.
`terminated[t]` / `truncated[t]` mean the episode ended after step t and the env auto-reset, so
values[t + 1] belongs to a new episode: the recursion is cut there in both cases. A terminated
episode bootstraps nothing; a truncated one bootstraps from the critic's value of its final
(pre-reset) observation, `truncation_values[t]`. If both flags are set, termination wins.

Shapes: T chunk steps in a rollout, B envs.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _prepare(
    rewards: Tensor,
    values: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    truncation_values: Tensor | None,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Validate shapes and cast to float32 / bool; returns (r, v, next_v, term, trunc, trunc_v)."""
    if rewards.dim() != 2:
        raise ValueError(f"rewards must be [T, B], got shape {tuple(rewards.shape)}")
    shape = rewards.shape
    for name, x in (("values", values), ("terminated", terminated), ("truncated", truncated)):
        if x.shape != shape:
            raise ValueError(
                f"{name} must have shape {tuple(shape)} like rewards, got {tuple(x.shape)}"
            )
    if next_value.shape != shape[1:]:
        raise ValueError(
            f"next_value must be [B] = {tuple(shape[1:])}, got {tuple(next_value.shape)}"
        )
    term, trunc = terminated.bool(), truncated.bool()
    if truncation_values is None:
        if trunc.any():
            raise ValueError(
                "truncated episodes need truncation_values (critic value of the final pre-reset "
                "observation) to bootstrap from, but truncation_values is None"
            )
        truncation_values = torch.zeros(shape, dtype=torch.float32, device=values.device)
    elif truncation_values.shape != shape:
        raise ValueError(
            f"truncation_values must have shape {tuple(shape)}, "
            f"got {tuple(truncation_values.shape)}"
        )
    return (rewards.float(), values.float(), next_value.float(), term, trunc,
            truncation_values.float())


def _bootstrap(nextvalues: Tensor, term: Tensor, trunc: Tensor, trunc_v: Tensor) -> Tensor:
    # torch.where, not multiplication, so NaN/garbage in unused truncation_values cannot leak in.
    bootstrap = torch.where(trunc, trunc_v, nextvalues)
    return torch.where(term, torch.zeros_like(bootstrap), bootstrap)


def compute_gae(
    rewards: Tensor,
    values: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    gae_lambda: float,
    truncation_values: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """CleanRL's backward GAE loop; returns (advantages, returns), both float32 [T, B]."""
    r, v, next_v, term, trunc, trunc_v = _prepare(
        rewards, values, next_value, terminated, truncated, truncation_values
    )
    num_steps = r.shape[0]
    advantages = torch.zeros_like(r)
    lastgaelam = torch.zeros_like(next_v)
    for t in reversed(range(num_steps)):
        nextvalues = next_v if t == num_steps - 1 else v[t + 1]
        bootstrap = _bootstrap(nextvalues, term[t], trunc[t], trunc_v[t])
        nextnonterminal = 1.0 - (term[t] | trunc[t]).float()
        delta = r[t] + gamma * bootstrap - v[t]
        lastgaelam = delta + gamma * gae_lambda * nextnonterminal * lastgaelam
        advantages[t] = lastgaelam
    return advantages, advantages + v


def compute_gae_vectorized(
    rewards: Tensor,
    values: Tensor,
    next_value: Tensor,
    terminated: Tensor,
    truncated: Tensor,
    gamma: float,
    gae_lambda: float,
    truncation_values: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Same as `compute_gae` without a Python loop over T.

    A_t = sum_{k >= t} (prod_{j=t}^{k-1} c_j) delta_k with c_j = gamma * lambda * nextnonterminal_j.
    The products are formed with a cumprod over a [T, T, B] tensor (O(T^2 B) memory, fine for
    rollouts of a few hundred chunks) rather than by dividing cumulative products, which breaks at
    the zeros that episode ends put into c.
    """
    r, v, next_v, term, trunc, trunc_v = _prepare(
        rewards, values, next_value, terminated, truncated, truncation_values
    )
    num_steps = r.shape[0]
    nextvalues = torch.cat([v[1:], next_v.unsqueeze(0)], dim=0)
    delta = r + gamma * _bootstrap(nextvalues, term, trunc, trunc_v) - v
    carry = gamma * gae_lambda * (1.0 - (term | trunc).float())  # c_j, [T, B]

    idx = torch.arange(num_steps, device=r.device)
    upper = (idx.unsqueeze(0) >= idx.unsqueeze(1)).unsqueeze(-1)  # [t, j, 1]: j >= t
    factors = torch.where(upper, carry.unsqueeze(0), torch.ones_like(carry).unsqueeze(0))
    inclusive = torch.cumprod(factors, dim=1)  # [t, k] = prod_{j=t}^{k} c_j for k >= t
    ones = torch.ones_like(inclusive[:, :1])
    discount = torch.cat([ones, inclusive[:, :-1]], dim=1) * upper  # exclusive product, k >= t
    advantages = torch.einsum("tkb,kb->tb", discount, delta)
    return advantages, advantages + v
