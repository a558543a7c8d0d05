"""Config -> objects: task suites, method overrides, policy and agent construction."""

from __future__ import annotations

import pytest

from pirl_core.config import Config, ConfigError, EnvConfig, load_config
from pirl_core.factory import MINI, MT10, benchmark_tasks, make_agent, make_policy, method_overrides


def test_default_suite_is_mini_and_suites_expand():
    assert benchmark_tasks(EnvConfig()) == MINI
    assert set(MINI) < set(MT10) and len(MINI) == 6
    assert benchmark_tasks(EnvConfig(tasks=("mt10",))) == MT10
    assert len(benchmark_tasks(EnvConfig(tasks=("mt50",)))) == 50
    assert benchmark_tasks(EnvConfig(tasks=("reach-v3", "mt10"))) == MT10  # deduplicated, ordered


def test_unknown_task_is_named():
    with pytest.raises(ConfigError, match="'reach-v9'"):
        benchmark_tasks(EnvConfig(tasks=("reach-v9",)))


def test_method_overrides_load_and_unknown_method_is_named():
    cfg = load_config("params.yaml", overrides=method_overrides("flow_sde"))
    assert (cfg.sampler.method, cfg.sampler.mdp, cfg.sampler.schedule) == (
        "flow_sde", "two_layer", "hybrid")
    with pytest.raises(ConfigError, match="'ppo_magic'"):
        method_overrides("ppo_magic")


def test_policy_and_agent_follow_the_config():
    cfg = Config()
    policy = make_policy(cfg)
    assert policy.action_shape == (cfg.env.chunk_size, 4)
    agent = make_agent(cfg, policy)
    assert agent.noise_head is not None and agent.placement == cfg.critic.placement


def test_maniskill_suites_dims_and_keys():
    from pirl_core.config import ManiSkillEnvConfig
    from pirl_core.envs.maniskill import MINI as MS_MINI, SIMPLER
    from pirl_core.factory import image_key

    env = ManiSkillEnvConfig()
    assert benchmark_tasks(env) == MS_MINI == ("PickCube-v1", "PushCube-v1", "StackCube-v1")
    assert benchmark_tasks(ManiSkillEnvConfig(tasks=("simpler",))) == SIMPLER
    assert benchmark_tasks(ManiSkillEnvConfig(tasks=("PushCube-v1", "mini"))) == (
        "PushCube-v1", "PickCube-v1", "StackCube-v1")
    with pytest.raises(ConfigError, match="maniskill task or suite 'reach-v3'"):
        benchmark_tasks(ManiSkillEnvConfig(tasks=("reach-v3",)))
    cfg = load_config("params.yaml", benchmark="maniskill")
    policy = make_policy(cfg)
    assert policy.action_shape == (cfg.env.chunk_size, 8) and policy.state_dim == 15
    assert image_key(cfg.env) == "observation.images.base_camera"
    assert image_key(EnvConfig()) == "observation.images.corner"


def test_libero_suites_dims_cameras_and_observation():
    import numpy as np

    from pirl_core.config import LiberoEnvConfig
    from pirl_core.factory import image_keys
    from pirl_core.rollout import to_observation

    mini = benchmark_tasks(LiberoEnvConfig())
    assert mini == ("libero_spatial/0", "libero_spatial/1", "libero_object/0", "libero_object/1")
    assert benchmark_tasks(LiberoEnvConfig(tasks=("libero_goal/3", "long"))) == (
        "libero_goal/3", *(f"libero_10/{i}" for i in range(10)))
    with pytest.raises(ConfigError, match="libero task or suite 'libero_goal/12'"):
        benchmark_tasks(LiberoEnvConfig(tasks=("libero_goal/12",)))
    cfg = load_config("params.yaml", ["libero.image_size=64"], benchmark="libero")
    policy = make_policy(cfg)
    assert policy.action_shape == (cfg.env.chunk_size, 7) and policy.state_dim == 8
    assert policy.num_cameras == 2 == len(image_keys(cfg.env))
    assert image_keys(cfg.env) == ("observation.images.image", "observation.images.wrist_image")
    # a LIBERO batch: the two views stack in the policy's camera order
    obs = {"image": np.zeros((3, 64, 64, 3), np.uint8), "wrist_image": np.ones((3, 64, 64, 3),
                                                                               np.uint8),
           "state": np.zeros((3, 8), np.float32), "instruction": ["a", "b", "c"]}
    o = to_observation(obs)
    assert tuple(o.images.shape) == (3, 2, 64, 64, 3)
    assert int(o.images[:, 0].max()) == 0 and int(o.images[:, 1].min()) == 1
    assert tuple(policy.vision_features(o.images).shape[:2]) == (3, 2)


def test_maniskill_backend_follows_the_config(monkeypatch):
    import torch

    from pirl_core.config import ManiSkillEnvConfig
    from pirl_core.factory import maniskill_backend

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert maniskill_backend(ManiSkillEnvConfig()) == "physx_cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert maniskill_backend(ManiSkillEnvConfig()) == "physx_cuda"
    assert maniskill_backend(ManiSkillEnvConfig(sim_backend="physx_cpu")) == "physx_cpu"


def test_libero_envs_that_cannot_fit_in_memory_are_refused_by_name():
    from pirl_core.factory import available_memory_gb, check_scene_memory

    check_scene_memory(4, 1, available_gb=8.0)
    with pytest.raises(MemoryError, match=r"libero.group_size \(GRPO's group size, 8\)"):
        check_scene_memory(32, 8, available_gb=20.0)
    with pytest.raises(MemoryError, match="libero.num_envs"):
        check_scene_memory(12, 1, available_gb=10.0)
    assert available_memory_gb() > 0


def test_libero_runs_side_by_side_only_as_many_as_fit():
    from pirl_core.factory import parallel_runs

    lib = load_config("params.yaml", benchmark="libero")  # 4 mini tasks, 4 envs, GRPO groups of 2
    # flow_sde: 4 + 4 scenes (9.6 GB) per run; grpo: 8 + 4 (14.4 GB)
    assert parallel_runs(lib, "flow_sde", 3, available_gb=20.0) == 2
    assert parallel_runs(lib, "grpo", 3, available_gb=20.0) == 1
    assert parallel_runs(lib, "grpo", 3, available_gb=30.0) == 2
    assert parallel_runs(lib, "grpo", 3, available_gb=5.0) == 1
    assert parallel_runs(load_config("params.yaml"), "grpo", 3, available_gb=1.0) == 3  # not LIBERO
