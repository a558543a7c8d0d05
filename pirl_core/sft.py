"""Few-shot supervised fine-tuning with the conditional flow-matching loss (paper Sec. 5.1).

From a LeRobot-format demo dataset: for each frame t, the target is the action chunk
A = actions[t : t + H] (the episode's last action repeats past its end, so every frame counts),
and the loss is || v(A_tau, o, tau) - (A - eps) ||^2 with tau drawn per example.
The frozen vision backbone's features are computed once per frame (`SFTData.vision`), so an SFT
step costs only the trainable prefix and the action expert.

Shapes: N frames, H chunk, D action dim, P proprio dim, C cameras, Cf h w backbone feature map.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from pirl_core.config import SFTConfig
from pirl_core.data.lerobot_format import LeRobotData
from pirl_core.losses import cfm_loss, interpolate, sample_tau
from pirl_core.normalize import normalizer_of


def action_chunks(actions: np.ndarray, chunk_size: int) -> np.ndarray:
    """[T, D] episode actions -> [T, H, D] targets, the last action repeated past the end."""
    t = actions.shape[0]
    idx = np.minimum(np.arange(t)[:, None] + np.arange(chunk_size)[None], t - 1)
    return actions[idx]


@dataclass(frozen=True)
class SFTData:
    """Every demo frame, ready for CFM steps."""

    vision: Tensor  # [N, C, Cf, h, w] frozen backbone features
    state: Tensor  # [N, P]
    actions: Tensor  # [N, H, D]
    instructions: tuple[str, ...]  # [N]
    episode: Tensor  # [N] episode index (for splits and bookkeeping)

    def __len__(self) -> int:
        return self.state.shape[0]


@torch.no_grad()
def build_sft_data(data: LeRobotData, policy, image_keys: str | tuple[str, ...], chunk_size: int,
                   episodes: list[int] | None = None, batch_size: int = 256) -> SFTData:
    """Decode the chosen episodes and run the frozen backbone once over all their frames (several
    image keys: the cameras in the policy's order, stacked as [T, C, S, S, 3])."""
    episodes = list(range(len(data.episodes))) if episodes is None else episodes
    keys = (image_keys,) if isinstance(image_keys, str) else tuple(image_keys)
    feats, states, acts, instr, ep_ids = [], [], [], [], []
    for e in episodes:
        ep = data.episode(e, keys=[*keys, "observation.state", "action"])
        images = torch.as_tensor(ep[keys[0]] if len(keys) == 1
                                 else np.stack([ep[k] for k in keys], 1))
        for start in range(0, len(images), batch_size):
            feats.append(policy.vision_features(images[start:start + batch_size]))
        states.append(torch.tensor(ep["observation.state"], dtype=torch.float32))
        acts.append(torch.as_tensor(action_chunks(ep["action"], chunk_size), dtype=torch.float32))
        instr += [data.task_of_episode(e)] * len(images)
        ep_ids.append(torch.full((len(images),), e))
    return SFTData(torch.cat(feats), torch.cat(states), torch.cat(acts), tuple(instr),
                   torch.cat(ep_ids))


def normalized_data(policy, data: SFTData) -> SFTData:
    """Fit the policy's normalizer (when it has one) on these demos; the demos in its units."""
    norm = normalizer_of(policy)
    if norm is None:
        return data
    norm.fit(data.actions, data.state)
    return replace(data, actions=norm.actions(data.actions), state=norm.state(data.state))


def cfm_batch_loss(policy, data: SFTData, rows: Tensor, cfg: SFTConfig,
                   generator: torch.Generator) -> Tensor:
    """CFM loss on the frames `rows` with fresh (tau, eps) from `generator`. Targets are
    zero-padded to the policy's action dim (pi0's convention for its 32-dim action)."""
    actions = data.actions[rows]
    actions = F.pad(actions, (0, policy.action_shape[1] - actions.shape[-1]))
    tau = sample_tau(len(rows), generator, cfg.tau_distribution, cfg.beta_alpha, cfg.beta_beta)
    eps = torch.randn(actions.shape, generator=generator)
    x_tau = interpolate(actions, eps, tau)
    state = data.state[rows]
    cache = policy.encode_prefix_from_features(data.vision[rows],
                                               tuple(data.instructions[i] for i in rows), state)
    u, _ = policy.velocity(x_tau, tau, cache, state)
    return cfm_loss(u, actions, eps)


def train_sft(policy, data: SFTData, cfg: SFTConfig, generator: torch.Generator,
              log: Callable[[int, dict[str, float]], None] | None = None,
              log_every: int = 50) -> list[float]:
    """Adam on the SFT parameters for cfg.num_steps minibatches; returns the loss per step.
    A policy with a normalizer fits it on `data` first and trains in its units."""
    data = normalized_data(policy, data)
    params = policy.configure_stage("sft")
    opt = torch.optim.Adam(params, lr=cfg.learning_rate)
    losses, t0 = [], time.perf_counter()
    for step in range(cfg.num_steps):
        rows = torch.randint(0, len(data), (min(cfg.batch_size, len(data)),), generator=generator)
        loss = cfm_batch_loss(policy, data, rows, cfg, generator)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        losses.append(float(loss.detach()))
        if log is not None and (step % log_every == 0 or step == cfg.num_steps - 1):
            window = losses[-log_every:]
            log(step, {"sft/loss": sum(window) / len(window),
                       "sft/seconds": time.perf_counter() - t0})
    return losses
