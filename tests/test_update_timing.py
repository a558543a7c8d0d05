"""The Fig. 8 update-time measurement: three formulations on one real MetaWorld rollout each,
the measured agent untouched (timings themselves are a benchmark's job, not asserted here)."""

from __future__ import annotations

import pytest
import torch

from pirl_core.config import Config, PPOConfig, SamplerConfig
from pirl_core.envs.metaworld import MetaWorldVecEnv
from pirl_core.update_timing import FORMULATIONS, formulation_sampler, measure_update_times
from tests.helpers import tiny_agent


def test_formulations_are_the_papers_three():
    base = SamplerConfig()
    got = {name: (s.method, s.schedule, s.mdp)
           for name, s in ((n, formulation_sampler(base, n)) for n in FORMULATIONS)}
    assert got == {"one_layer_s": ("flow_noise", "all", "one_layer"),
                   "standard_two_layer_s": ("flow_sde", "all", "two_layer"),
                   "hybrid_two_layer_s": ("flow_sde", "hybrid", "two_layer")}
    with pytest.raises(ValueError, match="'three_layer_s'"):
        formulation_sampler(base, "three_layer_s")


def test_measure_update_times_leaves_the_policy_alone():
    policy = tiny_agent(SamplerConfig()).policy
    before = [p.detach().clone() for p in policy.parameters()]
    cfg = Config(ppo=PPOConfig(num_steps=2, update_epochs=1, num_minibatches=1))
    with MetaWorldVecEnv(("reach-v3", "button-press-topdown-v3"), 2, image_size=64,
                         max_episode_steps=20) as envs:
        out = measure_update_times(cfg, policy, envs, repeats=2)
    for name in FORMULATIONS:
        assert out[name] > 0 and len(out["all_s"][name]) == 2
    assert out["rows_per_update"] == 4 and out["denoise_steps"] == cfg.sampler.num_steps
    assert all(torch.equal(a, b) for a, b in zip(before, policy.parameters()))
    with pytest.raises(ValueError, match="repeats"):
        measure_update_times(cfg, policy, envs, repeats=0)
