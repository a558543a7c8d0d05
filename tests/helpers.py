"""Shared test builders (imported by tests; not a test module)."""

from __future__ import annotations

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
