"""MetaWorld 3 (MT50) with the paper's observation (Sec. 5.2.3): an RGB camera image, a language
instruction and proprio state (end-effector xyz + gripper opening), sparse success reward.

B: envs, H: chunk length, S: image size. Observation of one env:
  image       uint8 [S, S, 3]  camera frame, right way up (only in obs_mode "rgb")
  state       float32 [4]      end-effector xyz (m) + gripper opening in [0, 1] (MetaWorld obs[:4])
  privileged  float32 [39]     MetaWorld's full observation (hand, gripper, objects, previous frame,
                               goal): for the scripted experts and the state-only variant only,
                               never for the VLA policy
  instruction str

Camera: "corner4" by default. It is pixel-identical to LeRobot's MetaWorld env ("corner2" moved
to pos (0.75, 0.075, 0.7)), which recorded lerobot/metaworld_mt50, the paper's SFT data (at
480 px). Every MetaWorld corner camera is rolled by 180 degrees: frames are rotated back
(`[::-1, ::-1]`; a vertical flip alone would mirror the scene).

Rendering is the cost on a CPU (software GL), so: offscreen multisampling off before the GL
context is made, shadows and reflections off, and a frame only at replan points (`step_chunk`).
Several rendering envs share one process safely because each env makes its own GL context current
before it renders (gymnasium's renderer does not, which is what produced all-black frames after
another env was closed), and each env frees MuJoCo's GL objects under its own context on close.
MUJOCO_GL defaults to osmesa; it must be set before mujoco is imported.

Default image size 128: benchmarks/bench_metaworld_render.py (B = 4, random actions, 2-core CPU,
OSMesa; EGL alike within noise) measured a frame at ~8-10 ms up to 128 px, ~11 ms at 224 and
~20-30 ms at 480, so with a frame every 5 steps: ~2,200-2,800 steps/s state-only, ~500-570 at
64-128 px, ~415 at 224, ~170-250 at 480 (a frame every step: ~100-125 steps/s at 64-128 px).
128 px costs about the same as 64 px and keeps small goal markers and pucks several pixels wide;
224 (a SigLIP-native size) costs ~20% more time, 480 (the paper's) ~2-3x.
"""

from __future__ import annotations

import os
import warnings

os.environ.setdefault("MUJOCO_GL", "osmesa")

from functools import cache  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from metaworld.env_dict import ALL_V3_ENVIRONMENTS  # noqa: E402
from metaworld.policies import ENV_POLICY_MAP  # noqa: E402

from pirl_core.envs.chunked import ChunkedVecEnv  # noqa: E402

MT50_TASKS: tuple[str, ...] = tuple(sorted(ALL_V3_ENVIRONMENTS))
INSTRUCTIONS_PATH = Path(__file__).resolve().parents[1] / "data" / "metaworld_instructions.yaml"
DEFAULT_CAMERA = "corner4"
DEFAULT_IMAGE_SIZE = 128  # from benchmarks/bench_metaworld_render.py: see the module docstring
PROPRIO_DIM, PRIVILEGED_DIM, ACTION_DIM = 4, 39, 4
OBS_MODES = ("rgb", "state")


@cache
def load_instructions(path: Path = INSTRUCTIONS_PATH) -> dict[str, str]:
    """Task name -> natural-language instruction for the 50 MT50 tasks."""
    with open(path) as f:
        return dict(yaml.safe_load(f))


class MetaWorldTask:
    """One MetaWorld task instance (a `SingleEnv` for `ChunkedVecEnv`).

    Goals and object positions are drawn at every `reset(seed)` from a generator seeded with
    `seed` (MetaWorld's `seeded_rand_vec` path), so an episode is a function of its seed alone.
    """

    def __init__(self, task: str, image_size: int = DEFAULT_IMAGE_SIZE, obs_mode: str = "rgb",
                 camera: str = DEFAULT_CAMERA, max_episode_steps: int = 500,
                 instruction: str | None = None):
        if task not in ALL_V3_ENVIRONMENTS:
            raise ValueError(f"unknown MetaWorld v3 task {task!r}")
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
        self.task = task
        self.obs_mode = obs_mode
        self.instruction = instruction or load_instructions()[task]
        rgb = obs_mode == "rgb"
        env = ALL_V3_ENVIRONMENTS[task](render_mode="rgb_array" if rgb else None,
                                        camera_name=camera if rgb else None,
                                        width=image_size, height=image_size)
        # What MetaWorld's goal-observable MT classes do at construction, minus freezing the goal:
        env._partially_observable = False  # the goal is part of the (privileged) observation
        del env.sawyer_observation_space  # cached property, recomputed for full observability
        env._set_task_called = True
        env._freeze_rand_vec = False  # draw a new goal at every reset ...
        env.seeded_rand_vec = True  # ... from env.np_random, which reset(seed) reseeds
        env.max_path_length = max(env.max_path_length, max_episode_steps)
        self.env = env
        self._viewer = None
        if rgb:
            # read when the GL context is made, so set first: no multisampling, and no 4096^2
            # shadow map (64 MB per env in software GL; shadows are off) nor 640x480 buffers
            env.model.vis.quality.offsamples = 0
            env.model.vis.quality.shadowsize = 0
            env.model.vis.global_.offwidth = image_size
            env.model.vis.global_.offheight = image_size
            # gymnasium's private accessor: builds the offscreen viewer (GL context + scene) now.
            self._viewer = env.mujoco_renderer._get_viewer("rgb_array")
            self._viewer.scn.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            self._viewer.scn.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._obs: np.ndarray | None = None
        self._closed = False

    def reset(self, seed: int) -> None:
        self.env.seed(seed)
        self._obs, _ = self.env.reset()

    def step(self, action: np.ndarray) -> bool:
        self._obs, _, _, _, info = self.env.step(action)
        return bool(info["success"])

    def render(self, upright: bool = True) -> np.ndarray:
        """Camera frame uint8 [S, S, 3]; `upright=False` gives gymnasium's raw (rolled) frame."""
        if self._viewer is None:
            raise RuntimeError("obs_mode='state' envs have no renderer")
        self._viewer.make_context_current()  # several envs, several contexts: pick ours
        img = self.env.render()
        return np.ascontiguousarray(img[::-1, ::-1]) if upright else img

    def observe(self, render: bool = True) -> dict[str, Any]:
        if self._obs is None:
            raise RuntimeError("call reset(seed) first")
        obs: dict[str, Any] = {"state": self._obs[:PROPRIO_DIM].astype(np.float32),
                               "privileged": self._obs.astype(np.float32)}
        if render and self._viewer is not None:
            obs["image"] = self.render()
        return obs

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._viewer is not None:
            # Free MuJoCo's GL objects while *our* context is current: freed later (garbage
            # collection) they would delete the same-numbered objects of whichever env's context
            # is current then, and that env would render all-black frames.
            self._viewer.make_context_current()
            self._viewer.con.free()
            self._viewer = None
        self.env.close()

    def __del__(self):  # an env dropped without close() must not blank the others
        try:
            self.close()
        except Exception:  # noqa: BLE001 (interpreter shutdown: GL may be gone already)
            pass


class MetaWorldVecEnv(ChunkedVecEnv):
    """B MetaWorld task instances in this process; env i runs `tasks[i % len(tasks)]`.

    `reset(seed)` -> obs; `step_chunk(actions [B, H, 4])` -> (obs, reward, terminated, truncated,
    info), a frame rendered only after each chunk (see `ChunkedVecEnv`). Batched obs: image
    [B, S, S, 3] uint8 ("rgb" only), state [B, 4] float32, privileged [B, 39] float32,
    instruction list[str]. Episode e of env i is seeded from (seed, i // group_size, e); with
    group_size G, envs [gG, (g+1)G) run the same task from the same initial states (GRPO groups).
    """

    def __init__(self, tasks: list[str] | tuple[str, ...], num_envs: int,
                 image_size: int = DEFAULT_IMAGE_SIZE, obs_mode: str = "rgb",
                 max_episode_steps: int = 500, seed: int = 0, camera: str = DEFAULT_CAMERA,
                 terminate_on_success: bool = True, group_size: int = 1):
        if not tasks:
            raise ValueError("tasks must not be empty")
        self.tasks = [tasks[(i // group_size) % len(tasks)] for i in range(num_envs)]
        self.image_size = image_size
        self.obs_mode = obs_mode
        envs = [MetaWorldTask(t, image_size, obs_mode, camera, max_episode_steps)
                for t in self.tasks]
        super().__init__(envs, max_episode_steps, seed, render=obs_mode == "rgb",
                         terminate_on_success=terminate_on_success, group_size=group_size)

    def expert_actions(self, privileged: np.ndarray) -> np.ndarray:
        """Scripted-expert actions [B, 4] for the batched privileged obs [B, 39]."""
        return expert_actions(self.tasks, privileged)


@cache
def _policy(task: str):
    return ENV_POLICY_MAP[task]()


def expert_action(task: str, privileged_obs: np.ndarray) -> np.ndarray:
    """MetaWorld's scripted expert for `task`: full 39-d observation -> action float32 [4]."""
    with warnings.catch_warnings():  # "Constant(s) may be too high": the action is clipped below
        warnings.filterwarnings("ignore", message=r"Constant\(s\) may be too high")
        action = _policy(task).get_action(np.asarray(privileged_obs, dtype=np.float64))
    return np.clip(action, -1.0, 1.0).astype(np.float32)


def expert_actions(tasks: list[str], privileged: np.ndarray) -> np.ndarray:
    """Vectorised `expert_action`: tasks (len B), privileged [B, 39] -> actions [B, 4]."""
    return np.stack([expert_action(t, o) for t, o in zip(tasks, privileged)])
