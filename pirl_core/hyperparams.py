"""Paper Tables 7-8 written from the config actually used: the paper's pi0 values beside ours.

Names map the paper's rows to pirl's keys. "batch size" is the paper's global minibatch; ours is
rows per minibatch (num_envs * num_steps / num_minibatches). "interaction steps" counts chunk
steps per env per rollout; "train epochs" counts RL iterations (ours: `ppo.num_iterations`, or
fewer when `ppo.total_timesteps` ends a PPO run first).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pirl_core.config import Config

PAPER_NUMBERS = Path(__file__).resolve().parent / "data" / "paper_numbers.yaml"

#: paper row -> (label, function of our config)
ROWS: dict[str, tuple[str, Any]] = {
    "train_epochs": ("Train epochs (RL iterations)", lambda c: _iterations(c)),
    "batch_size": ("Batch size (rows per minibatch)",
                   lambda c: c.env.num_envs * c.ppo.num_steps // c.ppo.num_minibatches),
    "update_epochs": ("Update epochs", lambda c: c.ppo.update_epochs),
    "actor_lr": ("Actor lr", lambda c: c.ppo.learning_rate),
    "critic_lr": ("Critic lr", lambda c: c.ppo.critic_learning_rate),
    "scheduler": ("Scheduler (cosine)", lambda c: c.ppo.anneal_lr == "cosine"),
    "gamma": ("Reward discount rate gamma", lambda c: c.ppo.gamma),
    "gae_lambda": ("GAE lambda", lambda c: c.ppo.gae_lambda),
    "clip_coef": ("Clip ratio epsilon", lambda c: c.ppo.clip_coef),
    "interaction_steps": ("Interaction steps (chunks per env)", lambda c: c.ppo.num_steps),
    "parallel_envs": ("Parallel environments", lambda c: c.env.num_envs),
    "rollout_epochs": ("Rollout epochs", lambda c: 1),
    "action_chunk": ("Action chunk H", lambda c: c.env.chunk_size),
    "denoise_steps": ("Denoise steps", lambda c: c.sampler.num_steps),
    "noise_level": ("Noise level a (Flow-SDE)", lambda c: c.sampler.noise_level),
    "noise_max_std": ("Max std (Flow-Noise; paper: 'max log-var')",
                      lambda c: c.sampler.noise_max_std),
    "noise_min_std": ("Min std (Flow-Noise; paper: 'min log-var')",
                      lambda c: c.sampler.noise_min_std),
    "ent_coef": ("Entropy bonus (Flow-Noise)", lambda c: c.ppo.ent_coef),
}


def ppo_iterations(cfg: Config) -> int:
    """Iterations a PPO run does: num_iterations, or fewer when total_timesteps binds first."""
    if cfg.ppo.total_timesteps is None:
        return cfg.ppo.num_iterations
    per_iteration = cfg.env.num_envs * cfg.ppo.num_steps * cfg.env.chunk_size
    return min(cfg.ppo.num_iterations, -(-cfg.ppo.total_timesteps // per_iteration))


def _iterations(cfg: Config) -> str:
    """Shows "~N" when the step budget binds: episodes ending inside a chunk make an iteration a
    few steps short of num_envs * num_steps * chunk_size, so a run takes a few more."""
    n = ppo_iterations(cfg)
    return str(n) if n == cfg.ppo.num_iterations else f"~{n}"


def paper_hyperparameters(table: str) -> dict[str, Any]:
    """`table7_libero_hyperparameters` or `table8_maniskill_hyperparameters` from the paper."""
    numbers = yaml.safe_load(PAPER_NUMBERS.read_text())
    if table not in numbers:
        raise KeyError(f"no paper table {table!r} in {PAPER_NUMBERS.name}")
    return numbers[table]


def _grpo_chunks(c: Config) -> int:
    return -(-c.env.max_episode_steps // c.env.chunk_size)


def _grpo_envs(c: Config) -> int:
    from pirl_core.factory import training_envs

    return training_envs(c, c.grpo.group_size)


#: GRPO's rows where they differ from PPO's: G envs per task, one whole episode each per
#: iteration (so a rollout's size depends on episode lengths), no critic
GRPO_ROWS: dict[str, Any] = {
    "train_epochs": lambda c: (f"until {c.ppo.total_timesteps} env steps"
                               if c.ppo.total_timesteps else c.ppo.num_iterations),
    "batch_size": lambda c: f"<= {_grpo_envs(c) * _grpo_chunks(c) // c.ppo.num_minibatches}",
    "critic_lr": lambda c: "n/a (no critic)",
    "interaction_steps": lambda c: f"one episode (<= {_grpo_chunks(c)})",
    "parallel_envs": _grpo_envs,
}


def hyperparameter_rows(ours: dict[str, Config], paper_table: str, paper_label: str,
                        grpo: frozenset[str] = frozenset()) -> list[dict[str, Any]]:
    """One row per paper hyperparameter: the paper's value, then ours per named config (the
    names in `grpo` are GRPO runs, read with GRPO_ROWS where those apply)."""
    paper = paper_hyperparameters(paper_table)
    if set(paper) != set(ROWS):
        raise ValueError(f"{paper_table} rows {sorted(paper)} differ from {sorted(ROWS)}")
    rows = []
    for key, (label, ours_of) in ROWS.items():
        row = {"hyperparameter": label, paper_label: _show(paper[key])}
        for name, cfg in ours.items():
            value_of = GRPO_ROWS.get(key, ours_of) if name in grpo else ours_of
            row[name] = _show(value_of(cfg))
        rows.append(row)
    return rows


def _show(value: Any) -> str:
    """Learning rates need more than the report's fixed 4 decimals: 1e-05, not 0.0000."""
    return format(value, "g") if isinstance(value, float) else str(value)
