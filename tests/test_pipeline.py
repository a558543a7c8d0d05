"""dvc.yaml against the notebooks and params.yaml it names: a stage that passes a parameter its
notebook does not declare, or lists a params key that does not exist, fails only hours into a
`dvc repro`; these checks fail here instead."""

import ast
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DVC = yaml.safe_load((ROOT / "dvc.yaml").read_text())
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())


def stages() -> list[tuple[str, dict]]:
    return sorted(DVC["stages"].items())


def stage_body(stage: dict) -> dict:
    return stage.get("do", stage)  # foreach stages keep their body under `do`


def notebook_parameters(path: Path) -> set[str]:
    """Names assigned in the notebook's cell tagged `parameters` (what papermill overrides)."""
    cells = json.loads(path.read_text())["cells"]
    tagged = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: expected one cell tagged 'parameters'"
    tree = ast.parse("".join(tagged[0]["source"]))
    return {t.id for node in tree.body if isinstance(node, ast.Assign)
            for t in node.targets if isinstance(t, ast.Name)}


@pytest.mark.parametrize("name,stage", stages())
def test_stage_runs_its_notebook_with_declared_parameters(name, stage):
    body = stage_body(stage)
    cmd = " ".join(body["cmd"].split())
    notebook = re.search(r"(notebooks/\d\d_\w+\.ipynb)", cmd).group(1)
    assert notebook in body["deps"], f"{name}: its notebook {notebook} is not a dep"
    passed = set(re.findall(r"-p (\w+) ", cmd))
    unknown = passed - notebook_parameters(ROOT / notebook)
    assert not unknown, f"{name}: passes {sorted(unknown)} that {notebook} does not declare"


@pytest.mark.parametrize("name,stage", stages())
def test_stage_params_exist_in_params_yaml(name, stage):
    for key in stage_body(stage).get("params", []):
        key = key.replace("${key}", "noise_level")  # any ablation name stands for the foreach
        node = PARAMS
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"{name}: params key {key!r} missing"
            node = node[part]


def test_ablation_foreach_covers_the_ablation_section():
    from pirl_core.ablation import ABLATIONS

    names = set(DVC["stages"]["ablation"]["foreach"])
    assert names == set(ABLATIONS) == set(PARAMS["ablation"]) - {"method", "seed",
                                                                "num_iterations"}


@pytest.mark.parametrize("name,stage", stages())
def test_executed_notebooks_are_committed_not_cached(name, stage):
    """A fresh clone must hold every stage's executed notebook (readers open them; a missing
    out would make `dvc repro` rerun the stage)."""
    for out in stage_body(stage)["outs"]:
        if isinstance(out, dict):
            (path, opts), = out.items()
            if path.startswith("notebooks/executed/"):
                assert opts.get("cache") is False, f"{name}: {path} must be cache: false"
        else:
            assert not out.startswith("notebooks/executed/"), f"{name}: {out} is cached"
