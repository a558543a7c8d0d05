"""The report's index: an item is done exactly when all its files exist; the shipped item list
names a reason for every pending item and covers the paper's tables and figures."""

from __future__ import annotations

from importlib.resources import files

import yaml

from pirl_core.report import report_index


def test_done_only_when_every_file_exists(tmp_path):
    (tmp_path / "a.md").write_text("x")
    items = {"t1": {"paper": "Table 1", "ours": ["a.md"], "pending": "why 1"},
             "t2": {"paper": "Table 2", "ours": ["a.md", "b.md"], "pending": "why 2"}}
    rows = report_index(items, tmp_path)
    assert [r["status"] for r in rows] == ["done", "pending: why 2"]
    assert rows[1]["ours"] == "a.md, b.md"


def test_shipped_items_cover_the_paper():
    items = yaml.safe_load((files("pirl_core") / "data" / "report_items.yaml").read_text())
    for key, item in items.items():
        assert item["ours"] and item["pending"] and item["paper"], key
    tables = {int(k.split("_")[0][5:]) for k in items if k.startswith("table")}
    assert tables == set(range(1, 11))
    assert {"fig5_ppo_vs_grpo", "fig6_critic", "fig7_noise_injection", "fig8_mdp_formulation",
            "fig12_lr_schedule", "fig13_episode_length"} <= set(items)
