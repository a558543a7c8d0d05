"""Geometry and plan primitives shared by the LIBERO scripted experts: a plan is a list of
`Phase`s (a Cartesian target for the gripper site, or a hold, with the gripper command), and
objects are located by the world-frame boxes of their MuJoCo collision geoms.

Shapes: boxes [n, 2, 3] (lo, hi) in world metres.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

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
    tilt: tuple[float, float, float] = (0.0, 0.0, 0.0)  # world rotation vector after the yaw


def geom_boxes(sim: Any, geoms: list[int]) -> np.ndarray:
    """World-frame bounding boxes [n, 2, 3] (lo, hi) of MuJoCo geoms."""
    m, d = sim.model._model, sim.data._data
    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
    out = np.empty((len(geoms), 2, 3))
    for i, g in enumerate(geoms):
        pts = d.geom_xpos[g] + (d.geom_xmat[g].reshape(3, 3)
                                @ (m.geom_aabb[g, :3] + m.geom_aabb[g, 3:] * signs).T).T
        out[i] = pts.min(0), pts.max(0)
    return out


def collision_geoms(sim: Any, prefix: str = "", exclude: tuple[str, ...] = ()) -> list[int]:
    """Collision geoms whose body name starts with `prefix` and with none of `exclude`."""
    import mujoco

    m = sim.model._model
    names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_BODY, m.geom_bodyid[g]) or ""
             for g in range(m.ngeom)]
    return [g for g in range(m.ngeom) if m.geom_contype[g] and names[g].startswith(prefix)
            and not names[g].startswith(exclude)]


def enclosing(boxes: np.ndarray) -> np.ndarray:
    """The box [2, 3] (lo, hi) around boxes [n, 2, 3]."""
    return np.stack([boxes[:, 0].min(0), boxes[:, 1].max(0)])


def overlapping(boxes: np.ndarray, lo: np.ndarray, hi: np.ndarray, margin: float = 0.0
                ) -> np.ndarray:
    """Mask [n] of the boxes [n, 2, 3] whose footprint (x, y) meets the rectangle from `lo` to
    `hi` grown by `margin` on every side."""
    return np.all((boxes[:, 0, :2] < hi[:2] + margin) & (boxes[:, 1, :2] > lo[:2] - margin), axis=1)


def object_box(sim: Any, name: str) -> tuple[np.ndarray, np.ndarray]:
    """World-frame bounding box (lo [3], hi [3]) of the collision geoms of object `name`."""
    geoms = collision_geoms(sim, name)
    if not geoms:
        raise ValueError(f"no collision geometry for object {name!r}")
    lo, hi = enclosing(geom_boxes(sim, geoms))
    return lo, hi
