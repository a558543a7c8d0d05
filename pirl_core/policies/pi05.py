"""pi0.5 behind pirl's FlowPolicy: pi0's PaliGemma prefix (transformers' PI0) with pi0.5's action
expert, built from transformers' Gemma attention and MLP blocks.

What differs from pi0 (openpi's `pi05=True` path):
- No state token. The state is discretised into 256 bins over [-1, 1] (values beyond are
  clipped; openpi feeds normalised state) and written into the prompt, "Task: <instruction>,
  State: <bins>;\\nAction: ", so the prefix, and V_vlm on it, sees the state.
- Time conditions the expert through adaptive RMSNorm: every norm of every expert layer (and the
  final one) gets a scale, a shift and a residual gate from the time embedding, initialised to
  zero (adaLN-zero); action tokens carry only the noisy actions.
- The critic reads the prefix (V_vlm), as in the paper's pi0.5 runs (critic.placement: vlm).

Time convention as pi0 (`pirl_core.policies.pi0`): t = 1 - tau, u = -v; pinned by a test against
`sample_actions`, an Euler loop written in openpi's convention.

Shapes: B batch, L prefix tokens, N layers, H chunk, D model action dim, De expert width,
Pd state dim.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from pirl_core.flow import tau_to_openpi_time, velocity_from_openpi
from pirl_core.policies.base import batch_tau
from pirl_core.policies.pi0 import PI0Policy, PI0PrefixCache

if TYPE_CHECKING:
    from transformers import GemmaConfig, PI0ForConditionalGeneration, PreTrainedTokenizerBase

    from pirl_core.config import PolicyConfig

STATE_BINS = 256
EXPERT_FILE = "pi05_expert.safetensors"


def discretize_state(state: Tensor) -> Tensor:
    """[B, Pd] -> [B, Pd] ints in [0, 255]: openpi's 256 equal bins over [-1, 1]."""
    bins = ((state.float().clamp(-1, 1) + 1) * (STATE_BINS / 2)).floor()
    return bins.clamp(max=STATE_BINS - 1).long()


def clean_instruction(text: str) -> str:
    """openpi's prompt cleaning: stripped, underscores and newlines to spaces."""
    return text.strip().replace("_", " ").replace("\n", " ")


class AdaRMSNorm(nn.Module):
    """RMS norm whose scale and shift, and the gate of the residual it feeds, are linear in the
    conditioning vector; zero weights make it a plain RMS norm with a closed gate."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.modulation = nn.Linear(dim, 3 * dim)
        nn.init.zeros_(self.modulation.weight)
        nn.init.zeros_(self.modulation.bias)

    def forward(self, x: Tensor, cond: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, H, De], cond [B, De] -> (normed [B, H, De], gate [B, 1, De])."""
        xf = x.float()
        normed = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        scale, shift, gate = self.modulation(cond)[:, None].chunk(3, dim=-1)
        return (normed * (1 + scale.float()) + shift.float()).to(x.dtype), gate


class AdaRMSLayer(nn.Module):
    """A Gemma decoder layer (attention, gated MLP) with adaptive norms and gated residuals."""

    def __init__(self, config: GemmaConfig, layer_idx: int):
        from transformers.models.gemma.modeling_gemma import GemmaAttention, GemmaMLP

        super().__init__()
        self.attn_norm = AdaRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = GemmaAttention(config, layer_idx)
        self.mlp_norm = AdaRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = GemmaMLP(config)

    def forward(self, x: Tensor, cond: Tensor, rope: tuple[Tensor, Tensor], mask: Tensor,
                kv) -> Tensor:
        h, gate = self.attn_norm(x, cond)
        h, _ = self.self_attn(h, position_embeddings=rope, attention_mask=mask,
                              past_key_values=kv)
        x = x + h * gate
        h, gate = self.mlp_norm(x, cond)
        return x + self.mlp(h) * gate


class AdaRMSExpert(nn.Module):
    """pi0.5's action expert: adaptive-norm Gemma layers whose attention reads, layer by layer,
    the prefix K/V before the action tokens' own (the VLM's head geometry)."""

    def __init__(self, config: GemmaConfig):
        from transformers.models.gemma.modeling_gemma import GemmaRotaryEmbedding

        super().__init__()
        self.layers = nn.ModuleList(AdaRMSLayer(config, i)
                                    for i in range(config.num_hidden_layers))
        self.norm = AdaRMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary = GemmaRotaryEmbedding(config)

    def forward(self, x: Tensor, cond: Tensor, prefix_mask: Tensor, kv) -> Tensor:
        """x [B, H, De] action embeddings, cond [B, De], prefix_mask [B, L] -> [B, H, De]."""
        b, h = x.shape[:2]
        # Action tokens see every real prefix token and each other (one bidirectional block),
        # at positions that continue the prefix's.
        visible = torch.cat([prefix_mask.bool(), prefix_mask.new_ones(b, h, dtype=torch.bool)], 1)
        mask = torch.zeros(visible.shape, dtype=x.dtype, device=x.device)
        mask = mask.masked_fill(~visible, torch.finfo(x.dtype).min)[:, None, None].expand(
            b, 1, h, visible.shape[1])
        positions = prefix_mask.sum(-1, keepdim=True) + torch.arange(h, device=x.device)
        rope = self.rotary(x, positions)
        for layer in self.layers:
            x = layer(x, cond, rope, mask, kv)
        return self.norm(x, cond)[0]


class PI05Policy(PI0Policy):
    """pi0.5 as a `pirl_core.policies.base.FlowPolicy`: pi0's prefix path, its own expert."""

    def __init__(self, model: PI0ForConditionalGeneration, tokenizer: PreTrainedTokenizerBase,
                 cfg: PolicyConfig, env_action_dim: int, state_dim: int, num_cameras: int = 1):
        from transformers.models.pi0.modeling_pi0 import PI0TimestepEmbeddings

        super().__init__(model, tokenizer, cfg, env_action_dim, state_dim, num_cameras)
        mc = model.config
        # pi0's Gemma expert and state / action-time embedding are replaced, not kept beside.
        model.model.dit, model.embed_action_time = None, None
        expert_config = copy.deepcopy(mc.dit_config)
        de = expert_config.hidden_size
        self.expert = AdaRMSExpert(expert_config)
        self.time_embed = PI0TimestepEmbeddings(mc)
        self.time_mlp_in, self.time_mlp_out = nn.Linear(de, de), nn.Linear(de, de)
        self.action_in_proj = nn.Linear(mc.max_action_dim, de)
        self.to(self.model.dtype)

    def expert_parameters(self) -> list[nn.Parameter]:
        heads = (self.expert, self.time_mlp_in, self.time_mlp_out, self.action_in_proj,
                 self.model.action_out_proj)
        return [p for m in heads for p in m.parameters()]

    def prompt(self, instructions: tuple[str, ...], device: torch.device | str = "cpu",
               state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """input_ids, attention_mask [B, L]: image placeholders, then openpi's pi0.5 prompt."""
        if state is None or state.shape[0] != len(instructions):
            raise ValueError(f"pi0.5's prompt needs one state row per instruction; got "
                             f"{None if state is None else tuple(state.shape)} for "
                             f"{len(instructions)} instructions")
        # Zero-padded to the model's state width and cleaned as openpi / LeRobot do, so that a
        # checkpoint trained there reads the prompt it was trained on.
        state = F.pad(state[:, :self.state_dim], (0, max(0, self.state_dim - state.shape[1])))
        bins = discretize_state(state).tolist()
        texts = [f"Task: {clean_instruction(text)}, State: {' '.join(map(str, row))};\nAction: "
                 for text, row in zip(instructions, bins)]
        rows = [self._padded_row(t) for t in texts]
        return (torch.stack([r[0] for r in rows]).to(device),
                torch.stack([r[1] for r in rows]).to(device))

    def encode_prefix_from_features(self, images: Tensor, instructions: tuple[str, ...],
                                    state: Tensor) -> PI0PrefixCache:
        """One PaliGemma pass over the images and the prompt that carries the state."""
        pixels = self.pixel_values(images)
        ids, mask = self.prompt(instructions, pixels.device, state)
        return self.run_vlm(ids, mask, pixels)

    def time_condition(self, t: Tensor) -> Tensor:
        """openpi time t [B] -> the adaptive norms' conditioning [B, De] (two swish layers)."""
        emb = self.time_embed(t).to(self.dtype)
        return F.silu(self.time_mlp_out(F.silu(self.time_mlp_in(emb))))

    def velocity(self, x: Tensor, tau: Tensor, cache: PI0PrefixCache,
                 state: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, H, D], tau [B] (or scalar) -> (u [B, H, D] float32, expert features [B, De]).
        `state` is unused: pi0.5 reads it from the prefix."""
        tau = batch_tau(x, tau, cache)
        cond = self.time_condition(tau_to_openpi_time(tau))
        hidden = self.expert(self.action_in_proj(x.to(self.dtype)), cond, cache.mask,
                             self.prefix_kv(cache))
        v = self.model.action_out_proj(hidden)
        return velocity_from_openpi(v).float(), hidden.float().mean(1)

    @torch.no_grad()
    def sample_actions(self, cache: PI0PrefixCache, noise: Tensor, num_steps: int) -> Tensor:
        """Euler integration in openpi's convention (noise at t = 1, x += dt * v, dt = -1/K),
        as transformers' PI0.sample_actions: the reference pirl's ODE chain is tested against."""
        x, dt = noise.to(self.dtype), -1.0 / num_steps
        for step in range(num_steps):
            cond = self.time_condition(torch.full((x.shape[0],), 1.0 + step * dt, device=x.device))
            hidden = self.expert(self.action_in_proj(x), cond, cache.mask, self.prefix_kv(cache))
            x = x + dt * self.model.action_out_proj(hidden)
        return x


def make_pi05_policy(cfg: PolicyConfig, env_action_dim: int, state_dim: int, chunk_size: int,
                     image_size: int, num_cameras: int) -> PI05Policy:
    """From `cfg.checkpoint` when set (a directory `save_pi05` wrote, or a LeRobot pi0.5
    checkpoint), else a small pi0.5 built from scratch at cfg's widths."""
    from pirl_core.policies.pi0_build import build_pi0
    from pirl_core.policies.pi05_lerobot import is_lerobot_pi05, load_lerobot_pi05

    if cfg.checkpoint and not (Path(cfg.checkpoint) / EXPERT_FILE).is_file() \
            and is_lerobot_pi05(cfg.checkpoint):
        return load_lerobot_pi05(cfg.checkpoint, cfg, env_action_dim, num_cameras, chunk_size)
    if cfg.checkpoint:
        return load_pi05(cfg.checkpoint, cfg, env_action_dim, num_cameras, chunk_size)
    model, tokenizer = build_pi0(cfg, env_action_dim, state_dim, chunk_size, image_size)
    return PI05Policy(model, tokenizer, cfg, env_action_dim, state_dim, num_cameras)


def save_pi05(policy: PI05Policy, path: str | Path) -> Path:
    """The HF layout of the PaliGemma part (as `save_pi0`) plus the expert's safetensors."""
    from safetensors.torch import save_file

    from pirl_core.policies.pi0_build import save_pi0

    path = save_pi0(policy.model, policy.tokenizer, path)
    own = {k: v.contiguous() for k, v in policy.state_dict().items()
           if not k.startswith("model.")}
    save_file(own, str(path / EXPERT_FILE))
    return path


def load_pi05(path: str | Path, cfg: PolicyConfig, env_action_dim: int, num_cameras: int,
              chunk_size: int | None = None) -> PI05Policy:
    """A policy `save_pi05` wrote; a missing expert file or a chunk-size mismatch is named."""
    from safetensors.torch import load_file

    from pirl_core.policies.pi0_build import load_pi0

    path = Path(path)
    if not (path / EXPERT_FILE).is_file():
        raise FileNotFoundError(f"policy.checkpoint {str(path)!r} has no {EXPERT_FILE} "
                                "(expected a directory written by save_pi05)")
    model, tokenizer = load_pi0(path)
    if chunk_size is not None and model.config.chunk_size != chunk_size:
        raise ValueError(f"policy.checkpoint {str(path)!r} predicts chunks of "
                         f"{model.config.chunk_size}; env.chunk_size is {chunk_size}")
    policy = PI05Policy(model, tokenizer, cfg, env_action_dim, model.config.max_state_dim,
                        num_cameras)
    missing, unexpected = policy.load_state_dict(load_file(str(path / EXPERT_FILE)),
                                                 strict=False)
    missing = [k for k in missing if not k.startswith("model.")]
    if missing or unexpected:
        raise ValueError(f"{path / EXPERT_FILE}: missing {missing}, unexpected {unexpected}")
    return policy
