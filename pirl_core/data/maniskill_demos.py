"""ManiSkill3 demonstrations from ManiSkill's motion-planning solutions, recorded offline into a
LeRobot v3.0 dataset in the policy's own control mode.

ManiSkill's planners (mplib) drive the Panda with absolute joint targets (`pd_joint_pos`); the
policy acts in `pd_joint_delta_pos`, whose target is the current joint position plus the action
times 0.1 rad. So a planned step with target q* taken at joint position q is exactly the delta
action (q* - q) / 0.1 (it lies in [-1, 1] because the planner moves at most 0.9 of the joint speed
limit). Each episode is planned in one env, converted, then replayed in a `ManiSkillTask` (the env
RL uses) that renders the frames the dataset keeps; only replays that succeed are written, and
every attempt counts toward the expert's success rate. Frames stop at the first success, as an RL
episode does (the paper's 15 extra closing frames matter only without terminate-on-success).

Shapes: T frames in an episode, S image size, D = 8 actions, P = 12 state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pirl_core.data.demos import ExpertReport
from pirl_core.data.lerobot_writer import LeRobotWriter
from pirl_core.envs.chunked import episode_seed

MANISKILL_FPS = 20  # ManiSkill's Panda control frequency
IMAGE_KEY = "observation.images.base_camera"
JOINT_DELTA_SCALE = 0.1  # rad per unit action of pd_joint_delta_pos (Panda's controller config)


def maniskill_features(image_size: int) -> dict[str, dict]:
    return {
        IMAGE_KEY: {"dtype": "image", "shape": [image_size, image_size, 3],
                    "names": ["height", "width", "channel"]},
        "observation.state": {"dtype": "float32", "shape": [15],
                              "names": [f"joint_{i}" for i in range(7)]
                              + ["finger_0", "finger_1", "tcp_x", "tcp_y", "tcp_z",
                                 "goal_x", "goal_y", "goal_z"]},
        "action": {"dtype": "float32", "shape": [8],
                   "names": [f"joint_{i}_delta" for i in range(7)] + ["gripper"]},
    }


def _solvers() -> dict[str, Any]:
    from mani_skill.examples.motionplanning.panda import solutions as s

    return {"PickCube-v1": s.solvePickCube, "PushCube-v1": s.solvePushCube,
            "StackCube-v1": s.solveStackCube, "PullCube-v1": s.solvePullCube,
            "LiftPegUpright-v1": s.solveLiftPegUpright,
            "PegInsertionSide-v1": s.solvePegInsertionSide}


class _Recorder:
    """Wraps the planning env: keeps (joint position before the step, joint-target action)."""

    def __init__(self, env: Any):
        self.env, self.steps = env, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    @property
    def unwrapped(self) -> Any:
        return self.env.unwrapped

    def reset(self, **kwargs: Any) -> Any:
        self.steps = []
        return self.env.reset(**kwargs)

    def step(self, action: Any) -> Any:
        qpos = self.env.unwrapped.agent.robot.get_qpos()[0].cpu().numpy()
        self.steps.append((qpos, np.asarray(action, np.float32).reshape(-1)))
        return self.env.step(action)


def joint_delta_actions(steps: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Planned (qpos [9], pd_joint_pos action [8]) pairs -> pd_joint_delta_pos actions [T, 8]."""
    out = np.empty((len(steps), 8), np.float32)
    for t, (qpos, action) in enumerate(steps):
        out[t, :7] = (action[:7] - qpos[:7]) / JOINT_DELTA_SCALE
        out[t, 7] = action[7]
    return np.clip(out, -1.0, 1.0)


def plan_episode(planner_env: _Recorder, task: str, seed: int) -> np.ndarray | None:
    """Plan one episode from `seed`; its joint-delta actions [T, 8], or None if planning failed."""
    try:
        result = _solvers()[task](planner_env, seed=seed, debug=False, vis=False)
    except Exception:  # noqa: BLE001  (ManiSkill's own runner counts planner errors as failures)
        return None
    if isinstance(result, int) or not planner_env.steps:  # -1: no plan found
        return None
    return joint_delta_actions(planner_env.steps)


def replay(env: Any, seed: int, actions: np.ndarray) -> tuple[dict[str, np.ndarray], bool]:
    """Replay actions [T, 8] in a `ManiSkillTask` from `seed`, a frame per step, up to success."""
    env.reset(seed)
    images, states, kept = [], [], []
    for action in actions:
        obs = env.observe(render=True)
        images.append(obs["image"]), states.append(obs["state"]), kept.append(action)
        if env.step(action):
            return {"image": np.stack(images), "state": np.stack(states),
                    "action": np.stack(kept)}, True
    return {}, False


def _make_planner_env(task: str) -> _Recorder:
    import gymnasium as gym
    import mani_skill.envs  # noqa: F401

    return _Recorder(gym.make(task, num_envs=1, obs_mode="none", reward_mode="none",
                              control_mode="pd_joint_pos", sim_backend="physx_cpu",
                              render_backend="cpu"))


def record_maniskill_demos(root: str | Path, tasks: tuple[str, ...], episodes_per_task: int,
                           image_size: int, max_episode_steps: int, seed: int,
                           max_attempts_factor: int = 3) -> ExpertReport:
    """Plan, convert and replay until `episodes_per_task` successful episodes per task are written
    (at most `max_attempts_factor` times as many attempts). A replay longer than
    `max_episode_steps` counts as a failure: RL would truncate it."""
    from pirl_core.envs.maniskill import ManiSkillTask, check_assets, robot_of

    unsupported = [t for t in tasks if t not in _solvers()]
    if unsupported:
        raise ValueError(f"no motion-planning solution for {unsupported}; have {sorted(_solvers())}")
    robot_of(tasks)
    writer = LeRobotWriter(root, MANISKILL_FPS, maniskill_features(image_size), "panda")
    attempts, successes, lengths = {}, {}, {}
    for k, task in enumerate(tasks):
        check_assets(task)
        planner = _make_planner_env(task)
        env = ManiSkillTask(task, image_size, "rgb", max_episode_steps)
        attempts[task], successes[task], lengths[task] = 0, 0, []
        while (successes[task] < episodes_per_task
               and attempts[task] < max_attempts_factor * episodes_per_task):
            s = episode_seed(seed + 1000 * k, 0, attempts[task])
            attempts[task] += 1
            actions = plan_episode(planner, task, s)
            if actions is None or len(actions) == 0:
                continue
            frames, ok = replay(env, s, actions[:max_episode_steps])
            if ok:
                successes[task] += 1
                lengths[task].append(len(frames["action"]))
                writer.add_episode({IMAGE_KEY: frames["image"], "observation.state": frames["state"],
                                    "action": frames["action"]}, env.instruction)
        planner.close(), env.close()
    report = ExpertReport(attempts, successes)
    if sum(successes.values()) == 0:
        raise RuntimeError(f"the motion planner solved no episode of {tasks}; nothing to write")
    out = writer.finalize()
    (Path(out) / "meta" / "pirl_expert.json").write_text(json.dumps(
        report.to_json() | {"episode_length": {t: lengths[t] for t in tasks}}, indent=2))
    return report
