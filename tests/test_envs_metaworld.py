"""MetaWorld vector env: observation contract, upright frames, chunks, partial resets, sparse
success reward, seeding, experts, instructions. Small images (32 px) and one or two tasks."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from pirl_core.envs.chunked import episode_seed
from pirl_core.envs.metaworld import (INSTRUCTIONS_PATH, MT50_TASKS, MetaWorldTask,
                                      MetaWorldVecEnv, expert_actions)

S = 32
TASKS = ["reach-v3", "button-press-topdown-v3"]


@pytest.fixture(scope="module")
def vec():
    with MetaWorldVecEnv(TASKS, num_envs=2, image_size=S, seed=0) as env:
        yield env


def _hold(actions: np.ndarray, h: int) -> np.ndarray:
    """[B, 4] -> a chunk [B, h, 4] repeating each action."""
    return np.repeat(actions[:, None], h, axis=1)


def test_observation_contract(vec):
    obs = vec.reset(seed=0)
    assert set(obs) == {"image", "state", "privileged", "instruction"}
    assert obs["image"].shape == (2, S, S, 3) and obs["image"].dtype == np.uint8
    assert obs["state"].shape == (2, 4) and obs["state"].dtype == np.float32
    assert obs["privileged"].shape == (2, 39) and obs["privileged"].dtype == np.float32
    assert obs["instruction"] == [vec.envs[0].instruction, vec.envs[1].instruction]
    assert obs["instruction"][0] != obs["instruction"][1]
    # proprio = MetaWorld's hand xyz + gripper opening (first 4 entries of its 39-d obs)
    np.testing.assert_array_equal(obs["state"], obs["privileged"][:, :4])
    assert 0.0 <= obs["state"][:, 3].min() and obs["state"][:, 3].max() <= 1.0
    assert all(img.std() > 0 for img in obs["image"])  # not blank


def test_state_mode_renders_nothing():
    with MetaWorldVecEnv(["reach-v3"], num_envs=1, obs_mode="state") as env:
        obs = env.reset()
        assert "image" not in obs and env.envs[0]._viewer is None
        obs, *_ = env.step_chunk(np.zeros((1, 3, 4), np.float32))
        assert "image" not in obs and obs["state"].shape == (1, 4)


def test_frame_is_upright(vec):
    vec.reset(seed=0)
    task = vec.envs[0]
    raw, img = task.render(upright=False), task.render()
    # MetaWorld's corner cameras are rolled by 180 degrees: rotate back (not a mirror flip).
    np.testing.assert_array_equal(img, raw[::-1, ::-1])
    # Content: the plain grey wall is behind/above the scene and the wooden table top is below.
    px = img.astype(int)
    grey = px.max(-1) - px.min(-1) < 12
    wood = (px[..., 0] > px[..., 1]) & (px[..., 1] > px[..., 2]) & (px[..., 0] - px[..., 2] > 30)
    top, bottom = slice(0, S // 2), slice(S // 2, S)
    assert grey[top].mean() > 2 * grey[bottom].mean()
    assert wood[bottom].mean() > 4 * wood[top].mean()


def test_rendering_context_is_sized_to_the_frame():
    """GRPO holds 48 rendering envs per run: MuJoCo's default 4096^2 shadow map and 640x480
    offscreen buffers cost ~65 MB each in software GL, so the env sizes them to what it draws."""
    task = MetaWorldTask("reach-v3", image_size=S)
    vis = task.env.model.vis
    assert vis.quality.shadowsize == 0 and vis.quality.offsamples == 0
    assert (vis.global_.offwidth, vis.global_.offheight) == (S, S)
    task.reset(0)
    assert task.render().shape == (S, S, 3) and task.render().std() > 0
    task.close()


def test_closing_one_env_does_not_blank_another():
    a = MetaWorldTask("reach-v3", image_size=S)
    a.reset(0)
    assert a.render().std() > 0
    b = MetaWorldTask("reach-v3", image_size=S)
    b.reset(0)
    a.close()
    del a
    c = MetaWorldTask("reach-v3", image_size=S)  # a context made after the close
    c.reset(0)
    assert b.render().std() > 0 and c.render().std() > 0
    np.testing.assert_array_equal(b.render(), c.render())
    b.close(), c.close()


def test_chunk_advances_episode_by_h(vec):
    vec.reset(seed=0)
    obs, reward, term, trunc, info = vec.step_chunk(np.zeros((2, 5, 4), np.float32))
    np.testing.assert_array_equal(info["episode_length"], [5, 5])
    np.testing.assert_array_equal(info["steps"], [5, 5])
    assert not term.any() and not trunc.any() and "final_obs" not in info
    assert reward.dtype == np.float32 and reward.shape == (2,)
    _, _, _, _, info = vec.step_chunk(np.zeros((2, 3, 4), np.float32))
    np.testing.assert_array_equal(info["episode_length"], [8, 8])


def test_success_reward_and_partial_reset():
    """Env 0 (reach, scripted expert) succeeds and resets; env 1 (button, idle) runs on until
    it truncates at max_episode_steps, and resets while env 0 keeps going."""
    H, T = 5, 100
    with MetaWorldVecEnv(TASKS, num_envs=2, image_size=S, max_episode_steps=T, seed=0) as env:
        obs = env.reset()
        t0_start, t, n_success = 0, 0, 0  # env 0: start of its current episode, clock, successes
        for k in range(T // H):
            act = env.expert_actions(obs["privileged"])
            act[1] = 0.0
            obs, reward, term, trunc, info = env.step_chunk(_hold(act, H))
            assert reward[1] == 0.0
            assert info["steps"][1] == H and (info["steps"][0] == H or term[0])
            t += H
            if term[0]:  # success: reward 1 once, episode over, env 0 restarted on its own
                n_success += 1
                assert reward[0] == 1.0 and info["success"][0] and not trunc[0]
                assert info["final_episode_length"][0] == t - H - t0_start + info["steps"][0]
                assert info["episode_length"][0] == 0
                assert info["final_obs"]["image"].shape == (2, S, S, 3)
                np.testing.assert_array_equal(info["final_obs"]["state"][1], obs["state"][1])
                t0_start = t
            else:
                assert reward[0] == 0.0 and info["episode_length"][0] == t - t0_start
            if k < T // H - 1:
                assert not term[1] and not trunc[1] and info["episode_length"][1] == t
        assert n_success >= 1 and t0_start < T
        # the last chunk truncated env 1 at length T, and only env 1 restarted
        assert trunc[1] and not term[1] and not info["success"][1]
        assert info["final_episode_length"][1] == T and info["episode_length"][1] == 0
        assert not np.array_equal(info["final_obs"]["image"][1], obs["image"][1])
        if not term[0]:
            np.testing.assert_array_equal(info["final_obs"]["image"][0], obs["image"][0])


def test_reward_once_without_termination():
    with MetaWorldVecEnv(["reach-v3"], num_envs=1, obs_mode="state", seed=3,
                         terminate_on_success=False) as env:
        obs, total, successes = env.reset(), 0.0, 0
        for _ in range(150):
            obs, reward, term, trunc, info = env.step_chunk(
                env.expert_actions(obs["privileged"])[:, None])
            total += reward.sum()
            successes += int(info["success"][0])
            assert not term.any()
        assert total == 1.0 and successes > 1  # success persists, rewarded on its first step


def test_seeding_is_reproducible_and_varies():
    def first_obs(seed):
        with MetaWorldVecEnv(["reach-v3"], num_envs=2, image_size=S, seed=seed) as env:
            return env.reset()
    a, b, c = first_obs(7), first_obs(7), first_obs(8)
    np.testing.assert_array_equal(a["privileged"], b["privileged"])
    np.testing.assert_array_equal(a["image"], b["image"])
    assert not np.allclose(a["privileged"][:, 36:], c["privileged"][:, 36:])  # goal follows seed
    assert not np.allclose(a["privileged"][0, 36:], a["privileged"][1, 36:])  # env index too
    task = MetaWorldTask("reach-v3", obs_mode="state")
    goals = []
    for episode in range(3):  # what the vec env does at each auto-reset of env 0
        task.reset(episode_seed(7, 0, episode))
        goals.append(task.observe()["privileged"][36:])
    np.testing.assert_array_equal(goals[0], a["privileged"][0, 36:])
    assert len({g.tobytes() for g in goals}) == 3  # a new goal every episode
    task.close()


def test_actions_are_clipped():
    with MetaWorldVecEnv(["reach-v3"], num_envs=2, obs_mode="state", seed=0) as env:
        env.reset()
        a = np.ones((2, 4, 4), np.float32)
        a[1] *= 50.0
        obs, *_ = env.step_chunk(a)
    np.testing.assert_allclose(obs["privileged"][0, :4], obs["privileged"][1, :4], atol=1e-6)


def test_expert_actions_shape():
    priv = np.zeros((3, 39), np.float32)
    act = expert_actions(["reach-v3", "push-v3", "door-open-v3"], priv)
    assert act.shape == (3, 4) and act.dtype == np.float32 and np.abs(act).max() <= 1.0


def test_instructions_cover_mt50_exactly():
    with open(INSTRUCTIONS_PATH) as f:
        instructions = yaml.safe_load(f)
    assert sorted(instructions) == sorted(MT50_TASKS) and len(instructions) == 50
    assert all(isinstance(v, str) and v.strip() for v in instructions.values())
