"""Benchmark-agnostic vector env for chunked policies: chunk execution, sparse success reward,
partial reset, reproducible per-episode seeds.

B: envs, H: chunk length (actions per replan), D: action dim, S: image size.

A policy that emits a chunk of H actions needs an observation only where it replans, so
`step_chunk` runs the H physics steps of every env and asks each env for an observation (a
rendered frame in "rgb" mode) once, after the chunk. An env whose episode ends inside a chunk stops
there (the rest of its chunk is dropped), hands back its last observation as `final_obs` and
resets on its own while the other envs go on.

Benchmarks plug in through `SingleEnv` (MetaWorld, ManiSkill, LIBERO).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class SingleEnv(Protocol):
    """One simulator instance, seen through the four calls the vector env needs."""

    instruction: str

    def reset(self, seed: int) -> None:
        """Start a new episode whose randomisation (goal, object poses) follows `seed` only."""

    def step(self, action: np.ndarray) -> bool:
        """Apply one action ([D], already clipped); return whether the task is solved now."""

    def observe(self, render: bool) -> dict[str, np.ndarray]:
        """Observation of the current state; an `image` entry only if `render`."""

    def close(self) -> None: ...


def episode_seed(seed: int, env_index: int, episode: int) -> int:
    """Seed of episode `episode` of env `env_index` in a run seeded with `seed` (a 31-bit int)."""
    ss = np.random.SeedSequence([seed, env_index, episode])
    return int(ss.generate_state(1, dtype=np.uint32)[0] >> 1)


def pad_vector(x: np.ndarray, n: int) -> np.ndarray:
    """x [m] -> float32 [n], zero-padded: a fixed-width slot for a simulator's variable-length
    state (the `privileged` observation)."""
    if x.shape[0] > n:
        raise ValueError(f"vector of {x.shape[0]} entries does not fit the {n} reserved for it")
    return np.pad(x.astype(np.float32), (0, n - x.shape[0]))


def stack_obs(obs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-env observation dicts -> one batched dict (arrays stacked, strings in a list)."""
    out: dict[str, Any] = {}
    for key, first in obs[0].items():
        vals = [o[key] for o in obs]
        out[key] = vals if isinstance(first, str) else np.stack(vals)
    return out


class ChunkedVecEnv:
    """B single envs stepped a chunk at a time in this process, with partial resets.

    Per-step reward is 1.0 on the step where success first becomes true in an episode, else 0
    (the paper's sparse reward); the chunk reward is the sum over the steps executed. With
    `terminate_on_success` (default) success ends the episode (`terminated`); `truncated` marks
    episodes that reached `max_episode_steps` without terminating. With `grasp_reward` > 0, an env
    whose `grasped` attribute turns true (ManiSkill) adds that reward once per episode.
    """

    def __init__(self, envs: list[SingleEnv], max_episode_steps: int, seed: int = 0,
                 render: bool = True, action_low: float = -1.0, action_high: float = 1.0,
                 terminate_on_success: bool = True, group_size: int = 1,
                 grasp_reward: float = 0.0):
        if max_episode_steps < 1:
            raise ValueError(f"max_episode_steps must be >= 1, got {max_episode_steps}")
        self.envs = envs
        self.num_envs = len(envs)
        self.max_episode_steps = max_episode_steps
        self.seed = seed
        self.render = render
        self.action_low, self.action_high = action_low, action_high
        self.terminate_on_success = terminate_on_success
        self.grasp_reward = grasp_reward
        if group_size < 1 or len(envs) % group_size:
            raise ValueError(f"group_size {group_size} must be >= 1 and divide num_envs {len(envs)}")
        # GRPO: the envs of a group share their episode seeds, hence their initial states
        self.group_size = group_size
        self.episode = np.zeros(self.num_envs, dtype=np.int64)  # episodes started per env
        self.episode_length = np.zeros(self.num_envs, dtype=np.int64)
        self.succeeded = np.zeros(self.num_envs, dtype=bool)  # success seen this episode
        self.grasp_paid = np.zeros(self.num_envs, dtype=bool)  # grasp bonus given this episode
        self._needs_reset = True

    def seed_of_episode(self, i: int) -> int:
        """The seed env i's next episode starts from (the envs of a GRPO group share it)."""
        return episode_seed(self.seed, i // self.group_size, int(self.episode[i]))

    def _reset_env(self, i: int) -> dict[str, Any]:
        self.envs[i].reset(self.seed_of_episode(i))
        self.episode[i] += 1
        self.episode_length[i] = 0
        self.succeeded[i] = False
        self.grasp_paid[i] = False
        return self._observe(i)

    def _observe(self, i: int) -> dict[str, Any]:
        return self.envs[i].observe(self.render) | {"instruction": self.envs[i].instruction}

    def reset(self, seed: int | None = None, episode: int | None = None) -> dict[str, Any]:
        """Reset every env; with `seed`, restart the seed stream (episode counters back to 0);
        with `episode`, start every env at that episode index (GRPO's synchronous groups)."""
        if seed is not None:
            self.seed = seed
            self.episode[:] = 0
        if episode is not None:
            self.episode[:] = episode
        self._needs_reset = False
        return stack_obs([self._reset_env(i) for i in range(self.num_envs)])

    def step_chunk(self, actions: np.ndarray) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray,
                                                       dict]:
        """Run one chunk per env: actions [B, H, D] -> (obs, reward [B], terminated [B],
        truncated [B], info).

        info: `success` [B] (success seen in the episode that was running during this chunk),
        `episode_length` [B] (steps into the current episode after the call: 0 for envs that just
        reset), `steps` [B] (steps executed in this chunk, < H where an episode ended early),
        `final_episode_length` [B] (length of the episode that ended, 0 elsewhere) and, when some
        env finished, `final_obs`: a batched obs whose rows are the pre-reset observations of the
        finished envs (for bootstrapping truncated episodes) and equal `obs` elsewhere.
        """
        if self._needs_reset:
            raise RuntimeError("call reset() before step_chunk()")
        actions = np.asarray(actions, dtype=np.float32)
        if actions.ndim != 3 or actions.shape[0] != self.num_envs:
            raise ValueError(f"actions must be [B={self.num_envs}, H, D], got {actions.shape}")
        actions = np.clip(actions, self.action_low, self.action_high)
        B, H = actions.shape[:2]
        reward = np.zeros(B, dtype=np.float32)
        terminated = np.zeros(B, dtype=bool)
        truncated = np.zeros(B, dtype=bool)
        success = np.zeros(B, dtype=bool)
        steps = np.zeros(B, dtype=np.int64)
        final_len = np.zeros(B, dtype=np.int64)
        obs, final = [], []
        for i, env in enumerate(self.envs):
            for h in range(H):
                solved = env.step(actions[i, h])
                steps[i] += 1
                self.episode_length[i] += 1
                if solved and not self.succeeded[i]:
                    self.succeeded[i] = True
                    reward[i] += 1.0
                    terminated[i] = self.terminate_on_success
                if self.grasp_reward and not self.grasp_paid[i] and getattr(env, "grasped", False):
                    self.grasp_paid[i] = True
                    reward[i] += self.grasp_reward
                if terminated[i]:
                    break
                if self.episode_length[i] >= self.max_episode_steps:
                    truncated[i] = True
                    break
            success[i] = self.succeeded[i]
            o = self._observe(i)
            final.append(o)
            if terminated[i] or truncated[i]:
                final_len[i] = self.episode_length[i]
                o = self._reset_env(i)
            obs.append(o)
        info: dict[str, Any] = {"success": success, "episode_length": self.episode_length.copy(),
                                "steps": steps, "final_episode_length": final_len}
        if (terminated | truncated).any():
            info["final_obs"] = stack_obs(final)
        return stack_obs(obs), reward, terminated, truncated, info

    def close(self) -> None:
        for env in self.envs:
            env.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
