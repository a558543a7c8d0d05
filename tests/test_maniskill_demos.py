"""ManiSkill3 motion-planning demos: the joint-target -> joint-delta conversion, the recorded
LeRobot dataset, and that its actions replay to success in the RL env."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pirl_core.data.lerobot_format import read_dataset
from pirl_core.data.maniskill_demos import (IMAGE_KEY, JOINT_DELTA_SCALE, joint_delta_actions,
                                            record_maniskill_demos)
from pirl_core.envs.chunked import episode_seed
from pirl_core.envs.maniskill import ManiSkillTask


def test_joint_targets_become_deltas_from_the_current_position():
    qpos = np.array([0.1, -0.2, 0.3, -2.0, 0.0, 2.2, 0.7, 0.04, 0.04], np.float32)
    target = np.array([0.12, -0.2, 0.25, -2.0, 0.01, 2.2, 0.7, -1.0], np.float32)
    out = joint_delta_actions([(qpos, target)])
    assert out.shape == (1, 8)
    np.testing.assert_allclose(out[0, :7] * JOINT_DELTA_SCALE + qpos[:7], target[:7], atol=1e-6)
    assert out[0, 7] == -1.0  # the gripper target passes through
    far = target.copy()
    far[0] = qpos[0] + 0.5  # beyond one step's reach: clipped to the action bound
    assert joint_delta_actions([(qpos, far)])[0, 0] == 1.0


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    root = tmp_path_factory.mktemp("ms") / "demos"
    report = record_maniskill_demos(root, ("PushCube-v1",), 1, 32, 120, seed=0)
    return root, report


def test_dataset_holds_successful_replays(demos):
    root, report = demos
    assert report.successes == {"PushCube-v1": 1}
    data = read_dataset(root)
    assert data.fps == 20 and len(data.episodes) == 1
    ep = data.episode(0)
    t = len(ep["action"])
    assert ep[IMAGE_KEY].shape == (t, 32, 32, 3) and ep[IMAGE_KEY][0].std() > 0
    assert ep["observation.state"].shape == (t, 15) and ep["action"].shape == (t, 8)
    assert np.abs(ep["action"]).max() <= 1.0
    assert data.task_of_episode(0) == "push the blue cube onto the red and white target"
    expert = json.loads((root / "meta" / "pirl_expert.json").read_text())
    assert expert["episode_length"] == {"PushCube-v1": [t]}


def test_recorded_actions_replay_to_success_in_the_rl_env(demos):
    root, _ = demos
    ep = read_dataset(root).episode(0, keys=["observation.state", "action"])
    env = ManiSkillTask("PushCube-v1", image_size=32, obs_mode="state")
    env.reset(episode_seed(0, 0, 0))  # the seed the recorder used for task 0, attempt 0
    np.testing.assert_allclose(env.observe()["state"], ep["observation.state"][0], atol=1e-6)
    solved = [env.step(a) for a in ep["action"]]
    env.close()
    assert solved[-1] and not any(solved[:-1])  # frames stop at the first success


def test_tasks_without_a_planner_are_refused(tmp_path):
    with pytest.raises(ValueError, match="PutCarrotOnPlateInScene-v1"):
        record_maniskill_demos(tmp_path / "d", ("PutCarrotOnPlateInScene-v1",), 1, 32, 100, 0)
    assert not (tmp_path / "d").exists()
