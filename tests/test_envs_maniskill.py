"""ManiSkill3 vector env: observation contract, seeding, hidden goals in the state, grasp bonus,
truncation with partial reset, asset-pack errors. CPU physics and rendering, 32 px frames."""

from __future__ import annotations

import numpy as np
import pytest

from pirl_core.envs.maniskill import (MINI, SIMPLER, STATE_DIM, ManiSkillTask, ManiSkillVecEnv,
                                      MissingAssetError, check_assets, load_instructions, robot_of)

S = 32


@pytest.fixture(scope="module")
def vec():
    with ManiSkillVecEnv(["PickCube-v1", "PushCube-v1"], num_envs=2, image_size=S,
                         max_episode_steps=10, seed=0) as env:
        yield env


def test_observation_contract(vec):
    obs = vec.reset(seed=0)
    assert set(obs) == {"image", "state", "privileged", "instruction"}
    assert obs["image"].shape == (2, S, S, 3) and obs["image"].dtype == np.uint8
    assert obs["state"].shape == (2, STATE_DIM) and obs["state"].dtype == np.float32
    assert obs["privileged"].shape == (2, 64) and obs["privileged"].dtype == np.float32
    assert obs["instruction"] == [load_instructions()[t] for t in ("PickCube-v1", "PushCube-v1")]
    assert all(img.std() > 0 for img in obs["image"])  # real frames, not blank
    # joint positions first: Panda's rest pose has both fingers open at 0.04 m
    np.testing.assert_allclose(obs["state"][:, 7:9], 0.04, atol=1e-4)


def test_goal_enters_the_state_only_where_the_camera_hides_it(vec):
    obs = vec.reset(seed=0)
    pick, push = vec.envs
    goal = pick.env.unwrapped.goal_site.pose.p[0].cpu().numpy()
    np.testing.assert_allclose(obs["state"][0, 12:], goal, atol=1e-6)  # PickCube: hidden goal
    np.testing.assert_array_equal(obs["state"][1, 12:], 0.0)  # PushCube: the target is visible
    for i, env in enumerate(vec.envs):  # both carry the gripper's TCP position
        tcp = env.env.unwrapped.agent.tcp.pose.p[0].cpu().numpy()
        np.testing.assert_allclose(obs["state"][i, 9:12], tcp, atol=1e-6)
        assert np.abs(tcp).max() > 0.01


def test_episodes_follow_their_seed():
    task = ManiSkillTask("PushCube-v1", image_size=S)
    task.reset(7)
    a = task.observe()
    task.reset(8)
    b = task.observe()
    task.reset(7)
    c = task.observe()
    task.close()
    np.testing.assert_array_equal(a["privileged"], c["privileged"])
    np.testing.assert_array_equal(a["image"], c["image"])
    assert not np.array_equal(a["privileged"], b["privileged"])  # another cube pose


def test_state_mode_renders_nothing():
    with ManiSkillVecEnv(["PushCube-v1"], 1, obs_mode="state", max_episode_steps=10) as env:
        obs = env.reset()
        assert "image" not in obs
        obs, *_ = env.step_chunk(np.zeros((1, 3, 8), np.float32))
        assert "image" not in obs and obs["state"].shape == (1, STATE_DIM)


def test_truncation_resets_the_env_and_keeps_its_last_obs(vec):
    vec.reset(seed=0)
    hold = np.zeros((2, 5, 8), np.float32)
    hold[..., 7] = 1.0  # gripper open, arm still: nothing is solved
    _, r, term, trunc, info = vec.step_chunk(hold)
    assert not trunc.any() and (info["episode_length"] == 5).all()
    _, r, term, trunc, info = vec.step_chunk(hold)
    assert trunc.all() and not term.any() and (r == 0).all()
    assert (info["episode_length"] == 0).all() and (info["final_episode_length"] == 10).all()
    assert info["final_obs"]["image"].shape == (2, S, S, 3)


def test_grasp_bonus_is_paid_once_per_episode():
    from pirl_core.data.maniskill_demos import _make_planner_env, plan_episode
    from pirl_core.envs.chunked import episode_seed

    planner = _make_planner_env("PickCube-v1")
    actions = plan_episode(planner, "PickCube-v1", episode_seed(0, 0, 0))
    planner.close()
    assert actions is not None
    with ManiSkillVecEnv(["PickCube-v1"], 1, image_size=S, obs_mode="state",
                         max_episode_steps=len(actions) + 10, seed=0, grasp_reward=0.1) as env:
        env.reset()
        rewards, done = [], False
        for t in range(0, len(actions), 5):
            _, r, term, trunc, _ = env.step_chunk(actions[None, t:t + 5])
            rewards.append(float(r[0]))
            if term[0] or trunc[0]:
                done = bool(term[0])
                break
    assert done  # the planned episode succeeds in the policy's control mode
    assert sum(rewards) == pytest.approx(1.1)  # success 1 + one grasp bonus, however long it held
    assert sum(1 for r in rewards if r == pytest.approx(0.1)) == 1


def test_task_lists_are_checked():
    with pytest.raises(ValueError, match="mix robots"):
        robot_of(["PickCube-v1", SIMPLER[0]])
    with pytest.raises(ValueError, match="NoSuchTask-v1"):
        robot_of(["NoSuchTask-v1"])
    assert robot_of(MINI).action_dim == 8


def test_missing_asset_pack_is_named(monkeypatch, tmp_path):
    from mani_skill.utils.assets.data import DATA_SOURCES

    for pack in ("bridge_v2_real2sim", "widowx250s"):
        monkeypatch.setattr(DATA_SOURCES[pack], "output_dir", tmp_path)
    with pytest.raises(MissingAssetError, match="bridge_v2_real2sim") as err:
        check_assets("PutCarrotOnPlateInScene-v1")
    assert str(tmp_path) in str(err.value) and "download_asset" in str(err.value)
    # the env refuses before ManiSkill could stop at its interactive download prompt
    with pytest.raises(MissingAssetError):
        ManiSkillTask("PutCarrotOnPlateInScene-v1")
    (tmp_path / "tasks" / "bridge_v2_real2sim_dataset").mkdir(parents=True)
    with pytest.raises(MissingAssetError, match="widowx250s"):
        check_assets("PutCarrotOnPlateInScene-v1")
    (tmp_path / "robots" / "widowx").mkdir(parents=True)
    check_assets("PutCarrotOnPlateInScene-v1")  # both packs present: no error
    check_assets("PickCube-v1")  # needs no pack


def test_every_supported_task_has_an_instruction():
    from pirl_core.envs.maniskill import ROBOT_OF

    assert set(ROBOT_OF) <= set(load_instructions())
