"""PPO losses (paper Sec. 4.3.1), CleanRL's formulas and metric names.

All math is float32: log-probs may arrive in bf16 from the policy, and the ratio exp(new - old)
is where bf16 rounding would hurt most. Metric values are detached scalar tensors; the caller
averages them over minibatches.

Shapes: M samples in a minibatch (flattened T * B), K denoising steps (two-layer MDP: one
log-prob per step). Advantages may have fewer trailing dims than the log-probs ([M] against
[M, K]); they are unsqueezed on the right and broadcast.
"""

from __future__ import annotations

import torch
from torch import Tensor


def _align_advantages(advantages: Tensor, like: Tensor) -> Tensor:
    adv = advantages.float()
    if adv.dim() > like.dim():
        raise ValueError(
            f"advantages {tuple(adv.shape)} have more dims than the log-ratio {tuple(like.shape)}"
        )
    adv = adv.reshape(adv.shape + (1,) * (like.dim() - adv.dim()))
    try:
        torch.broadcast_shapes(adv.shape, like.shape)
    except RuntimeError as err:
        raise ValueError(
            f"advantages {tuple(advantages.shape)} do not broadcast against the log-ratio "
            f"{tuple(like.shape)}"
        ) from err
    return adv


def clipped_surrogate(
    logratio: Tensor, advantages: Tensor, clip_coef: float
) -> tuple[Tensor, dict[str, Tensor]]:
    """mean(max(-A * ratio, -A * clip(ratio, 1 - c, 1 + c))) with ratio = exp(logratio).

    Shared by PPO (likelihood ratio) and FPO (CFM-loss ratio proxy), so the clipping lives once.
    """
    logratio = logratio.float()
    adv = _align_advantages(advantages, logratio)
    ratio = logratio.exp()
    pg_loss1 = -adv * ratio
    pg_loss2 = -adv * torch.clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef)
    pg_loss = torch.max(pg_loss1, pg_loss2).mean()
    with torch.no_grad():
        metrics = {
            "losses/policy_loss": pg_loss.detach(),
            "losses/approx_kl": ((ratio - 1) - logratio).mean(),
            "losses/clipfrac": ((ratio - 1.0).abs() > clip_coef).float().mean(),
            "losses/ratio_mean": ratio.mean(),
        }
    return pg_loss, metrics


def ppo_policy_loss(
    new_logprob: Tensor, old_logprob: Tensor, advantages: Tensor, clip_coef: float
) -> tuple[Tensor, dict[str, Tensor]]:
    """CleanRL's clipped surrogate from per-sample (or per-step [M, K]) log-probs."""
    if new_logprob.shape != old_logprob.shape:
        raise ValueError(
            f"new_logprob {tuple(new_logprob.shape)} and old_logprob "
            f"{tuple(old_logprob.shape)} must have the same shape"
        )
    logratio = new_logprob.float() - old_logprob.float()
    return clipped_surrogate(logratio, advantages, clip_coef)


def value_loss(
    new_values: Tensor,
    returns: Tensor,
    old_values: Tensor | None = None,
    clip_coef: float | None = None,
) -> Tensor:
    """0.5 * MSE; with old_values and clip_coef, CleanRL's clipped value loss (elementwise max)."""
    # Exact shapes: [M, 1] against [M] would silently broadcast to an [M, M] loss.
    if new_values.shape != returns.shape:
        raise ValueError(
            f"new_values {tuple(new_values.shape)} and returns {tuple(returns.shape)} differ"
        )
    if (old_values is None) != (clip_coef is None):
        raise ValueError("clipped value loss needs both old_values and clip_coef (or neither)")
    new_values, returns = new_values.float(), returns.float()
    v_loss_unclipped = (new_values - returns) ** 2
    if old_values is None:
        return 0.5 * v_loss_unclipped.mean()
    if old_values.shape != returns.shape:
        raise ValueError(
            f"old_values {tuple(old_values.shape)} and returns {tuple(returns.shape)} differ"
        )
    old_values = old_values.float()
    v_clipped = old_values + torch.clamp(new_values - old_values, -clip_coef, clip_coef)
    v_loss_clipped = (v_clipped - returns) ** 2
    return 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()


def ppo_total_loss(
    policy_loss: Tensor,
    v_loss: Tensor,
    entropy: Tensor | None,
    vf_coef: float,
    ent_coef: float,
) -> Tensor:
    """pg_loss - ent_coef * mean(entropy) + vf_coef * v_loss; entropy None means no bonus
    (Flow-SDE has no learned noise, so no entropy term)."""
    loss = policy_loss.float() + vf_coef * v_loss.float()
    if entropy is not None:
        loss = loss - ent_coef * entropy.float().mean()
    return loss


def explained_variance(y_pred: Tensor, y_true: Tensor) -> float:
    """1 - Var[y - y_pred] / Var[y]; nan when Var[y] == 0 (CleanRL)."""
    y_pred, y_true = y_pred.detach().float().flatten(), y_true.detach().float().flatten()
    var_y = torch.var(y_true, unbiased=False)
    if var_y == 0:
        return float("nan")
    return float(1.0 - torch.var(y_true - y_pred, unbiased=False) / var_y)


def normalize_advantages(adv: Tensor, eps: float = 1e-8) -> Tensor:
    """(adv - mean) / (std + eps), unbiased std as CleanRL; a single element gives zeros."""
    adv = adv.float()
    if adv.numel() <= 1:
        # The unbiased std of one element is NaN; one sample carries no relative signal anyway.
        return torch.zeros_like(adv)
    return (adv - adv.mean()) / (adv.std() + eps)
