"""Evaluate saved policies again, side by side, with the current code: the SFT checkpoint and
the RL runs' final checkpoints, on the same fixed initial states, in every mode of `eval.modes`
(canonical protocol of pirl_core.evaluate). For a result whose conditions changed after it was
written (e.g. the LIBERO fixture-placement fix of 2026-12-02), this says whether the difference
between SFT and RL survives on one common evaluation. Prints a line per policy; `--out` writes
the JSON.

    .venv/bin/python benchmarks/reevaluate.py --benchmark libero --method grpo \
        --sft checkpoints/libero_sft --runs checkpoints/rl_libero/grpo \
        [--workers 2] [--out results/metrics/reeval_libero_grpo.json] [--no-sft] \
        [eval.episodes_per_task=40 eval.modes=[eval] ...]

`--runs` is the stage's run_root: every `seed*/checkpoint` under it is evaluated. Trailing
`key=value` overrides apply to every policy's config (e.g. more episodes per task than the
stage's protocol, for tighter CIs); `--no-sft` skips the SFT policy (already evaluated with
another method's runs).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from pirl_core.experiment import run_many


@dataclass(frozen=True)
class EvalSpec:
    """One policy to evaluate (plain values: it crosses a process boundary)."""

    label: str
    params_path: str
    benchmark: str
    method: str
    sft_checkpoint: str
    rl_checkpoint: str = ""
    """Empty: evaluate the SFT policy itself (with the method's sampler and fresh heads)."""
    overrides: tuple[str, ...] = ()
    threads: int = 1


def spec_config(spec: EvalSpec):
    """The config a worker evaluates `spec` under: the method's sampler plus the overrides."""
    from pirl_core.config import load_config
    from pirl_core.factory import method_overrides

    return load_config(spec.params_path, overrides=method_overrides(spec.method) + spec.overrides,
                       benchmark=spec.benchmark)


def evaluate_spec(spec: EvalSpec) -> dict:
    from pirl_core.checkpoint import load_checkpoint
    from pirl_core.evaluate import evaluate_modes
    from pirl_core.factory import benchmark_tasks, env_factory, load_sft_policy, make_agent

    torch.set_num_threads(spec.threads)
    cfg = spec_config(spec)
    agent = make_agent(cfg, load_sft_policy(cfg, spec.sft_checkpoint))
    if spec.rl_checkpoint:
        load_checkpoint(spec.rl_checkpoint, {"agent": agent})
    t0 = time.perf_counter()
    results = evaluate_modes(agent, env_factory(cfg.env), benchmark_tasks(cfg.env), cfg.eval,
                             cfg.report, cfg.eval.initial_state_seed)
    out = {"label": spec.label, "checkpoint": spec.rl_checkpoint or spec.sft_checkpoint,
           "seconds": round(time.perf_counter() - t0, 1)}
    for mode, r in results.items():
        res = r.to_json()
        out[mode] = {k: res[k] for k in ("mean_success", "ci_low", "ci_high", "success_rate")}
    print(spec.label, {m: round(out[m]["mean_success"], 3) for m in results}, flush=True)
    return out


def specs_from(args: argparse.Namespace) -> list[EvalSpec]:
    runs = sorted(Path(args.runs).glob("seed*/checkpoint"))
    if not runs:
        raise SystemExit(f"--runs {args.runs}: no seed*/checkpoint under it")
    common = dict(params_path=args.params, benchmark=args.benchmark, method=args.method,
                  sft_checkpoint=args.sft, overrides=tuple(args.overrides))
    sft = [] if args.no_sft else [EvalSpec("sft", **common)]
    return sft + [
        EvalSpec(f"{args.method} {p.parent.name}", rl_checkpoint=str(p), **common) for p in runs]


def main() -> None:
    from pirl_core.report import write_json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--benchmark", required=True)
    ap.add_argument("--method", required=True)
    ap.add_argument("--sft", required=True, help="the SFT checkpoint directory")
    ap.add_argument("--runs", required=True, help="the RL stage's run_root")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--no-sft", action="store_true", help="evaluate the RL runs only")
    ap.add_argument("overrides", nargs="*", help="key=value config overrides for every policy")
    args = ap.parse_args()
    specs = specs_from(args)
    spec_config(specs[0])  # what every worker builds, once here: a bad value is named up front
    results = run_many(specs, args.workers, evaluate_spec)
    if args.out:
        write_json({"benchmark": args.benchmark, "method": args.method, "params": args.params,
                    "overrides": args.overrides, "policies": results}, args.out)


if __name__ == "__main__":
    main()
