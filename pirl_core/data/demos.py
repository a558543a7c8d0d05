"""Scripted-expert demonstrations, recorded offline into a LeRobot v3.0 dataset.

The expert sees the privileged simulator state; the dataset keeps only what the policy sees
(camera image, proprio state, instruction) plus the expert's action. Every attempted episode
counts toward the expert's success rate per task; only successful ones are written (the paper's
demonstrations are successful trajectories). The rates go to `<root>/meta/pirl_expert.json`.

Shapes: T frames in an episode, S image size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pirl_core.data.lerobot_writer import LeRobotWriter

METAWORLD_FPS = 80  # MetaWorld's control rate: frame_skip 5 at a 2.5 ms MuJoCo timestep


@dataclass(frozen=True)
class ExpertReport:
    """What the expert achieved per task while recording."""

    attempts: dict[str, int]
    successes: dict[str, int]

    def success_rate(self) -> dict[str, float]:
        return {t: self.successes[t] / self.attempts[t] for t in self.attempts}

    def to_json(self) -> dict[str, Any]:
        rates = self.success_rate()
        return {"attempts": self.attempts, "successes": self.successes, "success_rate": rates,
                "mean_success_rate": float(np.mean(list(rates.values())))}


def metaworld_features(image_size: int, camera: str = "corner") -> dict[str, dict]:
    return {
        f"observation.images.{camera}": {"dtype": "image", "shape": [image_size, image_size, 3],
                                         "names": ["height", "width", "channel"]},
        "observation.state": {"dtype": "float32", "shape": [4],
                              "names": ["hand_x", "hand_y", "hand_z", "gripper"]},
        "action": {"dtype": "float32", "shape": [4], "names": ["dx", "dy", "dz", "grip"]},
    }


def run_expert_episode(env: Any, obs: dict[str, Any]
                       ) -> tuple[dict[str, np.ndarray], bool, str, dict[str, Any]]:
    """One episode of a 1-env MetaWorldVecEnv driven by its scripted expert, a frame per step,
    from `obs`. Returns (frames, success, instruction, the next episode's first obs)."""
    images, states, actions = [], [], []
    while True:
        action = env.expert_actions(obs["privileged"])[:, None]  # [1, 1, 4]
        images.append(obs["image"][0]), states.append(obs["state"][0])
        actions.append(action[0, 0].astype(np.float32))
        obs, _, term, trunc, info = env.step_chunk(action)
        if term[0] or trunc[0]:
            frames = {"image": np.stack(images), "state": np.stack(states),
                      "action": np.stack(actions)}
            return frames, bool(info["success"][0]), info["final_obs"]["instruction"][0], obs


def record_metaworld_demos(root: str | Path, tasks: tuple[str, ...], episodes_per_task: int,
                           image_size: int, max_episode_steps: int, seed: int,
                           max_attempts_factor: int = 3) -> ExpertReport:
    """Run the expert until `episodes_per_task` successful episodes per task are written (at
    most `max_attempts_factor` times as many attempts); the success rate counts every attempt."""
    from pirl_core.envs.metaworld import MetaWorldVecEnv  # the simulator only when recording

    writer = LeRobotWriter(root, METAWORLD_FPS, metaworld_features(image_size), "sawyer")
    attempts, successes = {}, {}
    for k, task in enumerate(tasks):
        with MetaWorldVecEnv([task], 1, image_size=image_size, obs_mode="rgb",
                             max_episode_steps=max_episode_steps, seed=seed + 1000 * k) as env:
            obs = env.reset()
            attempts[task], successes[task] = 0, 0
            while (successes[task] < episodes_per_task
                   and attempts[task] < max_attempts_factor * episodes_per_task):
                frames, success, instruction, obs = run_expert_episode(env, obs)
                attempts[task] += 1
                if success:
                    successes[task] += 1
                    writer.add_episode({"observation.images.corner": frames["image"],
                                        "observation.state": frames["state"],
                                        "action": frames["action"]}, instruction)
    report = ExpertReport(attempts, successes)
    if sum(successes.values()) == 0:
        raise RuntimeError(f"the expert solved no episode of {tasks}; nothing to write")
    out = writer.finalize()
    (Path(out) / "meta" / "pirl_expert.json").write_text(json.dumps(report.to_json(), indent=2))
    return report
