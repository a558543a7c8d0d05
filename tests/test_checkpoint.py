"""Checkpoints: weights, optimizer state and RNG state survive a save / load round trip."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pirl_core.checkpoint import load_checkpoint, save_checkpoint


def _setup(seed: int):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 4), nn.GELU(), nn.Linear(4, 1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    return model, opt


def _train(model, opt, steps=3):
    for _ in range(steps):
        loss = model(torch.ones(2, 3)).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_round_trip_resumes_bit_for_bit(tmp_path):
    model, opt = _setup(0)
    gen = torch.Generator().manual_seed(5)
    _train(model, opt)
    torch.randn(3, generator=gen)
    save_checkpoint(tmp_path / "ck", {"m": model}, {"opt": opt}, {"g": gen}, {"iteration": 3})
    _train(model, opt)
    expected = [p.detach().clone() for p in model.parameters()]
    expected_draw = torch.randn(4, generator=gen)

    model2, opt2 = _setup(1)
    gen2 = torch.Generator().manual_seed(99)
    meta = load_checkpoint(tmp_path / "ck", {"m": model2}, {"opt": opt2}, {"g": gen2})
    assert meta == {"iteration": 3}
    _train(model2, opt2)
    for a, b in zip(expected, model2.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(torch.randn(4, generator=gen2), expected_draw)
    assert (tmp_path / "ck" / "model.safetensors").is_file()
    assert not (tmp_path / "ck.tmp").exists()


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_checkpoint(tmp_path / "nowhere", {"m": nn.Linear(1, 1)})


def test_wrong_architecture_is_rejected(tmp_path):
    save_checkpoint(tmp_path / "ck", {"m": nn.Linear(2, 2)})
    with pytest.raises(RuntimeError):
        load_checkpoint(tmp_path / "ck", {"m": nn.Linear(3, 2)})
