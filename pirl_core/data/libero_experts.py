"""Scripted LIBERO experts that read the privileged simulator state (object geometry and the BDDL
goal) and drive the OSC_POSE controller; they make the few-shot SFT demonstrations offline.

Covered goals: `On(obj, target)` and `In(obj, region)` with one pick-and-place, which is every task
of LIBERO-Spatial and LIBERO-Object (the experts' per-task success is measured when recording, see
`libero_demos.py`). Other predicates (open/close, turn on/off) raise `UnsupportedGoal` naming them.

The plan is a list of phases, each a Cartesian target for the gripper site (or a gripper hold) that
ends when the site is within `tol` metres of it or after `max_steps`; the action's position part
is a clipped P-control step toward the target (OSC_POSE scales [-1, 1] to +-5 cm per step), the
rotation part holds the gripper's starting orientation (pointing down), turned about the vertical
by the phase's yaw. The open Panda gripper is 7.7 cm wide
across world y: objects narrower than `GRIPPER_SPAN` in y are grasped across their middle, wider
ones (bowls) by pinching the rim on their +y side.

Shapes: actions [7] (dx, dy, dz, drx, dry, drz, gripper: -1 open, +1 close).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

GRIPPER_SPAN = 0.07  # m, widest object grasped across (the open gripper spans ~0.077)
POS_GAIN = 2.0  # action per (metre error / 0.05 m): reach targets in a few steps, then settle
ROT_GAIN = 1.0  # action per (rad error / 0.5 rad)
OPEN, CLOSE = -1.0, 1.0


class UnsupportedGoal(ValueError):
    """The task's BDDL goal has a predicate the scripted experts do not solve."""


@dataclass(frozen=True)
class Phase:
    name: str
    target: np.ndarray | None  # gripper-site xyz, or None: hold still for `max_steps`
    gripper: float
    tol: float = 0.01
    max_steps: int = 80
    yaw: float = 0.0  # rad about world z, from the gripper's orientation when the plan was made


def _geom_boxes(sim: Any, geoms: list[int]) -> np.ndarray:
    """World-frame bounding boxes [n, 2, 3] (lo, hi) of MuJoCo geoms."""
    m, d = sim.model._model, sim.data._data
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
    out = np.empty((len(geoms), 2, 3))
    for i, g in enumerate(geoms):
        pts = d.geom_xpos[g] + (d.geom_xmat[g].reshape(3, 3)
                                @ (m.geom_aabb[g, :3] + m.geom_aabb[g, 3:] * signs).T).T
        out[i] = pts.min(0), pts.max(0)
    return out


def _collision_geoms(sim: Any, prefix: str = "", exclude: tuple[str, ...] = ()) -> list[int]:
    """Collision geoms whose body name starts with `prefix` and with none of `exclude`."""
    import mujoco

    m = sim.model._model
    names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, m.geom_bodyid[g]) or ""
             for g in range(m.ngeom)]
    return [g for g in range(m.ngeom) if m.geom_contype[g] and names[g].startswith(prefix)
            and not names[g].startswith(exclude)]


def object_box(sim: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """World-frame bounding box (lo [3], hi [3]) of the collision geoms of object `name`."""
    geoms = _collision_geoms(sim, name)
    if not geoms:
        raise ValueError(f"no collision geometry for object {name!r}")
    boxes = _geom_boxes(sim, geoms)
    return boxes[:, 0].min(0), boxes[:, 1].max(0)


def check_goal(goal: list[list[str]]) -> None:
    """Raise `UnsupportedGoal` unless `goal` is one On/In predicate (what the experts solve)."""
    if len(goal) != 1 or goal[0][0].lower() not in ("on", "in"):
        raise UnsupportedGoal(f"the scripted experts solve one On/In goal, not {goal}")


def _target(env: Any, arg: str) -> tuple[np.ndarray, np.ndarray]:
    """The box (lo, hi) a goal argument stands for: an object's; a region site's position (as a
    flat box); else the box of the object owning the region ("basket_1_contain_region")."""
    if arg in env.objects_dict:
        return object_box(env.sim, arg)
    if arg in env.sim.model.site_names:
        pos = env.sim.data.get_site_xpos(arg).copy()
        return pos, pos
    owner = next((n for n in sorted(env.objects_dict, key=len, reverse=True)
                  if arg.startswith(n + "_")), None)
    if owner is None:
        raise UnsupportedGoal(f"goal argument {arg!r} names no object, site or object region")
    return object_box(env.sim, owner)


def _grasp(env: Any, obj: str, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, float]:
    """(offset of the grasp point from the object's centre [3], gripper yaw). Narrow objects: the
    centre. Wide ones (bowls): the +y rim, or if another geom reaches above the grasp height there
    (a bowl in a drawer: its walls, the cabinet's top), the rim point farthest from inside any
    such geom's footprint; rim points on the x sides need the gripper turned by 90 degrees."""
    half = (hi - lo) / 2
    if 2 * half[1] <= GRIPPER_SPAN:
        return np.zeros(3), 0.0
    rims = [(np.array([0.0, half[1] - 0.01, 0.0]), 0.0),  # +y first: no turn needed
            (np.array([0.0, 0.01 - half[1], 0.0]), 0.0),
            (np.array([half[0] - 0.01, 0.0, 0.0]), np.pi / 2),
            (np.array([0.01 - half[0], 0.0, 0.0]), np.pi / 2)]
    centre = (lo + hi) / 2
    boxes = _geom_boxes(env.sim, _collision_geoms(env.sim, exclude=(obj, "robot0", "gripper0")))
    above = boxes[(boxes[:, 1, 2] > hi[2] - 0.02) & (boxes[:, 0, 2] < hi[2] + 0.15)]

    def depth_under(point: np.ndarray) -> float:  # how far inside the deepest footprint
        if not len(above):
            return -1.0
        inside = np.minimum.reduce([point[0] - above[:, 0, 0], above[:, 1, 0] - point[0],
                                    point[1] - above[:, 0, 1], above[:, 1, 1] - point[1]])
        return float(inside.max())

    if depth_under(centre + rims[0][0]) <= 0:  # the +y rim is clear
        return rims[0]
    return min(rims, key=lambda r: depth_under(centre + r[0]))


def pick_place_plan(env: Any) -> list[Phase]:
    """The phases that move the goal's object onto / into its target (robosuite env `env`)."""
    goal = env.parsed_problem["goal_state"]
    check_goal(goal)
    _, obj, target = goal[0]
    lo, hi = object_box(env.sim, obj)
    tlo, thi = _target(env, target)
    offset, yaw = _grasp(env, obj, lo, hi)
    grasp_z = hi[2] - 0.02 if offset.any() else max(hi[2] - 0.03, lo[2] + 0.01)
    centre = (lo + hi) / 2
    grasp = np.array([centre[0], centre[1], grasp_z]) + offset
    place_centre = (tlo + thi) / 2
    place = np.array([place_centre[0], place_centre[1], thi[2] + grasp_z - lo[2] + 0.02]) + offset
    high = max(hi[2], thi[2]) + 0.12  # carry height: clear of everything on the table
    return [Phase("above", np.r_[grasp[:2], high], OPEN, yaw=yaw),
            Phase("down", grasp, OPEN, tol=0.006, yaw=yaw),
            Phase("close", None, CLOSE, max_steps=15, yaw=yaw),
            Phase("lift", np.r_[grasp[:2], high], CLOSE, tol=0.02, yaw=yaw),
            Phase("carry", np.r_[place[:2], high], CLOSE, yaw=yaw),
            Phase("lower", place, CLOSE, yaw=yaw),
            Phase("release", None, OPEN, max_steps=10, yaw=yaw),
            Phase("retreat", np.r_[place[:2], high], OPEN, tol=0.02, yaw=yaw)]


class PickPlaceExpert:
    """Closed-loop phase follower for one episode of a `LiberoTask` (plan made at construction,
    i.e. right after the task's reset)."""

    def __init__(self, task: Any):
        self.task = task
        self.phases = pick_place_plan(task.robosuite_env)
        self.phase, self.steps_in_phase = 0, 0
        self.start_rotation = Rotation.from_quat(task.sim_obs["robot0_eef_quat"])  # x, y, z, w

    def _turn(self, yaw: float) -> np.ndarray:
        """Rotation action [3] toward the start orientation turned by `yaw` about world z."""
        goal = Rotation.from_euler("z", yaw) * self.start_rotation
        err = goal * Rotation.from_quat(self.task.sim_obs["robot0_eef_quat"]).inv()
        return np.clip(err.as_rotvec() / 0.5 * ROT_GAIN, -1, 1)

    @property
    def done(self) -> bool:
        return self.phase >= len(self.phases)

    def act(self) -> np.ndarray:
        """The next action [7]; holds still (gripper open) once every phase is done."""
        while not self.done:
            p = self.phases[self.phase]
            err = None if p.target is None else p.target - self.task.sim_obs["robot0_eef_pos"]
            finished = self.steps_in_phase >= p.max_steps or (
                err is not None and float(np.linalg.norm(err)) < p.tol)
            if not finished:
                self.steps_in_phase += 1
                move = np.zeros(3) if err is None else np.clip(err / 0.05 * POS_GAIN, -1, 1)
                return np.r_[move, self._turn(p.yaw), p.gripper].astype(np.float32)
            self.phase, self.steps_in_phase = self.phase + 1, 0
        return np.array([0, 0, 0, 0, 0, 0, OPEN], np.float32)
