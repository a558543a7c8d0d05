"""Expert demos: recorded on the real simulator, written as LeRobot v3.0, read back."""

from __future__ import annotations

import json

import numpy as np

from pirl_core.data.demos import record_metaworld_demos
from pirl_core.data.lerobot_format import read_dataset
from pirl_core.envs.metaworld import load_instructions


def test_record_and_read_back(tmp_path):
    root = tmp_path / "demos"
    report = record_metaworld_demos(root, ("reach-v3",), 2, 32, 150, seed=0)
    assert report.successes == {"reach-v3": 2} and report.attempts["reach-v3"] >= 2
    data = read_dataset(root)
    assert len(data.episodes) == 2
    assert data.tasks == [load_instructions()["reach-v3"]]
    ep = data.episode(0)
    t = len(ep["action"])
    assert ep["observation.images.corner"].shape == (t, 32, 32, 3)
    assert ep["observation.state"].shape == (t, 4) and np.abs(ep["action"]).max() <= 1.0
    assert ep["observation.images.corner"][0].std() > 0  # a real frame, not a blank one
    saved = json.loads((root / "meta" / "pirl_expert.json").read_text())
    assert saved["success_rate"]["reach-v3"] == 2 / report.attempts["reach-v3"]
