"""Rollout throughput: the bare simulator vs RL rollouts with the policy in the loop (issues #3,
#5), for one benchmark (its env section of params.yaml).

Same vector env, same observations (the configured image size and obs mode, a frame at every
replan point), same number of chunk steps:
  bare_state_steps_per_s  random action chunks, state observations (no rendering)
  bare_sim_steps_per_s    random action chunks, the configured observations
  rl_rollout_steps_per_s  `collect_rollout` with the small VLA (prefix encode + K velocity calls
                          per chunk, critic, bookkeeping); ratio = rl / bare
plus the time split of one RL iteration (rollout vs PPO update). Untrained policy weights: the
cost does not depend on them. Prints the figures; `--out` writes them as JSON.

    .venv/bin/python benchmarks/bench_rollout.py [--benchmark maniskill] [--preset mini]
        [--chunks 20] [--threads 1] [--out results/metrics/rollout_throughput.json] [key=value...]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from pirl_core.config import load_config
from pirl_core.factory import (BENCHMARKS, benchmark_tasks, make_agent, make_envs, make_policy,
                              make_vec_env)
from pirl_core.rollout import collect_rollout, start_envs
from pirl_core.update import ppo_update


def bare_steps_per_s(envs, chunks: int, chunk_size: int, action_dim: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    envs.reset(seed=seed)
    steps, t0 = 0, time.perf_counter()
    for _ in range(chunks):
        actions = rng.uniform(-1, 1, (envs.num_envs, chunk_size, action_dim)).astype(np.float32)
        *_, info = envs.step_chunk(actions)
        steps += int(info["steps"].sum())
    return steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--preset", default=None)
    ap.add_argument("--benchmark", default="metaworld")
    ap.add_argument("--chunks", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("overrides", nargs="*", help="config overrides, e.g. maniskill.image_size=64")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.params, args.overrides, preset=args.preset, benchmark=args.benchmark)
    agent = make_agent(cfg, make_policy(cfg).eval())
    agent.policy.configure_stage("rl")
    action_dim, H = BENCHMARKS[cfg.env.benchmark][0], cfg.env.chunk_size
    with make_vec_env(replace(cfg.env, obs_mode="state"), benchmark_tasks(cfg.env),
                      cfg.env.num_envs, seed=0) as envs:
        bare_state = bare_steps_per_s(envs, args.chunks, H, action_dim, 0)
    with make_envs(cfg, seed=0) as envs:
        bare = bare_steps_per_s(envs, args.chunks, H, action_dim, 0)
        gen = torch.Generator().manual_seed(0)
        batch, _, stats = collect_rollout(envs, agent, start_envs(envs, 0), args.chunks, cfg.ppo,
                                          gen)
    rl = stats.env_steps / stats.seconds
    actor, critic = agent.trainable_parameters()
    opts = (torch.optim.Adam(actor, lr=cfg.ppo.learning_rate),
            torch.optim.Adam(critic, lr=cfg.ppo.critic_learning_rate))
    t0 = time.perf_counter()
    ppo_update(agent, batch, cfg.ppo, *opts, gen)
    update_s = time.perf_counter() - t0
    out = {"benchmark": cfg.env.benchmark, "bare_state_steps_per_s": bare_state,
           "bare_sim_steps_per_s": bare, "rl_rollout_steps_per_s": rl, "ratio": rl / bare,
           "rollout_s": stats.seconds, "update_s": update_s,
           "rollout_fraction": stats.seconds / (stats.seconds + update_s),
           "num_envs": cfg.env.num_envs, "chunks_per_env": args.chunks,
           "chunk_size": cfg.env.chunk_size, "image_size": cfg.env.image_size,
           "obs_mode": cfg.env.obs_mode, "denoise_steps": cfg.sampler.num_steps,
           "sampler": cfg.sampler.method, "threads": args.threads}
    for key, value in out.items():
        print(f"{key:>24}: {value:.3f}" if isinstance(value, float) else f"{key:>24}: {value}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
