"""Samplers: exact reductions to the ODE, schedules, chain bookkeeping, replay, grid ends."""

from __future__ import annotations

import itertools
from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pirl_core.config import SamplerConfig
from pirl_core.gaussian_toy import GaussianFlow
from pirl_core.logprob import chain_logprob, step_entropies
from pirl_core.nn import NoiseHead, VelocityMLP
from pirl_core.samplers import (Chain, draw_stochastic_mask, ode_config, replay_transitions,
                                sample_chain, transition)

SHAPE = (5, 3)  # H, D


def _model(seed: int = 0, context_dim: int = 4) -> VelocityMLP:
    torch.manual_seed(seed)
    return VelocityMLP(SHAPE, context_dim=context_dim, hidden_dim=32, num_layers=3)


def _noise_fn(head: NoiseHead):
    def fn(x, tau, context, feats):
        return head(feats, tau).view(-1, *SHAPE)
    return fn


def _head(seed: int = 1) -> NoiseHead:
    torch.manual_seed(seed)
    return NoiseHead(32, SHAPE[0] * SHAPE[1], hidden_dim=16)


def _sample(cfg, model, ctx, seed=0, x0=None, noise_fn=None, batch=8):
    gen = torch.Generator().manual_seed(seed)
    return sample_chain(model, ctx, cfg, batch, SHAPE, gen, noise_std_fn=noise_fn, x0=x0)


@pytest.mark.parametrize("k", range(1, 11))
@pytest.mark.parametrize("method", ["flow_sde", "flow_cps"])
@pytest.mark.parametrize("schedule", ["all", "hybrid", "window"])
def test_noise_level_zero_reproduces_ode_exactly(k, method, schedule):
    model, ctx = _model(), torch.randn(8, 4)
    x0 = torch.randn(8, *SHAPE)
    cfg = SamplerConfig(method=method, num_steps=k, noise_level=0.0, schedule=schedule)
    ode = _sample(ode_config(cfg), model, ctx, x0=x0)
    sto = _sample(cfg, model, ctx, x0=x0)
    assert torch.equal(sto.states, ode.states)
    assert torch.equal(sto.means, ode.means)
    assert not sto.stochastic.any() and not ode.stochastic.any()


def test_ode_is_plain_euler():
    flow = GaussianFlow()
    cfg = SamplerConfig(method="ode", num_steps=4)
    chain = _sample(cfg, flow, None)
    x = chain.states[:, 0]
    for k in range(4):
        x = x + flow(x, torch.full((8,), k / 4)) * 0.25
        assert torch.equal(chain.states[:, k + 1], x)
    assert torch.equal(chain.stds, torch.zeros_like(chain.stds))


def test_same_seed_same_chain_and_different_seed_different_chain():
    model, ctx = _model(), torch.randn(8, 4)
    cfg = SamplerConfig(method="flow_sde", num_steps=4, schedule="hybrid")
    a, b, c = (_sample(cfg, model, ctx, seed=s) for s in (3, 3, 4))
    assert torch.equal(a.states, b.states) and torch.equal(a.stochastic, b.stochastic)
    assert not torch.equal(a.states, c.states)


def test_hybrid_draws_one_step_per_sample_from_the_generator():
    cfg = SamplerConfig(method="flow_sde", num_steps=4, schedule="hybrid")
    mask = draw_stochastic_mask(cfg, 256, torch.Generator().manual_seed(0))
    assert mask.shape == (256, 4)
    assert torch.equal(mask.sum(1), torch.ones(256, dtype=torch.long))
    counts = mask.sum(0)
    assert (counts > 30).all(), counts  # every step drawn, and not one shared draw for the batch
    again = draw_stochastic_mask(cfg, 256, torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)


def test_hybrid_cps_never_draws_the_zero_std_last_step():
    cfg = SamplerConfig(method="flow_cps", num_steps=4, schedule="hybrid")
    mask = draw_stochastic_mask(cfg, 512, torch.Generator().manual_seed(0))
    assert not mask[:, -1].any() and torch.equal(mask.sum(1), torch.ones(512, dtype=torch.long))


def test_window_schedule():
    cfg = SamplerConfig(method="flow_sde", num_steps=6, schedule="window", window_start=2,
                        window_size=3)
    mask = draw_stochastic_mask(cfg, 3, None)
    assert mask.tolist() == [[False, False, True, True, True, False]] * 3


def test_cps_last_step_has_zero_std_and_is_masked():
    cfg = SamplerConfig(method="flow_cps", num_steps=4, noise_level=0.5, mdp="two_layer")
    chain = _sample(cfg, _model(), torch.randn(8, 4))
    assert torch.equal(chain.stds[:, -1], torch.zeros_like(chain.stds[:, -1]))
    assert chain.stochastic[:, :-1].all() and not chain.stochastic[:, -1].any()
    lp = chain_logprob(chain, chain.means, chain.stds, cfg)
    assert torch.isfinite(lp).all() and torch.equal(lp[:, -1], torch.zeros(8))


def test_chain_shapes_and_features():
    model, ctx = _model(), torch.randn(8, 4)
    chain = _sample(SamplerConfig(method="flow_sde", num_steps=3), model, ctx)
    assert isinstance(chain, Chain)
    assert chain.states.shape == (8, 4, *SHAPE)
    assert chain.means.shape == chain.stds.shape == (8, 3, *SHAPE)
    assert torch.equal(chain.taus, torch.arange(4) / 3.0) and chain.taus[-1] == 1.0
    assert chain.features.shape == (8, 3, 32)
    assert torch.equal(chain.actions, chain.states[:, -1])


def test_flow_noise_std_is_bounded_and_eval_drops_it():
    model, head, ctx = _model(), _head(), torch.randn(8, 4)
    cfg = SamplerConfig(method="flow_noise", num_steps=4)
    chain = _sample(cfg, model, ctx, noise_fn=_noise_fn(head))
    assert chain.stds.min() >= 0.08 - 1e-6 and chain.stds.max() <= 0.16 + 1e-6
    ent = step_entropies(chain.stds, chain.stochastic)
    assert ent.shape == (8, 4) and torch.isfinite(ent).all()
    with pytest.raises(ValueError, match="noise_std_fn"):
        _sample(cfg, model, ctx)
    # evaluation is the plain ODE: no noise network needed
    assert not _sample(ode_config(cfg), model, ctx).stochastic.any()


REPLAY_CASES = [
    ("flow_noise", "all", "one_layer"), ("flow_noise", "hybrid", "one_layer"),
    ("flow_sde", "all", "one_layer"), ("flow_sde", "all", "two_layer"),
    ("flow_sde", "hybrid", "two_layer"), ("flow_sde", "window", "two_layer"),
    ("flow_cps", "all", "two_layer"), ("flow_cps", "hybrid", "two_layer"),
]


@pytest.mark.parametrize("method,schedule,mdp", REPLAY_CASES)
@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_replay_reproduces_sampling_logprobs_exactly(method, schedule, mdp, reduce):
    model, head, ctx = _model(), _head(), torch.randn(16, 4)
    cfg = SamplerConfig(method=method, num_steps=4, schedule=schedule, mdp=mdp, window_start=1,
                        window_size=2, logprob_reduce_dims=reduce, logprob_reduce_steps=reduce)
    noise_fn = _noise_fn(head) if method == "flow_noise" else None
    chain = _sample(cfg, model, ctx, noise_fn=noise_fn, batch=16)
    old = chain_logprob(chain, chain.means, chain.stds, cfg)
    means, stds = replay_transitions(model, chain, ctx, cfg, noise_fn)
    new = chain_logprob(chain, means, stds, cfg)
    assert torch.equal(new, old)
    assert torch.equal(torch.exp(new - old), torch.ones_like(new))
    assert torch.isfinite(new).all()
    # and the recomputation is differentiable wrt the velocity net (and the noise head)
    new.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_hybrid_replay_uses_one_forward_pass():
    calls = []
    model, ctx = _model(), torch.randn(8, 4)

    def counting(x, tau, c):
        calls.append(tau.clone())
        return model(x, tau, c)

    cfg = SamplerConfig(method="flow_sde", num_steps=4, schedule="hybrid", mdp="two_layer")
    chain = _sample(cfg, counting, ctx)
    calls.clear()
    replay_transitions(counting, chain, ctx, cfg)
    assert len(calls) == 1
    assert torch.equal(calls[0], chain.taus[chain.stochastic.float().argmax(1)])


def test_replay_after_parameter_change_moves_the_ratio():
    model, ctx = _model(), torch.randn(8, 4)
    cfg = SamplerConfig(method="flow_sde", num_steps=4, mdp="one_layer")
    chain = _sample(cfg, model, ctx)
    old = chain_logprob(chain, chain.means, chain.stds, cfg)
    with torch.no_grad():
        model.out.bias.add_(0.05)
    new = chain_logprob(chain, *replay_transitions(model, chain, ctx, cfg), cfg)
    assert not torch.equal(new, old) and torch.isfinite(new).all()


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 10), a=st.floats(0.0, 1.0), method=st.sampled_from(
    ["flow_sde", "flow_cps", "flow_noise", "ode"]), schedule=st.sampled_from(["all", "hybrid"]),
    mdp=st.sampled_from(["one_layer", "two_layer"]), seed=st.integers(0, 2**16))
def test_no_nan_or_inf_anywhere(k, a, method, schedule, mdp, seed):
    model, head, ctx = _model(), _head(), torch.randn(4, 4)
    cfg = SamplerConfig(method=method, num_steps=k, noise_level=a, schedule=schedule, mdp=mdp)
    noise_fn = _noise_fn(head)
    chain = _sample(cfg, model, ctx, seed=seed, noise_fn=noise_fn, batch=4)
    for t in (chain.states, chain.means, chain.stds):
        assert torch.isfinite(t).all()
    model.zero_grad()
    lp = chain_logprob(chain, *replay_transitions(model, chain, ctx, cfg, noise_fn), cfg)
    assert torch.isfinite(lp).all()
    # a chain with no stochastic step (a = 0, ODE) has a constant log-prob: nothing to train
    assert lp.requires_grad == bool(chain.stochastic.any())
    if lp.requires_grad:
        lp.sum().backward()
    assert all(p.grad is None or torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("k", [1, 2, 4, 8, 10])
def test_grid_ends_are_finite_for_every_method(k):
    x, u = torch.randn(6, *SHAPE), torch.randn(6, *SHAPE)
    for tau, method, a in itertools.product([0.0, (k - 1) / k], ["flow_sde", "flow_cps"],
                                            [0.0, 0.5, 1.0]):
        mean, std = transition(method, x, u, torch.full((6,), tau), 1 / k, a)
        assert torch.isfinite(mean).all() and torch.isfinite(std).all() and (std >= 0).all()


def test_first_sde_step_uses_the_next_grid_point_in_sigma():
    # tau = 0: sigma^2 = a^2 (1 - 0) / delta, so std = a exactly up to rounding, mean shrinks x
    x, u = torch.randn(4, *SHAPE), torch.randn(4, *SHAPE)
    mean, std = transition("flow_sde", x, u, torch.zeros(4), 0.25, 0.5)
    torch.testing.assert_close(std, torch.full_like(std, 0.5))
    torch.testing.assert_close(mean, x + 0.25 * u - 0.5**2 / 2 * x)


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="'bogus'"):
        transition("bogus", torch.zeros(1, 1, 1), torch.zeros(1, 1, 1), torch.zeros(1), 0.5, 0.5)


def test_eval_config_keeps_steps():
    cfg = SamplerConfig(method="flow_sde", num_steps=7)
    assert ode_config(cfg) == replace(cfg, method="ode")
