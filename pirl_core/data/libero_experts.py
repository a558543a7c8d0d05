"""Scripted LIBERO experts that read the privileged simulator state (object geometry, joints and
the BDDL goal) and drive the OSC_POSE controller; they make the few-shot SFT demonstrations offline.

Covered goals, each predicate planned in turn from the state its predecessor left:
- `On(obj, target)` and `In(obj, region)`: one pick-and-place (every task of LIBERO-Spatial and
  LIBERO-Object). Into a closed drawer, the drawer is opened first; into a drawer, the object goes
  as far out as it fits (`drawer_spot`). A bowl's rim is grasped where the hand clears what
  stands around both ends of the carry. A flat object too wide to grasp (a plate) is pushed onto
  a table region instead. Objects that the goal puts on the same region (two moka pots on a
  burner) are spread over it.
- `Open` / `Close` of a drawer region and `TurnOn` / `TurnOff` of a stove knob
  (`libero_articulated.py`). Doors (the microwave's) raise `UnsupportedGoal` naming them.
Predicates already true when their turn comes are skipped; drawers open first and close last.
The experts' per-task success is measured when recording (`libero_demos.py`) and, per suite, by
`benchmarks/libero_experts.py`.

The plan is a list of phases, each a Cartesian target for the gripper site (or a gripper hold) that
ends when the site is within `tol` metres of it or after `max_steps`; the action's position part
is a clipped P-control step toward the target (OSC_POSE scales [-1, 1] to +-5 cm per step), the
rotation part holds the gripper's starting orientation (pointing down), turned about the vertical
by the phase's yaw. Where the gripper takes hold of an object is chosen in `libero_grasps.py`.

Shapes: actions [7] (dx, dy, dz, drx, dry, drz, gripper: -1 open, +1 close).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from pirl_core.data.libero_articulated import (drawer_plan, drawer_spot, is_drawer, knob_plan,
                                                 swept_box)
from pirl_core.data.libero_geometry import (
    CLOSE, GRIPPER_SPAN, OPEN, POS_GAIN, ROT_GAIN, Phase, UnsupportedGoal, collision_geoms,
    geom_boxes, object_box, overlapping,
)
from pirl_core.data.libero_grasps import handle_grasp, rim_grasp

PREDICATES = {"on": 2, "in": 2, "open": 1, "close": 1, "turnon": 1, "turnoff": 1}
FLAT = 0.03  # m: a wide object lower than this (a plate) is pushed, its rim is too low to pinch
PUSH_HEIGHT = 0.008  # m above a plate's bottom: below its floor, so the fingers press on it
SHARED_SPREAD = 0.6  # of a region's half side: how far apart objects sharing it are put
RIM_REACH = 0.04  # m from a plate's centre to where its rim meets fingers pushing from within
STALL_STEPS, STALL_DIST = 8, 0.002  # a phase ends once the site moved < 2 mm in 8 steps
ORDER = {"open": 0, "on": 1, "in": 1, "turnon": 1, "turnoff": 1, "close": 2}


def check_goal(goal: list[list[str]]) -> None:
    """Raise `UnsupportedGoal` naming the first predicate the experts cannot plan. Open/close is
    planned for drawer regions only, which this check can tell by name alone."""
    for pred in goal:
        name = pred[0].lower()
        if PREDICATES.get(name) != len(pred) - 1:
            raise UnsupportedGoal(f"the scripted experts do not solve {pred} (goal {goal})")
        if name in ("open", "close") and not pred[1].endswith("_region"):
            raise UnsupportedGoal(f"the scripted experts open and close drawers, not {pred}")


def _spot(env: Any, obj: str, site: str) -> np.ndarray:
    """Where in the region `site` to put `obj`'s centre [3]: its middle, or, when the goal puts
    n objects on it (both moka pots on the burner), the i-th of n places spread over
    `SHARED_SPREAD` of the region along the axis where the widest of them is narrowest."""
    centre = env.sim.data.get_site_xpos(site).copy()
    sharers = [p[1] for p in env.parsed_problem["goal_state"]
               if p[0].lower() == "on" and p[2] == site]
    region = env.object_sites_dict.get(site)
    if len(sharers) < 2 or obj not in sharers or region is None:
        return centre
    sizes = [(hi - lo)[:2] for lo, hi in (object_box(env.sim, o) for o in sharers)]
    axis = int(np.argmin(np.max(sizes, axis=0)))  # one axis for all, or they could meet
    fraction = sharers.index(obj) / (len(sharers) - 1) * 2 - 1  # -1 .. 1
    centre[axis] += fraction * SHARED_SPREAD * float(region.size[axis])
    return centre


def _target(env: Any, arg: str, obj: str) -> tuple[np.ndarray, np.ndarray]:
    """The box (lo, hi) a goal argument stands for when `obj` goes there: an object's; a region
    site's spot for `obj` (as a flat box); else the box of the object owning the region
    ("basket_1_contain_region")."""
    if arg in env.objects_dict:
        return object_box(env.sim, arg)
    if arg in env.sim.model.site_names:
        pos = drawer_spot(env, arg, obj) if is_drawer(env, arg) else _spot(env, obj, arg)
        return pos, pos
    owner = next((n for n in sorted(env.objects_dict, key=len, reverse=True)
                  if arg.startswith(n + "_")), None)
    if owner is None:
        raise UnsupportedGoal(f"goal argument {arg!r} names no object, site or object region")
    return object_box(env.sim, owner)


def _neighbours(env: Any, obj: str) -> np.ndarray:
    """Boxes [n, 2, 3] of every collision geom but `obj`'s and the robot's."""
    return geom_boxes(env.sim, collision_geoms(env.sim, exclude=(obj, "robot0", "gripper0")))


def pick_place_plan(env: Any, obj: str, tlo: np.ndarray, thi: np.ndarray) -> list[Phase]:
    """The phases that move `obj` onto the box (tlo, thi) of its target (robosuite env `env`)."""
    lo, hi = object_box(env.sim, obj)
    centre = (lo + hi) / 2
    boxes = _neighbours(env, obj)
    handle = handle_grasp(env.sim, obj)
    if handle is not None:
        grasp, yaw = handle
        offset = np.r_[grasp[:2] - centre[:2], 0.0]
        grasp_z = grasp[2]
    else:
        # the hand keeps its place on the object from pick to place: clear around both
        to_place = np.r_[(tlo + thi)[:2] / 2 - centre[:2], thi[2] - lo[2]]
        offset, yaw, _ = rim_grasp(lo, hi, np.concatenate([boxes, boxes - to_place]))
        grasp_z = hi[2] - 0.02 if offset.any() else max(hi[2] - 0.03, lo[2] + 0.01)
        grasp = np.array([centre[0], centre[1], grasp_z]) + offset
    place_centre = (tlo + thi) / 2
    place = np.array([place_centre[0], place_centre[1], thi[2] + grasp_z - lo[2] + 0.02]) + offset
    # carry height: clear of everything on the table, and the object's bottom clear of what
    # already stands where it goes (the first moka pot, when the second comes)
    shift = np.r_[place_centre[:2] - centre[:2], 0.0]
    under = boxes[overlapping(boxes, lo + shift, hi + shift) & (boxes[:, 0, 2] > thi[2] - 0.01)]
    high = max(hi[2], thi[2]) + 0.12
    if len(under):
        high = max(high, under[:, 1, 2].max() + grasp_z - lo[2] + 0.03)
    return [Phase("above", np.r_[grasp[:2], high], OPEN, yaw=yaw),
            Phase("down", grasp, OPEN, tol=0.006, yaw=yaw),
            Phase("close", None, CLOSE, max_steps=15, yaw=yaw),
            Phase("lift", np.r_[grasp[:2], high], CLOSE, tol=0.02, yaw=yaw),
            Phase("carry", np.r_[place[:2], high], CLOSE, yaw=yaw),
            Phase("lower", place, CLOSE, yaw=yaw),
            Phase("release", None, OPEN, max_steps=10, yaw=yaw),
            Phase("retreat", np.r_[place[:2], high], OPEN, tol=0.02, yaw=yaw)]


def push_plan(env: Any, obj: str, tlo: np.ndarray, thi: np.ndarray) -> list[Phase]:
    """Push the flat object `obj` (a plate) along the table until its centre is over the middle
    of the box (tlo, thi): closed fingers come down on its floor and push the inside of its rim
    ahead of them. From outside, the hand would need room behind the object, where a cabinet
    may stand; inside, only the fingers go below the rim's top. The hand's narrow side leads
    (turned 90 deg for a push mostly along y)."""
    lo, hi = object_box(env.sim, obj)
    centre, goal = (lo + hi)[:2] / 2, (tlo + thi)[:2] / 2
    way = goal - centre
    d = way / max(float(np.linalg.norm(way)), 1e-6)
    z, high = lo[2] + PUSH_HEIGHT, hi[2] + 0.1
    yaw = np.pi / 2 if abs(d[1]) > abs(d[0]) else 0.0
    start, end = centre - d * 0.01, goal + d * RIM_REACH
    return [Phase("above", np.r_[start, high], CLOSE, yaw=yaw),
            Phase("down", np.r_[start, z], CLOSE, tol=0.008, yaw=yaw),
            Phase("push", np.r_[end, z], CLOSE, tol=0.01, max_steps=120, yaw=yaw),
            Phase("retreat", np.r_[end, high], CLOSE, tol=0.02, yaw=yaw)]


def staging_plan(env: Any, obj: str, region: str) -> list[Phase]:
    """Move `obj` aside on the table if, once the drawer `region` is open, the hand could not come
    down on it: to the nearest spot (along the drawer's pull first) where it could and that no
    other object occupies. No phases if it is clear already, or if no such spot is near."""
    opened, direction = swept_box(env, region)
    pull = direction[:2]
    lo, hi = object_box(env.sim, obj)
    boxes = _neighbours(env, obj)
    around = np.concatenate([boxes, opened[None]])
    if rim_grasp(lo, hi, around)[2]:
        return []
    standing = boxes[(boxes[:, 1, 2] > lo[2] + 0.01) & (boxes[:, 0, 2] < hi[2])]  # at its height
    turns = [0, 1, -1, 2, -2, 3, -3]  # eighths of a turn away from the pull
    shifts = [dist * (np.cos(a) * pull + np.sin(a) * np.array([-pull[1], pull[0]]))
              for dist in (0.06, 0.09, 0.12, 0.15, 0.18) for a in np.array(turns) * np.pi / 4]
    for shift in shifts:
        slo, shi = lo + np.r_[shift, 0.0], hi + np.r_[shift, 0.0]
        if not overlapping(standing, slo, shi, 0.01).any() and rim_grasp(slo, shi, around)[2]:
            spot = np.r_[(slo[:2] + shi[:2]) / 2, lo[2]]
            return pick_place_plan(env, obj, spot, spot)
    return []  # nowhere better: try from where it is


def ordered_goals(env: Any) -> list[list[str]]:
    """The goal's predicates in the order the expert plans them. Before placing into a closed
    drawer: move the object out of the drawer's way ("stage", planned when its turn comes) and open
    the drawer."""
    goal = env.parsed_problem["goal_state"]
    check_goal(goal)
    out = []
    for pred in sorted(goal, key=lambda p: ORDER[p[0].lower()]):
        if (pred[0].lower() == "in" and is_drawer(env, pred[2])
                and ["open", pred[2]] not in out and not env._eval_predicate(["open", pred[2]])):
            out += [["stage", pred[1], pred[2]], ["open", pred[2]]]
        out.append(pred)
    return out


def plan(env: Any, pred: list[str]) -> list[Phase]:
    """The phases for one goal predicate, from the simulator's state now."""
    name = pred[0].lower()
    if name == "stage":
        return staging_plan(env, pred[1], pred[2])
    if name in ("on", "in"):
        lo, hi = object_box(env.sim, pred[1])
        flat = hi[2] - lo[2] < FLAT and min(hi[:2] - lo[:2]) > GRIPPER_SPAN
        if name == "on" and flat and pred[2] in env.sim.model.site_names:  # onto a table region
            return push_plan(env, pred[1], *_target(env, pred[2], pred[1]))
        return pick_place_plan(env, pred[1], *_target(env, pred[2], pred[1]))
    if name in ("open", "close"):
        return drawer_plan(env, pred[1], open_it=name == "open")
    return knob_plan(env, pred[1], turn_on=name == "turnon")


class LiberoExpert:
    """Closed-loop phase follower for one episode of a `LiberoTask`, constructed right after the
    task's reset; each predicate's plan is made when the one before it has run out."""

    def __init__(self, task: Any):
        self.task = task
        self.goals = ordered_goals(task.robosuite_env)
        self.start_rotation = Rotation.from_quat(task.sim_obs["robot0_eef_quat"])  # x, y, z, w
        self.home = task.sim_obs["robot0_eef_pos"].copy()
        self.phases: list[Phase] = []
        self.phase, self.steps_in_phase = 0, 0
        self.trace: list[np.ndarray] = []  # site positions [3] in the current phase
        self._next_goal()

    def _next_goal(self) -> None:
        """Plan the first remaining predicate that does not hold yet; none left: done."""
        env = self.task.robosuite_env
        while self.goals:
            pred = self.goals.pop(0)
            todo = [] if pred[0] != "stage" and env._eval_predicate(pred) else plan(env, pred)
            if todo:
                # around a tilted-gripper plan (a drawer pull) the arm returns to where it
                # started: turning the hand far out can stretch the arm into a singular pose
                tilted = any(any(p.tilt) for p in self.phases + todo)
                home = [Phase("home", self.home, OPEN, tol=0.03)] if self.phases and tilted else []
                self.phases, self.phase, self.steps_in_phase = home + todo, 0, 0
                return
        self.phases, self.phase = [], 0

    def _turn(self, p: Phase) -> np.ndarray:
        """Rotation action [3] toward the start orientation turned by the phase's yaw about world z,
        then by its tilt."""
        goal = (Rotation.from_rotvec(p.tilt) * Rotation.from_euler("z", p.yaw)
                * self.start_rotation)
        err = goal * Rotation.from_quat(self.task.sim_obs["robot0_eef_quat"]).inv()
        return np.clip(err.as_rotvec() / 0.5 * ROT_GAIN, -1, 1)

    def _stalled(self) -> bool:
        """The site has not moved for `STALL_STEPS` steps toward a target it has not reached (the
        fingers rest on a rim, a drawer is at its stop): waiting for `max_steps` would only
        spend the episode."""
        return (len(self.trace) >= STALL_STEPS
                and float(np.linalg.norm(self.trace[-1] - self.trace[-STALL_STEPS])) < STALL_DIST)

    @property
    def done(self) -> bool:
        return self.phase >= len(self.phases) and not self.goals

    def act(self) -> np.ndarray:
        """The next action [7]; holds still (gripper open) once every phase is done."""
        pos = self.task.sim_obs["robot0_eef_pos"].copy()
        while self.phase < len(self.phases):
            p = self.phases[self.phase]
            if self.steps_in_phase == 0:
                self.trace = []
            err = None if p.target is None else p.target - pos
            finished = self.steps_in_phase >= p.max_steps or (err is not None and (
                float(np.linalg.norm(err)) < p.tol or self._stalled()))
            if not finished:
                self.steps_in_phase += 1
                self.trace.append(pos)
                move = np.zeros(3) if err is None else np.clip(err / 0.05 * POS_GAIN, -1, 1)
                return np.r_[move, self._turn(p), p.gripper].astype(np.float32)
            self.phase, self.steps_in_phase = self.phase + 1, 0
            if self.phase == len(self.phases) and self.goals:
                self._next_goal()
        return np.array([0, 0, 0, 0, 0, 0, OPEN], np.float32)
