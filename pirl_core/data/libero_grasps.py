"""Where the LIBERO scripted experts take hold of an object, from its collision geometry: across
the middle if it fits between the open fingers; by a handle if it has one that does (a moka pot);
else by a rim point whose way down is clear (a bowl, whose +y rim may be against a drawer's
wall).

Shapes: boxes [n, 2, 3] (lo, hi) in world metres; points [3].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pirl_core.data.libero_geometry import GRIPPER_SPAN, collision_geoms, enclosing, geom_boxes

HAND_REACH = ((0.035, 0.11), (0.11, 0.035))  # m, the hand's half footprint (x, y), yaw 0 / 90
TOP_BAND = 0.03  # m below an object's top where its handle, if any, is looked for
HANDLE_SPAN = 0.05  # m, widest handle grasped across


def rim_grasp(lo: np.ndarray, hi: np.ndarray, boxes: np.ndarray
              ) -> tuple[np.ndarray, float, bool]:
    """(offset of the grasp point from the object's centre [3], gripper yaw, whether the hand's
    way down is clear) for an object at box (lo, hi) among the boxes [n, 2, 3] around it (its
    neighbours; in staging, also the space a drawer will fill once opened).
    Narrow objects: the centre. Wide ones (bowls): a rim point, the first of +y, -y, +x, -x where
    the hand's footprint is clear of every geom reaching above the grasp height (an open drawer
    beside the bowl, the cabinet's top over a bowl in a drawer); if none is, the rim point farthest
    from inside any such geom's footprint. Rim points on the x sides turn the gripper by 90 deg."""
    half = (hi - lo) / 2
    rims = [(np.array([0.0, half[1] - 0.01, 0.0]), 0.0),  # +y first: no turn needed
            (np.array([0.0, 0.01 - half[1], 0.0]), 0.0),
            (np.array([half[0] - 0.01, 0.0, 0.0]), np.pi / 2),
            (np.array([0.01 - half[0], 0.0, 0.0]), np.pi / 2)]
    centre = (lo + hi) / 2
    above = boxes[(boxes[:, 1, 2] > hi[2] - 0.02) & (boxes[:, 0, 2] < hi[2] + 0.15)]

    def depth_under(point: np.ndarray, reach: tuple[float, float] = (0.0, 0.0)) -> float:
        """How far a rectangle of half sides `reach` at `point` is inside the deepest footprint."""
        if not len(above):
            return -1.0
        inside = np.minimum.reduce([point[0] + reach[0] - above[:, 0, 0],
                                    above[:, 1, 0] - point[0] + reach[0],
                                    point[1] + reach[1] - above[:, 0, 1],
                                    above[:, 1, 1] - point[1] + reach[1]])
        return float(inside.max())

    if 2 * half[1] <= GRIPPER_SPAN:
        return np.zeros(3), 0.0, depth_under(centre, HAND_REACH[0]) <= 0
    clear = [r for r in rims if depth_under(centre + r[0], HAND_REACH[r[1] > 0]) <= 0]
    if clear:
        return *clear[0], True
    if depth_under(centre + rims[0][0]) <= 0:  # the +y rim is clear
        return *rims[0], False
    return *min(rims, key=lambda r: depth_under(centre + r[0])), False


def handle_grasp(sim: Any, obj: str) -> tuple[np.ndarray, float] | None:
    """(grasp point [3], yaw) on the handle of an object too wide to grasp across (a moka pot),
    or None. Either the part of it within `TOP_BAND` of its top, if that part is narrow (a
    handle arching over a lying pot; a bowl's top band is its rim all round), or the tallest of
    the parts sticking out of its body's sides (the body: the geoms spanning most of its height)
    if that is narrow (an upright pot's handle, rather than its spout). Fingers close across the
    part's narrow side."""
    boxes = geom_boxes(sim, collision_geoms(sim, obj))
    lo, hi = enclosing(boxes)
    if min(hi[:2] - lo[:2]) <= GRIPPER_SPAN:
        return None
    parts = [enclosing(boxes[boxes[:, 1, 2] > hi[2] - TOP_BAND])]
    tall = boxes[:, 1, 2] - boxes[:, 0, 2] > 0.6 * (hi[2] - lo[2])
    if tall.any():
        body = enclosing(boxes[tall])
        sides: dict[tuple[int, bool], list[np.ndarray]] = {}
        for box in boxes[~tall & (boxes[:, 0, 2] < body[1, 2] - 0.01)]:  # not a lid's knob
            off = (box[0] + box[1] - body[0] - body[1])[:2] / 2
            axis = int(np.argmax(np.abs(off)))
            sides.setdefault((axis, bool(off[axis] > 0)), []).append(box)
        parts += sorted((enclosing(np.array(v)) for v in sides.values()),
                        key=lambda b: b[0, 2] - b[1, 2])  # tallest first
    for part in parts:
        size = part[1, :2] - part[0, :2]
        if min(size) <= HANDLE_SPAN and max(size / (hi[:2] - lo[:2])) <= 0.5:
            centre = (part[0] + part[1]) / 2
            z = min(part[1, 2] - 0.02, max(centre[2], lo[2] + 0.01))
            return np.r_[centre[:2], z], (np.pi / 2 if size[0] < size[1] else 0.0)
    return None
