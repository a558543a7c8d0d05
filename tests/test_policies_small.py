"""SmallVLA and its frozen encoders: strict pretrained loading, frozen BatchNorm, the instruction
cache, the FlowPolicy interface, exact log-prob replay through the samplers, no dropout, parameter
groups per stage, and a CFM overfit check.

The encoders load once per process (module-level cache in pirl_core.policies.encoders); the
module-scoped fixtures below share them between tests.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from pirl_core.config import PolicyConfig, SamplerConfig  # noqa: E402
from pirl_core.logprob import chain_logprob  # noqa: E402
from pirl_core.losses.cfm import cfm_loss, interpolate  # noqa: E402
from pirl_core.nn import NoiseHead  # noqa: E402
from pirl_core.policies import (  # noqa: E402
    FlowPolicy,
    Observation,
    PrefixCache,
    SmallVLA,
    policy_noise_std,
    policy_velocity,
    velocity_field,
)
from pirl_core.policies.encoders import (  # noqa: E402
    MobileNetV2Features,
    load_instruction_encoder,
    load_mobilenet_state_dict,
)
from pirl_core.samplers import replay_transitions, sample_chain  # noqa: E402

B, H, D, P, S = 6, 5, 4, 4, 64
CFG = PolicyConfig(hidden_dim=64, num_layers=2, num_heads=4)
TASKS = ("open the drawer", "press the button", "push the puck to the goal")


@pytest.fixture(scope="module")
def text_encoder():
    return load_instruction_encoder()


@pytest.fixture(scope="module")
def policy(text_encoder) -> SmallVLA:
    torch.manual_seed(0)
    pol = SmallVLA(D, H, P, CFG, image_size=S, instruction_encoder=text_encoder)
    # the output layer starts at zero (u = 0); give it weights, as after SFT, so that the
    # velocity comparisons below compare something
    nn.init.normal_(pol.action_out.weight, std=0.2)
    return pol


def make_obs(batch: int = B, seed: int = 0, size: int = S,
             cameras: int | None = None) -> Observation:
    gen = torch.Generator().manual_seed(seed)
    shape = (batch, size, size, 3) if cameras is None else (batch, cameras, size, size, 3)
    images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
    return Observation(images, torch.randn(batch, P, generator=gen),
                       tuple(TASKS[i % len(TASKS)] for i in range(batch)))


# ---- frozen encoders ------------------------------------------------------------------------

def test_mobilenet_state_dict_loads_strictly():
    net = MobileNetV2Features("full")
    assert not net.load_report.missing_keys and not net.load_report.unexpected_keys
    sd = load_mobilenet_state_dict()
    assert len(sd) == 314 and "classifier.1.weight" in sd
    kept = net.state_dict()
    # the truncated network keeps the file's own tensors for every layer it keeps
    for key, value in kept.items():
        assert torch.equal(value, sd[key]), key
    assert not any(p.requires_grad for p in net.parameters())


def test_mobilenet_frozen_deterministic_and_batchnorm_never_updates():
    net = MobileNetV2Features("stride16")
    before = {k: v.clone() for k, v in net.state_dict().items()}
    net.train()  # must be ignored
    assert not net.training
    assert all(not m.training for m in net.modules())
    images = make_obs(4).images
    out1, out2 = net(images), net(images)
    assert out1.shape == (4, 96, 4, 4)
    assert torch.equal(out1, out2)
    assert not out1.requires_grad
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), f"{k} changed"
    # uint8 channels-last and float [0, 1] channels-first give the same features
    as_float = images.float().div(255).permute(0, 3, 1, 2)
    torch.testing.assert_close(net(as_float), out1)


def test_instruction_encoder_cache_and_semantics(text_encoder):
    a = text_encoder(["open the drawer"])
    n = text_encoder.cache_size
    # a string no other test encodes: the encoder (and its cache) is shared by the process
    b = text_encoder(["slide the green puck under the shelf", "open the drawer"])
    assert a.shape == (1, 384)
    assert torch.equal(a[0], b[1])  # same string, same bits
    c = text_encoder(["open the drawer"])
    assert text_encoder.cache_size == n + 1 and torch.equal(a, c)  # the repeat was a cache hit
    assert not torch.allclose(b[0], b[1])
    e = text_encoder(["open the drawer", "pull the drawer open", "press the button"])
    cos = e @ e.T  # unit-norm embeddings
    torch.testing.assert_close(e.norm(dim=-1), torch.ones(3))
    assert cos[0, 1] > cos[0, 2] + 0.2 and cos[0, 1] > cos[1, 2] + 0.2


# ---- interface ------------------------------------------------------------------------------

def test_interface_shapes(policy):
    assert isinstance(policy, FlowPolicy)
    assert policy.action_shape == (H, D)
    obs = make_obs()
    cache = policy.encode_prefix(obs)
    assert isinstance(cache, PrefixCache)
    assert cache.tokens.shape == (B, policy.num_prefix_tokens, CFG.hidden_dim)
    assert policy.num_prefix_tokens == 1 + 16  # text + 4 x 4 image tokens at 64 px, stride 16
    u, feats = policy.velocity(torch.randn(B, H, D), torch.rand(B), cache, obs.state)
    assert u.shape == (B, H, D) and feats.shape == (B, policy.expert_feature_dim)
    assert u.abs().mean() > 0.05
    assert policy.prefix_features(cache).shape == (B, policy.prefix_feature_dim)
    # a scalar tau broadcasts
    u2, _ = policy.velocity(torch.zeros(B, H, D), torch.tensor(0.5), cache, obs.state)
    assert u2.shape == (B, H, D)


def test_cache_index_matches_recomputed_prefix(policy):
    obs = make_obs(seed=1)
    cache = policy.encode_prefix(obs).detach()
    rows = torch.tensor([4, 0, 2])
    x, tau = torch.randn(3, H, D), torch.rand(3)
    sub = cache.index(rows)
    assert not sub.tokens.requires_grad
    u_cached, f_cached = policy.velocity(x, tau, sub, obs.state[rows])
    sub_obs = obs.index(rows)
    assert sub_obs.instructions == tuple(obs.instructions[i] for i in rows.tolist())
    u_fresh, f_fresh = policy.velocity(x, tau, policy.encode_prefix(sub_obs), sub_obs.state)
    torch.testing.assert_close(u_cached, u_fresh, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(f_cached, f_fresh, rtol=1e-5, atol=1e-5)
    # slices and lists index the same way
    assert torch.equal(cache.index([1, 2]).tokens, cache.index(slice(1, 3)).tokens)


def test_multi_camera_and_state_in_prefix(text_encoder):
    pol = SmallVLA(D, H, P, CFG, image_size=S, num_cameras=2, state_in_prefix=True,
                   instruction_encoder=text_encoder)
    obs = make_obs(3, cameras=2)
    cache = pol.encode_prefix(obs)
    assert cache.tokens.shape == (3, 1 + 1 + 2 * 16, CFG.hidden_dim)
    u, feats = pol.velocity(torch.randn(3, H, D), torch.rand(3), cache, obs.state)
    assert u.shape == (3, H, D) and feats.shape == (3, CFG.hidden_dim)
    with pytest.raises(ValueError, match="camera"):
        pol.encode_prefix(make_obs(3))


# ---- samplers drive it ----------------------------------------------------------------------

@pytest.mark.parametrize("cfg", [
    SamplerConfig(method="flow_noise", num_steps=4),
    SamplerConfig(method="flow_sde", num_steps=4, schedule="hybrid", mdp="two_layer"),
], ids=["flow_noise", "flow_sde_hybrid"])
def test_sampler_chain_and_exact_replay(policy, cfg):
    obs = make_obs(seed=2)
    cache = policy.encode_prefix(obs).detach()  # as a rollout stores it
    velocity = policy_velocity(policy)
    head = NoiseHead(policy.expert_feature_dim, H * D, min_std=cfg.noise_min_std,
                     max_std=cfg.noise_max_std)
    noise_fn = policy_noise_std(head, policy.action_shape) if cfg.method == "flow_noise" else None
    gen = torch.Generator().manual_seed(3)
    chain = sample_chain(velocity, (cache, obs.state), cfg, B, policy.action_shape,
                         generator=gen, noise_std_fn=noise_fn)
    assert chain.states.shape == (B, cfg.num_steps + 1, H, D)
    assert chain.features.shape == (B, cfg.num_steps, policy.expert_feature_dim)
    assert torch.isfinite(chain.states).all()
    old = chain_logprob(chain, chain.means, chain.stds, cfg)
    policy.train()  # the learner's mode: nothing may change (no dropout, frozen BatchNorm)
    means, stds = replay_transitions(velocity, chain, (cache, obs.state), cfg, noise_fn)
    policy.eval()
    new = chain_logprob(chain, means, stds, cfg)
    assert new.requires_grad
    assert torch.equal(new.detach(), old)
    # the bound-context adapter gives the same velocities
    x, tau = chain.states[:, 1], chain.taus[1].expand(B)
    assert torch.equal(velocity_field(policy, cache, obs.state)(x, tau, None)[0],
                       velocity(x, tau, (cache, obs.state))[0])


# ---- training hygiene -----------------------------------------------------------------------

def test_no_dropout_anywhere(policy):
    for name, module in policy.named_modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            assert module.p == 0, name
        if isinstance(module, nn.MultiheadAttention):
            assert module.dropout == 0, name
        if isinstance(module, (nn.TransformerEncoderLayer, nn.TransformerDecoderLayer)):
            pytest.fail(f"{name}: torch transformer layers have a no-grad fast path")


def test_parameter_groups(text_encoder):
    tiny = PolicyConfig(hidden_dim=32, num_layers=1, num_heads=2, freeze_prefix=True)
    pol = SmallVLA(D, H, P, tiny, image_size=S, instruction_encoder=text_encoder)
    ids = lambda params: {id(p) for p in params}  # noqa: E731
    sft, rl = ids(pol.parameters_for("sft")), ids(pol.parameters_for("rl"))
    prefix, expert = ids(pol.prefix_parameters()), ids(pol.expert_parameters())
    frozen = ids(pol.vision.parameters()) | ids(text_encoder.model.parameters())
    assert prefix and expert and not prefix & expert
    assert ids(pol.image_proj.parameters()) <= prefix
    assert ids(pol.prefix_blocks.parameters()) <= prefix
    assert sft == prefix | expert
    assert rl == expert
    assert not (sft | rl) & frozen
    # every policy parameter is in exactly one group
    assert ids(pol.parameters()) == prefix | expert | ids(pol.vision.parameters())
    pol.configure_stage("rl")
    assert not any(p.requires_grad for p in pol.prefix_parameters())
    assert all(p.requires_grad for p in pol.expert_parameters())
    pol.configure_stage("sft")
    assert all(p.requires_grad for p in pol.prefix_parameters())
    assert not any(p.requires_grad for p in pol.vision.parameters())
    unfrozen = SmallVLA(D, H, P, PolicyConfig(hidden_dim=32, num_layers=1, num_heads=2,
                                              freeze_prefix=False),
                        image_size=S, instruction_encoder=text_encoder)
    assert ids(unfrozen.parameters_for("rl")) == ids(unfrozen.parameters_for("sft"))


def test_cfm_sft_overfits_a_tiny_batch(text_encoder):
    torch.manual_seed(0)
    pol = SmallVLA(D, H, P, CFG, image_size=S, instruction_encoder=text_encoder)
    params = pol.configure_stage("sft")
    opt = torch.optim.Adam(params, lr=3e-3)
    bn_before = {k: v.clone() for k, v in pol.vision.state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    obs = make_obs(4, seed=5)
    actions = torch.rand(4, H, D, generator=gen) * 2 - 1
    eps = torch.randn(4, H, D, generator=gen)
    tau = torch.rand(4, generator=gen)
    x = interpolate(actions, eps, tau)
    pol.train()
    losses = []
    for _ in range(20):
        u, _ = pol.velocity(x, tau, pol.encode_prefix(obs), obs.state)
        loss = cfm_loss(u, actions, eps)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    pol.eval()
    assert losses[-1] < 0.3 * losses[0], losses
    for k, v in pol.vision.state_dict().items():
        assert torch.equal(v, bn_before[k]), f"frozen encoder changed: {k}"


def test_fused_backbone_matches_the_unfused_one():
    from pirl_core.policies.encoders import MobileNetV2Features

    enc = MobileNetV2Features("stride16")
    images = torch.randint(0, 256, (3, 64, 64, 3), dtype=torch.uint8)
    with torch.no_grad():
        reference = enc.features(enc.preprocess(images))
    torch.testing.assert_close(enc(images), reference, rtol=1e-4, atol=1e-4)
    assert all(k.startswith("features.") for k in enc.state_dict())  # torchvision's keys kept
