"""LeRobot-format pi0.5 checkpoints: the name mapping pinned on LeRobot's own names, a tiny pi0.5
written in LeRobot's layout (config.json of its PI05Config, model.safetensors under openpi's
PyTorch names, lm_head standing for the tied embedding) loads back to identical velocities, and
every bad checkpoint is refused by name.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import json  # noqa: E402
from dataclasses import replace  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

from pirl_core.policies.pi05 import make_pi05_policy  # noqa: E402
from pirl_core.policies.pi05_lerobot import (  # noqa: E402
    lerobot_pi05_key,
    load_lerobot_pi05,
    read_lerobot_pi05_config,
)
from tests.test_policies_pi05 import CFG, D, H, make_obs, make_policy  # noqa: E402

PI = "model.paligemma_with_expert."
EXPERT = PI + "gemma_expert.model."

# pirl name prefix -> LeRobot name prefix, written from LeRobot's PI05Pytorch module tree.
TO_LEROBOT = (
    ("model.model.vlm.language_model.embed_tokens.weight", PI + "paligemma.lm_head.weight"),
    ("model.model.vlm.", PI + "paligemma.model."),
    ("model.action_out_proj.", "model.action_out_proj."),
    ("expert.norm.modulation.", EXPERT + "norm.dense."),
    ("action_in_proj.", "model.action_in_proj."),
    ("time_mlp_in.", "model.time_mlp_in."),
    ("time_mlp_out.", "model.time_mlp_out."),
)


def lerobot_name(name: str) -> str:
    if name.startswith("expert.layers."):
        i, rest = name.removeprefix("expert.layers.").split(".", 1)
        rest = rest.replace("attn_norm.modulation.", "input_layernorm.dense.")
        rest = rest.replace("mlp_norm.modulation.", "post_attention_layernorm.dense.")
        return f"{EXPERT}layers.{i}.{rest}"
    for ours, theirs in TO_LEROBOT:
        if name.startswith(ours):
            return theirs + name[len(ours):]
    raise AssertionError(f"test mapping misses {name}")


def write_lerobot(policy, path, **config_overrides):
    """A LeRobot pi0.5 checkpoint directory holding `policy`'s weights (+ its tokenizer)."""
    path.mkdir(parents=True, exist_ok=True)
    weights = {lerobot_name(k): v.contiguous() for k, v in policy.state_dict().items()}
    de = policy.expert.norm.modulation.in_features
    weights[PI + "gemma_expert.lm_head.weight"] = torch.zeros(7, de)  # unused, as on the hub
    save_file(weights, str(path / "model.safetensors"))
    config = {"type": "pi05", "paligemma_variant": "gemma_2b",
              "action_expert_variant": "gemma_300m", "chunk_size": H, "n_action_steps": H,
              "max_state_dim": 32, "max_action_dim": 32, "image_resolution": [224, 224],
              "tokenizer_max_length": 200, "min_period": 4e-3, "max_period": 4.0,
              **config_overrides}
    (path / "config.json").write_text(json.dumps(config))
    policy.tokenizer.save_pretrained(path / "tokenizer")
    return path


def test_names_map_as_lerobot_writes_them():
    assert lerobot_pi05_key(EXPERT + "layers.3.input_layernorm.dense.weight") == \
        "expert.layers.3.attn_norm.modulation.weight"
    assert lerobot_pi05_key(EXPERT + "layers.17.post_attention_layernorm.dense.bias") == \
        "expert.layers.17.mlp_norm.modulation.bias"
    assert lerobot_pi05_key(EXPERT + "layers.0.self_attn.q_proj.weight") == \
        "expert.layers.0.self_attn.q_proj.weight"
    assert lerobot_pi05_key(EXPERT + "layers.2.mlp.down_proj.weight") == \
        "expert.layers.2.mlp.down_proj.weight"
    assert lerobot_pi05_key(EXPERT + "norm.dense.weight") == "expert.norm.modulation.weight"
    tower = "vision_tower.vision_model.post_layernorm.weight"
    assert lerobot_pi05_key(PI + "paligemma.model." + tower) == "model.model.vlm." + tower
    assert lerobot_pi05_key(PI + "paligemma.lm_head.weight") == \
        "model.model.vlm.language_model.embed_tokens.weight"
    assert lerobot_pi05_key("model.action_out_proj.bias") == "model.action_out_proj.bias"
    assert lerobot_pi05_key("model.time_mlp_in.weight") == "time_mlp_in.weight"
    assert lerobot_pi05_key(PI + "gemma_expert.lm_head.weight") is None
    with pytest.raises(KeyError, match="model.state_proj.weight"):
        lerobot_pi05_key("model.state_proj.weight")  # pi0's, not pi0.5's


def test_lerobot_checkpoint_loads_to_identical_velocities(tmp_path):
    policy = make_policy(seed=3)
    path = write_lerobot(policy, tmp_path / "pi05_ckpt")
    loaded = load_lerobot_pi05(path, CFG, D, 1, chunk_size=H,
                               pi0_config=policy.model.config).eval()
    obs = make_obs()
    x, tau = torch.randn(3, H, D), torch.tensor([0.1, 0.5, 0.9])
    with torch.no_grad():
        u0, f0 = policy.velocity(x, tau, policy.encode_prefix(obs), obs.state)
        u1, f1 = loaded.velocity(x, tau, loaded.encode_prefix(obs), obs.state)
    assert torch.equal(u0, u1) and torch.equal(f0, f1)
    # cast before the copy: every weight is the float32 one rounded to bfloat16 once
    half = load_lerobot_pi05(path, CFG, D, 1, pi0_config=policy.model.config,
                             dtype=torch.bfloat16)
    ref = policy.state_dict()
    assert all(v.dtype == torch.bfloat16 and torch.equal(v, ref[k].to(torch.bfloat16))
               for k, v in half.state_dict().items() if v.is_floating_point())


def test_bad_checkpoints_are_named(tmp_path):
    policy = make_policy(seed=3)
    good = write_lerobot(policy, tmp_path / "good")
    cfg = replace(CFG, checkpoint=str(good))
    with pytest.raises(ValueError, match="predicts chunks of 5; env.chunk_size is 7"):
        make_pi05_policy(cfg, D, 4, 7, 32, 1)  # dispatched to the LeRobot loader by config.json
    with pytest.raises(ValueError, match="type is 'pi0'"):
        read_lerobot_pi05_config(write_lerobot(policy, tmp_path / "pi0", type="pi0"))
    other = write_lerobot(policy, tmp_path / "v", paligemma_variant="gemma_300m")
    with pytest.raises(ValueError, match="paligemma_variant 'gemma_300m'"):
        read_lerobot_pi05_config(other)
    assert read_lerobot_pi05_config(other, check_variants=False)["chunk_size"] == H
    with pytest.raises(FileNotFoundError, match="no config.json"):
        read_lerobot_pi05_config(tmp_path / "absent")
    no_tok = write_lerobot(policy, tmp_path / "no_tok")
    for f in (no_tok / "tokenizer").iterdir():
        f.unlink()
    with pytest.raises(FileNotFoundError, match="ship none"):
        load_lerobot_pi05(no_tok, CFG, D, 1, pi0_config=policy.model.config)
    wider = make_policy(seed=3)
    wider.action_in_proj = torch.nn.Linear(D + 1, wider.action_in_proj.out_features)
    with pytest.raises(ValueError, match=r"wrong shape \['action_in_proj.weight"):
        load_lerobot_pi05(write_lerobot(wider, tmp_path / "wide"), CFG, D, 1,
                          pi0_config=policy.model.config)
