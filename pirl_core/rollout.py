"""Rollout: vector env + agent -> an explicit `Batch`, the only thing the learner receives.

One macro step is one action chunk (paper Sec. 4.3.1, chunk-level formulation): the agent samples
a chain at the replan point, the env executes its H actions and returns the summed reward. The
prefix cache is stored with the chain, so with a frozen prefix the learner never re-encodes images.
Rollout and update exchange nothing but `Batch`, so they can later run in different processes.

Shapes: T chunk steps per rollout, B envs, N = T * B rows, K denoising steps, H chunk, D action,
P proprio dim, F feature dim.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import Tensor

from pirl_core.agent import Agent, Step
from pirl_core.config import PPOConfig
from pirl_core.losses import compute_gae
from pirl_core.policies.base import Observation, PrefixCache
from pirl_core.samplers import Chain


def to_observation(obs: dict[str, Any], device: torch.device | str = "cpu") -> Observation:
    """A vector env's batched obs dict -> the policy's Observation (images stay uint8)."""
    if "wrist_image" in obs:  # cameras stacked in the policy's order: [B, C, S, S, 3]
        images = torch.as_tensor(np.stack([obs["image"], obs["wrist_image"]], 1), device=device)
    else:
        images = torch.as_tensor(np.asarray(obs["image"]), device=device)
    state = torch.as_tensor(np.asarray(obs["state"]), dtype=torch.float32, device=device)
    return Observation(images=images, state=state, instructions=tuple(obs["instruction"]))


def cat_observations(observations: list[Observation | None]) -> Observation | None:
    if any(o is None for o in observations):
        return None
    return Observation(torch.cat([o.images for o in observations]),
                       torch.cat([o.state for o in observations]),
                       tuple(t for o in observations for t in o.instructions))


def cat_caches(caches: list[PrefixCache]) -> PrefixCache:
    """Concatenate prefix caches along the batch dimension (all fields are batch-first tensors)."""
    return type(caches[0])(*(torch.cat([getattr(c, f.name) for c in caches])
                             for f in fields(caches[0])))


@dataclass(frozen=True)
class Batch:
    """A rollout flattened to N = T * B rows (t-major), with advantages: what `update` consumes."""

    cache: PrefixCache
    state: Tensor  # [N, P]
    chain: Chain  # N chains
    logprobs: Tensor  # [N] one-layer, [N, K] two-layer (behaviour policy)
    values: Tensor  # [N]
    critic_input: Tensor  # [N, K, F] or [N, F]
    advantages: Tensor  # [N]
    returns: Tensor  # [N]
    obs: Observation | None = None  # [N] observations, kept only when the prefix trains

    def __len__(self) -> int:
        return self.values.shape[0]

    def index(self, rows: Tensor) -> Batch:
        return Batch(self.cache.index(rows), self.state[rows], self.chain.index(rows),
                     self.logprobs[rows], self.values[rows], self.critic_input[rows],
                     self.advantages[rows], self.returns[rows],
                     None if self.obs is None else self.obs.index(rows))


@dataclass
class EnvState:
    """Where the vector env stands between rollouts: episodes span rollout boundaries."""

    obs: dict[str, Any]
    episode_return: np.ndarray  # [B] running return of each env's current episode


def start_envs(envs: Any, seed: int) -> EnvState:
    return EnvState(envs.reset(seed=seed), np.zeros(envs.num_envs))


@dataclass
class RolloutStats:
    """Per-rollout bookkeeping for logging (CleanRL's charts/*)."""

    episode_returns: list[float]
    episode_lengths: list[int]
    episode_successes: list[bool]
    env_steps: int
    seconds: float


def collect_rollout(envs: Any, agent: Agent, env_state: EnvState, num_steps: int,
                    ppo: PPOConfig, generator: torch.Generator
                    ) -> tuple[Batch, EnvState, RolloutStats]:
    """Run `num_steps` chunks in every env; returns (batch, where the envs stand, stats)."""
    t0 = time.perf_counter()
    steps: list[Step] = []
    rewards, terminated, truncated, trunc_values = [], [], [], []
    obs, ep_ret = env_state.obs, env_state.episode_return.copy()
    stats = RolloutStats([], [], [], 0, 0.0)
    for _ in range(num_steps):
        step = agent.act(to_observation(obs, agent.device), generator)
        obs, reward, term, trunc, info = envs.step_chunk(agent.env_chunk(step.chain))
        steps.append(step)
        rewards.append(reward), terminated.append(term), truncated.append(trunc)
        trunc_values.append(_truncation_values(agent, info, trunc, generator))
        ep_ret += reward
        stats.env_steps += int(info["steps"].sum())
        for i in np.flatnonzero(term | trunc):
            stats.episode_returns.append(float(ep_ret[i]))
            stats.episode_lengths.append(int(info["final_episode_length"][i]))
            stats.episode_successes.append(bool(info["success"][i]))
            ep_ret[i] = 0.0
    next_value = agent.act(to_observation(obs, agent.device), generator).value
    batch = make_batch(steps, rewards, terminated, truncated, trunc_values, next_value, ppo)
    stats.seconds = time.perf_counter() - t0
    return batch, EnvState(obs, ep_ret), stats


def _truncation_values(agent: Agent, info: dict, truncated: np.ndarray,
                       generator: torch.Generator) -> Tensor:
    """Critic value of the pre-reset observation where an episode was truncated, else 0."""
    values = torch.zeros(len(truncated), device=agent.device)
    if truncated.any():
        final = agent.act(to_observation(info["final_obs"], agent.device), generator).value
        mask = torch.as_tensor(truncated, device=agent.device)
        values = torch.where(mask, final, values)
    return values


def make_batch(steps: list[Step], rewards: list, terminated: list, truncated: list,
               trunc_values: list[Tensor], next_value: Tensor, ppo: PPOConfig) -> Batch:
    """Stack [T, B] storage, compute GAE on chunk-level rewards and flatten t-major."""
    values = torch.stack([s.value for s in steps])
    as_t = lambda xs: torch.as_tensor(np.stack(xs), device=values.device)  # noqa: E731
    adv, ret = compute_gae(as_t(rewards).float(), values, next_value, as_t(terminated),
                           as_t(truncated), ppo.gamma, ppo.gae_lambda, torch.stack(trunc_values))
    return batch_from_steps(steps, adv.flatten(), ret.flatten())


def batch_from_steps(steps: list[Step], advantages: Tensor, returns: Tensor) -> Batch:
    """Concatenate per-step policy outputs t-major into a Batch with the given [T * B] targets."""
    return Batch(cat_caches([s.cache for s in steps]), torch.cat([s.state for s in steps]),
                 Chain.cat([s.chain for s in steps]), torch.cat([s.logprob for s in steps]),
                 torch.cat([s.value for s in steps]), torch.cat([s.critic_input for s in steps]),
                 advantages, returns, cat_observations([s.obs for s in steps]))
