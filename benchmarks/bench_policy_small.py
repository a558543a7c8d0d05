"""Forward time of the small VLA on CPU: what one rollout step pays for the policy.

Two tables, median of `--repeats` runs after a warm-up, no grad (rollout mode):
  vision     the frozen MobileNetV2 alone, batch 8, per truncation stage (stride8 / stride16 /
             full) and image side (64 / 96): the numbers behind SmallVLA's default stage
  policy     SmallVLA (policy.* defaults: d 128, 2 layers, 4 heads; chunk 5 x 4, state 4) for
             B in {1, 8, 32}, image side 64 / 96, 1 and 2 threads:
               encode_ms    one `encode_prefix` (MobileNet + projections + prefix transformer;
                            instructions already cached, as in every step after the first)
               velocity_ms  one `velocity` call (the action expert; K of them per chunk)
               step_ms      encode_ms + K * velocity_ms, K = 4 (one chunk's sampling cost)
Prints both tables; `--out file.json` also writes them.

    .venv/bin/python benchmarks/bench_policy_small.py [--repeats 30] [--out results/metrics/x.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from pirl_core.config import PolicyConfig  # noqa: E402
from pirl_core.policies import Observation, SmallVLA  # noqa: E402
from pirl_core.policies.encoders import MobileNetV2Features  # noqa: E402

STAGES = ("stride8", "stride16", "full")
SIZES = (64, 96)
BATCHES = (1, 8, 32)
THREADS = (1, 2)
CHUNK, ACTION_DIM, STATE_DIM, K = 5, 4, 4, 4
TASKS = ("open the drawer", "press the button", "push the puck to the goal", "reach the target")


def _time(fn, repeats: int) -> float:
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def _obs(batch: int, size: int, gen: torch.Generator) -> Observation:
    images = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8, generator=gen)
    state = torch.randn(batch, STATE_DIM, generator=gen)
    return Observation(images, state, tuple(TASKS[i % len(TASKS)] for i in range(batch)))


@torch.no_grad()
def bench_vision(repeats: int) -> list[dict]:
    rows = []
    gen = torch.Generator().manual_seed(0)
    torch.set_num_threads(1)
    for stage in STAGES:
        net = MobileNetV2Features(stage)
        for size in SIZES:
            images = torch.randint(0, 256, (8, size, size, 3), dtype=torch.uint8, generator=gen)
            side = net.output_size(size)
            rows.append({"stage": stage, "image_size": size, "threads": 1, "batch": 8,
                         "grid": f"{side}x{side}", "channels": net.out_channels,
                         "params": sum(p.numel() for p in net.parameters()),
                         "ms": round(_time(lambda: net(images), repeats), 2)})
    return rows


@torch.no_grad()
def bench_policy(repeats: int) -> list[dict]:
    rows = []
    gen = torch.Generator().manual_seed(0)
    for size in SIZES:
        policy = SmallVLA(ACTION_DIM, CHUNK, STATE_DIM, PolicyConfig(), image_size=size).eval()
        for threads in THREADS:
            torch.set_num_threads(threads)
            for batch in BATCHES:
                obs = _obs(batch, size, gen)
                cache = policy.encode_prefix(obs)
                x = torch.randn(batch, CHUNK, ACTION_DIM, generator=gen)
                tau = torch.full((batch,), 0.25)
                enc = _time(lambda: policy.encode_prefix(obs), repeats)
                vel = _time(lambda: policy.velocity(x, tau, cache, obs.state), repeats)
                rows.append({"image_size": size, "threads": threads, "batch": batch,
                             "prefix_tokens": policy.num_prefix_tokens,
                             "encode_ms": round(enc, 2), "velocity_ms": round(vel, 2),
                             "step_ms": round(enc + K * vel, 2)})
    return rows


def _print(rows: list[dict]) -> None:
    keys = list(rows[0])
    print(" ".join(f"{k:>13}" for k in keys))
    for r in rows:
        print(" ".join(f"{r[k]!s:>13}" for k in keys))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    vision = bench_vision(args.repeats)
    print("MobileNetV2 stage (batch 8, 1 thread, no grad)")
    _print(vision)
    policy = bench_policy(args.repeats)
    print(f"\nSmallVLA {PolicyConfig()} (chunk {CHUNK} x {ACTION_DIM}, K = {K})")
    _print(policy)
    small = SmallVLA(ACTION_DIM, CHUNK, STATE_DIM, PolicyConfig(), image_size=64)
    counts = {"sft": sum(p.numel() for p in small.parameters_for("sft")),
              "rl": sum(p.numel() for p in small.parameters_for("rl")),
              "frozen_mobilenet": sum(p.numel() for p in small.vision.parameters())}
    print(f"\ntrainable parameters: {counts}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"vision": vision, "policy": policy, "params": counts},
                                       indent=2) + "\n")


if __name__ == "__main__":
    main()
