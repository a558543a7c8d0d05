"""The pi0.5 variant: pirl's ODE chain at noise level 0 ends where an Euler loop in openpi's
convention does, time reaches the expert only through the adaptive norms (zero-initialised:
closed gates), the state only through the prompt, a saved directory loads back to the same
velocities, log-probs replay exactly, PPO with LoRA on its VLM, and bad inputs named in errors.

Every model here is a tiny random config the tests build themselves.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from dataclasses import replace  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from pirl_core.config import PolicyConfig, SamplerConfig  # noqa: E402
from pirl_core.policies import FlowPolicy, Observation, policy_velocity  # noqa: E402
from pirl_core.policies.pi0_build import build_pi0  # noqa: E402
from pirl_core.policies.pi05 import (  # noqa: E402
    AdaRMSNorm,
    PI05Policy,
    discretize_state,
    load_pi05,
    make_pi05_policy,
    save_pi05,
)
from pirl_core.samplers import ode_config, sample_chain  # noqa: E402
from tests.helpers import act_batch, cfm_losses, replayed_logprobs  # noqa: E402

B, H, D, P, S = 3, 5, 4, 4, 32
CFG = PolicyConfig(name="pi05", hidden_dim=64, num_layers=2, num_heads=4, expert_hidden_dim=32,
                   patch_size=8, max_text_tokens=96)
TASKS = ("open the drawer", "press the button", "push the puck to the goal")


def make_obs(batch: int = B, seed: int = 0) -> Observation:
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch, S, S, 3), generator=g, dtype=torch.uint8)
    return Observation(images, torch.rand(batch, P, generator=g) * 2 - 1,
                       tuple(TASKS[i % len(TASKS)] for i in range(batch)))


def make_policy(seed: int = 0, open_gates: bool = True) -> PI05Policy:
    torch.manual_seed(seed)
    model, tok = build_pi0(CFG, D, P, H, S)
    pol = PI05Policy(model, tok, CFG, D, P)
    nn.init.normal_(pol.model.action_out_proj.weight, std=0.2)
    if open_gates:  # a trained expert's norms are not the zero init; give them weight
        for m in pol.modules():
            if isinstance(m, AdaRMSNorm):
                nn.init.normal_(m.modulation.weight, std=0.2)
    return pol.eval()


@pytest.fixture(scope="module")
def policy() -> PI05Policy:
    return make_policy()


def ode_chain(policy: PI05Policy, obs: Observation, steps: int):
    cfg = ode_config(SamplerConfig(method="flow_sde", num_steps=steps, noise_level=0.0))
    cache = policy.encode_prefix(obs)
    with torch.no_grad():
        chain = sample_chain(policy_velocity(policy), (cache, obs.state), cfg, obs.batch_size,
                             policy.action_shape, torch.Generator().manual_seed(1))
    return chain, cache


def test_implements_flow_policy_without_pi0s_expert(policy):
    assert isinstance(policy, FlowPolicy) and policy.action_shape == (H, D)
    assert policy.model.model.dit is None and policy.model.embed_action_time is None
    cache = policy.encode_prefix(make_obs())
    u, feats = policy.velocity(torch.randn(B, H, D), torch.rand(B), cache, make_obs().state)
    assert u.shape == (B, H, D) and u.dtype == torch.float32
    assert feats.shape == (B, policy.expert_feature_dim)
    assert policy.prefix_features(cache).shape == (B, CFG.hidden_dim)


@pytest.mark.parametrize("steps", [1, 4, 10])
def test_ode_chain_matches_an_euler_loop_in_openpi_time(policy, steps):
    obs = make_obs(seed=steps)
    chain, cache = ode_chain(policy, obs, steps)
    ref = policy.sample_actions(cache, chain.states[:, 0], steps)
    torch.testing.assert_close(chain.actions, ref, rtol=0, atol=1e-5)
    assert not torch.equal(chain.actions, chain.states[:, 0])


def test_state_reaches_the_expert_only_through_the_prompt(policy):
    obs = make_obs(seed=2)
    x, tau = torch.randn(B, H, D), torch.rand(B)
    cache = policy.encode_prefix(obs)
    u0, _ = policy.velocity(x, tau, cache, obs.state)
    u1, _ = policy.velocity(x, tau, cache, torch.zeros_like(obs.state))
    assert torch.equal(u0, u1)  # no state token
    moved = Observation(obs.images, -obs.state, obs.instructions)
    u2, _ = policy.velocity(x, tau, policy.encode_prefix(moved), moved.state)
    assert not torch.allclose(u0, u2)


def test_prompt_is_openpis_with_the_state_in_256_bins(policy):
    state = torch.tensor([[-1.0, -0.999, 0.0, 1.0], [2.0, -3.0, 0.5, 0.99]])
    assert discretize_state(state).tolist() == [[0, 0, 128, 255], [255, 0, 192, 254]]
    ids, mask = policy.prompt(("open the drawer", "press"), state=state)
    n_img = policy.tokens_per_image
    text = policy.tokenizer.decode(ids[0, n_img:][mask[0, n_img:].bool()].tolist(),
                                   skip_special_tokens=True)
    assert text == "Task: open the drawer, State: 0 0 128 255;\nAction: "
    # openpi's cleaning, and a short state zero-padded to the model's width (bin 128)
    ids, mask = policy.prompt((" open_the\ndrawer ",), state=state[:1, :2])
    text = policy.tokenizer.decode(ids[0, n_img:][mask[0, n_img:].bool()].tolist(),
                                   skip_special_tokens=True)
    assert text == "Task: open the drawer, State: 0 0 128 128;\nAction: "
    with pytest.raises(ValueError, match="one state row per instruction"):
        policy.prompt(("open the drawer",))
    with pytest.raises(ValueError, match="max_text_tokens is 96"):
        policy.prompt(("x" * 80,), state=state[:1])


def test_time_acts_only_through_the_adaptive_norms():
    pol = make_policy(open_gates=False)
    obs = make_obs(seed=3)
    cache = pol.encode_prefix(obs)
    x = torch.randn(B, H, D)
    u0, _ = pol.velocity(x, torch.full((B,), 0.1), cache, obs.state)
    u1, _ = pol.velocity(x, torch.full((B,), 0.9), cache, obs.state)
    # closed gates (zero init): every layer is skipped, so neither time nor the prefix matter yet
    assert torch.equal(u0, u1)
    nn.init.normal_(pol.expert.norm.modulation.weight, std=0.2)
    u2, _ = pol.velocity(x, torch.full((B,), 0.9), cache, obs.state)
    assert not torch.allclose(u0, u2)


def test_save_and_load_a_local_directory(policy, tmp_path):
    save_pi05(policy, tmp_path / "pi05")
    loaded = make_pi05_policy(replace(CFG, checkpoint=str(tmp_path / "pi05")), D, P, H, S,
                              1).eval()
    obs = make_obs(seed=9)
    x, tau = torch.randn(B, H, D), torch.rand(B)
    u0, _ = policy.velocity(x, tau, policy.encode_prefix(obs), obs.state)
    u1, _ = loaded.velocity(x, tau, loaded.encode_prefix(obs), obs.state)
    assert torch.equal(u0, u1)
    with pytest.raises(ValueError, match="env.chunk_size is 7"):
        load_pi05(tmp_path / "pi05", CFG, D, 1, chunk_size=7)
    (tmp_path / "pi05" / "pi05_expert.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="pi05_expert.safetensors"):
        load_pi05(tmp_path / "pi05", CFG, D, 1)


@pytest.mark.parametrize("method", ["flow_sde", "flow_noise"])
def test_logprob_replays_exactly(policy, method):
    old, new = replayed_logprobs(policy, make_obs(seed=11), method)
    assert new.requires_grad and torch.isfinite(new).all()
    assert torch.equal(new.detach(), old)


def test_parameter_groups_and_cfm_learning():
    pol = make_policy(seed=1, open_gates=False)
    vlm = {id(p) for p in pol.model.model.vlm.parameters()}
    rl = {id(p) for p in pol.configure_stage("rl")}
    assert rl and not rl & vlm
    assert {id(p) for p in pol.expert.parameters()} <= rl
    assert vlm <= {id(p) for p in pol.configure_stage("sft")}
    obs = make_obs(batch=6, seed=4)
    losses = cfm_losses(pol, obs, torch.randn(6, H, D) * 0.3, steps=40)
    assert losses[-1] < 0.7 * losses[0]


def test_ppo_with_lora_on_the_vlm():
    from pirl_core.agent import Agent
    from pirl_core.config import CriticConfig, PPOConfig
    from pirl_core.update import ppo_update

    pol = make_policy(seed=3)
    pol.cfg = replace(CFG, freeze_prefix=False, lora_rank=4, lora_alpha=8)
    pol.attach_lora(4, 8)
    pol.configure_stage("rl")
    torch.manual_seed(0)
    agent = Agent(pol, SamplerConfig(method="flow_sde", num_steps=3, schedule="hybrid",
                                     mdp="two_layer"), CriticConfig(placement="vlm"))
    batch = act_batch(agent, [make_obs(seed=s) for s in range(2)])
    lora_b = {n: p.detach().clone() for n, p in pol.model.model.vlm.named_parameters()
              if "lora_B" in n}
    actor, critic = agent.trainable_parameters()
    metrics = ppo_update(agent, batch, PPOConfig(num_minibatches=2, update_epochs=2),
                         torch.optim.Adam(actor, lr=1e-3), torch.optim.Adam(critic, lr=1e-3),
                         torch.Generator().manual_seed(0))
    assert metrics["losses/first_ratio_dev"] == 0.0
    now = dict(pol.model.model.vlm.named_parameters())
    assert any(not torch.equal(now[n], p0) for n, p0 in lora_b.items())
