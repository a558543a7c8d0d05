"""Aggregate a benchmark's stage outputs (expert, SFT, RL runs) into one summary with CIs.

RL methods are compared on the final canonical evaluation of each run. Per method, the episodes
of every seed are pooled per task and the CI is a stratified bootstrap over episodes within tasks
(`pirl_core.stats`); the per-seed means and their interquartile mean are reported beside it.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from pirl_core.config import ReportConfig
from pirl_core.stats import iqm, stratified_bootstrap_ci


def _per_task(records: list[dict]) -> dict[str, np.ndarray]:
    out: dict[str, list[float]] = defaultdict(list)
    for r in records:
        out[r["task"]].append(float(r["success"]))
    return {t: np.asarray(v) for t, v in out.items()}


def eval_summary(results: list[dict], report: ReportConfig, seed: int = 0) -> dict[str, Any]:
    """One or more EvalResult.to_json() dicts (e.g. one per training seed) -> mean, CI, per task."""
    records = [r for res in results for r in res["records"]]
    scores = _per_task(records)
    mean, lo, hi = stratified_bootstrap_ci(scores, np.mean, report.bootstrap_samples, report.ci,
                                           seed)
    return {"mean": mean, "ci": [lo, hi], "episodes": len(records),
            "per_task": {t: float(v.mean()) for t, v in sorted(scores.items())}}


def start_success(run: dict) -> float | None:
    """An RL run's quick evaluation at env step 0, i.e. of the policy it started from (None when
    its curve does not start there, e.g. a resumed run)."""
    curve = run.get("curve") or []
    return curve[0]["eval/success"] if curve and curve[0]["global_step"] == 0 else None


def start_note(summary: dict[str, Any], methods: tuple[str, ...]) -> str:
    """A caption sentence when `methods` did not all start from the same policy (their step-0
    quick evaluations differ: e.g. some ran before the SFT stage was rerun), else "". Only
    meaningful where the quick evaluation is deterministic (MetaWorld's fixed initial states)."""
    starts = {m: summary[m].get("start_success", []) for m in methods if "mean" in summary[m]}
    values = {round(v, 9) for vs in starts.values() for v in vs if v is not None}
    if len(values) <= 1:
        return ""
    listed = ", ".join(f"{m} " + "/".join("?" if v is None else f"{v:.3f}" for v in vs)
                       for m, vs in starts.items())
    return (f" The RL runs did not all start from the same policy (quick eval at env step 0: "
            f"{listed}): compare only rows with the same start.")


def method_summary(runs: list[dict], mode: str, report: ReportConfig) -> dict[str, Any]:
    """RL runs of one method (notebook 03's JSON) -> pooled summary + per-seed means."""
    runs = sorted(runs, key=lambda r: r["seed"])
    finals = [r["final"][mode] for r in runs]
    out = eval_summary(finals, report)
    per_seed = [f["mean_success"] for f in finals]
    out |= {"seeds": [r["seed"] for r in runs], "per_seed": per_seed,
            "iqm_over_seeds": float(iqm(np.asarray(per_seed))),
            "wall_minutes": [r["wall_minutes"] for r in runs],
            "iterations": [r["iterations"] for r in runs],
            "start_success": [start_success(r) for r in runs]}
    return out


def benchmark_summary(expert: dict, sft: dict, runs: list[dict], methods: tuple[str, ...],
                      report: ReportConfig, budget_minutes: float | None, inputs: str,
                      mode: str = "eval", total_timesteps: int | None = None) -> dict[str, Any]:
    """The issue-3 summary: success as fractions, SFT and each method with CIs; methods without
    runs are listed as pending."""
    out: dict[str, Any] = {
        "expert": {"mean": expert["mean_success_rate"], "per_task": expert["success_rate"]},
        "sft": eval_summary([sft[mode]], report),
        "seeds": sorted({r["seed"] for r in runs}),
        "budget_minutes": budget_minutes, "total_timesteps": total_timesteps,
        "inputs": inputs, "mode": mode,
    }
    for method in methods:
        mine = [r for r in runs if r["method"] == method]
        out[method] = method_summary(mine, mode, report) if mine else {"pending": True}
        if mine:
            out[method]["delta_vs_sft"] = out[method]["mean"] - out["sft"]["mean"]
    return out


def per_task_rows(summary: dict[str, Any], names: tuple[str, ...], source: str,
                  paper: dict[str, Any] | None = None, paper_source: str = "paper"
                  ) -> list[dict[str, Any]]:
    """Table rows (source, method, tasks, per_task, success, ci): the paper's rows (its own task
    columns) and ours (`names` of `summary`, our tasks), pending methods marked."""
    rows = []
    for name, values in (paper or {}).get("rows", {}).items():
        cols = paper["columns"]
        rows.append({"source": paper_source, "method": name, "tasks": " / ".join(cols[:-1]),
                     "per_task": " / ".join(f"{v / 100:.3f}" for v in values[:-1]),
                     "success": values[-1] / 100, "ci_low": "", "ci_high": ""})
    for name in names:
        s = summary[name]
        if s.get("pending"):
            rows.append({"source": source, "method": name, "tasks": "", "per_task": "",
                         "success": "pending", "ci_low": "", "ci_high": ""})
            continue
        ci = s.get("ci", ["", ""])
        tasks = sorted(s["per_task"])
        rows.append({"source": source, "method": name, "tasks": " / ".join(tasks),
                     "per_task": " / ".join(f"{s['per_task'][t]:.3f}" for t in tasks),
                     "success": s["mean"], "ci_low": ci[0], "ci_high": ci[1]})
    return rows


def regroup_per_task(summary: dict[str, Any], group: Any) -> dict[str, Any]:
    """`summary` with every entry's per-task means replaced by the mean over each group of tasks
    (`group(task) -> name`, e.g. LIBERO's suite of a task; tasks weigh equally)."""
    out = dict(summary)
    for name, entry in summary.items():
        if isinstance(entry, dict) and "per_task" in entry:
            groups: dict[str, list[float]] = defaultdict(list)
            for task, value in entry["per_task"].items():
                groups[group(task)].append(value)
            out[name] = entry | {"per_task": {g: float(np.mean(v)) for g, v in groups.items()}}
    return out


LIBERO_SUITES = {"libero_spatial": "spatial", "libero_object": "object", "libero_goal": "goal",
                 "libero_10": "long"}


def libero_suite(task: str) -> str:
    """The paper's column name (spatial, object, goal, long) of a LIBERO task "suite/index"."""
    suite = task.split("/")[0]
    if suite not in LIBERO_SUITES:
        raise ValueError(f"LIBERO task {task!r}: suite {suite!r} is not one of "
                         f"{list(LIBERO_SUITES)}")
    return LIBERO_SUITES[suite]
