"""Ablation variants: their overrides, which one is the shared base, and a tiny stage run."""

from __future__ import annotations

import json

import pytest

from pirl_core.ablation import ABLATIONS, needs_own_sft, resolve, run_ablation, variants
from pirl_core.config import ConfigError, load_config
from tests.helpers import tiny_project

PARAMS = "params.yaml"


def test_every_ablation_of_the_defaults_has_exactly_one_base_variant():
    cfg = load_config(PARAMS)
    base = resolve(PARAMS, ())
    bases = {name: [label for label, ov in variants(name, cfg.ablation)
                    if resolve(PARAMS, ov) == base] for name in ABLATIONS}
    assert bases == {"noise_level": ["0.5"], "denoise_steps": ["4"], "chunk_size": ["5"],
                     "critic": ["vlm:4"], "injection": ["fixed"], "mdp": ["hybrid"],
                     "lr_schedule": ["constant"]}


def test_base_is_flow_sde_hybrid_for_the_ablation_iterations():
    base = resolve(PARAMS, ())
    assert (base.sampler.method, base.sampler.mdp, base.sampler.schedule) == (
        "flow_sde", "two_layer", "hybrid")
    assert base.ppo.num_iterations == load_config(PARAMS).ablation.num_iterations
    assert base.ppo.total_timesteps is None


def test_variant_overrides_reach_the_config():
    cfg = load_config(PARAMS)
    learned = dict(variants("injection", cfg.ablation))["learned"]
    v = resolve(PARAMS, learned)
    assert v.sampler.method == "flow_noise" and v.sampler.mdp == "two_layer"
    assert v.ppo.ent_coef == 0
    v = resolve(PARAMS, dict(variants("critic", cfg.ablation))["expert:1"])
    assert (v.critic.placement, v.critic.num_layers) == ("expert", 1)
    v = resolve(PARAMS, dict(variants("mdp", cfg.ablation))["two_layer"])
    assert (v.sampler.mdp, v.sampler.schedule) == ("two_layer", "all")


def test_only_other_chunk_sizes_need_their_own_sft():
    cfg = load_config(PARAMS)
    own = {label: needs_own_sft(cfg, resolve(PARAMS, ov))
           for name in ABLATIONS for label, ov in variants(name, cfg.ablation)}
    assert {label for label, yes in own.items() if yes} == {"10", "20"}


def test_unknown_ablation_names_the_value():
    with pytest.raises(ConfigError, match="'width'"):
        variants("width", load_config(PARAMS).ablation)


@pytest.mark.slow
def test_ablation_stage_reuses_the_base_run_and_trains_the_rest(tmp_path):
    params = str(tiny_project(tmp_path))
    base_json = str(tmp_path / "base.json")
    (base,) = run_ablation(params, "base", str(tmp_path / "sft"), "", base_json,
                           str(tmp_path / "base"), str(tmp_path / "base" / "m"), workers=1)
    assert base["iterations"] == 1 and set(base["start"]) == {"eval", "train"}
    runs = run_ablation(params, "lr_schedule", str(tmp_path / "sft"), "", base_json,
                        str(tmp_path / "lr"), str(tmp_path / "lr" / "m"), workers=1)
    assert [r["label"] for r in runs] == ["constant", "cosine"]
    assert runs[0]["history"] == json.loads((tmp_path / "base.json").read_text())["history"]
    assert runs[1]["overrides"][-1] == "ppo.anneal_lr=cosine"
    assert (tmp_path / "lr" / "lr_schedule_cosine" / "run" / "checkpoint").is_dir()
