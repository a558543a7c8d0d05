"""Seconds per PPO update for the three MDP formulations of paper Fig. 8, side by side.

- one-layer:            Flow-Noise over the whole chain (K velocity calls per row, one joint
                        log-prob)
- standard two-layer:   Flow-SDE, every denoising step stochastic (K velocity calls per row, K
                        decisions)
- hybrid two-layer:     Flow-SDE with one stochastic step drawn per row (one velocity call per
                        row: the ODE steps are part of the environment and never replayed)

Every formulation is updated on a rollout of the SAME envs, seed, policy weights and batch size,
in one process, alternating formulations across repeats so a slow spell of a shared machine hits
all three alike. The frozen prefix is computed once at rollout and reused by every update (the
`Batch` carries the cache), which is what brings the hybrid below the paper's 0.53x.

Shapes: N rows per batch (num_envs * num_steps), K denoising steps.
"""

from __future__ import annotations

import copy
import statistics
import time
from dataclasses import replace
from typing import Any

import torch

from pirl_core.agent import Agent
from pirl_core.config import Config, SamplerConfig
from pirl_core.rollout import Batch, collect_rollout, start_envs
from pirl_core.update import ppo_update

#: name in update_time.json -> sampler overrides (method, schedule, mdp)
FORMULATIONS: dict[str, dict[str, str]] = {
    "one_layer_s": {"method": "flow_noise", "schedule": "all", "mdp": "one_layer"},
    "standard_two_layer_s": {"method": "flow_sde", "schedule": "all", "mdp": "two_layer"},
    "hybrid_two_layer_s": {"method": "flow_sde", "schedule": "hybrid", "mdp": "two_layer"},
}


def formulation_sampler(base: SamplerConfig, name: str) -> SamplerConfig:
    if name not in FORMULATIONS:
        raise ValueError(f"unknown formulation {name!r}; expected one of {sorted(FORMULATIONS)}")
    return replace(base, **FORMULATIONS[name])


def _timed_update(agent: Agent, batch: Batch, cfg: Config, seed: int) -> float:
    """Seconds of one `ppo_update` on a private copy (the timed update never changes `agent`)."""
    twin = copy.deepcopy(agent)
    actor, critic = twin.trainable_parameters()
    opts = (torch.optim.Adam(actor, lr=cfg.ppo.learning_rate),
            torch.optim.Adam(critic, lr=cfg.ppo.critic_learning_rate))
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    ppo_update(twin, batch, cfg.ppo, *opts, gen)
    return time.perf_counter() - t0


def measure_update_times(cfg: Config, policy: torch.nn.Module, envs: Any, repeats: int = 3,
                         seed: int = 0) -> dict[str, Any]:
    """{one_layer_s, standard_two_layer_s, hybrid_two_layer_s}: median seconds per update over
    `repeats`, plus the hybrid / standard ratio and what the batch was."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    agents, batches = {}, {}
    for name in FORMULATIONS:
        torch.manual_seed(seed)  # the same head initialisation for every formulation
        agent = Agent(policy, formulation_sampler(cfg.sampler, name), cfg.critic)
        gen = torch.Generator().manual_seed(seed)
        batch, _, _ = collect_rollout(envs, agent, start_envs(envs, seed), cfg.ppo.num_steps,
                                      cfg.ppo, gen)
        agents[name], batches[name] = agent, batch
    times: dict[str, list[float]] = {name: [] for name in FORMULATIONS}
    for r in range(repeats):
        for name in FORMULATIONS:
            times[name].append(_timed_update(agents[name], batches[name], cfg, seed + r))
    out: dict[str, Any] = {name: statistics.median(ts) for name, ts in times.items()}
    out |= {"hybrid_over_standard": out["hybrid_two_layer_s"] / out["standard_two_layer_s"],
            "one_layer_over_standard": out["one_layer_s"] / out["standard_two_layer_s"],
            "rows_per_update": len(batches["one_layer_s"]), "denoise_steps": cfg.sampler.num_steps,
            "update_epochs": cfg.ppo.update_epochs, "num_minibatches": cfg.ppo.num_minibatches,
            "repeats": repeats, "all_s": times}
    return out
