"""The GR00T-style policy: a DiT head that cross-attends to the VLM tokens, dropout active in SFT
and gone in RL (paper App. C), exact log-prob replay once it is gone, the critic on the head,
and CFM training through the whole head."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from pirl_core.agent import Agent  # noqa: E402
from pirl_core.config import CriticConfig, PolicyConfig, PPOConfig, SamplerConfig  # noqa: E402
from pirl_core.policies import FlowPolicy  # noqa: E402
from pirl_core.policies.encoders import load_instruction_encoder  # noqa: E402
from pirl_core.policies.gr00t import GR00TPolicy  # noqa: E402
from pirl_core.update import ppo_update  # noqa: E402
from tests.helpers import act_batch, cfm_losses  # noqa: E402
from tests.test_policies_small import make_obs  # noqa: E402

H, D, P, S = 5, 4, 4, 64
CFG = PolicyConfig(name="gr00t", hidden_dim=32, num_layers=1, num_heads=2, expert_hidden_dim=32,
                   head_dropout=0.2)


@pytest.fixture(scope="module")
def text_encoder():
    return load_instruction_encoder()


def make_policy(text_encoder, seed: int = 0) -> GR00TPolicy:
    torch.manual_seed(seed)
    pol = GR00TPolicy(D, H, P, CFG, image_size=S, instruction_encoder=text_encoder)
    with torch.no_grad():  # zero-initialised gates and output: give them weight, as after SFT
        for block in pol.blocks:
            block.ada.weight.normal_(0, 0.2)
        pol.action_out.weight.normal_(0, 0.2)
    return pol


def test_interface_and_head_shapes(text_encoder):
    pol = make_policy(text_encoder).eval()
    assert isinstance(pol, FlowPolicy)
    assert not hasattr(pol, "expert_blocks")  # SmallVLA's own expert is not built
    assert [b.cross for b in pol.blocks] == [True, False]
    obs = make_obs(batch=3)
    u, feats = pol.velocity(torch.randn(3, H, D), torch.rand(3), pol.encode_prefix(obs), obs.state)
    assert u.shape == (3, H, D) and feats.shape == (3, CFG.expert_hidden_dim)


def test_dropout_acts_in_sft_and_is_gone_in_rl(text_encoder):
    pol = make_policy(text_encoder)
    obs = make_obs(batch=3, seed=1)
    x, tau = torch.randn(3, H, D), torch.full((3,), 0.4)
    pol.configure_stage("sft")
    pol.train()
    cache = pol.encode_prefix(obs)
    a, _ = pol.velocity(x, tau, cache, obs.state)
    b, _ = pol.velocity(x, tau, cache, obs.state)
    assert not torch.equal(a, b)  # two dropout masks
    pol.configure_stage("rl")
    assert not any(isinstance(m, nn.Dropout) for m in pol.modules())
    a, _ = pol.velocity(x, tau, cache, obs.state)
    b, _ = pol.velocity(x, tau, cache, obs.state)
    assert torch.equal(a, b)


def test_timestep_is_bucketed_as_gr00t(text_encoder):
    pol = make_policy(text_encoder).eval()
    obs = make_obs(batch=2, seed=2)
    cache, x = pol.encode_prefix(obs), torch.randn(2, H, D)
    same = pol.velocity(x, torch.full((2,), 0.5001), cache, obs.state)[0]
    assert torch.equal(same, pol.velocity(x, torch.full((2,), 0.5004), cache, obs.state)[0])
    assert not torch.equal(same, pol.velocity(x, torch.full((2,), 0.52), cache, obs.state)[0])


def test_ppo_update_on_the_head_ratio_one(text_encoder):
    pol = make_policy(text_encoder)
    pol.configure_stage("rl")
    torch.manual_seed(0)
    agent = Agent(pol, SamplerConfig(method="flow_sde", num_steps=3),
                  CriticConfig(placement="expert"))
    assert not agent.prefix_trains
    batch = act_batch(agent, [make_obs(batch=4, seed=s) for s in range(2)])
    head = [p.detach().clone() for p in pol.expert_parameters()]
    prefix = [p.detach().clone() for p in pol.prefix_parameters()]
    actor, critic = agent.trainable_parameters()
    metrics = ppo_update(agent, batch, PPOConfig(num_minibatches=2, update_epochs=2),
                         torch.optim.Adam(actor, lr=1e-3), torch.optim.Adam(critic, lr=1e-3),
                         torch.Generator().manual_seed(0))
    assert metrics["losses/first_ratio_dev"] == 0.0
    assert any(not torch.equal(p, p0) for p, p0 in zip(pol.expert_parameters(), head))
    assert all(torch.equal(p, p0) for p, p0 in zip(pol.prefix_parameters(), prefix))


def test_cfm_steps_reduce_the_loss(text_encoder):
    torch.manual_seed(0)
    pol = GR00TPolicy(D, H, P, CFG, image_size=S, instruction_encoder=text_encoder)
    losses = cfm_losses(pol, make_obs(batch=4, seed=3), torch.randn(4, H, D).clamp(-1, 1),
                        steps=60)
    # fresh (tau, eps) every step make single losses noisy: compare 10-step means (measured
    # 1.67 -> 1.07, with the gates starting at zero)
    assert sum(losses[-10:]) / 10 < 0.8 * sum(losses[:10]) / 10
