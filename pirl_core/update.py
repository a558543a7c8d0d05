"""The learner: one PPO update over a rollout `Batch` (paper Sec. 4.3, CleanRL's update loop).

Log-probs are recomputed from the stored chains on the same grid (`Agent.replay`). Before the first
epoch the learner recomputes the behaviour log-probs itself, minibatch by minibatch in the first
epoch's order (`recompute_old_logprobs`): a CPU GEMM's last bits depend on how many rows it sees,
so the rollout's batch-of-B values and the learner's minibatch-of-M values differ by float noise
(~1e-5 on a joint log-prob of ~100). With the recomputed ones the ratio on the first minibatch is
exactly 1 (`losses/first_ratio_dev`), and `losses/rollout_logprob_dev` (max |recomputed - rollout|)
still exposes any real mismatch between sampling and replay, such as a different time grid.
Two-layer MDPs score each stochastic denoising step as its own decision with its env step's
advantage (reward 0 inside the chain, no discount across denoising steps); the hybrid schedule has
one such step per sample. Metrics are averaged over all minibatches, not taken from the last one.

Shapes: N rows in the batch, M rows in a minibatch, K denoising steps.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import replace

import torch
from torch import Tensor

from pirl_core.agent import Agent
from pirl_core.config import PPOConfig
from pirl_core.logprob import chain_logprob, step_entropies, transition_kl
from pirl_core.losses import (explained_variance, normalize_advantages, ppo_policy_loss,
                              ppo_total_loss, value_loss)
from pirl_core.policies.base import policy_velocity
from pirl_core.rollout import Batch
from pirl_core.samplers import replay_transitions


def per_decision(new_lp: Tensor, old_lp: Tensor, adv: Tensor, stochastic: Tensor
                 ) -> tuple[Tensor, Tensor, Tensor]:
    """Flatten to one entry per MDP decision: [M] stays, [M, K] keeps the stochastic steps."""
    if new_lp.dim() == 1:
        return new_lp, old_lp, adv
    adv_k = adv[:, None].expand_as(new_lp)
    return new_lp[stochastic], old_lp[stochastic], adv_k[stochastic]


def training_progress(iteration: int, global_step: int, cfg: PPOConfig) -> float:
    """Fraction of the run done before `iteration` (0-based), by whichever of num_iterations and
    total_timesteps ends the run first (GRPO's iterations vary in size, so steps can bind)."""
    done = iteration / cfg.num_iterations
    if cfg.total_timesteps is not None:
        done = max(done, global_step / cfg.total_timesteps)
    return min(done, 1.0)


def learning_rate_at(base_lr: float, progress: float, cfg: PPOConfig) -> float:
    """Constant, or cosine from base_lr to 0 over the run's progress in [0, 1] (paper Fig. 12)."""
    if cfg.anneal_lr == "constant":
        return base_lr
    return 0.5 * base_lr * (1 + math.cos(math.pi * progress))


def reference_kl(agent: Agent, reference: torch.nn.Module, mb: Batch, means: Tensor,
                 stds: Tensor) -> Tensor:
    """[M] KL of the current transitions to the reference policy's on the stored chains."""
    with torch.no_grad():
        cache = mb.cache if mb.obs is None else reference.encode_prefix(mb.obs)
        ref_means, _ = replay_transitions(policy_velocity(reference), mb.chain,
                                          (cache, mb.state), agent.sampler, agent.noise_fn)
    return transition_kl(means, ref_means, stds, mb.chain.stochastic,
                         agent.sampler.logprob_reduce_dims)


def minibatch_loss(agent: Agent, mb: Batch, cfg: PPOConfig, use_critic: bool = True,
                   reference: torch.nn.Module | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """PPO loss of one minibatch: clipped surrogate + value loss - entropy bonus (Flow-Noise)
    (+ ref_kl_coef * KL to `reference`). GRPO (`use_critic=False`) has no value loss: its
    advantages come from group returns."""
    means, stds = agent.replay(mb.cache, mb.state, mb.chain, mb.obs)
    new_lp = chain_logprob(mb.chain, means, stds, agent.sampler)
    # GRPO's advantages are normalised within their groups already (paper Eq. 17); normalising
    # the minibatch again would move the zero of equal-outcome groups (their rows are most of a
    # batch, failures run longest) and reinforce, e.g., groups where every rollout failed
    adv = normalize_advantages(mb.advantages) if cfg.norm_adv and use_critic else mb.advantages
    new_lp, old_lp, adv = per_decision(new_lp, mb.logprobs, adv, mb.chain.stochastic)
    pg_loss, metrics = ppo_policy_loss(new_lp, old_lp, adv, cfg.clip_coef)
    entropy = None
    if agent.noise_head is not None:
        ent = step_entropies(stds, mb.chain.stochastic, agent.sampler.logprob_reduce_dims)
        entropy = ent.sum(1).mean()
        metrics["losses/entropy"] = entropy.detach()
    v_loss = torch.zeros(())
    if use_critic:
        new_values = agent.value(mb.critic_input)
        v_loss = value_loss(new_values, mb.returns, mb.values,
                            cfg.clip_coef if cfg.clip_vloss else None)
        metrics["losses/value_loss"] = v_loss.detach()
    metrics["losses/max_ratio_dev"] = (new_lp - old_lp).exp().sub(1).abs().max().detach()
    loss = ppo_total_loss(pg_loss, v_loss, entropy, cfg.vf_coef, cfg.ent_coef)
    if reference is not None and cfg.ref_kl_coef > 0:
        kl = reference_kl(agent, reference, mb, means, stds).mean()
        metrics["losses/ref_kl"] = kl.detach()
        loss = loss + cfg.ref_kl_coef * kl
    return loss, metrics


@torch.no_grad()
def recompute_old_logprobs(agent: Agent, batch: Batch, order: Tensor, mb_size: int) -> Tensor:
    """Behaviour log-probs recomputed minibatch by minibatch in `order` (rows in batch order)."""
    out = torch.empty_like(batch.logprobs)
    for start in range(0, len(order), mb_size):
        rows = order[start:start + mb_size]
        mb = batch.index(rows)
        out[rows] = chain_logprob(mb.chain, *agent.replay(mb.cache, mb.state, mb.chain, mb.obs),
                                  agent.sampler)
    return out


def ppo_update(agent: Agent, batch: Batch, cfg: PPOConfig, actor_opt: torch.optim.Optimizer,
               critic_opt: torch.optim.Optimizer | None, generator: torch.Generator,
               reference: torch.nn.Module | None = None) -> dict[str, float]:
    """`update_epochs` passes of shuffled minibatches over the batch; returns averaged metrics.
    Without a critic optimizer (GRPO) the value head is neither trained nor reported; with a
    `reference` policy and cfg.ref_kl_coef > 0 the actor is also pulled toward it."""
    n = len(batch)
    mb_size = max(1, n // cfg.num_minibatches)
    sums: dict[str, float] = defaultdict(float)
    count, first_dev = 0, None
    actor_params = [p for g in actor_opt.param_groups for p in g["params"]]
    opts = [actor_opt] + ([critic_opt] if critic_opt is not None else [])
    critic_params = [] if critic_opt is None else [p for g in critic_opt.param_groups
                                                   for p in g["params"]]
    perm = torch.randperm(n, generator=generator)
    old = recompute_old_logprobs(agent, batch, perm, mb_size)
    rollout_dev = float((old - batch.logprobs).abs().max())
    batch = replace(batch, logprobs=old)
    for epoch in range(cfg.update_epochs):
        if epoch > 0:
            perm = torch.randperm(n, generator=generator)
        epoch_kl = []
        for start in range(0, mb_size * cfg.num_minibatches, mb_size):
            mb = batch.index(perm[start:start + mb_size])
            loss, metrics = minibatch_loss(agent, mb, cfg, critic_opt is not None, reference)
            if first_dev is None:
                first_dev = float(metrics["losses/max_ratio_dev"])
            for opt in opts:
                opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(actor_params, cfg.max_grad_norm)
            if critic_params:
                torch.nn.utils.clip_grad_norm_(critic_params, cfg.max_grad_norm)
            for opt in opts:
                opt.step()
            for key, value in metrics.items():
                sums[key] += float(value)
            count += 1
            epoch_kl.append(float(metrics["losses/approx_kl"]))
        if cfg.target_kl is not None and sum(epoch_kl) / len(epoch_kl) > cfg.target_kl:
            break
    out = {key: value / count for key, value in sums.items()}
    out["losses/first_ratio_dev"] = first_dev
    out["losses/rollout_logprob_dev"] = rollout_dev
    if critic_opt is not None:
        out["losses/explained_variance"] = explained_variance(batch.values, batch.returns)
    return out
