"""SmallVLA: the default CPU-sized flow-matching Vision-Language-Action policy, shaped like pi0.

Prefix ("VLM"), computed once per observation by `encode_prefix`:
    images  -> frozen ImageNet MobileNetV2 truncated at `vision_stage` -> [C, h, w] per camera
            -> trainable 1x1 projection to d + learned 2-D (row + column) position embedding
               (+ a learned per-camera embedding) -> h*w image tokens per camera
    instruction -> frozen MiniLM (384, cached per string) -> Linear -> 1 text token
    state   -> Linear -> 1 state token, only if `state_in_prefix` (pi0.5 style; default pi0 style:
               the state goes to the action expert)
    [text, (state), image tokens] -> `num_layers` pre-LN transformer encoder blocks -> LayerNorm
    -> tokens [B, L, d]; pooled = mean of tokens [B, d]  (the V_vlm input)
Action expert, called K times per chunk by `velocity`:
    H action tokens Linear(D -> d)(x_tau) + learned per-position embedding + time embedding
    (sinusoidal_embedding(tau) -> 2-layer MLP, ADDED to every action token: simpler and cheaper
    than adaLN, and enough at this size), plus one state token Linear(P -> d) (pi0 style)
    -> `num_layers` pre-LN decoder blocks (self-attention over the expert tokens, cross-attention
    to the prefix tokens, MLP) -> LayerNorm -> Linear(d -> D) per action token = velocity u.
    Expert features [B, F = d] = mean over the action tokens of that last (normalised) hidden layer.

No dropout anywhere (dropout would change the policy between rollout and update). Attention is
written out (matmul + softmax) instead of nn.MultiheadAttention / nn.TransformerEncoderLayer:
those switch to a fused "fast path" kernel under no_grad in eval mode, so the chain sampled
under no_grad and the log-prob replayed with gradients could differ in the last bits, and the
first PPO ratio would not be exactly 1.

Frozen parts: the MobileNet and MiniLM are never trainable, never in an optimizer, and always in
eval mode (BatchNorm statistics never move). `set_prefix_trainable` toggles the projection +
prefix transformer (trained in SFT, frozen in RL when `policy.freeze_prefix`);
`parameters_for("sft" | "rl")` lists what each stage's optimizer gets.

Shapes: B batch, C cameras, S image side, P state dim, L prefix tokens, d width, H actions per
chunk, D action dim, F expert feature dim (= d).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from pirl_core.nn import mlp, sinusoidal_embedding
from pirl_core.policies.base import (Observation, PrefixCache, StagedParameters, batch_tau,
                                     camera_batch)
from pirl_core.policies.encoders import (
    InstructionEncoder,
    MobileNetV2Features,
    load_instruction_encoder,
)

if TYPE_CHECKING:
    from pirl_core.config import PolicyConfig

DEFAULT_VISION_STAGE = "stride16"


class Attention(nn.Module):
    """Multi-head attention, explicit math, no dropout: x [B, N, d] attends to memory [B, M, d]."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"num_heads {num_heads} must divide dim {dim}")
        self.num_heads, self.head_dim = num_heads, dim // num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor, memory: Tensor | None = None) -> Tensor:
        mem = x if memory is None else memory
        b, n, d = x.shape
        m = mem.shape[1]
        q = self.q(x).view(b, n, self.num_heads, self.head_dim).transpose(1, 2)
        k, v = self.kv(mem).view(b, m, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        weights = torch.softmax((q @ k.transpose(-2, -1)) / math.sqrt(self.head_dim), dim=-1)
        return self.out((weights @ v).transpose(1, 2).reshape(b, n, d))


class EncoderBlock(nn.Module):
    """Pre-LN transformer block: self-attention, MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim, num_heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), mlp(dim, mlp_ratio * dim, dim, 2)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DecoderBlock(nn.Module):
    """Pre-LN transformer decoder block: self-attention, cross-attention to the prefix, MLP."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.norm1, self.self_attn = nn.LayerNorm(dim), Attention(dim, num_heads)
        self.norm2, self.cross_attn = nn.LayerNorm(dim), Attention(dim, num_heads)
        self.norm3, self.mlp = nn.LayerNorm(dim), mlp(dim, mlp_ratio * dim, dim, 2)

    def forward(self, x: Tensor, memory: Tensor) -> Tensor:
        x = x + self.self_attn(self.norm1(x))
        x = x + self.cross_attn(self.norm2(x), memory)
        return x + self.mlp(self.norm3(x))


class SmallVLA(StagedParameters, nn.Module):
    """The small pi0-shaped VLA; implements `pirl_core.policies.base.FlowPolicy`. The pretrained
    MobileNet / MiniLM are in no stage's parameters."""

    def __init__(self, action_dim: int, chunk_size: int, state_dim: int, cfg: PolicyConfig,
                 image_size: int, vision_stage: str = DEFAULT_VISION_STAGE, num_cameras: int = 1,
                 state_in_prefix: bool = False,
                 instruction_encoder: InstructionEncoder | None = None, build_expert: bool = True):
        super().__init__()
        d = cfg.hidden_dim
        self.cfg = cfg
        self.action_shape = (chunk_size, action_dim)
        self.state_dim, self.image_size, self.num_cameras = state_dim, image_size, num_cameras
        self.state_in_prefix = state_in_prefix
        self.expert_feature_dim = d
        self.prefix_feature_dim = d
        self.time_dim = d

        # Frozen pretrained encoders; MiniLM is a plain object (shared per process, no submodule).
        self.vision = MobileNetV2Features(vision_stage)
        self.text_encoder = instruction_encoder or load_instruction_encoder()
        side = self.vision.output_size(image_size)
        self.grid = (side, side)

        # Trainable prefix.
        self.image_proj = nn.Linear(self.vision.out_channels, d)  # a 1x1 convolution
        self.pos_row = nn.Parameter(0.02 * torch.randn(side, d))
        self.pos_col = nn.Parameter(0.02 * torch.randn(side, d))
        self.camera_emb = nn.Parameter(0.02 * torch.randn(num_cameras, d))
        self.text_proj = nn.Linear(self.text_encoder.dim, d)
        self.prefix_state_proj = nn.Linear(state_dim, d) if state_in_prefix else None
        self.prefix_blocks = nn.ModuleList(
            EncoderBlock(d, cfg.num_heads) for _ in range(cfg.num_layers)
        )
        self.prefix_norm = nn.LayerNorm(d)

        if build_expert:  # a subclass with its own action head (GR00T-style) passes False
            self._build_expert(action_dim, chunk_size, state_dim)
        self.set_prefix_trainable(True)

    def _build_expert(self, action_dim: int, chunk_size: int, state_dim: int) -> None:
        d = self.cfg.hidden_dim
        self.action_in = nn.Linear(action_dim, d)
        self.action_pos = nn.Parameter(0.02 * torch.randn(chunk_size, d))
        self.time_mlp = mlp(self.time_dim, d, d, 2)
        self.state_in = None if self.state_in_prefix else nn.Linear(state_dim, d)
        self.expert_blocks = nn.ModuleList(
            DecoderBlock(d, self.cfg.num_heads) for _ in range(self.cfg.num_layers)
        )
        self.expert_norm = nn.LayerNorm(d)
        self.action_out = nn.Linear(d, action_dim)
        # Zero-init output (as DiT's adaLN-zero): u = 0 at start, so the first optimiser steps
        # cannot overshoot (measured: without it Adam's first step raised the CFM loss ~40 %).
        nn.init.zeros_(self.action_out.weight)
        nn.init.zeros_(self.action_out.bias)

    @property
    def num_prefix_tokens(self) -> int:
        return 1 + int(self.state_in_prefix) + self.num_cameras * self.grid[0] * self.grid[1]

    # ---- parameter groups -------------------------------------------------------------------
    def prefix_parameters(self) -> list[nn.Parameter]:
        """Trainable prefix: projections, embeddings, transformer (not the frozen encoders)."""
        mods = [self.image_proj, self.text_proj, self.prefix_blocks, self.prefix_norm]
        if self.prefix_state_proj is not None:
            mods.append(self.prefix_state_proj)
        params = [self.pos_row, self.pos_col, self.camera_emb]
        return params + [p for m in mods for p in m.parameters()]

    def expert_parameters(self) -> list[nn.Parameter]:
        mods = [self.action_in, self.time_mlp, self.expert_blocks, self.expert_norm,
                self.action_out]
        if self.state_in is not None:
            mods.append(self.state_in)
        return [self.action_pos] + [p for m in mods for p in m.parameters()]

    def set_prefix_trainable(self, flag: bool) -> None:
        """SFT trains the prefix (True); RL with `freeze_prefix` freezes it (False)."""
        for p in self.prefix_parameters():
            p.requires_grad_(flag)

    # ---- FlowPolicy ---------------------------------------------------------------------------
    def vision_features(self, images: Tensor) -> Tensor:
        """Frozen backbone: uint8 [B, S, S, 3] or [B, C, S, S, 3] -> [B, C, Cf, h, w] (no grad).

        Deterministic and parameter-free for training purposes, so SFT computes it once per frame
        and reuses it (`encode_prefix_from_features`)."""
        images = camera_batch(images, self.num_cameras)
        b, c = images.shape[:2]
        feats = self.vision(images.flatten(0, 1))  # [B*C, Cf, h, w]
        if tuple(feats.shape[-2:]) != self.grid:
            raise ValueError(f"images of side {images.shape[-2]} give a "
                             f"{tuple(feats.shape[-2:])} map; policy built for image_size "
                             f"{self.image_size} ({self.grid})")
        return feats.view(b, c, *feats.shape[1:])

    def _image_tokens(self, feats: Tensor) -> Tensor:
        """[B, C, Cf, h, w] backbone features -> [B, C * h * w, d]."""
        b, c = feats.shape[:2]
        tokens = self.image_proj(feats.float().flatten(3).transpose(2, 3))  # [B, C, h*w, d]
        pos = (self.pos_row[:, None, :] + self.pos_col[None, :, :]).flatten(0, 1)  # [h*w, d]
        tokens = tokens + pos + self.camera_emb[None, :, None, :]
        return tokens.flatten(1, 2)

    def encode_prefix(self, obs: Observation) -> PrefixCache:
        return self.encode_prefix_from_features(self.vision_features(obs.images),
                                                obs.instructions, obs.state)

    def encode_prefix_from_features(self, feats: Tensor, instructions: tuple[str, ...],
                                    state: Tensor) -> PrefixCache:
        """The trainable part of the prefix, from `vision_features` output."""
        img = self._image_tokens(feats)
        text = self.text_encoder(instructions).to(img.device)
        parts = [self.text_proj(text)[:, None]]
        if self.prefix_state_proj is not None:
            parts.append(self.prefix_state_proj(state.float())[:, None])
        x = torch.cat(parts + [img], 1)
        for block in self.prefix_blocks:
            x = block(x)
        tokens = self.prefix_norm(x)
        return PrefixCache(tokens=tokens, pooled=tokens.mean(1))

    def velocity(self, x: Tensor, tau: Tensor, cache: PrefixCache,
                 state: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, H, D], tau [B] (or scalar) -> (u [B, H, D], expert features [B, d])."""
        tau = batch_tau(x, tau, cache)
        t_emb = self.time_mlp(sinusoidal_embedding(tau, self.time_dim))  # [B, d]
        h = self.action_in(x.float()) + self.action_pos + t_emb[:, None]
        n_act = h.shape[1]
        if self.state_in is not None:
            h = torch.cat([self.state_in(state.float())[:, None], h], 1)
        for block in self.expert_blocks:
            h = block(h, cache.tokens)
        h = self.expert_norm(h)[:, -n_act:]
        return self.action_out(h), h.mean(1)

    def prefix_features(self, cache: PrefixCache) -> Tensor:
        return cache.pooled

    def env_actions(self, actions: Tensor) -> Tensor:
        return actions
