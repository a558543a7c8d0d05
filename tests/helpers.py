"""Shared test builders (imported by tests; not a test module)."""

from __future__ import annotations

from pathlib import Path

import torch

from pirl_core.agent import Agent
from pirl_core.config import CriticConfig, PolicyConfig, SamplerConfig
from pirl_core.policies.small import SmallVLA


def tiny_agent(sampler: SamplerConfig, placement: str = "expert", seed: int = 0) -> Agent:
    """A ~50k-parameter SmallVLA agent for 64 px MetaWorld tests, output layer randomised (its
    zero initialisation would make every sampled chain identical)."""
    torch.manual_seed(seed)
    policy = SmallVLA(4, 5, 4, PolicyConfig(hidden_dim=32, num_layers=1, num_heads=2),
                      image_size=64)
    with torch.no_grad():
        policy.action_out.weight.normal_(0, 0.2)
    policy.configure_stage("rl")
    return Agent(policy, sampler, CriticConfig(placement=placement, num_layers=1, hidden_dim=16))


TINY_PARAMS = """preset: mini
seed: 0
policy: {hidden_dim: 32, num_layers: 1, num_heads: 2}
critic: {hidden_dim: 16, num_layers: 1}
env: {tasks: [button-press-topdown-v3], num_envs: 1, max_episode_steps: 20}
sft: {num_demos_per_task: 1, num_steps: 2, batch_size: 4}
ppo: {num_iterations: 5, total_timesteps: 20, num_steps: 2, update_epochs: 1, num_minibatches: 1,
      eval_every: 0, checkpoint_every: 0}
eval: {episodes_per_task: 1, during_rl_episodes_per_task: 1, seeds: [0, 1]}
report: {bootstrap_samples: 20}
ablation: {num_iterations: 1, lr_schedule: [constant, cosine], chunk_size: [5, 10]}
"""


def tiny_project(root: Path) -> Path:
    """A params.yaml (+ empty params/mini.yaml) for a one-task, ~50k-parameter run and an untrained
    SFT checkpoint at root/sft; returns the params path."""
    from pirl_core.checkpoint import save_checkpoint
    from pirl_core.config import load_config
    from pirl_core.factory import make_policy

    (root / "params").mkdir()
    (root / "params" / "mini.yaml").write_text("")
    (root / "params.yaml").write_text(TINY_PARAMS)
    save_checkpoint(root / "sft", {"policy": make_policy(load_config(root / "params.yaml"))})
    return root / "params.yaml"
