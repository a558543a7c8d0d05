"""Checkpoints as safetensors: model weights, optimizer state and RNG state, plus JSON metadata.

One directory per checkpoint:
  model.safetensors   every module's state_dict, keys prefixed "<module name>."
  train.safetensors   optimizer tensors ("<opt>.state.<param index>.<key>") and generator states
  meta.json           optimizer param_groups and scalar state, the caller's metadata
Written to `<dir>.tmp` and renamed, so an interrupted save never leaves a half checkpoint.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn


def _optimizer_tensors(name: str, opt: torch.optim.Optimizer) -> tuple[dict, dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{name}.state.{idx}.{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def save_checkpoint(path: str | Path, modules: dict[str, nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer] | None = None,
                    generators: dict[str, torch.Generator] | None = None,
                    meta: dict[str, Any] | None = None) -> Path:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {f"{m}.{k}": v.detach().cpu().contiguous()
               for m, mod in modules.items() for k, v in mod.state_dict().items()}
    save_file(weights, tmp / "model.safetensors")
    train, opt_meta = {}, {}
    for name, opt in (optimizers or {}).items():
        tensors, opt_meta[name] = _optimizer_tensors(name, opt)
        train |= tensors
    for name, gen in (generators or {}).items():
        train[f"rng.{name}"] = gen.get_state()
    if train:
        save_file(train, tmp / "train.safetensors")
    (tmp / "meta.json").write_text(json.dumps({"optimizers": opt_meta, "meta": meta or {}},
                                              indent=2, sort_keys=True))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return path


def load_checkpoint(path: str | Path, modules: dict[str, nn.Module],
                    optimizers: dict[str, torch.optim.Optimizer] | None = None,
                    generators: dict[str, torch.Generator] | None = None) -> dict[str, Any]:
    """Restore in place what was saved; returns the caller's metadata. Strict on module keys."""
    path = Path(path)
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"no checkpoint at {path} (model.safetensors missing)")
    weights = load_file(path / "model.safetensors")
    for name, mod in modules.items():
        prefix = f"{name}."
        sub = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}
        mod.load_state_dict(sub, strict=True)
    info = json.loads((path / "meta.json").read_text())
    train = load_file(path / "train.safetensors") if (path / "train.safetensors").is_file() else {}
    for name, opt in (optimizers or {}).items():
        saved = info["optimizers"][name]
        state: dict[int, dict] = {}
        for key, value in train.items():
            if key.startswith(f"{name}.state."):
                idx, sub_key = key[len(name) + 7:].split(".", 1)
                state.setdefault(int(idx), {})[sub_key] = value
        for key, value in saved["scalars"].items():
            idx, sub_key = key.split(".", 1)
            state.setdefault(int(idx), {})[sub_key] = value
        opt.load_state_dict({"state": state, "param_groups": saved["param_groups"]})
    for name, gen in (generators or {}).items():
        gen.set_state(train[f"rng.{name}"])
    return info["meta"]
