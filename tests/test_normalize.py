"""Mean/std normalisation: fitted on the SFT demos, saved with the policy, applied on the way in
(state) and out (actions) by the agent; without a normalizer nothing changes."""

from __future__ import annotations

import pytest
import torch

from pirl_core.checkpoint import load_checkpoint, save_checkpoint
from pirl_core.config import Config, ConfigError, EnvConfig, SamplerConfig, SFTConfig, load_config
from pirl_core.factory import make_policy
from pirl_core.normalize import Normalizer, attach_normalizer, normalizer_of
from pirl_core.sft import SFTData, normalized_data, train_sft
from tests.helpers import tiny_agent
from tests.test_policies_small import make_obs


def test_fit_maps_the_demos_to_zero_mean_unit_std_and_back():
    g = torch.Generator().manual_seed(0)
    actions = torch.randn(200, 5, 4, generator=g) * torch.tensor([0.05, 0.3, 1.0, 2.0]) + 0.2
    state = torch.randn(200, 3, generator=g) * 0.01 + torch.tensor([1.0, -2.0, 0.0])
    state[:, 2] = 7.0  # a constant dimension: maps to 0, never to inf
    norm = Normalizer(4, 3)
    norm.fit(actions, state)
    a = norm.actions(actions).reshape(-1, 4)
    torch.testing.assert_close(a.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(a.std(0), torch.ones(4), atol=1e-5, rtol=0)
    assert torch.equal(norm.state(state)[:, 2], torch.zeros(200))
    torch.testing.assert_close(norm.unnormalize_actions(norm.actions(actions)), actions)


def test_unfitted_normalizer_is_the_identity_and_bad_input_is_named():
    x = torch.randn(2, 5, 4)
    norm = Normalizer(4, 3)
    assert torch.equal(norm.actions(x), x) and torch.equal(norm.unnormalize_actions(x), x)
    with pytest.raises(ValueError, match=r"D=4, P=3; got actions \(10, 5, 6\)"):
        norm.fit(torch.zeros(10, 5, 6), torch.zeros(10, 3))
    with pytest.raises(ValueError, match="'zscore'"):
        attach_normalizer(torch.nn.Linear(1, 1), "zscore", 4, 3)


def test_config_selects_the_normalizer_and_rejects_unknown_modes(tmp_path):
    assert normalizer_of(make_policy(Config())) is None
    cfg = Config(env=EnvConfig(normalization="mean_std"))
    assert isinstance(normalizer_of(make_policy(cfg)), Normalizer)
    with pytest.raises(ConfigError, match="env.normalization.*'zscore'"):
        load_config("params.yaml", overrides=("env.normalization=zscore",))


def test_agent_normalises_the_state_in_and_the_actions_out():
    agent = tiny_agent(SamplerConfig(method="flow_noise"))
    obs = make_obs(batch=3)
    plain = agent.act(obs, torch.Generator().manual_seed(1))
    norm = attach_normalizer(agent.policy, "mean_std", 4, 4).normalizer
    norm.action_mean.fill_(0.3), norm.action_std.fill_(0.1)
    norm.state_mean.fill_(0.5), norm.state_std.fill_(0.1)
    step = agent.act(obs, torch.Generator().manual_seed(1))
    torch.testing.assert_close(step.state, (obs.state - 0.5) / 0.1)
    expected = step.chain.actions * 0.1 + 0.3
    assert torch.equal(torch.as_tensor(agent.env_chunk(step.chain)), expected)
    # the stored state is what the learner replays: the chain's log-prob recomputes exactly
    means, stds = agent.replay(step.cache, step.state, step.chain)
    torch.testing.assert_close(means, step.chain.means)
    assert not torch.equal(step.chain.actions, plain.chain.actions)


def test_sft_fits_the_normalizer_and_it_survives_a_checkpoint(tmp_path):
    cfg = Config(env=EnvConfig(normalization="mean_std", image_size=64),
                 sft=SFTConfig(num_steps=2, batch_size=4))
    policy = make_policy(cfg)
    g = torch.Generator().manual_seed(0)
    n = 16
    data = SFTData(policy.vision_features(torch.randint(0, 255, (n, 64, 64, 3), dtype=torch.uint8,
                                                        generator=g)),
                   torch.randn(n, 4, generator=g) * 0.1 + 0.5,
                   torch.randn(n, 5, 4, generator=g) * 0.05, ("open the door",) * n,
                   torch.zeros(n, dtype=torch.long))
    raw = data.actions.clone()
    train_sft(policy, data, cfg.sft, torch.Generator().manual_seed(0))
    assert torch.equal(data.actions, raw)  # the caller's demos stay in env units
    norm = normalizer_of(policy)
    torch.testing.assert_close(norm.state_mean, data.state.mean(0))
    torch.testing.assert_close(norm.action_std, data.actions.reshape(-1, 4).std(0))
    scaled = normalized_data(policy, data)
    torch.testing.assert_close(scaled.actions.reshape(-1, 4).mean(0), torch.zeros(4),
                               atol=1e-5, rtol=0)
    save_checkpoint(tmp_path / "sft", {"policy": policy})
    loaded = make_policy(cfg)
    load_checkpoint(tmp_path / "sft", {"policy": loaded})
    assert torch.equal(normalizer_of(loaded).action_std, norm.action_std)
