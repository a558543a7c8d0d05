"""Caption and table helpers of pirl_core.ablation_report."""

from pirl_core.ablation_report import ppo_vs_grpo_rows, steps_note


def _run(method, seed, steps, cut):
    return {"method": method, "seed": seed, "global_steps": steps, "cut_by_budget": cut}


def test_steps_note_states_the_steps_done_and_the_runs_the_cap_cut():
    runs = [_run("grpo", 1, 404740, True), _run("grpo", 0, 407713, True),
            _run("flow_sde", 0, 480000, False), _run("flow_sde", 1, 480400, False),
            _run("flow_noise", 0, 1, False)]
    note = steps_note(runs, ("flow_sde", "grpo"))
    assert note == (" Env steps per run, done: flow_sde 480k, grpo 405k-408k"
                    " (2 of 2 cut by the time cap).")


def test_steps_note_is_empty_without_runs_of_the_methods():
    assert steps_note([_run("flow_noise", 0, 10, False)], ("grpo",)) == ""


def test_ppo_vs_grpo_rows_mark_a_missing_method_pending():
    summary = {"sft": {"mean": 0.5, "ci": [0.4, 0.6]},
               "grpo": {"mean": 0.7, "ci": [0.6, 0.8], "delta_vs_sft": 0.2}}
    rows = ppo_vs_grpo_rows(summary, {"+GRPO": 90.0})
    assert rows[0] == {"source": "paper (pi0, LIBERO avg)", "method": "+GRPO", "success": 0.9,
                       "ci_low": "", "ci_high": "", "delta_vs_sft": ""}
    ours = {r["method"]: r for r in rows[1:]}
    assert ours["+GRPO"]["delta_vs_sft"] == 0.2
    assert ours["+PPO"]["success"] == "pending"
