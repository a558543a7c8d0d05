"""pi0 behind pirl's FlowPolicy: transformers' `PI0ForConditionalGeneration` driven by pirl's
samplers, critics and training loop.

Prefix, once per observation (`encode_prefix`): camera images resized to the SigLIP input and
scaled to [-1, 1] (by hand: transformers' image processor needs torchvision), the prompt
"<image> x (tokens per image x cameras) <bos> instruction \\n" padded to `max_text_tokens`, one
PaliGemma pass with its K/V cache kept per layer in a `PI0PrefixCache` (plain tensors, so a rollout
can store it and the learner can index minibatches out of it without rerunning the VLM).
Expert, per denoising step (`velocity`): pi0's state token + action tokens attend to that cache
through the Gemma expert, as in the model's own `sample_actions`.

Time convention: pi0 (openpi, LeRobot, transformers) has noise at t = 1 and predicts
v = eps - A; pirl has noise at tau = 0 and u = A - eps. So t = 1 - tau and u = -v (pinned by a
test: at noise level 0 pirl's ODE chain ends where `sample_actions` does).

Action and state are zero-padded to the model's max_action_dim / max_state_dim (pi0's 32). The
chain carries all max_action_dim dims, because the padded dims are latent variables that reach the
real ones through attention (the model's own sampler integrates them too); log-probs therefore
cover them, and only the first `env_action_dim` go to the environment (`env_actions`).

Shapes: B batch, C cameras, S image side, R SigLIP input side, P state dim, L prefix tokens,
N layers, G K/V heads, E head dim, H chunk, D model action dim, Dv VLM width, De expert width.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pirl_core.flow import tau_to_openpi_time, velocity_from_openpi
from pirl_core.policies.base import (Observation, PrefixCache, StagedParameters, batch_tau,
                                     camera_batch)
from pirl_core.policies.pi0_build import image_token_id

if TYPE_CHECKING:
    from transformers import PI0ForConditionalGeneration, PreTrainedTokenizerBase

    from pirl_core.config import PolicyConfig


@dataclass(frozen=True)
class PI0PrefixCache(PrefixCache):
    """The VLM's output for one batch of observations.

    tokens [B, L, Dv] last hidden layer; pooled [B, Dv] its mean over real tokens (V_vlm input);
    keys / values [B, N, G, L, E] per-layer K/V the expert attends to; mask [B, L] 1 = real token.
    """

    keys: Tensor
    values: Tensor
    mask: Tensor


class PI0Policy(StagedParameters, nn.Module):
    """transformers' PI0 as a `pirl_core.policies.base.FlowPolicy`."""

    def __init__(self, model: PI0ForConditionalGeneration, tokenizer: PreTrainedTokenizerBase,
                 cfg: PolicyConfig, env_action_dim: int, state_dim: int, num_cameras: int = 1):
        super().__init__()
        mc = model.config
        if env_action_dim > mc.max_action_dim or state_dim > mc.max_state_dim:
            raise ValueError(f"env action/state dims ({env_action_dim}, {state_dim}) exceed the "
                             f"model's max_action_dim/max_state_dim ({mc.max_action_dim}, "
                             f"{mc.max_state_dim})")
        self.model, self.tokenizer, self.cfg = model, tokenizer, cfg
        self.action_shape = (mc.chunk_size, mc.max_action_dim)
        self.env_action_dim, self.state_dim = env_action_dim, state_dim
        self.num_cameras = num_cameras
        vision = mc.vlm_config.vision_config
        self.image_size = vision.image_size
        self.tokens_per_image = (vision.image_size // vision.patch_size) ** 2
        self.expert_feature_dim = mc.dit_config.hidden_size
        self.prefix_feature_dim = mc.vlm_config.text_config.hidden_size
        self.image_token_id = image_token_id(tokenizer)
        self._prompt_rows: dict[str, tuple[Tensor, Tensor]] = {}
        # The expert is a GemmaModel whose token embedding pi0 never uses.
        self.model.model.dit.embed_tokens.requires_grad_(False)
        self.set_prefix_trainable(True)

    @property
    def dtype(self) -> torch.dtype:
        return self.model.action_out_proj.weight.dtype

    # ---- parameter groups -------------------------------------------------------------------
    def prefix_parameters(self) -> list[nn.Parameter]:
        """The VLM (SigLIP + projector + Gemma); LoRA adapters instead when they are attached."""
        vlm = self.model.model.vlm
        lora = [p for n, p in vlm.named_parameters() if "lora_" in n]
        return lora or list(vlm.parameters())

    def expert_parameters(self) -> list[nn.Parameter]:
        dit = [p for n, p in self.model.model.dit.named_parameters()
               if not n.startswith("embed_tokens")]
        heads = [self.model.embed_action_time, self.model.action_out_proj]
        return dit + [p for m in heads for p in m.parameters()]

    def set_prefix_trainable(self, flag: bool) -> None:
        for p in self.model.model.vlm.parameters():
            p.requires_grad_(False)
        for p in self.prefix_parameters():
            p.requires_grad_(flag)

    def attach_lora(self, rank: int, alpha: int) -> None:
        """LoRA adapters (peft, no dropout) on every projection of the VLM's Gemma. B starts at
        zero, so the policy is unchanged until RL moves it; from then on `prefix_parameters` are
        the adapters, and the Gemma and SigLIP weights stay frozen (paper Sec. 5.5)."""
        from peft import LoraConfig, inject_adapter_in_model

        targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
        config = LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules=targets)
        inject_adapter_in_model(config, self.model.model.vlm.language_model)
        self.set_prefix_trainable(False)

    # ---- inputs -----------------------------------------------------------------------------
    def vision_features(self, images: Tensor) -> Tensor:
        """uint8 [B, S, S, 3] or [B, C, S, S, 3] -> [B, C, S, S, 3]: pi0 has no frozen vision
        stage to precompute (SigLIP trains in SFT), so SFT keeps the raw frames."""
        return camera_batch(images, self.num_cameras)

    def pixel_values(self, images: Tensor) -> Tensor:
        """uint8 [B, C, S, S, 3] -> [B, C, 3, R, R] in [-1, 1], bicubic as PI0ImageProcessor."""
        b, c = images.shape[:2]
        x = images.flatten(0, 1).permute(0, 3, 1, 2).float() / 255.0
        if x.shape[-1] != self.image_size or x.shape[-2] != self.image_size:
            x = F.interpolate(x, size=(self.image_size, self.image_size), mode="bicubic",
                              align_corners=False, antialias=True).clamp(0, 1)
        return ((x - 0.5) / 0.5).view(b, c, 3, self.image_size, self.image_size).to(self.dtype)

    def prompt(self, instructions: tuple[str, ...], device: torch.device | str = "cpu"
               ) -> tuple[Tensor, Tensor]:
        """input_ids, attention_mask [B, L]: image placeholders, <bos> text \\n, right padding."""
        rows = [self._prompt_row(text) for text in instructions]
        return (torch.stack([r[0] for r in rows]).to(device),
                torch.stack([r[1] for r in rows]).to(device))

    def _prompt_row(self, text: str) -> tuple[Tensor, Tensor]:
        """(input_ids, attention_mask) [L] of one instruction, tokenised once per string."""
        if text not in self._prompt_rows:
            self._prompt_rows[text] = self._padded_row(text + "\n")
        return self._prompt_rows[text]

    def _padded_row(self, text: str) -> tuple[Tensor, Tensor]:
        """Image placeholders, <bos> `text`, padding to max_text_tokens: ids and mask [L]."""
        max_text = self.cfg.max_text_tokens
        text_ids = self.tokenizer(self.tokenizer.bos_token + text,
                                  add_special_tokens=False)["input_ids"]
        if len(text_ids) > max_text:
            raise ValueError(f"prompt {text!r} is {len(text_ids)} tokens; "
                             f"policy.max_text_tokens is {max_text}")
        n_img, n_text = self.tokens_per_image * self.num_cameras, len(text_ids)
        ids = torch.full((n_img + max_text,), self.tokenizer.pad_token_id, dtype=torch.long)
        ids[:n_img] = self.image_token_id
        ids[n_img:n_img + n_text] = torch.tensor(text_ids)
        mask = torch.zeros_like(ids)
        mask[:n_img + n_text] = 1
        return ids, mask

    def padded_state(self, state: Tensor) -> Tensor:
        return F.pad(state.float(), (0, self.model.config.max_state_dim - state.shape[-1]))

    # ---- FlowPolicy ---------------------------------------------------------------------------
    def encode_prefix(self, obs: Observation) -> PI0PrefixCache:
        return self.encode_prefix_from_features(self.vision_features(obs.images),
                                                obs.instructions, obs.state)

    def encode_prefix_from_features(self, images: Tensor, instructions: tuple[str, ...],
                                    state: Tensor) -> PI0PrefixCache:
        """One PaliGemma pass; `state` is unused (pi0 feeds it to the expert)."""
        pixels = self.pixel_values(images)
        ids, mask = self.prompt(instructions, pixels.device)
        return self.run_vlm(ids, mask, pixels)

    def run_vlm(self, ids: Tensor, mask: Tensor, pixels: Tensor) -> PI0PrefixCache:
        """ids, mask [B, L], pixels [B, C, 3, R, R] -> the prefix cache (per-layer K/V)."""
        cameras = torch.ones(pixels.shape[:2], dtype=torch.bool, device=pixels.device)
        embeds = self.model.model.embed_prefix(ids, pixels, cameras)
        out = self.model.model.vlm(inputs_embeds=embeds, attention_mask=mask,
                                   position_ids=mask.cumsum(-1) - 1,
                                   token_type_ids=torch.zeros_like(ids), use_cache=True)
        layers = out.past_key_values.layers
        keys = torch.stack([layer.keys for layer in layers], 1)
        values = torch.stack([layer.values for layer in layers], 1)
        tokens = out.last_hidden_state
        w = mask[..., None].to(tokens.dtype)
        pooled = ((tokens * w).sum(1) / w.sum(1)).float()
        return PI0PrefixCache(tokens=tokens, pooled=pooled, keys=keys, values=values, mask=mask)

    @staticmethod
    def prefix_kv(cache: PI0PrefixCache):
        """A fresh transformers cache holding the prefix K/V: the expert appends its own K/V,
        which must not leak into the next denoising step (the model's sampler crops them)."""
        from transformers import DynamicCache

        return DynamicCache(ddp_cache_data=[(cache.keys[:, i], cache.values[:, i])
                                            for i in range(cache.keys.shape[1])])

    def velocity(self, x: Tensor, tau: Tensor, cache: PI0PrefixCache,
                 state: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, H, D], tau [B] (or scalar) -> (u [B, H, D] float32, expert features [B, De])."""
        tau = batch_tau(x, tau, cache)
        embeds = self.model.embed_action_time(self.padded_state(state).to(self.dtype),
                                              x.to(self.dtype), tau_to_openpi_time(tau))
        out = self.model.model(action_embeds=embeds, attention_mask=cache.mask,
                               past_key_values=self.prefix_kv(cache))
        hidden = out.last_hidden_state[:, -self.action_shape[0]:]
        v = self.model.action_out_proj(hidden)
        return velocity_from_openpi(v).float(), hidden.float().mean(1)

    def prefix_features(self, cache: PrefixCache) -> Tensor:
        return cache.pooled

    def env_actions(self, actions: Tensor) -> Tensor:
        """[B, H, D] chain actions -> [B, H, env_action_dim] for the environment."""
        return actions[..., :self.env_action_dim]


def make_pi0_policy(cfg: PolicyConfig, env_action_dim: int, state_dim: int, chunk_size: int,
                    image_size: int, num_cameras: int) -> PI0Policy:
    """From `cfg.checkpoint` (a local HF-layout directory) when set, else a small pi0 built from
    scratch at cfg's widths, its action / state dims those of the environment."""
    from pirl_core.policies.pi0_build import build_pi0, load_pi0

    if cfg.checkpoint:
        model, tokenizer = load_pi0(cfg.checkpoint)
        if model.config.chunk_size != chunk_size:
            raise ValueError(f"policy.checkpoint {cfg.checkpoint!r} predicts chunks of "
                             f"{model.config.chunk_size}; env.chunk_size is {chunk_size}")
    else:
        model, tokenizer = build_pi0(cfg, env_action_dim, state_dim, chunk_size, image_size)
    return PI0Policy(model, tokenizer, cfg, env_action_dim, state_dim, num_cameras)
