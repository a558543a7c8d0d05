"""Plans for LIBERO's articulated goals, read from the simulator's joints: pull a drawer open by its
handle, push it shut, and turn a stove's knob on or off by pushing one end of its bar.

A drawer is a BDDL region ("wooden_cabinet_1_top_region") whose site carries a slide joint; the
direction that opens it is the joint axis times the sign of the parent object's open range
(LIBERO's wooden cabinet opens toward +y, the white one toward -y). Its handle is the part of the
drawer's collision geometry that reaches farthest along that direction.
- Open: the gripper turns to point into the drawer (so the hand stays behind the fingers, clear
  of the cabinet's top and of the handle above), pinches the handle across its height and pulls
  2 cm past the open range (the joint stops it). Pointing down it could not: the hand stands only
  2.4 cm above the fingertips, and the cabinet's top or the next handle is in its way.
- Close: closed fingers pointing down push the handle's face back.
Measured limits: a bottom drawer's handle is too near the table for the turned hand, and the
white cabinet of LIBERO-10 task 3 is too far for the forearm (it meets the cabinet before the
drawer shuts); `benchmarks/libero_experts.py` gives the success per task.

A knob is an object ("flat_stove_1") whose hinge turns about world z; turning it on means raising
its angle into the object's turn-on range. The closed gripper pushes the bar partway along its
length (a push at the tip slips off it), along the tangent of that rotation.

Shapes: points [3] in world metres.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pirl_core.data.libero_geometry import (
    CLOSE, OPEN, Phase, UnsupportedGoal, enclosing, geom_boxes, object_box,
)

PULL_MARGIN = 0.02  # m past the open range: the joint limit ends the pull, not the controller
DRAWER_MARGIN = 0.01  # m between an object put into a drawer and the drawer's front panel
PUSH_TILT = 0.6  # of a quarter turn: how far the fingers point into a drawer they push shut
PUSH_ANGLE = 0.9  # rad a knob push aims for (turn-on ranges start at 0.5, end at 2.1)
CONTACT_FRACTION = 0.6  # where along the knob's bar (from its axis) the gripper pushes


def _joint(env: Any, name: str) -> tuple[int, Any]:
    """(MuJoCo joint id, LIBERO object owning its ranges) of a region's or object's one joint."""
    import mujoco

    if name in env.object_sites_dict:
        joints, owner = env.object_sites_dict[name].joints, env.get_object(
            env.object_sites_dict[name].parent_name)
    else:
        owner = env.get_object(name)
        joints = [] if owner is None else owner.joints
    m = env.sim.model._model
    ids = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, j) for j in joints or []]
    ids = [i for i in ids if i >= 0 and m.jnt_type[i] in (mujoco.mjtJoint.mjJNT_SLIDE,
                                                         mujoco.mjtJoint.mjJNT_HINGE)]
    if len(ids) != 1:
        raise UnsupportedGoal(f"{name!r} has no single slide or hinge joint to articulate")
    return ids[0], owner


def _body_geoms(env: Any, body: int) -> list[int]:
    """Collision geoms of `body` and of the bodies under it."""
    m = env.sim.model._model

    def under(b: int) -> bool:
        while b not in (0, body):
            b = m.body_parentid[b]
        return b == body

    return [g for g in range(m.ngeom) if m.geom_contype[g] and under(m.geom_bodyid[g])]


def is_drawer(env: Any, name: str) -> bool:
    """Whether `name` is a region moved by a slide joint (a drawer)."""
    import mujoco

    if name not in env.object_sites_dict:
        return False
    try:
        jid, _ = _joint(env, name)
    except UnsupportedGoal:
        return False
    return env.sim.model._model.jnt_type[jid] == mujoco.mjtJoint.mjJNT_SLIDE


def _drawer(env: Any, region: str) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """(handle box lo/hi [2, 3], opening direction [3], qpos now, (open, closed) qpos targets)."""
    if not is_drawer(env, region):
        raise UnsupportedGoal(f"{region!r} is not a drawer (a region on a slide joint)")
    jid, owner = _joint(env, region)
    m, d = env.sim.model._model, env.sim.data._data
    art = owner.object_properties["articulation"]
    open_q, close_q = np.mean(art["default_open_ranges"]), np.mean(art["default_close_ranges"])
    direction = d.xaxis[jid] * np.sign(open_q - close_q)
    boxes = geom_boxes(env.sim, _body_geoms(env, m.jnt_bodyid[jid]))
    reach = np.max(np.einsum("nkc,c->nk", boxes, direction), axis=1)
    handle = boxes[reach > reach.max() - 0.005]
    box = enclosing(handle)
    targets = np.array([min(art["default_open_ranges"]) if open_q < close_q
                        else max(art["default_open_ranges"]), close_q])
    return box, direction, float(d.qpos[m.jnt_qposadr[jid]]), targets


def swept_box(env: Any, region: str) -> tuple[np.ndarray, np.ndarray]:
    """(the box [2, 3] the drawer `region`'s geometry fills from now to fully open, the direction
    [3] that opens it)."""
    _, direction, q, (open_q, _) = _drawer(env, region)
    jid, _ = _joint(env, region)
    box = enclosing(geom_boxes(env.sim, _body_geoms(env, env.sim.model._model.jnt_bodyid[jid])))
    moved = box + direction * (abs(open_q - q) + PULL_MARGIN)
    return np.stack([np.minimum(box[0], moved[0]), np.maximum(box[1], moved[1])]), direction


def drawer_spot(env: Any, region: str, obj: str) -> np.ndarray:
    """Where `obj`'s centre goes into the drawer `region` [3]: as far out along the drawer's axis
    as it fits (its near side `DRAWER_MARGIN` behind the front panel). The region's middle can lie
    under the cabinet's frame and the handle of the drawer above (LIBERO-10's bottom drawer),
    where a bowl came down on the frame's edge and the hand met the handle."""
    _, direction, _, _ = _drawer(env, region)
    lo, hi = object_box(env.sim, obj)
    site = env.sim.data.get_site_xpos(region).copy()
    axes = env.sim.data.get_site_xmat(region)  # the region box's axes, columns [3, 3]
    extent = float(np.abs(direction @ axes) @ env.object_sites_dict[region].size)
    half = float(np.abs(direction) @ (hi - lo)) / 2
    return site + direction * (extent - half - DRAWER_MARGIN)


def _yaw_along(direction: np.ndarray) -> float:
    """Gripper yaw that closes the fingers (world y at yaw 0) along a horizontal `direction`."""
    return 0.0 if abs(direction[1]) >= abs(direction[0]) else np.pi / 2


def drawer_plan(env: Any, region: str, open_it: bool) -> list[Phase]:
    """Phases that open (pinch the handle, pull) or close (push the front) the drawer `region`."""
    box, direction, q, (open_q, close_q) = _drawer(env, region)
    centre = box.mean(0)
    yaw = _yaw_along(direction)
    # fingers point into the drawer: the hand stays behind them, clear of the drawers above
    tilt = tuple(np.cross([0.0, 0.0, -1.0], -direction) * np.pi / 2)
    grasp = centre + direction * 0.005
    front = grasp + direction * 0.10
    if open_it:  # pinch the handle across its height, pull
        pulled = grasp + direction * (abs(open_q - q) + PULL_MARGIN)
        return [Phase("over the front", front + [0, 0, 0.08], OPEN, yaw=yaw, tilt=tilt, tol=0.02),
                Phase("in front of handle", front, OPEN, yaw=yaw, tilt=tilt, tol=0.01),
                Phase("reach", grasp, OPEN, tol=0.006, yaw=yaw, tilt=tilt),
                Phase("close", None, CLOSE, max_steps=15, yaw=yaw, tilt=tilt),
                Phase("pull", pulled, CLOSE, tol=0.01, max_steps=120, yaw=yaw, tilt=tilt),
                Phase("release", None, OPEN, max_steps=10, yaw=yaw, tilt=tilt),
                Phase("retreat", pulled + direction * 0.08, OPEN, tol=0.02, yaw=yaw, tilt=tilt)]
    # closed fingers pointing down and partly into the drawer push the handle's face: pointing
    # straight down, the forearm rode over the cabinet and met its top edge before a low drawer
    # shut; pointing straight in, the hand could not get down to a low handle
    start = centre + direction * 0.03
    pushed = start - direction * (abs(q - close_q) + PULL_MARGIN)
    push_tilt = tuple(np.asarray(tilt) * PUSH_TILT)
    return [Phase("over the front", start + [0, 0, 0.08], CLOSE, yaw=yaw, tilt=push_tilt, tol=0.02),
            Phase("down", start, CLOSE, yaw=yaw, tilt=push_tilt, tol=0.008),
            Phase("push", pushed, CLOSE, tol=0.01, max_steps=120, yaw=yaw, tilt=push_tilt),
            Phase("retreat", start + [0, 0, 0.08], CLOSE, tol=0.02, yaw=yaw, tilt=push_tilt)]


def knob_plan(env: Any, obj: str, turn_on: bool) -> list[Phase]:
    """Phases that turn the knob of `obj` (a hinge about world z) into its on or off range."""
    import mujoco

    jid, owner = _joint(env, obj)
    m, d = env.sim.model._model, env.sim.data._data
    if m.jnt_type[jid] != mujoco.mjtJoint.mjJNT_HINGE or abs(d.xaxis[jid][2]) < 0.9:
        raise UnsupportedGoal(f"{obj!r} has no knob turning about the vertical")
    art = owner.object_properties["articulation"]
    on_q, off_q = np.mean(art["default_turnon_ranges"]), np.mean(art["default_turnoff_ranges"])
    sign = np.sign(on_q - off_q) * (1 if turn_on else -1) * np.sign(d.xaxis[jid][2])
    boxes = geom_boxes(env.sim, _body_geoms(env, m.jnt_bodyid[jid]))
    top = boxes[:, 1, 2].max()
    bar = boxes[boxes[:, 1, 2] > top - 0.01]  # the raised bar, not the dial ring under it
    corners = np.array([[x, y] for b in bar for x in b[:, 0] for y in b[:, 1]])
    anchor = d.xanchor[jid][:2]
    radial = corners[np.argmax(np.linalg.norm(corners - anchor, axis=1))] - anchor
    radius = float(np.linalg.norm(radial))
    # a straight push at radius r slips off a bar of length R once cos(angle) < r / R
    contact = anchor + radial * CONTACT_FRACTION
    tangent = sign * np.array([-radial[1], radial[0]]) / radius
    z = top - 0.01
    yaw = _yaw_along(np.r_[radial, 0.0])  # fingers side by side across the push
    start = np.r_[contact - tangent * 0.035, z]
    pushed = np.r_[contact + tangent * radius * CONTACT_FRACTION * np.tan(PUSH_ANGLE), z]
    return [Phase("above knob", np.r_[start[:2], top + 0.08], CLOSE, yaw=yaw),
            Phase("down", start, CLOSE, tol=0.006, yaw=yaw),
            Phase("push", pushed, CLOSE, tol=0.01, max_steps=60, yaw=yaw),
            Phase("lift", np.r_[pushed[:2], top + 0.08], CLOSE, tol=0.02, yaw=yaw)]
