"""The policy interface every VLA implements (small CPU model, pi0, pi0.5, GR00T-style head), and
the adapters that let `pirl_core.samplers` drive any of them without importing a policy.

The interface is pi0-shaped: the observation prefix (images, instruction, optionally state) is
encoded ONCE per observation into a `PrefixCache`; the action expert is then called K times per
chunk, attending to that cache. pi0 keeps a KV cache; pirl's small model keeps the prefix tokens.

    cache = policy.encode_prefix(obs)                       # once per observation
    chain = sample_chain(policy_velocity(policy), (cache, obs.state), cfg, B, policy.action_shape,
                         noise_std_fn=policy_noise_std(noise_head, policy.action_shape))

The sampler's `context` is the tuple `(cache, state)`; a rollout stores `cache.detach()` beside
the chain, and when the prefix is frozen the learner replays log-probs from the stored cache
without recomputing the prefix (`cache.index(rows)` selects a minibatch).

Shapes: B batch, C cameras, S image side, P proprio state dim, L prefix tokens, d model width,
H actions per chunk, D action dim, F expert feature dim.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Callable, Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

Rows = Tensor | slice | list[int]


def _index(t: Tensor, rows: Rows) -> Tensor:
    if isinstance(rows, list):
        rows = torch.as_tensor(rows, dtype=torch.long, device=t.device)
    return t[rows]


@dataclass(frozen=True)
class Observation:
    """One batch of observations, as the policy sees them.

    images: uint8 [B, S, S, 3] (one camera) or [B, C, S, S, 3] (C cameras, e.g. LIBERO's agent
    view + wrist); state: float32 [B, P] proprioception; instructions: one string per row.
    """

    images: Tensor
    state: Tensor
    instructions: tuple[str, ...]

    def __post_init__(self) -> None:
        b = self.images.shape[0]
        if self.images.dim() not in (4, 5):
            raise ValueError(
                f"images must be [B, S, S, 3] or [B, C, S, S, 3], got {tuple(self.images.shape)}"
            )
        if self.state.dim() != 2 or self.state.shape[0] != b:
            raise ValueError(f"state must be [B={b}, P], got {tuple(self.state.shape)}")
        if len(self.instructions) != b:
            raise ValueError(f"need {b} instructions, got {len(self.instructions)}")
        if not isinstance(self.instructions, tuple):
            object.__setattr__(self, "instructions", tuple(self.instructions))

    @property
    def batch_size(self) -> int:
        return self.images.shape[0]

    def index(self, rows: Rows) -> Observation:
        if isinstance(rows, Tensor) and rows.dtype == torch.bool:
            rows = rows.nonzero().flatten()
        if isinstance(rows, slice):
            texts = self.instructions[rows]
        else:
            idx = rows.tolist() if isinstance(rows, Tensor) else list(rows)
            texts = tuple(self.instructions[i] for i in idx)
        return Observation(_index(self.images, rows), _index(self.state, rows), texts)


@dataclass(frozen=True)
class PrefixCache:
    """What the action expert attends to: a plain bundle of tensors, safe to store in a rollout.

    tokens: [B, L, d] prefix output tokens (pi0 would keep per-layer K/V here instead);
    pooled: [B, d] a summary of the prefix (mean of tokens), the input of V_vlm.
    """

    tokens: Tensor
    pooled: Tensor

    def __post_init__(self) -> None:
        t, p = self.tokens, self.pooled
        if t.dim() != 3 or p.dim() != 2 or t.shape[0] != p.shape[0]:
            raise ValueError(
                f"PrefixCache needs tokens [B, L, d] and pooled [B, d], got "
                f"{tuple(self.tokens.shape)} and {tuple(self.pooled.shape)}"
            )

    @property
    def batch_size(self) -> int:
        return self.tokens.shape[0]

    def _map(self, fn: Callable[[Tensor], Tensor]) -> PrefixCache:
        return type(self)(**{f.name: fn(getattr(self, f.name)) for f in fields(self)})

    def index(self, rows: Rows) -> PrefixCache:
        """The rows of a minibatch (index tensor, list or slice)."""
        return self._map(lambda t: _index(t, rows))

    def detach(self) -> PrefixCache:
        return self._map(Tensor.detach)

    def to(self, device: torch.device | str) -> PrefixCache:
        return self._map(lambda t: t.to(device))


@runtime_checkable
class FlowPolicy(Protocol):
    """A flow-matching VLA in pirl's time convention (tau = 0 noise, tau = 1 action)."""

    action_shape: tuple[int, int]  # (H, D)
    expert_feature_dim: int  # F: Flow-Noise head and V_expert input
    prefix_feature_dim: int  # V_vlm input

    def encode_prefix(self, obs: Observation) -> PrefixCache:
        """Encode images, instruction (and state, pi0.5-style) once per observation."""
        ...

    def velocity(self, x: Tensor, tau: Tensor, cache: PrefixCache,
                 state: Tensor) -> tuple[Tensor, Tensor]:
        """x [B, H, D], tau [B] -> (u [B, H, D], expert features [B, F])."""
        ...

    def prefix_features(self, cache: PrefixCache) -> Tensor:
        """[B, prefix_feature_dim]: the observation summary V_vlm reads."""
        ...

    def prefix_parameters(self) -> list[nn.Parameter]:
        """The trainable prefix (VLM, or its LoRA adapters); RL re-encodes observations with
        gradients when any of them requires grad."""
        ...

    def env_actions(self, actions: Tensor) -> Tensor:
        """[B, H, D] chain actions -> the [B, H, D_env] the environment executes (pi0 pads the
        action to 32 dims and the chain keeps them all)."""
        ...


def camera_batch(images: Tensor, num_cameras: int) -> Tensor:
    """uint8 [B, S, S, 3] (one camera) or [B, C, S, S, 3] -> [B, C, S, S, 3], C checked against
    the number of cameras the policy was built for."""
    if images.dim() == 4:
        images = images.unsqueeze(1)
    if images.shape[1] != num_cameras:
        raise ValueError(f"policy built for {num_cameras} camera(s), "
                         f"got images {tuple(images.shape)}")
    return images


def batch_tau(x: Tensor, tau: Tensor | float, cache: PrefixCache) -> Tensor:
    """A velocity call's tau as float32 [B] on x's device, once the cache is known to hold x's
    B rows (a scalar tau is broadcast)."""
    b = x.shape[0]
    if cache.batch_size != b:
        raise ValueError(f"cache has {cache.batch_size} rows, x has {b}")
    return torch.as_tensor(tau, dtype=torch.float32, device=x.device).expand(b)


class StagedParameters:
    """Which parameters each stage trains, for a policy with `prefix_parameters`,
    `expert_parameters`, `set_prefix_trainable` and a `cfg` (PolicyConfig): SFT trains prefix +
    expert; RL trains the expert, plus the prefix unless cfg.freeze_prefix."""

    def parameters_for(self, stage: Literal["sft", "rl"]) -> list[nn.Parameter]:
        """The optimizer's parameters for `stage`."""
        if stage == "sft":
            return self.prefix_parameters() + self.expert_parameters()
        if stage == "rl":
            prefix = [] if self.cfg.freeze_prefix else self.prefix_parameters()
            return prefix + self.expert_parameters()
        raise ValueError(f"stage must be 'sft' or 'rl', got {stage!r}")

    def configure_stage(self, stage: Literal["sft", "rl"]) -> list[nn.Parameter]:
        """Set requires_grad for `stage` and return its parameter list."""
        self.set_prefix_trainable(stage == "sft" or not self.cfg.freeze_prefix)
        return self.parameters_for(stage)


PolicyContext = tuple[PrefixCache, Tensor]  # the sampler's `context`: (cache, state [B, P])


def policy_velocity(policy: FlowPolicy) -> Callable[[Tensor, Tensor, Any], tuple[Tensor, Tensor]]:
    """A `pirl_core.samplers.VelocityField` for any FlowPolicy; context = (cache, state)."""

    def velocity(x: Tensor, tau: Tensor, context: PolicyContext) -> tuple[Tensor, Tensor]:
        cache, state = context
        return policy.velocity(x, tau, cache, state)

    return velocity


def velocity_field(policy: FlowPolicy, cache: PrefixCache,
                   state: Tensor) -> Callable[[Tensor, Tensor, Any], tuple[Tensor, Tensor]]:
    """A velocity field with the observation bound in; it ignores the sampler's context."""

    def velocity(x: Tensor, tau: Tensor, context: Any = None) -> tuple[Tensor, Tensor]:
        return policy.velocity(x, tau, cache, state)

    return velocity


def policy_noise_std(noise_head: nn.Module, action_shape: tuple[int, int]) -> Callable[..., Tensor]:
    """A `NoiseStdFn` for Flow-Noise: expert features [B, F] (+ tau) -> std [B, H, D].

    `noise_head` is a `pirl_core.nn.NoiseHead(F, H * D, ...)` (std bounded in [min_std, max_std]).
    """
    h, d = action_shape

    def noise_std(x: Tensor, tau: Tensor, context: Any, features: Tensor | None) -> Tensor:
        if features is None:
            raise ValueError("policy_noise_std needs expert features; the velocity returned none")
        return noise_head(features, tau).view(-1, h, d)

    return noise_std
