"""A GR00T-N1.5-style policy: a VLM prefix and a flow-matching DiT action head that cross-attends
to the VLM's tokens (paper App. C).

Prefix: SmallVLA's (frozen MobileNet + MiniLM, a trainable transformer; frozen during RL), in the
place of GR00T's Eagle VLM. Action head, as GR00T N1.5's (NVIDIA Isaac-GR00T):
    state -> MLP -> 1 token; noisy action x_tau -> Linear, concatenated with the timestep
    embedding -> MLP -> H tokens (+ position); GR00T discretises the timestep into 1000 buckets
    -> DiT blocks, each conditioned on the timestep by adaptive LayerNorm (shift, scale and a
       zero-initialised gate per sub-layer); even blocks cross-attend to the VLM tokens, odd
       blocks self-attend over the state + action tokens; dropout after attention and MLP
    -> adaptive final norm -> Linear per action token = velocity u (pirl's convention already:
       noise at tau = 0, u = A - eps). Expert features = mean of the final action tokens.

Dropout (paper App. C): SFT trains with it; in RL it would change the policy between sampling
and the update (the ratio would compare pi_old with pi_new under a random mask), so
`configure_stage("rl")` swaps every Dropout of the head for Identity. The critic reads the head
(V_expert averaged over the chain), as the paper places it for GR00T.

Shapes: B batch, L prefix tokens, d prefix width, e head width, H chunk, D action dim, P state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pirl_core.nn import mlp, sinusoidal_embedding
from pirl_core.policies.base import PrefixCache, batch_tau
from pirl_core.policies.small import Attention, SmallVLA

if TYPE_CHECKING:
    from pirl_core.config import PolicyConfig

TIMESTEP_BUCKETS = 1000


class AdaLNBlock(nn.Module):
    """DiT block: adaptive-LayerNorm-zero attention (cross to the VLM, or self) and MLP."""

    def __init__(self, dim: int, num_heads: int, cross: bool, dropout: float):
        super().__init__()
        self.cross = cross
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False)
        self.attn = Attention(dim, num_heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False)
        self.mlp = mlp(dim, 4 * dim, dim, 2)
        self.drop = nn.Dropout(dropout)
        self.ada = nn.Linear(dim, 6 * dim)
        nn.init.zeros_(self.ada.weight)  # gates start at 0: every block starts as the identity
        nn.init.zeros_(self.ada.bias)

    def forward(self, x: Tensor, cond: Tensor, memory: Tensor) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(F.silu(cond))[:, None].chunk(6, -1)
        h = self.norm1(x) * (1 + scale1) + shift1
        x = x + gate1 * self.drop(self.attn(h, memory if self.cross else None))
        h = self.norm2(x) * (1 + scale2) + shift2
        return x + gate2 * self.drop(self.mlp(h))


class GR00TPolicy(SmallVLA):
    """SmallVLA's prefix + a GR00T-style DiT action head; implements FlowPolicy."""

    def __init__(self, action_dim: int, chunk_size: int, state_dim: int, cfg: PolicyConfig,
                 image_size: int, num_cameras: int = 1, **kwargs):
        super().__init__(action_dim, chunk_size, state_dim, cfg, image_size,
                         num_cameras=num_cameras, build_expert=False, **kwargs)
        e = cfg.expert_hidden_dim
        self.expert_feature_dim = e
        self.memory_proj = nn.Linear(cfg.hidden_dim, e)
        self.time_embed = mlp(e, e, e, 2, act=nn.SiLU)
        self.state_encoder = mlp(state_dim, e, e, 2, act=nn.SiLU)
        self.action_in = nn.Linear(action_dim, e)
        self.action_encoder = mlp(2 * e, e, e, 2, act=nn.SiLU)
        self.action_pos = nn.Parameter(0.02 * torch.randn(chunk_size, e))
        self.blocks = nn.ModuleList(AdaLNBlock(e, cfg.num_heads, cross=i % 2 == 0,
                                               dropout=cfg.head_dropout)
                                    for i in range(2 * cfg.num_layers))
        self.final_norm = nn.LayerNorm(e, elementwise_affine=False)
        self.final_ada = nn.Linear(e, 2 * e)
        self.action_out = nn.Linear(e, action_dim)
        for layer in (self.final_ada, self.action_out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def expert_parameters(self) -> list[nn.Parameter]:
        mods = [self.memory_proj, self.time_embed, self.state_encoder, self.action_in,
                self.action_encoder, self.blocks, self.final_ada, self.action_out]
        return [self.action_pos] + [p for m in mods for p in m.parameters()]

    def configure_stage(self, stage: Literal["sft", "rl"]) -> list[nn.Parameter]:
        if stage == "rl":
            self.remove_dropout()
        return super().configure_stage(stage)

    def remove_dropout(self) -> None:
        """Every Dropout of the head becomes Identity (RL: the policy must be deterministic)."""
        for block in self.blocks:
            block.drop = nn.Identity()

    def velocity(self, x: Tensor, tau: Tensor, cache: PrefixCache,
                 state: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, H, D], tau [B] (or scalar) -> (u [B, H, D], head features [B, e])."""
        e = self.expert_feature_dim
        tau = batch_tau(x, tau, cache)
        bucket = torch.floor(tau * TIMESTEP_BUCKETS).clamp(max=TIMESTEP_BUCKETS - 1)
        t_emb = sinusoidal_embedding(bucket / TIMESTEP_BUCKETS, e)  # [B, e]
        cond = self.time_embed(t_emb)
        actions = self.action_in(x.float())
        actions = self.action_encoder(torch.cat([actions, t_emb[:, None].expand_as(actions)], -1))
        h = torch.cat([self.state_encoder(state.float())[:, None], actions + self.action_pos], 1)
        memory = self.memory_proj(cache.tokens)
        for block in self.blocks:
            h = block(h, cond, memory)
        shift, scale = self.final_ada(F.silu(cond))[:, None].chunk(2, -1)
        h = (self.final_norm(h) * (1 + scale) + shift)[:, 1:]
        return self.action_out(h), h.mean(1)
