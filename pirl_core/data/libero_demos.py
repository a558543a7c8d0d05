"""LIBERO demonstrations from the scripted experts (`libero_experts.py`), recorded offline into a
LeRobot v3.0 dataset with physical-intelligence/libero's content under LeRobot's standard names:
agent-view and wrist images, the 8-D state and the 7-D action.

Demonstrations start from perturbed initial states (`LiberoTask` with `placements="perturbed"`:
one of the task's 50 fixed states with every movable object shifted by up to 1.5 cm and turned by
up to 15 degrees), never from the exact states the evaluation uses. (LIBERO's own region sampler
is no substitute: it drops objects meant to rest on other objects onto the table.) Every attempt
counts toward the expert's success rate; only successful episodes are written, up to the first
success (as an RL episode ends). A task whose goal the experts do not solve raises before
anything is written.

Shapes: T frames in an episode, S image size.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from pirl_core.data.demos import ExpertReport
from pirl_core.data.lerobot_writer import LeRobotWriter
from pirl_core.envs.chunked import episode_seed

LIBERO_FPS = 20  # robosuite control frequency of the LIBERO envs
IMAGE_KEYS = ("observation.images.image", "observation.images.wrist_image")


def libero_features(image_size: int) -> dict[str, dict]:
    image = {"dtype": "image", "shape": [image_size, image_size, 3],
             "names": ["height", "width", "channel"]}
    return {
        IMAGE_KEYS[0]: image, IMAGE_KEYS[1]: dict(image),
        "observation.state": {"dtype": "float32", "shape": [8],
                              "names": ["eef_x", "eef_y", "eef_z", "eef_ax", "eef_ay", "eef_az",
                                        "finger_0", "finger_1"]},
        "action": {"dtype": "float32", "shape": [7],
                   "names": ["dx", "dy", "dz", "drx", "dry", "drz", "gripper"]},
    }


def expert_episode(task: Any, seed: int, max_steps: int) -> tuple[dict[str, np.ndarray], bool]:
    """One expert episode of a `LiberoTask` from `seed`, a frame per step, up to success."""
    from pirl_core.data.libero_experts import LiberoExpert

    task.reset(seed)
    expert = LiberoExpert(task)
    frames: dict[str, list] = {}
    for _ in range(max_steps):
        obs, action = task.observe(render=True), expert.act()
        for key in ("image", "wrist_image", "state"):
            if key in obs:  # no images in obs_mode "state"
                frames.setdefault(key, []).append(obs[key])
        frames.setdefault("action", []).append(action)
        if task.step(action):
            return {k: np.stack(v) for k, v in frames.items()}, True
        if expert.done:
            break
    return {}, False


def record_libero_demos(root: str | Path, tasks: tuple[str, ...], episodes_per_task: int,
                        image_size: int, max_episode_steps: int, seed: int,
                        max_attempts_factor: int = 3) -> ExpertReport:
    """Run the experts until `episodes_per_task` successful episodes per task are written (at
    most `max_attempts_factor` times as many attempts)."""
    from pirl_core.data.libero_experts import check_goal
    from pirl_core.envs.libero import LiberoTask, task_goal

    for name in tasks:  # every task solvable, before any episode runs or a file is written
        check_goal(task_goal(name))
    writer = LeRobotWriter(root, LIBERO_FPS, libero_features(image_size), "panda")
    attempts, successes, lengths = {}, {}, {}
    for k, name in enumerate(tasks):
        task = LiberoTask(name, image_size, "rgb", placements="perturbed")
        try:
            attempts[name], successes[name], lengths[name] = 0, 0, []
            while (successes[name] < episodes_per_task
                   and attempts[name] < max_attempts_factor * episodes_per_task):
                frames, ok = expert_episode(task, episode_seed(seed + 1000 * k, 0, attempts[name]),
                                            max_episode_steps)
                attempts[name] += 1
                if ok:
                    successes[name] += 1
                    lengths[name].append(len(frames["action"]))
                    writer.add_episode({IMAGE_KEYS[0]: frames["image"],
                                        IMAGE_KEYS[1]: frames["wrist_image"],
                                        "observation.state": frames["state"],
                                        "action": frames["action"]}, task.instruction)
        finally:
            task.close()
    report = ExpertReport(attempts, successes)
    if sum(successes.values()) == 0:
        raise RuntimeError(f"the experts solved no episode of {tasks}; nothing to write")
    out = writer.finalize()
    (Path(out) / "meta" / "pirl_expert.json").write_text(json.dumps(
        report.to_json() | {"episode_length": lengths}, indent=2))
    return report
