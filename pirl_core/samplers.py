"""Flow samplers: every denoising step is `A_next = mean + std * xi`, xi ~ N(0, I).

| method     | mean                                                  | std                          |
|------------|-------------------------------------------------------|------------------------------|
| ode        | x + u d                                               | 0                            |
| flow_sde   | x + u d - a^2 d / (2 tau~) * (x - tau u)              | a sqrt((1 - tau) / tau~) sqrt(d) |
| flow_noise | x + u d                                               | sigma_theta'(x, o, tau)      |
| flow_cps   | x + u d + (1 - tau') (cos(pi a / 2) - 1) x_noise      | (1 - tau') sin(pi a / 2)     |

d = 1/K, tau' = tau + d, x_noise = x - tau u, tau~ = max(tau, d).

Flow-SDE is the paper's Eq. 8-9 moved into pirl's time convention (tau = 0 noise): with
g = a sqrt((1 - tau) / tau) and score -(x - tau u) / (1 - tau), the drift u + g^2/2 * score loses
its (1 - tau) factor, so nothing divides by (1 - tau) and the last step is finite.
Grid-end rule: g divides by tau, which is 0 on the first step; there tau is replaced by the next
grid point d (as public Flow-GRPO code does). Only g's denominator is floored; the score keeps the
true tau. Flow-CPS is written as the Euler step plus a correction that is exactly zero at a = 0, so
a = 0 reproduces the ODE chain bit for bit (and so does Flow-SDE, whose correction has a factor a^2).

The sampler returns the whole chain; log-probs are recomputed from it (pirl_core.logprob) on the
same grid by `replay_transitions`.

Shapes: B batch, K denoising steps, H actions per chunk, D action dim, F expert feature dim.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Protocol

import torch
from torch import Tensor

from pirl_core.flow import expand_tau, predicted_noise, time_grid

if TYPE_CHECKING:
    from pirl_core.config import SamplerConfig

METHODS = ("ode", "flow_sde", "flow_noise", "flow_cps")


class VelocityField(Protocol):
    """u = v(x [B, H, D], tau [B], context) -> [B, H, D], or (u, features [B, F]) when the model
    exposes action-expert features (for the Flow-Noise head and V_expert)."""

    def __call__(self, x: Tensor, tau: Tensor, context: Any) -> Tensor | tuple[Tensor, Tensor]: ...


# (x [B, H, D], tau [B], context, features [B, F] | None) -> std [B, H, D], strictly positive
NoiseStdFn = Callable[[Tensor, Tensor, Any, "Tensor | None"], Tensor]


@dataclass(frozen=True)
class Chain:
    """One sampled denoising chain per batch element: everything needed to replay log-probs."""

    states: Tensor  # [B, K+1, H, D]  A^{tau_0} .. A^{tau_K}; states[:, -1] is the action chunk
    means: Tensor  # [B, K, H, D]    transition means used at sampling time
    stds: Tensor  # [B, K, H, D]     transition stds (0 on deterministic steps)
    taus: Tensor  # [K+1]            the grid the chain was sampled on
    stochastic: Tensor  # [B, K] bool  steps whose std > 0 (the only ones with a log-prob)
    features: Tensor | None = None  # [B, K, F]  expert features per step, if the model gives them

    @property
    def actions(self) -> Tensor:
        return self.states[:, -1]

    @property
    def num_steps(self) -> int:
        return self.taus.numel() - 1

    def index(self, rows: Tensor) -> Chain:
        """The chains of the selected batch rows (a minibatch); the grid is shared."""
        feats = None if self.features is None else self.features[rows]
        return Chain(self.states[rows], self.means[rows], self.stds[rows], self.taus,
                     self.stochastic[rows], feats)

    @staticmethod
    def cat(chains: list[Chain]) -> Chain:
        """Concatenate chains sampled on the same grid along the batch dimension."""
        first = chains[0]
        if any(not torch.equal(c.taus, first.taus) for c in chains):
            raise ValueError("cannot concatenate chains sampled on different time grids")
        feats = None if first.features is None else torch.cat([c.features for c in chains])
        return Chain(*(torch.cat([getattr(c, f) for c in chains])
                       for f in ("states", "means", "stds")), first.taus,
                     torch.cat([c.stochastic for c in chains]), feats)

    def detach(self) -> Chain:
        feats = None if self.features is None else self.features.detach()
        return Chain(self.states.detach(), self.means.detach(), self.stds.detach(),
                     self.taus, self.stochastic, feats)


def ode_config(cfg: SamplerConfig) -> SamplerConfig:
    """The deterministic evaluation sampler: same K, no noise (the noise network is dropped)."""
    return replace(cfg, method="ode")


def _rows(mask: Tensor, like: Tensor) -> Tensor:
    """A per-sample bool [B] viewed to broadcast against [B, ...]."""
    return mask.view(-1, *([1] * (like.dim() - 1)))


def _split(out: Tensor | tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor | None]:
    return (out[0], out[1]) if isinstance(out, tuple) else (out, None)


def transition(method: str, x: Tensor, u: Tensor, tau: Tensor, delta: float, noise_level: float,
               noise_std: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Mean and std of one denoising step from state x at per-sample time tau [B]."""
    euler = x + u * delta
    t = expand_tau(tau, x)
    if method == "ode":
        return euler, torch.zeros_like(x)
    if method == "flow_sde":
        a = noise_level
        t_floor = t.clamp_min(delta)
        mean = euler - (a * a * delta / (2 * t_floor)) * predicted_noise(x, u, t)
        std = a * torch.sqrt((1 - t) / t_floor) * math.sqrt(delta)
        return mean, std.expand_as(x)
    if method == "flow_noise":
        if noise_std is None:
            raise ValueError("method 'flow_noise' needs a noise_std_fn (the Flow-Noise head)")
        return euler, noise_std
    if method == "flow_cps":
        t_next = t + delta
        angle = math.pi * noise_level / 2
        mean = euler + (1 - t_next) * (math.cos(angle) - 1) * predicted_noise(x, u, t)
        return mean, ((1 - t_next) * math.sin(angle)).expand_as(x)
    raise ValueError(f"unknown sampler method {method!r}; expected one of {METHODS}")


def _drawn_on(generator: torch.Generator | None, device: torch.device | str | None):
    """Where to draw: the generator's own device (a CPU generator may feed GPU tensors; the draws
    are then copied, and a seed gives the same chain on either device)."""
    return generator.device if generator is not None else device


def draw_stochastic_mask(cfg: SamplerConfig, batch_size: int, generator: torch.Generator | None,
                         device: torch.device | str | None = None) -> Tensor:
    """[B, K] bool: which denoising steps inject noise, per sample.

    "all": every step (one-layer Flow-Noise; standard two-layer). "hybrid": one step per sample,
    drawn from `generator` (paper Sec. 4.2.3); for Flow-CPS the last step (std = 0) is never drawn.
    "window": steps [window_start, window_start + window_size) (Mix-GRPO).
    """
    k = cfg.num_steps
    mask = torch.zeros(batch_size, k, dtype=torch.bool, device=device)
    if cfg.method == "ode":
        return mask
    if cfg.schedule == "all":
        return mask.fill_(True)
    if cfg.schedule == "hybrid":
        eligible = k - 1 if (cfg.method == "flow_cps" and k > 1) else k
        idx = torch.randint(0, eligible, (batch_size,), generator=generator,
                            device=_drawn_on(generator, device)).to(mask.device)
        return mask.scatter_(1, idx[:, None], True)
    if cfg.schedule == "window":
        mask[:, cfg.window_start: cfg.window_start + cfg.window_size] = True
        return mask
    raise ValueError(f"unknown schedule {cfg.schedule!r}; expected all, hybrid or window")


def _step(velocity: VelocityField, x: Tensor, tau: Tensor, context: Any, cfg: SamplerConfig,
          delta: float, noise_std_fn: NoiseStdFn | None) -> tuple[Tensor, Tensor, Tensor, Tensor | None]:
    """(ODE mean, stochastic mean, stochastic std, features) of one step for the whole batch."""
    u, feats = _split(velocity(x, tau, context))
    noise_std = None
    if cfg.method == "flow_noise":
        if noise_std_fn is None:
            raise ValueError("method 'flow_noise' needs a noise_std_fn (the Flow-Noise head)")
        noise_std = noise_std_fn(x, tau, context, feats)
    mean, std = transition(cfg.method, x, u, tau, delta, cfg.noise_level, noise_std)
    return x + u * delta, mean, std, feats


@torch.no_grad()
def sample_chain(velocity: VelocityField, context: Any, cfg: SamplerConfig, batch_size: int,
                 action_shape: tuple[int, int], generator: torch.Generator | None = None,
                 noise_std_fn: NoiseStdFn | None = None, x0: Tensor | None = None,
                 device: torch.device | str | None = None) -> Chain:
    """Integrate tau from 0 to 1 on the grid k / K and return the whole chain.

    Steps outside the stochastic mask are plain Euler (ODE) steps; their std is stored as 0.
    Random draws come only from `generator`, in a fixed order (mask, A_0, then one xi per step),
    so a seeded generator reproduces the chain exactly.
    """
    k, delta = cfg.num_steps, 1.0 / cfg.num_steps
    taus = time_grid(k, device)
    mask = draw_stochastic_mask(cfg, batch_size, generator, device)
    shape = (batch_size, *action_shape)
    draw_on = _drawn_on(generator, device)
    x = (torch.randn(shape, generator=generator, device=draw_on).to(device) if x0 is None
         else x0.float())
    states, means, stds, feats = [x], [], [], []
    for i in range(k):
        tau = taus[i].expand(batch_size)
        ode_mean, sto_mean, sto_std, f = _step(velocity, x, tau, context, cfg, delta, noise_std_fn)
        m = _rows(mask[:, i], x)
        mean = torch.where(m, sto_mean, ode_mean)
        std = torch.where(m, sto_std, torch.zeros_like(sto_std))
        xi = torch.randn(shape, generator=generator, device=draw_on).to(device)
        x = mean + std * xi
        states.append(x), means.append(mean), stds.append(std)
        if f is not None:
            feats.append(f)
    std_all = torch.stack(stds, 1)
    stochastic = mask & (std_all.flatten(2).amin(-1) > 0)
    return Chain(torch.stack(states, 1), torch.stack(means, 1), std_all, taus, stochastic,
                 torch.stack(feats, 1) if feats else None)


def replay_transitions(velocity: VelocityField, chain: Chain, context: Any, cfg: SamplerConfig,
                       noise_std_fn: NoiseStdFn | None = None) -> tuple[Tensor, Tensor]:
    """Recompute (means, stds) [B, K, H, D] of the stochastic steps under the current parameters.

    Only stochastic steps are recomputed (others keep the stored, detached values: their log-prob
    is masked). When every sample has exactly one stochastic step (the hybrid schedule), all
    samples are gathered into ONE forward pass at their own tau: the hybrid's update saving.
    """
    mask, taus, delta = chain.stochastic, chain.taus, 1.0 / chain.num_steps
    means, stds = chain.means.clone(), chain.stds.clone()
    rows = torch.arange(mask.shape[0], device=mask.device)
    if mask.shape[1] > 1 and bool((mask.sum(1) == 1).all()):
        idx = mask.float().argmax(1)
        _, mean, std, _ = _step(velocity, chain.states[rows, idx], taus[idx], context, cfg,
                                delta, noise_std_fn)
        return means.index_put((rows, idx), mean), stds.index_put((rows, idx), std)
    for i in range(chain.num_steps):
        if not bool(mask[:, i].any()):
            continue
        tau = taus[i].expand(mask.shape[0])
        _, mean, std, _ = _step(velocity, chain.states[:, i], tau, context, cfg, delta, noise_std_fn)
        m = _rows(mask[:, i], mean)
        means[:, i] = torch.where(m, mean, means[:, i])
        stds[:, i] = torch.where(m, std, stds[:, i])
    return means, stds
