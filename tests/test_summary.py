"""The benchmark summary: pooled CIs over seeds, deltas, pending methods."""

from __future__ import annotations

import pytest

from pirl_core.config import ReportConfig
from pirl_core.summary import benchmark_summary, libero_suite, regroup_per_task


def _eval(successes: dict[str, list[int]]) -> dict:
    records = [{"task": t, "episode": i, "success": bool(s), "length": 10, "env_seed": i}
               for t, ss in successes.items() for i, s in enumerate(ss)]
    per_task = {t: sum(ss) / len(ss) for t, ss in successes.items()}
    return {"records": records, "mean_success": sum(per_task.values()) / len(per_task)}


def test_summary_pools_seeds_and_marks_pending():
    expert = {"mean_success_rate": 1.0, "success_rate": {"a": 1.0, "b": 1.0}}
    sft = {"eval": _eval({"a": [1, 0], "b": [0, 0]})}
    runs = [{"method": "flow_noise", "seed": s, "wall_minutes": 1.0, "iterations": 3,
             "final": {"eval": _eval({"a": [1, 1], "b": [s % 2, 0]})}} for s in (0, 1)]
    out = benchmark_summary(expert, sft, runs, ("flow_noise", "flow_sde"), ReportConfig(200), 60,
                            "rgb")
    assert out["sft"]["mean"] == pytest.approx(0.25)
    fn = out["flow_noise"]
    assert fn["mean"] == pytest.approx((1.0 + 0.25) / 2)  # pooled episodes: a 4/4, b 1/4
    assert fn["per_seed"] == [0.5, 0.75] and fn["seeds"] == [0, 1]
    assert fn["ci"][0] <= fn["mean"] <= fn["ci"][1]
    assert fn["delta_vs_sft"] == pytest.approx(0.375)
    assert out["flow_sde"] == {"pending": True}
    assert out["seeds"] == [0, 1] and out["budget_minutes"] == 60


def test_libero_suites_regroup_to_the_papers_columns():
    summary = {"sft": {"mean": 0.5, "per_task": {"libero_spatial/0": 1.0, "libero_spatial/1": 0.5,
                                                 "libero_object/0": 0.0}}}
    out = regroup_per_task(summary, libero_suite)
    assert out["sft"]["per_task"] == {"spatial": 0.75, "object": 0.0}
    assert libero_suite("libero_10/3") == "long" and libero_suite("libero_goal/0") == "goal"
    with pytest.raises(ValueError, match="'libero_90'"):
        libero_suite("libero_90/0")
