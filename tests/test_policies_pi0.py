"""The pi0 adapter on transformers' PI0: pirl's ODE chain at noise level 0 ends where the model's
own `sample_actions` does (the t = 1 - tau, u = -v conversion), padded action dims are carried
by the chain and cut for the env, a saved HF-layout directory loads back to the same velocities,
log-probs replay exactly, the parameter groups per stage, and bad inputs named in errors.

Every model here is a tiny random config the tests build themselves (~0.3 M parameters).
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
from pirl_core.policies import (  # noqa: E402
    FlowPolicy,
    Observation,
    policy_velocity,
)
from pirl_core.policies.pi0 import PI0Policy, make_pi0_policy  # noqa: E402
from pirl_core.policies.pi0_build import (  # noqa: E402
    build_pi0,
    byte_tokenizer,
    load_pi0,
    save_pi0,
)
from pirl_core.samplers import ode_config, sample_chain  # noqa: E402
from tests.helpers import act_batch, cfm_losses, replayed_logprobs  # noqa: E402

B, H, D, P, S = 3, 5, 4, 4, 32
CFG = PolicyConfig(name="pi0", hidden_dim=64, num_layers=2, num_heads=4, expert_hidden_dim=32,
                   patch_size=8, max_text_tokens=40)
TASKS = ("open the drawer", "press the button", "push the puck to the goal")


def make_obs(batch: int = B, seed: int = 0, cameras: int = 1, state_dim: int = P) -> Observation:
    g = torch.Generator().manual_seed(seed)
    shape = (batch, S, S, 3) if cameras == 1 else (batch, cameras, S, S, 3)
    images = torch.randint(0, 256, shape, generator=g, dtype=torch.uint8)
    return Observation(images, torch.randn(batch, state_dim, generator=g),
                       tuple(TASKS[i % len(TASKS)] for i in range(batch)))


def make_policy(action_dim: int = D, model_action_dim: int = D, cameras: int = 1,
                seed: int = 0) -> PI0Policy:
    torch.manual_seed(seed)
    model, tok = build_pi0(CFG, model_action_dim, P, H, S)
    # pi0 zero-initialises nothing, but give the output layer weight so velocities differ clearly
    nn.init.normal_(model.action_out_proj.weight, std=0.2)
    return PI0Policy(model, tok, CFG, action_dim, P, num_cameras=cameras).eval()


@pytest.fixture(scope="module")
def policy() -> PI0Policy:
    return make_policy()


def own_sampler(policy: PI0Policy, obs: Observation, noise: torch.Tensor, steps: int):
    ids, mask = policy.prompt(obs.instructions)
    pixels = policy.pixel_values(policy.vision_features(obs.images))
    cameras = torch.ones(pixels.shape[:2], dtype=torch.bool)
    return policy.model.sample_actions(policy.padded_state(obs.state), ids, pixels,
                                       noise=noise.clone(), attention_mask=mask,
                                       pixel_attention_mask=cameras, num_steps=steps)


def ode_chain(policy: PI0Policy, obs: Observation, steps: int, noise_level: float = 0.0):
    cfg = SamplerConfig(method="flow_sde", num_steps=steps, noise_level=noise_level)
    if noise_level == 0.0:
        cfg = ode_config(cfg)
    cache = policy.encode_prefix(obs)
    with torch.no_grad():
        return sample_chain(policy_velocity(policy), (cache, obs.state), cfg, obs.batch_size,
                            policy.action_shape, torch.Generator().manual_seed(1))


def test_implements_flow_policy(policy):
    assert isinstance(policy, FlowPolicy)
    assert policy.action_shape == (H, D)
    cache = policy.encode_prefix(make_obs())
    n_tokens = (S // CFG.patch_size) ** 2 + CFG.max_text_tokens
    assert cache.keys.shape == (B, CFG.num_layers, 1, n_tokens, CFG.hidden_dim // CFG.num_heads)
    assert cache.mask.shape == (B, n_tokens) and cache.pooled.shape == (B, CFG.hidden_dim)
    u, feats = policy.velocity(torch.randn(B, H, D), torch.rand(B), cache, make_obs().state)
    assert u.shape == (B, H, D) and u.dtype == torch.float32
    assert feats.shape == (B, policy.expert_feature_dim)


@pytest.mark.parametrize("steps", [1, 4, 10])
def test_ode_chain_matches_model_sample_actions(policy, steps):
    obs = make_obs(seed=steps)
    chain = ode_chain(policy, obs, steps)
    ref = own_sampler(policy, obs, chain.states[:, 0], steps)
    # grids differ in the last bit: pirl steps tau = k/K, the model t = 1 - k/K
    torch.testing.assert_close(chain.actions, ref, rtol=0, atol=1e-5)
    assert not torch.equal(chain.actions, chain.states[:, 0])


def test_velocity_is_the_negated_pi0_velocity_at_one_minus_tau(policy):
    obs = make_obs(seed=5)
    cache = policy.encode_prefix(obs)
    x, tau = torch.randn(B, H, D), torch.tensor([0.0, 0.3, 0.9])
    u, _ = policy.velocity(x, tau, cache, obs.state)
    ids, mask = policy.prompt(obs.instructions)
    pixels = policy.pixel_values(policy.vision_features(obs.images))
    with torch.no_grad():
        out = policy.model(state=policy.padded_state(obs.state), noise=x, timestep=1 - tau,
                           input_ids=ids, pixel_values=pixels, attention_mask=mask,
                           pixel_attention_mask=torch.ones(B, 1, dtype=torch.bool))
    torch.testing.assert_close(u, -out.logits, rtol=0, atol=1e-5)


def test_padded_action_dims_ride_in_the_chain_and_are_cut_for_the_env():
    pol = make_policy(action_dim=3, model_action_dim=6)
    assert pol.action_shape == (H, 6)
    obs = make_obs(seed=7)
    chain = ode_chain(pol, obs, 4)
    torch.testing.assert_close(chain.actions, own_sampler(pol, obs, chain.states[:, 0], 4),
                               rtol=0, atol=1e-5)
    assert pol.env_actions(chain.actions).shape == (B, H, 3)
    assert torch.equal(pol.env_actions(chain.actions), chain.actions[..., :3])


def test_two_cameras_take_two_image_blocks():
    pol = make_policy(cameras=2)
    obs = make_obs(cameras=2)
    ids, _ = pol.prompt(obs.instructions)
    assert int((ids == pol.image_token_id).sum(1)[0]) == 2 * (S // CFG.patch_size) ** 2
    chain = ode_chain(pol, obs, 2)
    torch.testing.assert_close(chain.actions, own_sampler(pol, obs, chain.states[:, 0], 2),
                               rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="2 camera"):
        pol.encode_prefix(make_obs(cameras=1))


def test_save_and_load_a_local_directory(policy, tmp_path):
    save_pi0(policy.model, policy.tokenizer, tmp_path / "pi0")
    assert (tmp_path / "pi0" / "model.safetensors").is_file()
    loaded = make_pi0_policy(replace(CFG, checkpoint=str(tmp_path / "pi0")), D, P, H, S, 1).eval()
    obs = make_obs(seed=9)
    x, tau = torch.randn(B, H, D), torch.rand(B)
    u0, _ = policy.velocity(x, tau, policy.encode_prefix(obs), obs.state)
    u1, _ = loaded.velocity(x, tau, loaded.encode_prefix(obs), obs.state)
    assert torch.equal(u0, u1)
    assert torch.equal(loaded.prompt(obs.instructions)[0], policy.prompt(obs.instructions)[0])
    with pytest.raises(ValueError, match="env.chunk_size is 7"):
        make_pi0_policy(replace(CFG, checkpoint=str(tmp_path / "pi0")), D, P, 7, S, 1)


def test_missing_checkpoint_directory_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_pi0(tmp_path / "nowhere")


@pytest.mark.parametrize("method", ["flow_sde", "flow_noise"])
def test_logprob_replays_exactly(policy, method):
    old, new = replayed_logprobs(policy, make_obs(seed=11), method)
    assert new.requires_grad and torch.isfinite(new).all()
    assert torch.equal(new.detach(), old)


def test_parameter_groups(policy):
    vlm = {id(p) for p in policy.model.model.vlm.parameters()}
    rl = policy.configure_stage("rl")
    assert rl and not any(id(p) in vlm for p in rl)
    assert not any(p.requires_grad for p in policy.model.model.vlm.parameters())
    sft = policy.configure_stage("sft")
    assert vlm <= {id(p) for p in sft}
    assert not policy.model.model.dit.embed_tokens.weight.requires_grad
    assert id(policy.model.model.dit.embed_tokens.weight) not in {id(p) for p in sft}
    policy.configure_stage("rl")
    with pytest.raises(ValueError, match="stage"):
        policy.parameters_for("eval")


def test_cfm_steps_reduce_the_loss_through_the_whole_model():
    pol = make_policy(model_action_dim=6, seed=1)
    actions = torch.randn(4, H, D).clamp(-1, 1)  # the env's D, padded to 6 by the loss
    losses = cfm_losses(pol, make_obs(batch=4, seed=12), actions, steps=30)
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5


def test_long_instruction_is_refused_by_name(policy):
    long = "pick up the black bowl between the plate and the ramekin and place it on the plate"
    with pytest.raises(ValueError, match="max_text_tokens is 40"):
        policy.prompt((long,))


def test_byte_tokenizer_covers_any_text():
    tok = byte_tokenizer()
    assert len(tok) == 260
    ids = tok("<bos>put the mug – é\n", add_special_tokens=False)["input_ids"]
    assert ids[0] == tok.bos_token_id and max(ids[1:]) < 256
    assert tok.decode(ids[1:]) == "put the mug – é\n"


def test_lora_starts_as_the_identity_and_is_all_the_vlm_trains_in_rl():
    from pirl_core.agent import Agent
    from pirl_core.config import CriticConfig, PPOConfig
    from pirl_core.update import ppo_update

    pol = make_policy(seed=3)
    pol.cfg = replace(CFG, freeze_prefix=False, lora_rank=4, lora_alpha=8)
    obs = make_obs(seed=13)
    x, tau = torch.randn(B, H, D), torch.rand(B)
    before, _ = pol.velocity(x, tau, pol.encode_prefix(obs), obs.state)
    pol.attach_lora(4, 8)
    after, _ = pol.velocity(x, tau, pol.encode_prefix(obs), obs.state)
    assert torch.equal(before, after)
    rl = pol.configure_stage("rl")
    lora = [p for n, p in pol.model.model.vlm.named_parameters() if "lora_" in n]
    assert lora and all(p.requires_grad for p in lora)
    frozen = [p for n, p in pol.model.model.vlm.named_parameters() if "lora_" not in n]
    assert not any(p.requires_grad for p in frozen)
    assert {id(p) for p in lora} <= {id(p) for p in rl}

    torch.manual_seed(0)
    agent = Agent(pol, SamplerConfig(method="flow_sde", num_steps=3, schedule="hybrid",
                                     mdp="two_layer"), CriticConfig(placement="vlm"))
    assert agent.prefix_trains
    batch = act_batch(agent, [make_obs(seed=s) for s in range(2)])
    assert batch.obs is not None and len(batch.obs.instructions) == len(batch)
    lora_b = [p.detach().clone() for n, p in pol.model.model.vlm.named_parameters()
              if "lora_B" in n]
    actor, critic = agent.trainable_parameters()
    metrics = ppo_update(agent, batch, PPOConfig(num_minibatches=2, update_epochs=2),
                         torch.optim.Adam(actor, lr=1e-3), torch.optim.Adam(critic, lr=1e-3),
                         torch.Generator().manual_seed(0))
    assert metrics["losses/first_ratio_dev"] == 0.0
    moved = [p for p, p0 in zip([p for n, p in pol.model.model.vlm.named_parameters()
                                 if "lora_B" in n], lora_b) if not torch.equal(p, p0)]
    assert moved, "the PPO update did not reach the LoRA adapters"


def test_frozen_vlm_batches_carry_no_observations(policy):
    from pirl_core.agent import Agent
    from pirl_core.config import CriticConfig

    policy.configure_stage("rl")
    agent = Agent(policy, SamplerConfig(method="flow_sde", num_steps=2), CriticConfig())
    assert not agent.prefix_trains
    assert act_batch(agent, [make_obs()]).obs is None
