"""Slow: the demos -> SFT -> evaluation chain through pirl_core on the real simulator, at a size
that still learns something: SFT on scripted demos must cut the CFM loss, and the SFT policy must
run the canonical evaluator in both modes (success itself is the pipeline's figure, not a
test's)."""

from __future__ import annotations

import pytest
import torch

from pirl_core.agent import Agent
from pirl_core.config import (CriticConfig, EvalConfig, PolicyConfig, ReportConfig, SamplerConfig,
                              SFTConfig)
from pirl_core.data.demos import record_metaworld_demos
from pirl_core.data.lerobot_format import read_dataset
from pirl_core.evaluate import evaluate_modes, metaworld_env_factory
from pirl_core.policies.small import SmallVLA
from pirl_core.sft import build_sft_data, train_sft

TASKS = ("button-press-topdown-v3", "drawer-close-v3")


@pytest.mark.slow
def test_demos_sft_and_evaluation_on_the_simulator(tmp_path):
    record_metaworld_demos(tmp_path / "demos", TASKS, 2, 64, 150, seed=0)
    torch.manual_seed(0)
    policy = SmallVLA(4, 5, 4, PolicyConfig(hidden_dim=64, num_layers=1, num_heads=2),
                      image_size=64)
    data = build_sft_data(read_dataset(tmp_path / "demos"), policy, "observation.images.corner", 5)
    losses = train_sft(policy, data, SFTConfig(num_steps=300, batch_size=32),
                       torch.Generator().manual_seed(0))
    first, last = sum(losses[:20]) / 20, sum(losses[-20:]) / 20
    assert last < 0.5 * first, (first, last)

    policy.configure_stage("rl")
    agent = Agent(policy, SamplerConfig(method="flow_noise"), CriticConfig())
    results = evaluate_modes(agent, metaworld_env_factory(64, "rgb", 100), TASKS,
                             EvalConfig(episodes_per_task=2), ReportConfig(bootstrap_samples=100),
                             seed=1000)
    for mode, r in results.items():
        assert len(r.records) == 4 and 0.0 <= r.mean_success <= 1.0
        assert r.ci_low <= r.mean_success <= r.ci_high
