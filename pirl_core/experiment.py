"""One RL run from the SFT checkpoint, and several at once: what the rl and ablation stages call.

A run is a `RunSpec` (method, seed, config overrides, where to write) so that it pickles into a
worker process. `run_many` trains specs in parallel processes, each with its own torch threads:
on a 2-core machine two or three 1-thread runs do ~1.5x the iterations of one 2-thread run, and
with a step budget (`ppo.total_timesteps`) the result of a run does not depend on how many ran
beside it.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch

from pirl_core.config import load_config

# per-iteration metrics kept in a run's JSON, for the ablation figures (the full history is in
# the run's dvclive folder)
HISTORY_KEYS = ("iteration", "global_step", "charts/success_rate", "charts/episodic_length",
                "losses/approx_kl", "losses/clipfrac", "losses/explained_variance",
                "losses/value_loss", "time/rollout_s", "time/update_s", "eval/success")


@dataclass(frozen=True)
class RunSpec:
    """Everything one RL run needs, as plain values (it crosses a process boundary)."""

    params_path: str
    method: str
    seed: int
    sft_checkpoint: str
    run_dir: str
    dvclive_dir: str
    metrics_path: str
    overrides: tuple[str, ...] = ()
    label: str = ""
    evaluate_start: bool = False
    """Also evaluate the starting policy canonically with this run's sampler (Table 6's SFT
    rows)."""
    threads: int = 1
    benchmark: str = "metaworld"
    """Whose env section the run uses (`load_config(..., benchmark=...)`)."""


@dataclass(frozen=True)
class SFTSpec:
    """One SFT training from demos, with config overrides (e.g. another chunk size)."""

    params_path: str
    demos_dir: str
    checkpoint_dir: str
    overrides: tuple[str, ...] = ()
    threads: int = 1
    benchmark: str = "metaworld"


def run_sft(spec: SFTSpec) -> str:
    """Train and save an SFT policy as the sft stage does (its seed, steps and data); returns
    the checkpoint directory."""
    from pirl_core.checkpoint import save_checkpoint
    from pirl_core.data.lerobot_format import read_dataset
    from pirl_core.factory import image_keys, make_policy
    from pirl_core.sft import build_sft_data, train_sft

    torch.set_num_threads(spec.threads)
    cfg = load_config(spec.params_path, overrides=spec.overrides, benchmark=spec.benchmark)
    torch.manual_seed(cfg.seed)
    policy = make_policy(cfg)
    data = build_sft_data(read_dataset(spec.demos_dir), policy, image_keys(cfg.env),
                          cfg.env.chunk_size)
    train_sft(policy, data, cfg.sft, torch.Generator().manual_seed(cfg.seed))
    save_checkpoint(spec.checkpoint_dir, {"policy": policy},
                    meta={"stage": "sft", "steps": cfg.sft.num_steps,
                          "overrides": list(spec.overrides)})
    return spec.checkpoint_dir


def run_rl(spec: RunSpec) -> dict[str, Any]:
    """Train one run, evaluate it canonically in both modes, write and return its JSON."""
    from dvclive import Live

    from pirl_core.evaluate import evaluate, evaluate_modes
    from pirl_core.factory import (RL_ALGORITHM, benchmark_tasks, env_factory, load_sft_policy,
                                   make_agent, make_envs, method_overrides)
    from pirl_core.report import write_json
    from pirl_core.train import train_rl

    torch.set_num_threads(spec.threads)
    cfg = load_config(spec.params_path, overrides=method_overrides(spec.method) + spec.overrides
                      + (f"seed={spec.seed}",), benchmark=spec.benchmark)
    tasks = benchmark_tasks(cfg.env)
    factory = env_factory(cfg.env)
    agent = make_agent(cfg, load_sft_policy(cfg, spec.sft_checkpoint))
    start = (evaluate_modes(agent, factory, tasks, cfg.eval, cfg.report,
                            cfg.eval.initial_state_seed) if spec.evaluate_start else {})

    def quick_eval(agent) -> dict[str, float]:
        r = evaluate(agent, factory, tasks, cfg.eval.during_rl_episodes_per_task,
                     cfg.eval.initial_state_seed, "eval",
                     bootstrap_samples=cfg.report.bootstrap_samples, ci=cfg.report.ci)
        return {"eval/success": r.mean_success}

    grpo = cfg.grpo if RL_ALGORITHM[spec.method] == "grpo" else None  # groups, no critic
    with (Live(spec.dvclive_dir, save_dvc_exp=False, dvcyaml=None) as live,
          make_envs(cfg, spec.seed, group_size=grpo.group_size if grpo else 1) as envs):
        def log(iteration: int, metrics: dict[str, float]) -> None:
            for k, v in metrics.items():
                live.log_metric(k, v)
            live.next_step()
        history = train_rl(agent, envs, cfg.ppo, spec.seed, spec.run_dir, log=log,
                           evaluate=quick_eval, grpo=grpo)
    final = evaluate_modes(agent, factory, tasks, cfg.eval, cfg.report,
                           cfg.eval.initial_state_seed)
    out = run_json(spec, tasks, history, start, final)
    write_json(out, Path(spec.metrics_path))
    return out


def run_json(spec: RunSpec, tasks: tuple[str, ...], history: list[dict[str, float]],
             start: dict[str, Any], final: dict[str, Any]) -> dict[str, Any]:
    """What a run leaves for the summaries: its canonical evaluations and its history."""
    return {"method": spec.method, "seed": spec.seed, "label": spec.label,
            "overrides": list(spec.overrides), "tasks": list(tasks),
            "final": {m: r.to_json() for m, r in final.items()},
            "start": {m: r.to_json() for m, r in start.items()},
            "curve": [{k: h[k] for k in ("iteration", "global_step", "eval/success")}
                      for h in history if "eval/success" in h],
            "history": [{k: h[k] for k in HISTORY_KEYS if k in h} for h in history],
            "iterations": len(history) - 1, "global_steps": history[-1]["global_step"],
            "wall_minutes": history[-1].get("time/wall_s", 0.0) / 60,
            "cut_by_budget": bool(history[-1].get("time/cut_by_budget", 0.0))}


def threads_per_run(num_runs: int, cpus: int | None = None) -> int:
    """Cores shared out between runs that train at once (at least one thread each)."""
    return max(1, (cpus or os.cpu_count() or 1) // max(num_runs, 1))


def run_many(specs: list[Any], workers: int, fn: Callable[[Any], Any] = run_rl) -> list[Any]:
    """fn(spec) for each spec (RunSpec -> run_rl, SFTSpec -> run_sft), `workers` at a time in
    spawned processes (1: in this process, one by one); results in the order of specs. A failed
    run raises, naming its spec."""
    if workers < 1:
        raise ValueError(f"workers: expected >= 1, got {workers}")
    threads = threads_per_run(min(workers, len(specs)))
    specs = [replace(s, threads=threads) for s in specs]
    if workers == 1 or len(specs) <= 1:
        return [fn(s) for s in specs]
    ctx = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [pool.submit(fn, s) for s in specs]
        results = []
        for spec, fut in zip(specs, futures):
            try:
                results.append(fut.result())
            except Exception as e:
                raise RuntimeError(f"{fn.__name__} failed for {spec}: {e}") from e
    return results
