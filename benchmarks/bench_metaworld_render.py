"""MetaWorld env throughput on this CPU: state-only vs RGB at several image sizes, with a frame
only at replan points (chunk H = 5) and with a frame at every step (H = 1) (issue #3's benchmark;
it picks the default image size).

B = 4 envs (four different MT50 tasks) in one process, uniform random actions in [-1, 1],
`MetaWorldVecEnv.step_chunk` timed for `--seconds` per case after one warm-up chunk (auto-resets
included). Each GL backend (MUJOCO_GL=osmesa, egl) runs in its own subprocess, since the backend
is fixed once mujoco is imported. Reports env steps/s and frames/s; `--out file.json` also writes
the rows.

    .venv/bin/python benchmarks/bench_metaworld_render.py [--backends osmesa egl] [--out x.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

TASKS = ["reach-v3", "push-v3", "drawer-open-v3", "door-open-v3"]
NUM_ENVS, CHUNK = 4, 5


def bench_case(obs_mode: str, size: int, horizon: int, seconds: float, seed: int = 0) -> dict:
    import numpy as np

    from pirl_core.envs.metaworld import MetaWorldVecEnv

    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    env = MetaWorldVecEnv(TASKS, NUM_ENVS, image_size=size, obs_mode=obs_mode, seed=seed)
    build_s = time.perf_counter() - t0
    obs = env.reset()
    if obs_mode == "rgb":
        assert all(img.std() > 0 for img in obs["image"]), "blank frame"

    def chunk():
        return env.step_chunk(rng.uniform(-1, 1, (NUM_ENVS, horizon, 4)).astype(np.float32))

    chunk()  # warm-up
    steps = frames = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        obs, _, term, trunc, info = chunk()
        steps += int(info["steps"].sum())
        frames += NUM_ENVS + int((term | trunc).sum())  # finished envs also render a first frame
    elapsed = time.perf_counter() - t0
    if obs_mode == "rgb":
        assert all(img.std() > 0 for img in obs["image"]), "blank frame"
    else:
        frames = 0
    env.close()
    return {"obs_mode": obs_mode, "image_size": size if obs_mode == "rgb" else 0,
            "frame_every": horizon, "num_envs": NUM_ENVS, "steps_per_s": steps / elapsed,
            "frames_per_s": frames / elapsed, "build_s": build_s}


def worker(sizes: list[int], seconds: float) -> list[dict]:
    rows = [bench_case("state", 0, CHUNK, seconds)]
    for size in sizes:
        for horizon in (CHUNK, 1):
            rows.append(bench_case("rgb", size, horizon, seconds))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", nargs="+", default=["osmesa", "egl"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[64, 96, 128, 224])
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:  # child: MUJOCO_GL already set by the parent
        print(json.dumps(worker(args.sizes, args.seconds)))
        return

    rows = []
    root = Path(__file__).resolve().parents[1]
    for backend in args.backends:
        cmd = [sys.executable, __file__, "--worker", "--seconds", str(args.seconds), "--sizes",
               *map(str, args.sizes)]
        env = os.environ | {"MUJOCO_GL": backend, "PYTHONPATH": str(root)}
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=root)
        if proc.returncode != 0:
            print(f"# backend {backend} failed:\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        rows += [r | {"backend": backend} for r in json.loads(proc.stdout.strip().splitlines()[-1])]

    print(f"{'backend':8} {'obs':5} {'size':>4} {'frame every':>11} {'steps/s':>8} {'frames/s':>8}")
    for r in rows:
        print(f"{r['backend']:8} {r['obs_mode']:5} {r['image_size']:>4} {r['frame_every']:>11} "
              f"{r['steps_per_s']:>8.0f} {r['frames_per_s']:>8.0f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {"tasks": TASKS, "num_envs": NUM_ENVS, "chunk": CHUNK, "seconds": args.seconds,
                "cpu_count": os.cpu_count()}
        args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
