"""Peak memory and seconds of one PPO update of pi0 with the VLM frozen (Flow-SDE, hybrid MDP).

The rollout half is pirl's own (`Agent.act` per chunk: prefix once, K expert steps, the K/V cache
stored in the batch); the observations are random images and states, and the rewards are drawn
at random, because neither the time nor the memory of an update depends on their values. The
update is `pirl_core.update.ppo_update` with the preset's epochs and minibatches.

    .venv/bin/python benchmarks/bench_pi0_update.py [--size tiny|small|full] [--envs 8]
        [--chunks 4] [--device cpu|cuda] [--dtype float32|bfloat16] [--threads 2]
        [--out results/metrics/bench_pi0_update.json]

On a GPU at `--size full` (pi0's 3.5 B) this is the issue's memory check; on the CPU it runs at
`small`. Peak memory: CUDA's max_memory_allocated on a GPU, else the process's peak RSS (which
includes the model and Python), both in GiB.
"""

from __future__ import annotations

import json
import resource
import time

import numpy as np
import torch

from pirl_core.agent import Agent
from pirl_core.config import load_config
from pirl_core.factory import method_overrides
from pirl_core.policies.base import Observation
from pirl_core.rollout import make_batch
from pirl_core.train import make_optimizers
from pirl_core.update import ppo_update

# benchmarks/ is the script's directory, so its sibling imports as a top-level module
from bench_pi0_sampling import STATE_DIM, build, model_args  # noqa: E402


def peak_gib(device: str) -> float:
    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB on Linux


def collect(agent: Agent, envs: int, chunks: int, side: int, cfg, gen: torch.Generator):
    """A [chunks x envs] batch from the agent's own sampling, on random observations."""
    device = agent.device
    steps, rewards, term, trunc, trunc_v = [], [], [], [], []
    rng = np.random.default_rng(0)
    for _ in range(chunks):
        obs = Observation(torch.randint(0, 256, (envs, side, side, 3), generator=gen,
                                        dtype=torch.uint8).to(device),
                          torch.randn(envs, STATE_DIM, generator=gen).to(device),
                          ("pick up the red block and place it in the bowl",) * envs)
        steps.append(agent.act(obs, gen))
        rewards.append(rng.random(envs) < 0.2)
        term.append(np.zeros(envs, bool)), trunc.append(np.zeros(envs, bool))
        trunc_v.append(torch.zeros(envs, device=device))
    next_value = torch.zeros(envs, device=device)
    return make_batch(steps, rewards, term, trunc, trunc_v, next_value, cfg.ppo)


def main() -> None:
    ap = model_args(__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--envs", type=int, default=8)
    ap.add_argument("--chunks", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.params, overrides=method_overrides("flow_sde"))
    policy, side = build(args.size, getattr(torch, args.dtype), args.family)
    policy.configure_stage("rl")  # frozen VLM: only the expert (and the heads) train
    torch.manual_seed(0)
    agent = Agent(policy, cfg.sampler, cfg.critic).to(args.device)
    gen = torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    batch = collect(agent, args.envs, args.chunks, side, cfg, gen)
    rollout_s = time.perf_counter() - t0
    opts = make_optimizers(agent, cfg.ppo, critic=True)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    before = peak_gib(args.device)
    t0 = time.perf_counter()
    metrics = ppo_update(agent, batch, cfg.ppo, opts["actor"], opts["critic"], gen)
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
    out = {"family": args.family, "size": args.size, "device": args.device, "dtype": args.dtype,
           "threads": args.threads, "rows": len(batch),
           "update_epochs": cfg.ppo.update_epochs, "num_minibatches": cfg.ppo.num_minibatches,
           "denoise_steps": cfg.sampler.num_steps,
           "parameters": sum(p.numel() for p in policy.parameters()),
           "trainable": sum(p.numel() for p in opts["actor"].param_groups[0]["params"]),
           "rollout_s": rollout_s, "update_s": time.perf_counter() - t0,
           "peak_gib_before_update": before, "peak_gib": peak_gib(args.device),
           "first_ratio_dev": metrics.get("losses/first_ratio_dev")}
    for key, value in out.items():
        print(f"{key:>24}: {value:.4g}" if isinstance(value, float) else f"{key:>24}: {value}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
