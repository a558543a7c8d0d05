"""The benchmark summary: pooled CIs over seeds, deltas, pending methods."""

from __future__ import annotations

import pytest

from pirl_core.config import ReportConfig
from pirl_core.summary import (benchmark_summary, libero_suite, regroup_per_task, start_note,
                               start_success)


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


def _run(method: str, seed: int, start: float) -> dict:
    return {"method": method, "seed": seed, "wall_minutes": 1.0, "iterations": 3,
            "curve": [{"global_step": 0, "eval/success": start},
                      {"global_step": 100, "eval/success": 1.0}],
            "final": {"eval": _eval({"a": [1, 0]})}}


def test_runs_that_started_from_another_policy_are_named_in_the_caption():
    expert = {"mean_success_rate": 1.0, "success_rate": {"a": 1.0}}
    sft = {"eval": _eval({"a": [1, 0]})}
    same = [_run("flow_noise", 0, 0.5), _run("grpo", 0, 0.5)]
    out = benchmark_summary(expert, sft, same, ("flow_noise", "grpo"), ReportConfig(50), 60, "")
    assert out["grpo"]["start_success"] == [0.5]
    assert start_note(out, ("flow_noise", "grpo")) == ""
    mixed = same + [_run("grpo", 1, 0.25)]
    out = benchmark_summary(expert, sft, mixed, ("flow_noise", "grpo"), ReportConfig(50), 60, "")
    note = start_note(out, ("flow_noise", "grpo"))
    assert "flow_noise 0.500" in note and "grpo 0.500/0.250" in note
    resumed = {"curve": [{"global_step": 2400, "eval/success": 0.5}]}
    assert start_success(resumed) is None and start_success({}) is None
    out["grpo"]["start_success"].append(None)  # a resumed run beside runs that started at 0
    assert "grpo 0.500/0.250/?" in start_note(out, ("flow_noise", "grpo"))
