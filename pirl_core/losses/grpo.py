"""GRPO advantages (paper App. A, Eq. 17): group-normalised terminal rewards.

Each group is G rollouts from the same initial state. The advantage of rollout i is
(R_i - mean_g) / (std_g + eps) with the population std (unbiased=False, numpy's default, read
from Eq. 17's plain "std over the group"; the unbiased estimate differs by sqrt(G / (G - 1)),
a rescaling of the step size). With it a binary group [1, 0, 0, 1] maps to +-1 (exactly at
eps = 0). A group whose rewards are all equal carries no preference and gets exactly 0 (not
NaN, not eps-noise) for any eps >= 0.
The episode's advantage is then applied to every chunk of the episode.

Shapes: M returns = num_groups * G, laid out group-major; E episodes; T chunk steps, B envs.
"""

from __future__ import annotations

import torch
from torch import Tensor


def grpo_advantages(returns: Tensor, group_size: int, eps: float = 1e-6) -> Tensor:
    """Group-normalised advantages, float32 [M]; group g is returns[g * G:(g + 1) * G]."""
    if returns.dim() != 1:
        raise ValueError(f"returns must be [M], got shape {tuple(returns.shape)}")
    num = returns.shape[0]
    if group_size < 1 or num % group_size != 0:
        raise ValueError(
            f"M = {num} returns cannot be split into groups of group_size = {group_size}"
        )
    groups = returns.float().reshape(num // group_size, group_size)
    mean = groups.mean(dim=1, keepdim=True)
    std = groups.std(dim=1, unbiased=False, keepdim=True)
    # Compare max and min, not std == 0: the float mean of equal values can be off by an ulp.
    flat = (groups.amax(dim=1, keepdim=True) == groups.amin(dim=1, keepdim=True))
    safe_denominator = torch.where(flat, torch.ones_like(std), std + eps)
    adv = torch.where(flat, torch.zeros_like(groups), (groups - mean) / safe_denominator)
    return adv.reshape(num)


def broadcast_over_trajectory(adv_per_episode: Tensor, episode_ids: Tensor) -> Tensor:
    """Advantage of each chunk = advantage of its episode: adv [E] indexed by ids [T, B]."""
    if adv_per_episode.dim() != 1:
        raise ValueError(f"adv_per_episode must be [E], got {tuple(adv_per_episode.shape)}")
    if episode_ids.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"episode_ids must be an integer tensor, got {episode_ids.dtype}")
    num_episodes = adv_per_episode.shape[0]
    if episode_ids.numel() and (episode_ids.min() < 0 or episode_ids.max() >= num_episodes):
        # Negative ids would silently wrap around to the last episodes.
        raise ValueError(
            f"episode_ids must lie in [0, {num_episodes}), got range "
            f"[{int(episode_ids.min())}, {int(episode_ids.max())}]"
        )
    return adv_per_episode.float()[episode_ids.long()]
