"""ManiSkill3 tasks with the paper's observation (Sec. 5.2.2): one third-person RGB view, a
language instruction and the robot's joint state; success reward with the paper's grasp bonus.

B: envs, H: chunk length, S: image size. Observation of one env (Panda tasks):
  image       uint8 [S, S, 3]   the task's third-person camera ("base_camera"), rgb mode only
  state       float32 [15]      joint positions (7 arm + 2 fingers), the gripper's TCP position
                                (proprioception in the frame the goal lives in), and the goal
                                position when the task has one the camera cannot show (PickCube's
                                goal is hidden from cameras), zeros otherwise
  privileged  float32 [64]      ManiSkill's flattened "state" observation (joints, velocities, object
                                and goal poses), zero-padded: for state-only variants, never the VLA
  instruction str
Actions: `pd_joint_delta_pos`, D = 8: seven arm joint deltas scaled to [-1, 1] (+-0.1 rad per
step) and the gripper target in [-1, 1] (closed .. open). Motion-planning demos, planned in
absolute joint targets, convert to it exactly (see `pirl_core/data/maniskill_demos.py`).

CPU physics holds one env per process (ManiSkill's physx_cpu backend), so `ManiSkillVecEnv` steps
B single envs in this process through `ChunkedVecEnv`, and renders the camera only at replan points
(ManiSkill renders every step in its rgb obs modes; here the env runs in "state_dict" mode and the
camera is captured on demand). SAPIEN needs a Vulkan device even then: Mesa >= 25 lavapipe on a
CPU machine (scripts/setup_system.sh installs it).

Asset packs: the SIMPLER WidowX tasks (paper Table 2) need ManiSkill's `bridge_v2_real2sim` pack and
the `widowx250s` robot, which cannot be fetched on an offline machine. ManiSkill reads them from
`$MS_ASSET_DIR/data` (default ~/.maniskill/data): fill it on a connected machine with
`python -m mani_skill.utils.download_asset <pack>` and copy it over. A missing pack raises
`MissingAssetError` naming the pack and the path before ManiSkill would prompt for a download.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from pirl_core.envs.chunked import ChunkedVecEnv, pad_vector

INSTRUCTIONS_PATH = Path(__file__).resolve().parents[1] / "data" / "maniskill_instructions.yaml"
QPOS_DIM, TCP_DIM, GOAL_DIM, PRIVILEGED_DIM = 9, 3, 3, 64
STATE_DIM = QPOS_DIM + TCP_DIM + GOAL_DIM
OBS_MODES = ("rgb", "state")
CAMERA = "base_camera"


@dataclass(frozen=True)
class Robot:
    """What the policy's action and state look like for one ManiSkill robot."""

    control_mode: str
    action_dim: int


ROBOTS = {"panda": Robot("pd_joint_delta_pos", 8),
          "widowx250s": Robot("arm_pd_ee_target_delta_pose_align2_gripper_pd_joint_pos", 7)}
# The offline tabletop tasks with motion-planning solutions (the mini suite first), and the
# SIMPLER WidowX tasks of paper Table 2 (asset packs required).
MINI = ("PickCube-v1", "PushCube-v1", "StackCube-v1")
TABLETOP = MINI + ("PullCube-v1", "LiftPegUpright-v1", "PegInsertionSide-v1")
SIMPLER = ("PutCarrotOnPlateInScene-v1", "PutEggplantInBasketScene-v1",
           "PutSpoonOnTableClothInScene-v1", "StackGreenCubeOnYellowCubeBakedTexInScene-v1")
SUITES = {"mini": MINI, "tabletop": TABLETOP, "simpler": SIMPLER}
ROBOT_OF = {t: "panda" for t in TABLETOP} | {t: "widowx250s" for t in SIMPLER}
# packs ManiSkill's registry does not list for a task but its robot needs
_ROBOT_PACKS = {"widowx250s": ("widowx250s",)}


class MissingAssetError(FileNotFoundError):
    """A ManiSkill asset pack the task needs is not under $MS_ASSET_DIR."""


@cache
def load_instructions(path: Path = INSTRUCTIONS_PATH) -> dict[str, str]:
    import yaml

    with open(path) as f:
        return dict(yaml.safe_load(f))


def robot_of(tasks: tuple[str, ...] | list[str]) -> Robot:
    """The one robot the tasks share (a policy has one action space)."""
    unknown = [t for t in tasks if t not in ROBOT_OF]
    if unknown:
        raise ValueError(f"unsupported ManiSkill task(s) {unknown}; supported: {sorted(ROBOT_OF)}")
    robots = {ROBOT_OF[t] for t in tasks}
    if len(robots) != 1:
        raise ValueError(f"tasks {list(tasks)} mix robots {sorted(robots)}; one policy, one robot")
    return ROBOTS[robots.pop()]


def required_packs(task: str) -> dict[str, Path]:
    """Asset pack id -> the directory ManiSkill loads it from, for every pack `task` needs."""
    import mani_skill.envs  # noqa: F401  (registers the envs and their asset groups)
    from mani_skill.utils.assets.data import DATA_GROUPS, DATA_SOURCES

    ids = list(DATA_GROUPS.get(task, [])) + list(_ROBOT_PACKS.get(ROBOT_OF.get(task, ""), ()))
    return {i: Path(DATA_SOURCES[i].output_dir) / DATA_SOURCES[i].target_path for i in ids}


def check_assets(task: str) -> None:
    """Raise `MissingAssetError` if a pack `task` needs is absent (instead of ManiSkill's
    interactive download prompt, which hangs an offline run)."""
    for pack, path in required_packs(task).items():
        if not path.exists():
            raise MissingAssetError(
                f"ManiSkill task {task!r} needs the asset pack {pack!r}, expected at {path}. "
                f"On a machine with internet run `python -m mani_skill.utils.download_asset {pack}`"
                f" and copy the result to that path, or point MS_ASSET_DIR at a directory whose "
                f"data/ folder holds it (MS_ASSET_DIR must be set before pirl imports ManiSkill).")


def render_camera(base: Any) -> np.ndarray:
    """The third-person camera of every sub-scene of a ManiSkill env, uint8 [n, S, S, 3], captured
    now: only that camera (ManiSkill's own path captures every sensor), hidden objects hidden."""
    for obj in base._hidden_objects:
        obj.hide_visual()
    base.scene.update_render(update_sensors=True, update_human_render_cameras=False)
    camera = base.scene.sensors[CAMERA]
    camera.capture()
    rgb = camera.get_obs(rgb=True, depth=False, position=False, segmentation=False)["rgb"]
    return np.ascontiguousarray(rgb.cpu().numpy())


def make_task_env(task: str, num_envs: int, image_size: int, max_episode_steps: int,
                  sim_backend: str = "physx_cpu") -> Any:
    """ManiSkill's env for `task` as both vector envs use it: state_dict obs (the camera is
    captured on demand), no ManiSkill reward, the robot's policy control mode."""
    import gymnasium as gym
    import mani_skill.envs  # noqa: F401  (registers the envs)

    check_assets(task)
    return gym.make(task, num_envs=num_envs, obs_mode="state_dict", reward_mode="none",
                    control_mode=robot_of([task]).control_mode, sim_backend=sim_backend,
                    render_backend="cpu" if sim_backend == "physx_cpu" else "gpu",
                    sensor_configs=dict(width=image_size, height=image_size),
                    max_episode_steps=max_episode_steps)


def goal_in_state(env: Any) -> bool:
    """Whether the goal must enter the state: the camera cannot show it (PickCube's goal site)."""
    return any("goal" in o.name for o in env.unwrapped._hidden_objects)


def policy_obs(obs: dict, j: int, with_goal: bool) -> dict[str, np.ndarray]:
    """Sub-scene j of ManiSkill's batched state dict -> this module's state and privileged."""
    qpos = np.asarray(obs["agent"]["qpos"][j].cpu(), np.float32)
    goal = (np.asarray(obs["extra"]["goal_pos"][j].cpu(), np.float32) if with_goal
            else np.zeros(GOAL_DIM, np.float32))
    tcp = (np.asarray(obs["extra"]["tcp_pose"][j, :TCP_DIM].cpu(), np.float32)
           if "tcp_pose" in obs.get("extra", {}) else np.zeros(TCP_DIM, np.float32))
    row = {k: ({kk: vv[j : j + 1] for kk, vv in v.items()} if isinstance(v, dict) else v[j : j + 1])
           for k, v in obs.items()}
    return {"state": np.concatenate([pad_vector(qpos, QPOS_DIM), tcp, goal]),
            "privileged": pad_vector(_flat(row), PRIVILEGED_DIM)}


def grasped_flags(info: dict, n: int) -> np.ndarray:
    """[n] bool: the task's `is_*grasped` info entries (any), for the grasp bonus."""
    out = np.zeros(n, bool)
    for k, v in info.items():
        if k.startswith("is_") and k.endswith("grasped"):
            out |= np.asarray(v.cpu()).reshape(n).astype(bool)
    return out


def _flat(obs: dict) -> np.ndarray:
    """ManiSkill's nested state dict ([1, ...] tensors) -> one float32 vector."""
    parts = []
    for value in obs.values():
        if isinstance(value, dict):
            parts.append(_flat(value))
            continue
        value = value.cpu() if hasattr(value, "cpu") else value  # torch, maybe on a GPU
        parts.append(np.asarray(value, dtype=np.float32).reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


class ManiSkillTask:
    """One ManiSkill3 env (a `SingleEnv` for `ChunkedVecEnv`); `reset(seed)` draws the episode's
    object and goal poses from `seed` alone.

    `grasped` is true after a step where the task reports the gripper holding its object (the
    `is_*grasped` entry of ManiSkill's info), for the paper's grasp bonus.
    """

    def __init__(self, task: str, image_size: int = 64, obs_mode: str = "rgb",
                 max_episode_steps: int = 100, sim_backend: str = "physx_cpu",
                 instruction: str | None = None):
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
        self.env = make_task_env(task, 1, image_size, max_episode_steps, sim_backend)
        self.task, self.obs_mode = task, obs_mode
        self.instruction = instruction or load_instructions()[task]
        self._goal_in_state = goal_in_state(self.env)
        self._obs: dict | None = None
        self.grasped = False

    def reset(self, seed: int) -> None:
        self._obs, info = self.env.reset(seed=seed)
        self.grasped = False

    def step(self, action: np.ndarray) -> bool:
        self._obs, _, _, _, info = self.env.step(np.asarray(action, np.float32)[None])
        self.grasped = bool(grasped_flags(info, 1)[0])
        return bool(info["success"])

    def render(self) -> np.ndarray:
        """The third-person camera, uint8 [S, S, 3], captured now."""
        return render_camera(self.env.unwrapped)[0]

    def observe(self, render: bool = True) -> dict[str, Any]:
        if self._obs is None:
            raise RuntimeError("call reset(seed) first")
        obs: dict[str, Any] = policy_obs(self._obs, 0, self._goal_in_state)
        if render and self.obs_mode == "rgb":
            obs["image"] = self.render()
        return obs

    def close(self) -> None:
        self.env.close()


class ManiSkillVecEnv(ChunkedVecEnv):
    """B ManiSkill3 envs in this process on the CPU backend; env i runs `tasks[i % len(tasks)]`
    (with group_size G, G consecutive envs share a task and initial states: GRPO groups).

    Reward per chunk: 1.0 when success is first reached in the episode, plus `grasp_reward` the
    first time the gripper holds the object (paper Sec. 5.2.2 uses 0.1 against throwing); batched
    obs as `MetaWorldVecEnv` (image [B, S, S, 3], state [B, 15], privileged [B, 64], instruction).
    """

    def __init__(self, tasks: list[str] | tuple[str, ...], num_envs: int, image_size: int = 64,
                 obs_mode: str = "rgb", max_episode_steps: int = 100, seed: int = 0,
                 terminate_on_success: bool = True, group_size: int = 1,
                 grasp_reward: float = 0.0):
        if not tasks:
            raise ValueError("tasks must not be empty")
        self.tasks = [tasks[(i // group_size) % len(tasks)] for i in range(num_envs)]
        self.robot = robot_of(self.tasks)
        self.image_size, self.obs_mode = image_size, obs_mode
        envs = [ManiSkillTask(t, image_size, obs_mode, max_episode_steps) for t in self.tasks]
        super().__init__(envs, max_episode_steps, seed, render=obs_mode == "rgb",
                         terminate_on_success=terminate_on_success, group_size=group_size,
                         grasp_reward=grasp_reward)
