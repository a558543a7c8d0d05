"""Frame strips: one episode per task, the frames the policy saw, success recorded."""

from __future__ import annotations

import numpy as np

from pirl_core.config import SamplerConfig
from pirl_core.evaluate import metaworld_env_factory
from pirl_core.frames import episode_frames, plot_frame_strips
from tests.helpers import tiny_agent

TASKS = ("button-press-topdown-v3", "drawer-close-v3")


def test_one_episode_per_task_frame_per_replan():
    agent = tiny_agent(SamplerConfig(method="flow_sde"))
    factory = metaworld_env_factory(64, "rgb", max_episode_steps=20)
    out = episode_frames(agent, factory, TASKS, seed=1000)
    assert list(out) == list(TASKS)
    for frames, success in out.values():
        # 20 steps in chunks of 5: the first frame, then one after each of 4 chunks but the last
        assert len(frames) == 4 and not success
        assert frames[0].shape == (64, 64, 3) and frames[0].dtype == np.uint8
        assert not np.array_equal(frames[0], frames[-1])  # the arm moved
    fig = plot_frame_strips({"sft": out, "rl": out}, columns=3)
    assert len(fig.axes) == 2 * len(TASKS) * 3
