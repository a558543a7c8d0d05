"""Log-likelihoods of stored denoising chains, always in float32.

One-layer MDP (Flow-Noise, paper Eq. 5): the whole chain is one action,
    log pi(chain | o) = log N(A_0; 0, I) + sum_k log N(A_{k+1}; mean_k, std_k^2).
Two-layer MDP (Flow-SDE, Eq. 10-12): each stochastic denoising step is its own MDP step with the
single Gaussian transition as its log-prob ([B, K], zero on deterministic steps). With the hybrid
schedule there is one stochastic step per sample, so the per-sample log-prob is that step's.

Reductions (a parameter, because they set the scale of the PPO ratio):
- `reduce_dims`: "sum" (the exact log-density of the H x D chunk) or "mean" (per element).
- `reduce_steps` (one-layer joint only): "sum" (exact joint) or "mean" over the terms present
  (the stochastic steps plus the prior term when included).
Steps with std = 0 are masked: their log-prob is 0 and no NaN can leak into values or gradients.

Shapes: B batch, K denoising steps, H actions per chunk, D action dim.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from pirl_core.samplers import Chain

if TYPE_CHECKING:
    from pirl_core.config import SamplerConfig

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def gaussian_logprob(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Elementwise log N(x; mean, std^2) in float32 (std must be > 0)."""
    x, mean, std = x.float(), mean.float(), std.float()
    return -0.5 * ((x - mean) / std) ** 2 - torch.log(std) - _LOG_SQRT_2PI


def gaussian_entropy(std: Tensor) -> Tensor:
    """Elementwise entropy of N(., std^2) in float32."""
    return torch.log(std.float()) + 0.5 + _LOG_SQRT_2PI


def _reduce(x: Tensor, how: str, start_dim: int) -> Tensor:
    flat = x.flatten(start_dim)
    if how == "sum":
        return flat.sum(-1)
    if how == "mean":
        return flat.mean(-1)
    raise ValueError(f"unknown reduction {how!r}; expected 'sum' or 'mean'")


def step_logprobs(states: Tensor, means: Tensor, stds: Tensor, stochastic: Tensor,
                  reduce_dims: str = "sum") -> Tensor:
    """[B, K] log N(A_{k+1}; mean_k, std_k^2), reduced over H x D; 0 where a step is not stochastic."""
    m = stochastic[..., None, None]
    safe_std = torch.where(m, stds.float(), torch.ones_like(stds, dtype=torch.float32))
    lp = gaussian_logprob(states[:, 1:], means, safe_std)
    lp = torch.where(m, lp, torch.zeros_like(lp))
    return _reduce(lp, reduce_dims, 2)


def step_entropies(stds: Tensor, stochastic: Tensor, reduce_dims: str = "sum") -> Tensor:
    """[B, K] Gaussian entropy of each stochastic transition (Flow-Noise's bonus); 0 elsewhere."""
    m = stochastic[..., None, None]
    safe_std = torch.where(m, stds.float(), torch.ones_like(stds, dtype=torch.float32))
    ent = torch.where(m, gaussian_entropy(safe_std), torch.zeros_like(safe_std))
    return _reduce(ent, reduce_dims, 2)


def transition_kl(means: Tensor, ref_means: Tensor, stds: Tensor, stochastic: Tensor,
                  reduce_dims: str = "sum") -> Tensor:
    """[B] sum over stochastic steps of KL(N(mean, std^2) || N(ref_mean, std^2)) =
    (mean - ref_mean)^2 / (2 std^2), reduced over H x D like the log-probs (std detached: the
    penalty anchors the means, not the noise)."""
    m = stochastic[..., None, None]
    safe_std = torch.where(m, stds.detach().float(), torch.ones_like(stds, dtype=torch.float32))
    kl = 0.5 * ((means.float() - ref_means.float()) / safe_std) ** 2
    kl = torch.where(m, kl, torch.zeros_like(kl))
    return _reduce(kl, reduce_dims, 2).sum(1)


def joint_logprob(states: Tensor, means: Tensor, stds: Tensor, stochastic: Tensor,
                  reduce_dims: str = "sum", reduce_steps: str = "sum",
                  include_prior: bool = True) -> Tensor:
    """[B] one-layer log pi(chain | o): the N(0, I) prior on A_0 plus every stochastic step."""
    steps = step_logprobs(states, means, stds, stochastic, reduce_dims)
    total = steps.sum(1)
    count = stochastic.sum(1).float()
    if include_prior:
        a0 = states[:, 0].float()
        prior = gaussian_logprob(a0, torch.zeros_like(a0), torch.ones_like(a0))
        total = total + _reduce(prior, reduce_dims, 1)
        count = count + 1
    if reduce_steps == "sum":
        return total
    if reduce_steps == "mean":
        return total / count.clamp_min(1)
    raise ValueError(f"unknown reduction {reduce_steps!r}; expected 'sum' or 'mean'")


def chain_logprob(chain: Chain, means: Tensor, stds: Tensor, cfg: SamplerConfig) -> Tensor:
    """Log-prob of a stored chain under (means, stds) as the configured MDP sees it.

    one_layer -> [B] joint; two_layer -> [B, K] per denoising step (0 on deterministic steps).
    Pass `chain.means, chain.stds` for the behaviour log-prob, or `replay_transitions(...)` for the
    current policy's; on the first minibatch of the first epoch the two are identical.
    """
    if cfg.mdp == "one_layer":
        return joint_logprob(chain.states, means, stds, chain.stochastic,
                             cfg.logprob_reduce_dims, cfg.logprob_reduce_steps)
    if cfg.mdp == "two_layer":
        return step_logprobs(chain.states, means, stds, chain.stochastic, cfg.logprob_reduce_dims)
    raise ValueError(f"unknown mdp {cfg.mdp!r}; expected 'one_layer' or 'two_layer'")
