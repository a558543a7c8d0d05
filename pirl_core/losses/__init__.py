"""Loss functions: pure functions over tensors, float32 inside, CleanRL names."""

from pirl_core.losses.cfm import (
    cfm_loss,
    cfm_per_sample,
    cfm_target,
    interpolate,
    sample_tau,
)
from pirl_core.losses.fpo import draw_fpo_pairs, fpo_policy_loss, fpo_ratio
from pirl_core.losses.gae import compute_gae, compute_gae_vectorized
from pirl_core.losses.grpo import broadcast_over_trajectory, grpo_advantages
from pirl_core.losses.ppo import (
    clipped_surrogate,
    explained_variance,
    normalize_advantages,
    ppo_policy_loss,
    ppo_total_loss,
    value_loss,
)

__all__ = [
    "broadcast_over_trajectory",
    "cfm_loss",
    "cfm_per_sample",
    "cfm_target",
    "clipped_surrogate",
    "compute_gae",
    "compute_gae_vectorized",
    "draw_fpo_pairs",
    "explained_variance",
    "fpo_policy_loss",
    "fpo_ratio",
    "grpo_advantages",
    "interpolate",
    "normalize_advantages",
    "ppo_policy_loss",
    "ppo_total_loss",
    "sample_tau",
    "value_loss",
]
