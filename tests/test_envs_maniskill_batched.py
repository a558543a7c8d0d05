"""The batched (GPU-physics) ManiSkill vector env, run on the CPU backend with one sub-scene per
task: it must reproduce `ManiSkillVecEnv` step for step, and end episodes inside a chunk the
documented way (hold still, reset at the chunk's end)."""

from __future__ import annotations

import numpy as np
import pytest

from pirl_core.envs.maniskill import ManiSkillVecEnv
from pirl_core.envs.maniskill_batched import ManiSkillBatchedVecEnv

S, TASKS = 32, ["PickCube-v1", "PushCube-v1"]


def test_matches_the_cpu_vector_env_step_for_step():
    kw = dict(image_size=S, max_episode_steps=10, seed=3, grasp_reward=0.1)
    rng = np.random.default_rng(0)
    chunks = rng.uniform(-1, 1, (5, 2, 5, 8)).astype(np.float32)  # 25 steps: two truncations
    with (ManiSkillVecEnv(TASKS, 2, **kw) as cpu,
          ManiSkillBatchedVecEnv(TASKS, 2, sim_backend="physx_cpu", **kw) as batched):
        a, b = cpu.reset(), batched.reset()
        for key in ("state", "privileged", "image"):
            np.testing.assert_array_equal(a[key], b[key])
        assert a["instruction"] == b["instruction"]
        for chunk in chunks:
            out_a, out_b = cpu.step_chunk(chunk), batched.step_chunk(chunk)
            for x, y in zip(out_a[1:4], out_b[1:4]):  # reward, terminated, truncated
                np.testing.assert_array_equal(x, y)
            for key in ("state", "privileged", "image"):
                np.testing.assert_allclose(out_a[0][key], out_b[0][key], atol=1e-5)
            ia, ib = out_a[4], out_b[4]
            for key in ("success", "episode_length", "steps", "final_episode_length"):
                np.testing.assert_array_equal(ia[key], ib[key])
            assert ("final_obs" in ia) == ("final_obs" in ib)


def test_an_episode_that_ends_inside_a_chunk_holds_then_resets():
    from pirl_core.data.maniskill_demos import _make_planner_env, plan_episode
    from pirl_core.envs.chunked import episode_seed

    planner = _make_planner_env("PushCube-v1")
    actions = plan_episode(planner, "PushCube-v1", episode_seed(0, 0, 0))
    planner.close()
    H = 7
    pad = (-len(actions)) % H + H  # a chunk beyond the plan's end
    plan = np.concatenate([actions, np.repeat(actions[-1:], pad, 0)])
    with ManiSkillBatchedVecEnv(["PushCube-v1"], 1, image_size=S, obs_mode="state",
                                max_episode_steps=200, seed=0, sim_backend="physx_cpu") as env:
        env.reset()
        total, t = 0.0, 0
        while True:
            _, r, term, trunc, info = env.step_chunk(plan[None, t:t + H])
            total += float(r[0])
            t += H
            if term[0] or trunc[0]:
                break
    assert term[0] and total == pytest.approx(1.0)
    assert info["final_episode_length"][0] == int(info["steps"][0]) + t - H <= len(actions)
    assert info["episode_length"][0] == 0 and env.episode[0] == 2  # reset: the next episode
    assert info["success"][0]
