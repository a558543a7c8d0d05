"""Scripted LIBERO experts' success per task, suite by suite (issue #6): each task's expert runs
`--episodes` episodes from perturbed initial states (as when recording demos; seeds 0..N-1),
state observations only (the experts read the simulator, not the cameras), within the paper's
interaction steps for the suite (Table 7). A task whose goal the experts do not plan is listed
with the reason instead of a rate. Prints a line per task; `--out` writes the JSON.

    .venv/bin/python benchmarks/libero_experts.py [--suites spatial object goal long]
        [--episodes 5] [--out results/metrics/libero_expert_suites.json]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from pirl_core.data.libero_demos import expert_episode
from pirl_core.data.libero_experts import UnsupportedGoal, check_goal
from pirl_core.envs.libero import LiberoTask, suite_max_steps, suite_tasks, task_goal


def run_task(name: str, episodes: int) -> dict:
    """{"successes", "episodes", "lengths" of the successful ones} or {"unsupported": reason}."""
    try:
        check_goal(task_goal(name))
    except UnsupportedGoal as e:
        return {"unsupported": str(e)}
    task = LiberoTask(name, 32, "state", placements="perturbed")
    try:
        wins = [expert_episode(task, seed, suite_max_steps(name)) for seed in range(episodes)]
    finally:
        task.close()
    lengths = [len(frames["action"]) for frames, ok in wins if ok]
    return {"successes": len(lengths), "episodes": episodes, "lengths": lengths}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suites", nargs="+", default=["spatial", "object", "goal", "long"])
    ap.add_argument("--episodes", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out: dict = {"episodes_per_task": args.episodes, "suites": {}}
    for suite in args.suites:
        t0, tasks = time.perf_counter(), {}
        for name in suite_tasks(suite):
            tasks[name] = r = run_task(name, args.episodes)
            print(name, r.get("unsupported") or f"{r['successes']}/{r['episodes']}", flush=True)
        rates = [r["successes"] / r["episodes"] for r in tasks.values() if "episodes" in r]
        out["suites"][suite] = {
            "tasks": tasks, "planned_tasks": len(rates),
            "mean_success_planned": float(np.mean(rates)) if rates else None,
            "mean_success_all": float(np.sum(rates) / len(tasks)),
            "seconds": round(time.perf_counter() - t0, 1)}
        print(suite, {k: v for k, v in out["suites"][suite].items() if k != "tasks"}, flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
