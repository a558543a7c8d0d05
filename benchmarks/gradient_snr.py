"""Policy-gradient signal-to-noise at a given batch size: the cosine between the actor gradients
of disjoint parts of one rollout (real advantages), beside the same with shuffled advantages.

If the cosine between two halves is ~0, one update's gradient at that many rows is noise, and
PPO needs more rows per update (or many more updates at a small learning rate) before the signal
shows. The critic is first fitted on a few rollouts so advantages are meaningful.

    .venv/bin/python benchmarks/gradient_snr.py --checkpoint checkpoints/sft [--method flow_sde]
        [--chunks 120] [--threads 2] [key=value overrides...]
"""

from __future__ import annotations

import argparse
from dataclasses import replace

import numpy as np
import torch

from pirl_core.config import load_config
from pirl_core.factory import load_sft_policy, make_agent, make_envs, method_overrides
from pirl_core.rollout import Batch, collect_rollout, start_envs
from pirl_core.update import minibatch_loss


def actor_gradient(agent, batch: Batch, cfg, rows: torch.Tensor) -> torch.Tensor:
    actor, _ = agent.trainable_parameters()
    loss, _ = minibatch_loss(agent, batch.index(rows), cfg.ppo, use_critic=False)
    grads = torch.autograd.grad(loss, actor, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).flatten()
                      for g, p in zip(grads, actor)])


def fit_critic(agent, envs, cfg, state, gen, rollouts: int = 3, steps: int = 50):
    opt = torch.optim.Adam(agent.trainable_parameters()[1], lr=cfg.ppo.critic_learning_rate)
    for _ in range(rollouts):
        batch, state, _ = collect_rollout(envs, agent, state, cfg.ppo.num_steps, cfg.ppo, gen)
        for _ in range(steps):
            loss = (agent.value(batch.critic_input) - batch.returns).pow(2).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    return state


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--method", default="flow_sde")
    ap.add_argument("--chunks", type=int, default=120, help="chunk steps per env in the rollout")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.params, overrides=method_overrides(args.method) + tuple(args.overrides))
    agent = make_agent(cfg, load_sft_policy(cfg, args.checkpoint))
    gen = torch.Generator().manual_seed(cfg.seed)
    with make_envs(cfg, cfg.seed) as envs:
        state = fit_critic(agent, envs, cfg, start_envs(envs, cfg.seed), gen)
        batch, _, stats = collect_rollout(envs, agent, state, args.chunks, cfg.ppo, gen)
    print(f"rows {len(batch)}, episodes {len(stats.episode_successes)}, "
          f"success {np.mean(stats.episode_successes):.2f}")
    perm = torch.randperm(len(batch), generator=gen)
    shuffled = replace(batch, advantages=batch.advantages[torch.randperm(len(batch),
                                                                         generator=gen)])
    for parts in (2, 4, 8):
        size = len(batch) // parts
        chunks = [perm[i * size:(i + 1) * size] for i in range(parts)]
        for name, b in (("real", batch), ("shuffled", shuffled)):
            gs = [actor_gradient(agent, b, cfg, rows) for rows in chunks]
            cos = [float(torch.cosine_similarity(gs[i], gs[j], 0))
                   for i in range(parts) for j in range(i + 1, parts)]
            print(f"{size:>6} rows per part, {name:>8} advantages: mean cosine {np.mean(cos):+.3f} "
                  f"over {len(cos)} pairs")


if __name__ == "__main__":
    main()
