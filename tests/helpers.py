"""Shared test builders (imported by tests; not a test module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pirl_core.agent import Agent
from pirl_core.config import CriticConfig, PolicyConfig, PPOConfig, SamplerConfig
from pirl_core.policies.base import Observation
from pirl_core.rollout import Batch, make_batch
from pirl_core.policies.small import SmallVLA


def tiny_agent(sampler: SamplerConfig, placement: str = "expert", seed: int = 0,
               freeze_prefix: bool = True) -> Agent:
    """A ~50k-parameter SmallVLA agent for 64 px MetaWorld tests, output layer randomised (its
    zero initialisation would make every sampled chain identical)."""
    torch.manual_seed(seed)
    cfg = PolicyConfig(hidden_dim=32, num_layers=1, num_heads=2, freeze_prefix=freeze_prefix)
    policy = SmallVLA(4, 5, 4, cfg, image_size=64)
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


def act_batch(agent: Agent, observations: list[Observation], seed: int = 0) -> Batch:
    """A Batch of the agent's own chunks on `observations` (one per rollout step), rewards drawn
    at random: enough for an update, no simulator."""
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    steps = [agent.act(obs, gen) for obs in observations]
    b = observations[0].batch_size
    rewards = [(rng.random(b) < 0.5).astype(np.float32) for _ in steps]
    zeros = [np.zeros(b, bool)] * len(steps)
    return make_batch(steps, rewards, zeros, zeros, [torch.zeros(b)] * len(steps),
                      torch.zeros(b), PPOConfig())


def cfm_losses(policy, obs: Observation, actions: torch.Tensor, steps: int,
               lr: float = 3e-3) -> list[float]:
    """Adam on the SFT parameters for `steps` CFM steps on one fixed batch; the loss per step."""
    from pirl_core.config import SFTConfig
    from pirl_core.sft import SFTData, cfm_batch_loss

    data = SFTData(policy.vision_features(obs.images), obs.state, actions, obs.instructions,
                   torch.zeros(len(actions), dtype=torch.long))
    opt = torch.optim.Adam(policy.configure_stage("sft"), lr=lr)
    gen, rows, losses = torch.Generator().manual_seed(0), torch.arange(len(actions)), []
    for _ in range(steps):
        loss = cfm_batch_loss(policy, data, rows, SFTConfig(), gen)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def replayed_logprobs(policy, obs: Observation, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(rollout log-prob, learner's replayed log-prob with grad) of one K = 4 chain of `method`
    on `obs`, the policy in train mode for the replay as in an update."""
    from pirl_core.logprob import chain_logprob
    from pirl_core.nn import NoiseHead
    from pirl_core.policies import policy_noise_std, policy_velocity
    from pirl_core.samplers import replay_transitions, sample_chain

    cfg = SamplerConfig(method=method, num_steps=4, noise_level=0.5)
    cache = policy.encode_prefix(obs).detach()
    velocity, (h, d) = policy_velocity(policy), policy.action_shape
    head = NoiseHead(policy.expert_feature_dim, h * d, min_std=cfg.noise_min_std,
                     max_std=cfg.noise_max_std)
    noise_fn = policy_noise_std(head, policy.action_shape) if method == "flow_noise" else None
    with torch.no_grad():
        chain = sample_chain(velocity, (cache, obs.state), cfg, obs.batch_size,
                             policy.action_shape, generator=torch.Generator().manual_seed(3),
                             noise_std_fn=noise_fn)
    old = chain_logprob(chain, chain.means, chain.stds, cfg)
    policy.train()
    try:
        new = chain_logprob(chain, *replay_transitions(velocity, chain, (cache, obs.state), cfg,
                                                       noise_fn), cfg)
    finally:
        policy.eval()
    return old, new
