"""ManiSkill3 with batched (GPU) physics: one ManiSkill env of n sub-scenes per task, behind the
chunked vector-env interface of `ManiSkillVecEnv` (reset / step_chunk / close, same obs, reward
and info), for machines with CUDA (`sim_backend="physx_cuda"`, rendering on the GPU too).

B: envs over all tasks, H: chunk length, D: action dim, S: image size.

What batched simulation changes (and why): every sub-scene of a task steps together, so an env
whose episode ends inside a chunk cannot stop there; it holds still (zero joint deltas, its last
gripper command) for the rest of the chunk and is reset at the chunk's end, and its `final_obs` is
the observation at the chunk's end. Truncation lands on a chunk boundary when max_episode_steps
is a multiple of H (the pipeline's settings), so bootstrapping sees the same observation as on the
CPU env. On the GPU, ManiSkill draws initial states from torch's RNG seeded by the first reset
env's seed, so per-env initial states match `ManiSkillVecEnv` only on the CPU backend (one env per
task), where tests pin the two classes to identical rollouts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pirl_core.envs.chunked import episode_seed, stack_obs
from pirl_core.envs.maniskill import (goal_in_state, grasped_flags, load_instructions,
                                      make_task_env, policy_obs, render_camera, robot_of)


class _TaskBatch:
    """One task's batched ManiSkill env and the global env indices it serves."""

    def __init__(self, task: str, index: list[int], image_size: int, max_episode_steps: int,
                 sim_backend: str):
        self.task, self.index = task, np.asarray(index)
        self.env = make_task_env(task, len(index), image_size, max_episode_steps, sim_backend)
        self.goal_in_state = goal_in_state(self.env)
        self.obs: dict | None = None

    def reset(self, rows: np.ndarray, seeds: list[int]) -> None:
        import torch

        idx = torch.as_tensor(rows, device=self.env.unwrapped.device)
        self.obs, _ = self.env.reset(seed=seeds, options={"env_idx": idx})

    def step(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """actions [n, D] -> (success [n], grasped [n])."""
        self.obs, _, _, _, info = self.env.step(actions)
        n = len(self.index)
        return (np.asarray(info["success"].cpu()).reshape(n).astype(bool),
                grasped_flags(info, n))

    def observe(self, render: bool) -> list[dict[str, Any]]:
        images = render_camera(self.env.unwrapped) if render else None
        out = []
        for j in range(len(self.index)):
            o = policy_obs(self.obs, j, self.goal_in_state)
            if images is not None:
                o["image"] = images[j]
            out.append(o)
        return out



class ManiSkillBatchedVecEnv:
    """B envs over `tasks` (env i runs tasks[(i // group_size) % len(tasks)]) as one batched
    ManiSkill env per task; the interface, rewards and info of `ChunkedVecEnv`."""

    def __init__(self, tasks: list[str] | tuple[str, ...], num_envs: int, image_size: int = 64,
                 obs_mode: str = "rgb", max_episode_steps: int = 100, seed: int = 0,
                 terminate_on_success: bool = True, group_size: int = 1,
                 grasp_reward: float = 0.0, sim_backend: str = "physx_cuda"):
        if not tasks:
            raise ValueError("tasks must not be empty")
        if group_size < 1 or num_envs % group_size:
            raise ValueError(f"group_size {group_size} must be >= 1 and divide num_envs {num_envs}")
        self.tasks = [tasks[(i // group_size) % len(tasks)] for i in range(num_envs)]
        self.robot = robot_of(self.tasks)
        self.num_envs, self.seed, self.group_size = num_envs, seed, group_size
        self.max_episode_steps, self.render = max_episode_steps, obs_mode == "rgb"
        self.terminate_on_success, self.grasp_reward = terminate_on_success, grasp_reward
        self.instructions = [load_instructions()[t] for t in self.tasks]
        order = list(dict.fromkeys(self.tasks))
        self.batches = [_TaskBatch(t, [i for i, u in enumerate(self.tasks) if u == t],
                                   image_size, max_episode_steps, sim_backend) for t in order]
        self.episode = np.zeros(num_envs, np.int64)
        self.episode_length = np.zeros(num_envs, np.int64)
        self.succeeded = np.zeros(num_envs, bool)
        self.grasp_paid = np.zeros(num_envs, bool)
        self._needs_reset = True

    def _reset_rows(self, rows: np.ndarray) -> None:
        """Start the next episode of the given global env indices."""
        for b in self.batches:
            mine = np.flatnonzero(np.isin(b.index, rows))
            if len(mine):
                b.reset(mine, [episode_seed(self.seed, int(i) // self.group_size,
                                            int(self.episode[i])) for i in b.index[mine]])
        self.episode[rows] += 1
        self.episode_length[rows] = 0
        self.succeeded[rows] = self.grasp_paid[rows] = False

    def _observe(self) -> list[dict[str, Any]]:
        obs: list[dict[str, Any]] = [{}] * self.num_envs
        for b in self.batches:
            for i, o in zip(b.index, b.observe(self.render)):
                obs[i] = o | {"instruction": self.instructions[i]}
        return obs

    def reset(self, seed: int | None = None, episode: int | None = None) -> dict[str, Any]:
        if seed is not None:
            self.seed, self.episode[:] = seed, 0
        if episode is not None:
            self.episode[:] = episode
        self._needs_reset = False
        self._reset_rows(np.arange(self.num_envs))
        return stack_obs(self._observe())

    def step_chunk(self, actions: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray,
                                                       dict]:
        """actions [B, H, D] -> (obs, reward [B], terminated [B], truncated [B], info), as
        `ChunkedVecEnv.step_chunk`."""
        if self._needs_reset:
            raise RuntimeError("call reset() before step_chunk()")
        actions = np.clip(np.asarray(actions, np.float32), -1.0, 1.0)
        if actions.ndim != 3 or actions.shape[0] != self.num_envs:
            raise ValueError(f"actions must be [B={self.num_envs}, H, D], got {actions.shape}")
        B, H = actions.shape[:2]
        reward = np.zeros(B, np.float32)
        terminated, truncated = np.zeros(B, bool), np.zeros(B, bool)
        steps = np.zeros(B, np.int64)
        done = np.zeros(B, bool)
        hold = actions[:, 0].copy()
        for h in range(H):
            act = np.where(done[:, None], _held(hold), actions[:, h])
            hold = np.where(done[:, None], hold, actions[:, h])
            solved, grasped = np.zeros(B, bool), np.zeros(B, bool)
            for b in self.batches:
                solved[b.index], grasped[b.index] = b.step(act[b.index])
            live = ~done
            steps += live
            self.episode_length += live
            first = live & solved & ~self.succeeded
            self.succeeded |= first
            reward += first
            bonus = live & grasped & ~self.grasp_paid if self.grasp_reward else np.zeros(B, bool)
            self.grasp_paid |= bonus
            reward += self.grasp_reward * bonus
            terminated |= first & self.terminate_on_success
            truncated |= live & ~terminated & (self.episode_length >= self.max_episode_steps)
            done = terminated | truncated
        final = self._observe()
        info: dict[str, Any] = {"success": self.succeeded.copy(), "steps": steps,
                                "final_episode_length": np.where(done, self.episode_length, 0)}
        if done.any():
            self._reset_rows(np.flatnonzero(done))
            info["final_obs"] = stack_obs(final)
            obs = self._observe()
        else:
            obs = final
        info["episode_length"] = self.episode_length.copy()
        return stack_obs(obs), reward, terminated, truncated, info

    def close(self) -> None:
        for b in self.batches:
            b.env.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _held(last: np.ndarray) -> np.ndarray:
    """The action that keeps an env still: zero deltas, its last gripper command."""
    out = np.zeros_like(last)
    out[:, -1] = last[:, -1]
    return out
