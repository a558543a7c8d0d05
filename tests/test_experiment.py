"""RL runs as specs: in process, in worker processes, the same result either way."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pirl_core.experiment import RunSpec, run_many, threads_per_run
from tests.helpers import tiny_project

@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return tiny_project(tmp_path_factory.mktemp("project")).parent


def _spec(root: Path, seed: int, tag: str) -> RunSpec:
    return RunSpec(str(root / "params.yaml"), "flow_sde", seed, str(root / "sft"),
                   str(root / tag / f"run{seed}"), str(root / tag / f"live{seed}"),
                   str(root / tag / f"seed{seed}.json"))


def test_threads_per_run_shares_the_cores():
    assert threads_per_run(1, cpus=2) == 2
    assert threads_per_run(2, cpus=2) == 1
    assert threads_per_run(3, cpus=2) == 1
    assert threads_per_run(2, cpus=16) == 8


def test_workers_below_one_is_refused(project):
    with pytest.raises(ValueError, match="workers: expected >= 1, got 0"):
        run_many([_spec(project, 0, "x")], workers=0)


def test_step_budget_ends_the_run_and_the_json_is_written(project):
    (run,) = run_many([_spec(project, 0, "serial")], workers=1)
    # 1 env x 2 chunks x 5 actions = 10 steps an iteration: 20 steps end it after 2, not 5
    assert run["iterations"] == 2 and run["global_steps"] == 20 and not run["cut_by_budget"]
    written = json.loads((project / "serial" / "seed0.json").read_text())
    assert written["final"]["eval"]["mean_success"] == run["final"]["eval"]["mean_success"]
    assert [h["iteration"] for h in written["history"]] == [0, 1, 2]
    assert (project / "serial" / "run0" / "checkpoint").is_dir()


@pytest.mark.slow
def test_parallel_workers_give_the_serial_result(project):
    serial = run_many([_spec(project, 1, "serial")], workers=1)[0]
    parallel = run_many([_spec(project, 0, "par"), _spec(project, 1, "par")], workers=2)
    assert [r["seed"] for r in parallel] == [0, 1]
    # one thread in a worker vs two here: the same run up to float summation order
    assert parallel[1]["global_steps"] == serial["global_steps"]
    for mine, theirs in zip(parallel[1]["history"][1:], serial["history"][1:]):
        assert mine["losses/value_loss"] == pytest.approx(theirs["losses/value_loss"], rel=1e-4)
        assert mine["losses/approx_kl"] == pytest.approx(theirs["losses/approx_kl"], abs=1e-7)
