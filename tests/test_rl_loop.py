"""One tiny RL iteration end to end on the real MetaWorld simulator: rollout -> Batch -> update.

Pins: the ratio is exactly 1 on the first minibatch of the first epoch; the update changes the
policy; truncations bootstrap; the batch has the documented shapes.
"""

from __future__ import annotations

import pytest
import torch

from pirl_core.agent import Agent
from pirl_core.config import PPOConfig, SamplerConfig
from pirl_core.envs.metaworld import MetaWorldVecEnv
from pirl_core.policies.base import Observation
from pirl_core.rollout import collect_rollout, start_envs
from pirl_core.train import run_ends
from pirl_core.update import learning_rate_at, ppo_update, training_progress
from tests.helpers import tiny_agent

TASKS = ("reach-v3", "button-press-topdown-v3")


@pytest.fixture(scope="module")
def envs():
    with MetaWorldVecEnv(TASKS, 2, image_size=64, max_episode_steps=10, seed=0) as env:
        yield env


def _agent(sampler: SamplerConfig, placement: str) -> Agent:
    return tiny_agent(sampler, placement)


CASES = [
    (SamplerConfig(method="flow_noise", num_steps=4, mdp="one_layer"), "expert"),
    (SamplerConfig(method="flow_sde", num_steps=4, schedule="hybrid", mdp="two_layer"), "vlm"),
    (SamplerConfig(method="flow_sde", num_steps=3, schedule="all", mdp="two_layer"), "expert"),
]


@pytest.mark.parametrize("sampler,placement", CASES)
def test_one_iteration_ratio_one_then_policy_moves(envs, sampler, placement):
    agent = _agent(sampler, placement)
    ppo = PPOConfig(num_steps=4, update_epochs=2, num_minibatches=1, learning_rate=1e-3)
    gen = torch.Generator().manual_seed(0)
    state = start_envs(envs, seed=0)
    batch, state, stats = collect_rollout(envs, agent, state, ppo.num_steps, ppo, gen)

    n = ppo.num_steps * envs.num_envs
    assert len(batch) == n and batch.chain.states.shape == (n, sampler.num_steps + 1, 5, 4)
    assert batch.advantages.shape == batch.returns.shape == (n,)
    assert torch.isfinite(batch.advantages).all() and torch.isfinite(batch.logprobs).all()
    # 20 steps, truncation at 10
    assert stats.env_steps == n * 5 and len(stats.episode_lengths) >= 2

    actor, critic = agent.trainable_parameters()
    before = [p.detach().clone() for p in actor]
    opts = (torch.optim.Adam(actor, lr=ppo.learning_rate),
            torch.optim.Adam(critic, lr=ppo.critic_learning_rate))
    metrics = ppo_update(agent, batch, ppo, *opts, gen)

    assert metrics["losses/first_ratio_dev"] == 0.0  # replay on the same grid: exactly 1
    # the rollout's own log-probs differ from the learner's by float noise only (a different
    # grid or observation would show up here as O(1))
    assert metrics["losses/rollout_logprob_dev"] < 1e-3
    for key in ("losses/policy_loss", "losses/value_loss", "losses/approx_kl", "losses/clipfrac",
                "losses/explained_variance"):
        assert key in metrics
    assert ("losses/entropy" in metrics) == (sampler.method == "flow_noise")
    assert any(not torch.equal(b, p) for b, p in zip(before, actor))
    # the frozen prefix did not move
    assert all(not p.requires_grad for p in agent.policy.prefix_parameters())


def test_a_deepcopied_agent_samples_through_its_own_policy():
    import copy

    agent = _agent(SamplerConfig(method="flow_noise", num_steps=2), "expert")
    twin = copy.deepcopy(agent)
    with torch.no_grad():
        for p in twin.policy.expert_parameters():
            p.add_(0.5)
    x, tau = torch.randn(1, 5, 4), torch.zeros(1)
    obs_state = torch.zeros(1, 4)
    cache = agent.policy.encode_prefix(
        Observation(torch.zeros(1, 64, 64, 3, dtype=torch.uint8), obs_state, ("reach the goal",)))
    u_a, _ = agent.velocity(x, tau, (cache, obs_state))
    u_b, _ = twin.velocity(x, tau, (cache, obs_state))
    assert not torch.equal(u_a, u_b)


def test_grpo_iteration_trains_the_actor_without_a_critic(tmp_path):
    from pirl_core.config import GRPOConfig
    from pirl_core.train import train_rl

    agent = _agent(SamplerConfig(method="flow_sde", num_steps=2, schedule="hybrid",
                                 mdp="two_layer"), "expert")
    critic_before = [p.detach().clone() for p in agent.critic.parameters()]
    ppo = PPOConfig(num_iterations=1, update_epochs=1, num_minibatches=1, checkpoint_every=0)
    with MetaWorldVecEnv(TASKS, 4, image_size=64, max_episode_steps=10, seed=0,
                         group_size=2) as env:
        history = train_rl(agent, env, ppo, 0, tmp_path, grpo=GRPOConfig(group_size=2))
    metrics = history[-1]
    assert metrics["losses/first_ratio_dev"] == 0.0
    assert "losses/value_loss" not in metrics and "losses/explained_variance" not in metrics
    assert metrics["charts/episodes"] == 4.0  # one synchronous episode per env
    assert all(torch.equal(a, b) for a, b in zip(critic_before, agent.critic.parameters()))
    assert (tmp_path / "checkpoint" / "model.safetensors").is_file()


def test_run_ends_at_the_step_budget_and_says_when_the_cap_cut_it():
    ppo = PPOConfig(num_iterations=10, total_timesteps=100, budget_minutes=1.0)
    assert run_ends(3, 99, 10.0, ppo) == (False, False)
    assert run_ends(4, 100, 10.0, ppo) == (True, False)  # the step budget: a full run
    assert run_ends(4, 50, 61.0, ppo) == (True, True)  # the wall-clock cap cut it short
    assert run_ends(4, 100, 61.0, ppo) == (True, False)  # both at once: the budget was met
    assert run_ends(10, 50, 1.0, ppo) == (True, False)  # num_iterations binds


def test_cosine_lr_follows_whichever_budget_binds_first():
    ppo = PPOConfig(num_iterations=1000, total_timesteps=100, anneal_lr="cosine")
    assert training_progress(0, 0, ppo) == 0.0
    assert training_progress(1, 50, ppo) == 0.5  # steps bind, not 1 / 1000 iterations
    assert learning_rate_at(1e-5, training_progress(1, 50, ppo), ppo) == pytest.approx(0.5e-5)
    assert learning_rate_at(1e-5, 1.0, ppo) == pytest.approx(0.0, abs=1e-20)
    assert learning_rate_at(1e-5, 0.7, PPOConfig(anneal_lr="constant")) == 1e-5


def test_a_trainable_prefix_is_re_encoded_by_the_learner():
    """policy.freeze_prefix false: the batch keeps the observations, the learner re-encodes them
    with gradients, the first ratio is still exactly 1 and the prefix moves."""
    from tests.helpers import act_batch
    from tests.test_policies_small import make_obs

    sampler = SamplerConfig(method="flow_sde", num_steps=3, schedule="hybrid", mdp="two_layer")
    agent = tiny_agent(sampler, placement="vlm", freeze_prefix=False)
    assert agent.prefix_trains
    batch = act_batch(agent, [make_obs(batch=4, seed=s, size=64) for s in range(2)])
    assert batch.obs is not None and batch.obs.images.shape[0] == len(batch) == 8
    prefix = [p.detach().clone() for p in agent.policy.prefix_parameters()]
    actor, critic = agent.trainable_parameters()
    metrics = ppo_update(agent, batch, PPOConfig(num_minibatches=2, update_epochs=2),
                         torch.optim.Adam(actor, lr=1e-3), torch.optim.Adam(critic, lr=1e-3),
                         torch.Generator().manual_seed(0))
    assert metrics["losses/first_ratio_dev"] == 0.0
    assert any(not torch.equal(p, p0) for p, p0 in zip(agent.policy.prefix_parameters(), prefix))
