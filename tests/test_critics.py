"""Critic heads: shapes, parameter counts, chain averaging (Eq. 16), placements."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pirl_core.critics import ValueHead, average_over_chain, critic_values

F, HID, B, K = 12, 16, 3, 5


@pytest.mark.parametrize("num_layers", [1, 4])
def test_shapes_both_placements(num_layers: int) -> None:
    head = ValueHead(F, HID, num_layers)
    assert critic_values(head, torch.randn(B, K, F), "expert").shape == (B,)
    assert critic_values(head, torch.randn(B, F), "vlm").shape == (B,)
    assert head(torch.randn(2, B, K, F)).shape == (2, B, K)


def test_parameter_counts() -> None:
    assert sum(p.numel() for p in ValueHead(F, HID, 1).parameters()) == F + 1
    four = sum(p.numel() for p in ValueHead(F, HID, 4).parameters())
    assert four == (F * HID + HID) + 2 * (HID * HID + HID) + (HID + 1)
    assert sum(isinstance(m, nn.Linear) for m in ValueHead(F, HID, 4).modules()) == 4


def test_no_dropout_and_small_initial_output() -> None:
    head = ValueHead(F, HID, 4)
    assert not any(isinstance(m, nn.Dropout) for m in head.modules())
    assert torch.equal(head.net[-1].bias, torch.zeros(1))
    assert head(torch.randn(256, F, generator=torch.Generator().manual_seed(0))).abs().max() < 0.5


def test_bf16_features_give_float32_values() -> None:
    head = ValueHead(F, HID, 4)
    assert head(torch.randn(B, F).bfloat16()).dtype == torch.float32


def test_average_over_chain_with_mask_by_hand() -> None:
    values = torch.tensor([[1.0, 2.0, 3.0, float("nan")], [4.0, 0.0, 8.0, 6.0]])
    mask = torch.tensor([[True, True, True, False], [True, False, False, True]])
    assert torch.equal(average_over_chain(values, mask), torch.tensor([2.0, 5.0]))
    assert torch.equal(average_over_chain(values[1:]), torch.tensor([4.5]))


def test_average_over_chain_empty_row_raises() -> None:
    mask = torch.tensor([[True, False], [False, False]])
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        average_over_chain(torch.zeros(2, 2), mask)


def test_expert_placement_equals_mean_of_per_state_values() -> None:
    head = ValueHead(F, HID, 4)
    feats = torch.randn(B, K, F)
    assert torch.allclose(critic_values(head, feats, "expert"), head(feats).mean(dim=1))


def test_wrong_rank_raises_naming_shapes() -> None:
    head = ValueHead(F, HID, 1)
    with pytest.raises(ValueError, match=r"\[B, K, F\].*\(3, 12\)"):
        critic_values(head, torch.randn(B, F), "expert")
    with pytest.raises(ValueError, match=r"\[B, F\].*\(3, 5, 12\)"):
        critic_values(head, torch.randn(B, K, F), "vlm")
    with pytest.raises(ValueError, match="placement"):
        critic_values(head, torch.randn(B, F), "actor")
