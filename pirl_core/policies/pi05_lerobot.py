"""LeRobot-format pi0.5 checkpoints (`lerobot/pi05_base`, `lerobot/pi05_libero`, ...) into pirl's
`PI05Policy`: LeRobot's `config.json` (its PI05Config) and `model.safetensors` (openpi's PyTorch
names), renamed onto transformers' PI0 prefix and pirl's adaptive-norm expert.

The mapping (after LeRobot's leading `model.`):
  paligemma_with_expert.paligemma.model.*        -> model.model.vlm.*   (as transformers' PI0)
  paligemma_with_expert.paligemma.lm_head.weight -> the VLM's token embedding (tied; the hub
                                                    files hold only lm_head)
  gemma_expert.model.layers.i.input_layernorm.dense          -> expert.layers.i.attn_norm.modulation
  gemma_expert.model.layers.i.post_attention_layernorm.dense -> expert.layers.i.mlp_norm.modulation
  gemma_expert.model.layers.i.{self_attn,mlp}.*  -> expert.layers.i.{self_attn,mlp}.*
  gemma_expert.model.norm.dense                  -> expert.norm.modulation
  gemma_expert.lm_head                           -> dropped (the expert reads no tokens)
  action_in_proj, time_mlp_in, time_mlp_out      -> same names
  action_out_proj                                -> model.action_out_proj
openpi's adaptive norm (`dense` -> scale, shift, gate; x * (1 + scale) + shift; x + y * gate) is
`pi05.AdaRMSNorm`'s, so the weights mean the same thing.

Not carried over: LeRobot's quantile normalisation of state and actions (its processor files).
pirl's pi0.5 clips the state to [-1, 1] and feeds actions as they are; normalise outside.
LeRobot checkpoints ship no tokenizer: PaliGemma's files go in the checkpoint directory or its
`tokenizer/` folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from pirl_core.policies.pi05 import PI05Policy

if TYPE_CHECKING:
    from transformers import PI0Config, PreTrainedTokenizerBase

    from pirl_core.config import PolicyConfig

WEIGHTS_FILE = "model.safetensors"
# LeRobot's PI05Config variants; transformers' PI0Config defaults are exactly this pair.
SUPPORTED_VARIANTS = {"paligemma_variant": "gemma_2b", "action_expert_variant": "gemma_300m"}

_EXPERT = r"paligemma_with_expert\.gemma_expert\.model\."
_RENAMES: tuple[tuple[str, str | None], ...] = (
    (r"paligemma_with_expert\.paligemma\.model\.", "model.model.vlm."),
    (r"paligemma_with_expert\.paligemma\.lm_head\.weight$",
     "model.model.vlm.language_model.embed_tokens.weight"),
    (_EXPERT + r"layers\.(\d+)\.input_layernorm\.dense\.",
     r"expert.layers.\1.attn_norm.modulation."),
    (_EXPERT + r"layers\.(\d+)\.post_attention_layernorm\.dense\.",
     r"expert.layers.\1.mlp_norm.modulation."),
    (_EXPERT + r"layers\.(\d+)\.(self_attn|mlp)\.", r"expert.layers.\1.\2."),
    (_EXPERT + r"norm\.dense\.", "expert.norm.modulation."),
    (r"paligemma_with_expert\.gemma_expert\.lm_head\.", None),
    (r"action_out_proj\.", "model.action_out_proj."),
    (r"(action_in_proj|time_mlp_in|time_mlp_out)\.", r"\1."),
)


def lerobot_pi05_key(key: str) -> str | None:
    """A LeRobot pi0.5 parameter name -> pirl's PI05Policy name; None for what pirl drops.
    An unknown name raises, naming it (a silently skipped weight is a wrong model)."""
    name = key.removeprefix("model.")
    for pattern, target in _RENAMES:
        match = re.match(pattern, name)
        if match:
            return None if target is None else match.expand(target) + name[match.end():]
    raise KeyError(f"unrecognised LeRobot pi0.5 parameter {key!r}")


def is_lerobot_pi05(path: str | Path) -> bool:
    """Whether `path` holds a LeRobot pi0.5 checkpoint (its config.json says type pi05)."""
    file = Path(path) / "config.json"
    try:
        return file.is_file() and json.loads(file.read_text()).get("type") == "pi05"
    except (json.JSONDecodeError, AttributeError):
        return False


def read_lerobot_pi05_config(path: str | Path, check_variants: bool = True) -> dict:
    """LeRobot's config.json, checked for the policy type and (unless the caller brings its own
    geometry) the model variants pirl builds."""
    path = Path(path)
    file = path / "config.json"
    if not file.is_file():
        raise FileNotFoundError(f"{str(path)!r} has no config.json (expected a LeRobot pi0.5 "
                                "checkpoint directory)")
    config = json.loads(file.read_text())
    if config.get("type") != "pi05":
        raise ValueError(f"{file}: type is {config.get('type')!r}, expected 'pi05'")
    for field, expected in (SUPPORTED_VARIANTS.items() if check_variants else ()):
        if config.get(field, expected) != expected:
            raise ValueError(f"{file}: {field} {config[field]!r} is not supported "
                             f"(pirl builds {expected}; pass pi0_config for another geometry)")
    return config


def lerobot_pi0_config(config: dict, tokenizer: PreTrainedTokenizerBase) -> PI0Config:
    """transformers' PI0Config at LeRobot's sizes: PaliGemma 3B, a 300M expert, the
    checkpoint's chunk, padded dims, image resolution and time-embedding periods."""
    from pirl_core.policies.pi0_build import published_pi0_config

    side = config.get("image_resolution", [224, 224])
    if side[0] != side[1]:
        raise ValueError(f"image_resolution {side} is not square (PaliGemma needs it square)")
    return published_pi0_config(config.get("max_action_dim", 32), config.get("max_state_dim", 32),
                                config.get("chunk_size", 50), tokenizer, image_size=side[0],
                                min_period=config.get("min_period", 4e-3),
                                max_period=config.get("max_period", 4.0))


def lerobot_tokenizer(path: Path) -> PreTrainedTokenizerBase:
    """PaliGemma's tokenizer from the checkpoint directory or its `tokenizer/` folder."""
    from transformers import AutoTokenizer

    for where in (path, path / "tokenizer"):
        if (where / "tokenizer_config.json").is_file():
            return AutoTokenizer.from_pretrained(where, local_files_only=True)
    raise FileNotFoundError(f"no tokenizer in {str(path)!r} or its tokenizer/ folder: LeRobot "
                            "checkpoints ship none; copy PaliGemma's tokenizer files there")


def renamed_keys(keys: Iterable[str]) -> dict[str, str]:
    """{PI05Policy name: LeRobot name} for a checkpoint's parameter names. The tied lm_head fills
    the token embedding only where the file holds no embedding of its own."""
    out: dict[str, str] = {}
    for key in keys:
        name = lerobot_pi05_key(key)
        if name is None or (key.endswith("lm_head.weight") and name in out):
            continue
        if name in out and not key.endswith("embed_tokens.weight"):
            raise ValueError(f"two LeRobot parameters map to {name!r} (the last was {key!r})")
        out[name] = key
    return out


def load_lerobot_pi05(path: str | Path, cfg: PolicyConfig, env_action_dim: int,
                      num_cameras: int, chunk_size: int | None = None,
                      pi0_config: PI0Config | None = None,
                      dtype: torch.dtype = torch.float32) -> PI05Policy:
    """A PI05Policy holding a LeRobot pi0.5 checkpoint's weights. `pi0_config` overrides the
    geometry read from config.json (small checkpoints in the same layout, as the tests write).

    The model is cast to `dtype` before the weights arrive, and they are copied in one tensor at
    a time: the peak holds the randomly initialised float32 model (3.5B parameters: 13 GiB) and
    one tensor, not that model plus the whole file's state dict (not measured at 3.5B here)."""
    from safetensors import safe_open
    from transformers import PI0ForConditionalGeneration

    path = Path(path)
    config = read_lerobot_pi05_config(path, check_variants=pi0_config is None)
    if not (path / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"LeRobot pi0.5 checkpoint {str(path)!r} has no {WEIGHTS_FILE}")
    tokenizer = lerobot_tokenizer(path)
    pi0_config = pi0_config or lerobot_pi0_config(config, tokenizer)
    if chunk_size is not None and pi0_config.chunk_size != chunk_size:
        raise ValueError(f"policy.checkpoint {str(path)!r} predicts chunks of "
                         f"{pi0_config.chunk_size}; env.chunk_size is {chunk_size}")
    with safe_open(str(path / WEIGHTS_FILE), framework="pt") as file:
        names = renamed_keys(file.keys())
        shapes = {n: tuple(file.get_slice(k).get_shape()) for n, k in names.items()}
        policy = PI05Policy(PI0ForConditionalGeneration(pi0_config), tokenizer, cfg,
                            env_action_dim, pi0_config.max_state_dim, num_cameras).to(dtype)
        expected = policy.state_dict()
        missing = sorted(set(expected) - set(names))
        unexpected = sorted(set(names) - set(expected))
        wrong = [f"{n} {shape} (expected {tuple(expected[n].shape)})"
                 for n, shape in shapes.items() if n in expected and shape != expected[n].shape]
        if missing or unexpected or wrong:
            raise ValueError(f"{path / WEIGHTS_FILE} does not fit pirl's pi0.5 at its config: "
                             f"missing {missing}, unexpected {unexpected}, wrong shape {wrong}")
        with torch.no_grad():
            for name, key in names.items():
                expected[name].copy_(file.get_tensor(key))
    return policy
