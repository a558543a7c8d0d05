"""Seconds per PPO update: one-layer vs standard two-layer vs hybrid two-layer (paper Fig. 8).

Same policy weights, envs, seed and batch size for the three, measured side by side in one
process (`pirl_core.update_timing`). The paper's hybrid is 0.53x the standard two-layer update;
pirl aims for <= 0.30x by reusing the frozen prefix from the rollout. Prints the figures;
`--out` writes them as JSON (the `update_time` stage writes results/metrics/update_time.json
the same way).

    .venv/bin/python benchmarks/bench_update_time.py [--preset mini] [--threads 1] [--repeats 3]
        [--checkpoint checkpoints/sft] [--out results/metrics/update_time.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from pirl_core.config import load_config
from pirl_core.factory import load_sft_policy, make_envs, make_policy
from pirl_core.report import write_json
from pirl_core.update_timing import measure_update_times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--preset", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--checkpoint", default=None, help="SFT checkpoint (default: fresh weights)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.params, preset=args.preset)
    if args.checkpoint:
        policy = load_sft_policy(cfg, args.checkpoint)
    else:
        policy = make_policy(cfg)
        policy.configure_stage("rl")
    with make_envs(cfg, seed=0) as envs:
        out = measure_update_times(cfg, policy, envs, args.repeats) | {"threads": args.threads}
    for key, value in out.items():
        print(f"{key:>24}: {value:.3f}" if isinstance(value, float) else f"{key:>24}: {value}")
    if args.out:
        write_json(out, args.out)


if __name__ == "__main__":
    main()
