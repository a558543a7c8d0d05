"""GRPO rollouts (paper App. A): G rollouts from the same initial state, no critic.

The vector env runs groups of G envs with shared episode seeds (`group_size`), all starting
episode `episode` together. Each env plays exactly one episode; chunks after its end are masked
out. The episode's return R_i becomes the group-normalised advantage (R_i - mean) / std,
broadcast over every chunk of that episode; a group whose returns are all equal contributes 0.

Shapes: T chunk steps (until every episode ended), B envs = groups x G, N valid rows.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from pirl_core.agent import Agent, Step
from pirl_core.losses import grpo_advantages
from pirl_core.rollout import Batch, RolloutStats, batch_from_steps, to_observation


def collect_group_rollout(envs: Any, agent: Agent, episode: int, generator: torch.Generator,
                          adv_eps: float) -> tuple[Batch, RolloutStats]:
    """One synchronous episode per env; returns the valid chunks with group advantages."""
    t0 = time.perf_counter()
    obs = envs.reset(episode=episode)
    b = envs.num_envs
    active = np.ones(b, dtype=bool)
    returns = np.zeros(b)
    steps: list[Step] = []
    masks: list[np.ndarray] = []
    stats = RolloutStats([], [], [], 0, 0.0)
    max_chunks = math.ceil(envs.max_episode_steps / agent.policy.action_shape[0]) + 1
    for _ in range(max_chunks):
        step = agent.act(to_observation(obs, agent.device), generator)
        obs, reward, term, trunc, info = envs.step_chunk(agent.env_chunk(step.chain))
        steps.append(step)
        masks.append(active.copy())
        returns += np.where(active, reward, 0.0)
        stats.env_steps += int(info["steps"][active].sum())
        for i in np.flatnonzero((term | trunc) & active):
            stats.episode_returns.append(float(returns[i]))
            stats.episode_lengths.append(int(info["final_episode_length"][i]))
            stats.episode_successes.append(bool(info["success"][i]))
        active &= ~(term | trunc)
        if not active.any():
            break
    adv = grpo_advantages(torch.as_tensor(returns, dtype=torch.float32, device=agent.device),
                          envs.group_size, adv_eps)
    stats.seconds = time.perf_counter() - t0
    return _group_batch(steps, np.stack(masks), adv), stats


def _group_batch(steps: list[Step], masks: np.ndarray, adv_per_env: torch.Tensor) -> Batch:
    """Flatten t-major and keep the rows of chunks that belonged to an episode (no critic:
    values and returns are 0)."""
    rows = torch.nonzero(torch.as_tensor(masks.reshape(-1))).squeeze(1)
    adv = adv_per_env.repeat(len(steps))
    picked = batch_from_steps(steps, adv, torch.zeros_like(adv)).index(rows)
    return replace(picked, values=torch.zeros(len(rows), device=adv.device))
