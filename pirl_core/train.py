"""The RL loop, readable top to bottom (CleanRL's shape): rollout -> Batch -> PPO update -> log.

`collect_rollout` (pirl_core.rollout) and `ppo_update` (pirl_core.update) exchange only a `Batch`,
so they can later live in different processes. Logging and evaluation are callbacks, so the
notebook decides where metrics go (dvclive) and how evaluation is run (pirl_core.evaluate).
Metric names follow CleanRL: charts/* for episodes, losses/* for the update, time/* for speed.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from pirl_core.agent import Agent
from pirl_core.checkpoint import save_checkpoint
from pirl_core.config import GRPOConfig, PPOConfig
from pirl_core.rollout import RolloutStats, collect_rollout, start_envs
from pirl_core.rollout_grpo import collect_group_rollout
from pirl_core.update import learning_rate_at, ppo_update, training_progress

LogFn = Callable[[int, dict[str, float]], None]
EvalFn = Callable[[Agent], dict[str, float]]


def episode_metrics(stats: RolloutStats) -> dict[str, float]:
    """charts/* from the episodes that ended during one rollout (none ended: nothing logged).

    Biased toward success: successful episodes are short, so they end inside a rollout window
    more often. Read the evaluator's numbers for the policy's success rate."""
    out = {"time/env_steps_per_s": stats.env_steps / max(stats.seconds, 1e-9)}
    if stats.episode_returns:
        out |= {"charts/episodic_return": float(np.mean(stats.episode_returns)),
                "charts/episodic_length": float(np.mean(stats.episode_lengths)),
                "charts/success_rate": float(np.mean(stats.episode_successes)),
                "charts/episodes": float(len(stats.episode_returns))}
    return out


def set_learning_rates(optimizers: dict[str, torch.optim.Optimizer], ppo: PPOConfig,
                       progress: float) -> None:
    for name, opt in optimizers.items():
        base = ppo.learning_rate if name == "actor" else ppo.critic_learning_rate
        for group in opt.param_groups:
            group["lr"] = learning_rate_at(base, progress, ppo)


def make_optimizers(agent: Agent, ppo: PPOConfig, critic: bool) -> dict[str, torch.optim.Optimizer]:
    """Adam for the actor, and for the value head unless there is none (GRPO)."""
    actor_params, critic_params = agent.trainable_parameters()
    out = {"actor": torch.optim.Adam(actor_params, lr=ppo.learning_rate)}
    if critic:
        out["critic"] = torch.optim.Adam(critic_params, lr=ppo.critic_learning_rate)
    return out


def run_ends(iteration: int, global_step: int, seconds: float, ppo: PPOConfig) -> tuple[bool, bool]:
    """(is this the last iteration, was it cut by the wall-clock cap rather than the budget)."""
    out_of_steps = ppo.total_timesteps is not None and global_step >= ppo.total_timesteps
    out_of_time = ppo.budget_minutes is not None and seconds > 60 * ppo.budget_minutes
    last = iteration == ppo.num_iterations or out_of_steps or out_of_time
    return last, out_of_time and not out_of_steps and iteration < ppo.num_iterations


def train_rl(agent: Agent, envs: Any, ppo: PPOConfig, seed: int, run_dir: str | Path,
             log: LogFn | None = None, evaluate: EvalFn | None = None,
             grpo: GRPOConfig | None = None) -> list[dict[str, float]]:
    """PPO on `envs` until ppo.num_iterations or ppo.total_timesteps (or the budget_minutes
    cap, which sets "time/cut_by_budget"); returns the history.

    With `grpo`, advantages come from groups of envs sharing an initial state (one synchronous
    episode per env per iteration, `envs.group_size` = the group size) and no critic is trained;
    the clipped surrogate and everything else stay PPO's."""
    run_dir = Path(run_dir)
    generator = torch.Generator().manual_seed(seed)
    optimizers = make_optimizers(agent, ppo, critic=grpo is None)
    actor_opt, critic_opt = optimizers["actor"], optimizers.get("critic")
    env_state = None if grpo else start_envs(envs, seed)
    # the KL anchor: the policy as RL found it (frozen), only when the penalty is on
    reference = copy.deepcopy(agent.policy).requires_grad_(False) if ppo.ref_kl_coef > 0 else None
    history: list[dict[str, float]] = []
    t_start = time.perf_counter()
    if evaluate is not None:
        history.append({"iteration": 0, "global_step": 0} | evaluate(agent))
    global_step = 0
    for iteration in range(1, ppo.num_iterations + 1):
        set_learning_rates(optimizers, ppo, training_progress(iteration - 1, global_step, ppo))

        if grpo is None:
            batch, env_state, stats = collect_rollout(envs, agent, env_state, ppo.num_steps, ppo,
                                                      generator)
        else:
            batch, stats = collect_group_rollout(envs, agent, iteration, generator, grpo.adv_eps)
        global_step += stats.env_steps
        t_update = time.perf_counter()
        metrics = ppo_update(agent, batch, ppo, actor_opt, critic_opt, generator, reference)
        metrics |= episode_metrics(stats)
        metrics |= {"time/rollout_s": stats.seconds,
                    "time/update_s": time.perf_counter() - t_update,
                    "charts/learning_rate": actor_opt.param_groups[0]["lr"]}

        last, cut = run_ends(iteration, global_step, time.perf_counter() - t_start, ppo)
        if evaluate is not None and (last or (ppo.eval_every and iteration % ppo.eval_every == 0)):
            metrics |= evaluate(agent)
        metrics |= {"iteration": iteration, "global_step": global_step,
                    "time/wall_s": time.perf_counter() - t_start,
                    "time/cut_by_budget": float(cut)}
        history.append(metrics)
        if log is not None:
            log(iteration, metrics)
        if last or (ppo.checkpoint_every and iteration % ppo.checkpoint_every == 0):
            save_checkpoint(run_dir / "checkpoint", {"agent": agent}, optimizers, {"rl": generator},
                            {"iteration": iteration, "global_step": global_step})
        if last:
            break
    return history
