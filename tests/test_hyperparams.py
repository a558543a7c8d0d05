"""Tables 7-8 come from the resolved config: every paper row, our values read from the config."""

from __future__ import annotations

import pytest

from pirl_core.config import Config, PPOConfig, load_config
from pirl_core.hyperparams import ROWS, hyperparameter_rows, paper_hyperparameters, ppo_iterations

PARAMS = "params.yaml"


def test_rows_carry_the_paper_and_our_values():
    cfg = Config(ppo=PPOConfig(learning_rate=3e-5, num_steps=40, num_minibatches=2))
    rows = hyperparameter_rows({"ours": cfg}, "table7_libero_hyperparameters", "paper pi0")
    by = {r["hyperparameter"]: r for r in rows}
    assert len(rows) == len(ROWS)
    assert by["Actor lr"] == {"hyperparameter": "Actor lr", "paper pi0": "1e-05", "ours": "3e-05"}
    assert by["Batch size (rows per minibatch)"]["ours"] == str(cfg.env.num_envs * 40 // 2)
    assert by["Denoise steps"]["paper pi0"] == "4"


def test_both_paper_tables_are_complete_and_unknown_ones_are_named():
    for table in ("table7_libero_hyperparameters", "table8_maniskill_hyperparameters"):
        assert set(paper_hyperparameters(table)) == set(ROWS)
    with pytest.raises(KeyError, match="table99"):
        paper_hyperparameters("table99")


def test_train_epochs_count_the_iterations_a_step_budget_allows():
    mini = load_config(PARAMS)
    # 288k steps / (12 envs x 40 chunks x 5 actions) = 120 iterations, below num_iterations
    assert ppo_iterations(mini) == 120 < mini.ppo.num_iterations
    assert ppo_iterations(load_config(PARAMS, preset="paper")) == 400  # no step budget there


def test_grpo_columns_count_its_group_episodes():
    cfg = load_config(PARAMS, overrides=("grpo.group_size=4",))
    rows = hyperparameter_rows({"ppo": cfg, "grpo": cfg}, "table7_libero_hyperparameters",
                               "paper", grpo=frozenset({"grpo"}))
    by = {r["hyperparameter"]: r for r in rows}
    assert by["Parallel environments"]["grpo"] == "24"  # 6 mini tasks x G = 4
    assert by["Parallel environments"]["ppo"] == str(cfg.env.num_envs)
    assert by["Batch size (rows per minibatch)"]["grpo"] == f"<= {24 * 40 // 2}"
    assert by["Critic lr"]["grpo"] == "n/a (no critic)"
    assert by["Train epochs (RL iterations)"]["ppo"] == "~120"
