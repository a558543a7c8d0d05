"""GAE: hand-computed cases, truncation vs termination, loop == vectorized."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pirl_core.losses.gae import compute_gae, compute_gae_vectorized

GAMMA, LAM = 0.9, 0.8
BOTH = [compute_gae, compute_gae_vectorized]


def _three_steps(terminated: list[int], truncated: list[int]) -> dict[str, torch.Tensor]:
    return dict(
        rewards=torch.tensor([[1.0], [2.0], [3.0]]),
        values=torch.tensor([[0.5], [1.0], [1.5]]),
        next_value=torch.tensor([2.0]),
        terminated=torch.tensor(terminated).reshape(3, 1).bool(),
        truncated=torch.tensor(truncated).reshape(3, 1).bool(),
    )


@pytest.mark.parametrize("gae_fn", BOTH)
def test_hand_computed_termination(gae_fn) -> None:
    # t=2: delta = 3 + 0.9 * 2.0 - 1.5 = 3.3                    A2 = 3.3
    # t=1: terminated, no bootstrap: delta = 2 - 1.0 = 1.0       A1 = 1.0 (recursion cut)
    # t=0: delta = 1 + 0.9 * 1.0 - 0.5 = 1.4; A0 = 1.4 + 0.72 * 1.0 = 2.12
    # Truncation values at the terminated step must be ignored.
    batch = _three_steps([0, 1, 0], [0, 0, 0])
    adv, ret = gae_fn(**batch, gamma=GAMMA, gae_lambda=LAM,
                      truncation_values=torch.full((3, 1), 100.0))
    assert torch.allclose(adv, torch.tensor([[2.12], [1.0], [3.3]]), atol=1e-6)
    assert torch.allclose(ret, torch.tensor([[2.62], [2.0], [4.8]]), atol=1e-6)


@pytest.mark.parametrize("gae_fn", BOTH)
def test_truncation_bootstraps_from_truncation_values(gae_fn) -> None:
    # t=1 truncated: delta = 2 + 0.9 * 4.0 - 1.0 = 4.6 (not values[2] = 1.5, a new episode)
    # t=0: A0 = 1.4 + 0.72 * 4.6 = 4.712
    batch = _three_steps([0, 0, 0], [0, 1, 0])
    trunc_v = torch.tensor([[float("nan")], [4.0], [float("nan")]])  # unused entries ignored
    adv, ret = gae_fn(**batch, gamma=GAMMA, gae_lambda=LAM, truncation_values=trunc_v)
    assert torch.allclose(adv, torch.tensor([[4.712], [4.6], [3.3]]), atol=1e-6)
    assert torch.allclose(ret, adv + batch["values"], atol=1e-6)


@pytest.mark.parametrize("gae_fn", BOTH)
def test_no_done_matches_closed_form(gae_fn) -> None:
    # A2 = 3.3; A1 = 2 + 0.9 * 1.5 - 1 + 0.72 * 3.3 = 4.726; A0 = 1.4 + 0.72 * 4.726 = 4.80272
    batch = _three_steps([0, 0, 0], [0, 0, 0])
    adv, _ = gae_fn(**batch, gamma=GAMMA, gae_lambda=LAM)
    assert torch.allclose(adv, torch.tensor([[4.80272], [4.726], [3.3]]), atol=1e-6)


@pytest.mark.parametrize("gae_fn", BOTH)
def test_missing_truncation_values_raises(gae_fn) -> None:
    batch = _three_steps([0, 0, 0], [0, 1, 0])
    with pytest.raises(ValueError, match="truncation_values"):
        gae_fn(**batch, gamma=GAMMA, gae_lambda=LAM)


@pytest.mark.parametrize("gae_fn", BOTH)
def test_accepts_float_flags_and_bf16(gae_fn) -> None:
    batch = _three_steps([0, 1, 0], [0, 0, 0])
    batch["terminated"] = batch["terminated"].float()
    batch["truncated"] = batch["truncated"].long()
    batch["values"] = batch["values"].bfloat16()
    adv, ret = gae_fn(**batch, gamma=GAMMA, gae_lambda=LAM)
    assert adv.dtype == torch.float32 and ret.dtype == torch.float32
    assert torch.allclose(adv, torch.tensor([[2.12], [1.0], [3.3]]), atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    num_steps=st.integers(1, 24),
    num_envs=st.integers(1, 5),
    done_prob=st.sampled_from([0.0, 0.1, 0.5]),
)
def test_loop_equals_vectorized(seed: int, num_steps: int, num_envs: int, done_prob: float) -> None:
    g = torch.Generator().manual_seed(seed)
    shape = (num_steps, num_envs)
    terminated = torch.rand(shape, generator=g) < done_prob
    truncated = torch.rand(shape, generator=g) < done_prob
    kwargs = dict(
        rewards=torch.randn(shape, generator=g),
        values=torch.randn(shape, generator=g),
        next_value=torch.randn(num_envs, generator=g),
        terminated=terminated,
        truncated=truncated,
        gamma=0.99,
        gae_lambda=0.95,
        truncation_values=torch.randn(shape, generator=g),
    )
    adv_loop, ret_loop = compute_gae(**kwargs)
    adv_vec, ret_vec = compute_gae_vectorized(**kwargs)
    assert torch.allclose(adv_loop, adv_vec, atol=1e-5)
    assert torch.allclose(ret_loop, ret_vec, atol=1e-5)
