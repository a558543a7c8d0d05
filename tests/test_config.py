"""Tests for pirl_core.config: loading, merging, overrides, errors, round trip and CLI."""

from __future__ import annotations

import ast
import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pirl_core import config_schema, config_studies
from pirl_core.config_studies import VLM_VARIANTS
from pirl_core.config import (
    Config,
    ConfigError,
    EnvConfig,
    PPOConfig,
    SamplerConfig,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
)

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "params.yaml"


def _leaves(data: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out.update(_leaves(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _project(tmp_path: Path, base: str = "preset: mini\n", **presets: str) -> Path:
    """A throwaway params.yaml with params/<name>.yaml files beside it."""
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "mini.yaml").write_text("")
    for name, text in presets.items():
        (tmp_path / "params" / f"{name}.yaml").write_text(text)
    path = tmp_path / "params.yaml"
    path.write_text(base)
    return path


def _error(*args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(*args, **kwargs)
    return str(info.value)


# --- defaults and presets ------------------------------------------------------------------


def test_repo_params_equal_dataclass_defaults():
    assert load_config(PARAMS) == Config()


def test_repo_params_write_out_every_key():
    written = _leaves(yaml.safe_load(PARAMS.read_text()))
    assert set(written) == set(_leaves(config_to_dict(Config())))


def test_smoke_preset_changes_exactly_its_keys():
    preset_keys = _leaves(yaml.safe_load((REPO / "params" / "smoke.yaml").read_text()))
    base = _leaves(config_to_dict(Config()))
    smoke = _leaves(config_to_dict(load_config(PARAMS, preset="smoke")))
    changed = {k for k in base if base[k] != smoke[k]}
    assert changed == set(preset_keys) | {"preset"}
    assert {k: smoke[k] for k in preset_keys} == preset_keys
    assert smoke["preset"] == "smoke"


def test_paper_preset_loads():
    cfg = load_config(PARAMS, preset="paper")
    assert cfg.env.benchmark == "libero" and cfg.policy.name == "pi0"
    assert cfg.ppo.learning_rate == 1e-5 and cfg.ppo.critic_learning_rate == 1e-4
    assert (cfg.sampler.noise_min_std, cfg.sampler.noise_max_std) == (0.08, 0.16)


def test_preset_chosen_by_file_key_and_by_override(tmp_path):
    path = _project(tmp_path, "preset: fast\n", fast="seed: 3\n", slow="seed: 5\n")
    assert load_config(path).seed == 3
    assert load_config(path, ["preset=slow"]).seed == 5
    assert load_config(path, ["preset=slow"], preset="fast").seed == 3


def test_override_beats_preset_beats_params(tmp_path):
    base = "preset: p\nppo:\n  gamma: 0.9\n  vf_coef: 0.1\n"
    path = _project(tmp_path, base, p="ppo:\n  gamma: 0.8\n")
    cfg = load_config(path, ["ppo.vf_coef=0.7"])
    assert (cfg.ppo.gamma, cfg.ppo.vf_coef) == (0.8, 0.7)


def test_missing_preset_file_is_named(tmp_path):
    path = _project(tmp_path)
    message = _error(path, preset="nope")
    assert str(tmp_path / "params" / "nope.yaml") in message


def test_preset_name_cannot_escape_params_dir(tmp_path):
    assert "preset" in _error(_project(tmp_path), preset="../params")


# --- overrides -----------------------------------------------------------------------------


def test_overrides_coerce_types():
    cfg = load_config(
        PARAMS,
        ["ppo.clip_coef=0.1", "ppo.vf_coef=1", "env.tasks=[reach-v3,push-v3]",
         "ppo.target_kl=0.02", "eval.seeds=[4]", "ppo.learning_rate=1e-5"],
    )
    assert cfg.ppo.clip_coef == 0.1
    assert cfg.ppo.vf_coef == 1.0 and isinstance(cfg.ppo.vf_coef, float)
    assert cfg.env.tasks == ("reach-v3", "push-v3")
    assert cfg.ppo.target_kl == 0.02 and cfg.eval.seeds == (4,)
    assert cfg.ppo.learning_rate == 1e-5
    assert load_config(PARAMS, ["ppo.target_kl=0.02", "ppo.target_kl=null"]).ppo.target_kl is None


def test_override_without_equals_sign():
    assert "KEY=VALUE" in _error(PARAMS, ["ppo.clip_coef"])


# --- unknown keys --------------------------------------------------------------------------


def test_unknown_top_level_key(tmp_path):
    message = _error(_project(tmp_path, "preset: mini\nsed: 1\n"))
    assert "sed: unknown key" in message and "'seed'" in message


def test_unknown_nested_key(tmp_path):
    message = _error(_project(tmp_path, "ppo:\n  clip_cof: 0.1\n"))
    assert "ppo.clip_cof" in message and "'ppo.clip_coef'" in message


def test_unknown_key_in_override():
    message = _error(PARAMS, ["sampler.nosie_level=0.3"])
    assert "sampler.nosie_level" in message and "'sampler.noise_level'" in message
    assert "override 'sampler.nosie_level=0.3'" in message


def test_unknown_key_in_preset_file(tmp_path):
    message = _error(_project(tmp_path, "preset: p\n", p="env:\n  num_env: 4\n"))
    assert "env.num_env" in message and "p.yaml" in message


def test_key_below_a_leaf_is_unknown():
    assert "ppo.gamma" in _error(PARAMS, ["ppo.gamma.x=1"])


# --- wrong types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("ppo.clip_coef=abc", "ppo.clip_coef"),
        ("ppo.update_epochs=true", "ppo.update_epochs"),
        ("ppo.update_epochs=2.5", "ppo.update_epochs"),
        ("ppo.learning_rate=true", "ppo.learning_rate"),
        ("ppo.clip_vloss=1", "ppo.clip_vloss"),
        ("sampler.method=sde", "sampler.method"),
        ("critic.num_layers=2", "critic.num_layers"),
        ("critic.num_layers=true", "critic.num_layers"),
        ("env.tasks=reach-v3", "env.tasks"),
        ("eval.seeds=[0,x]", "eval.seeds"),
        ("ppo.clip_coef=null", "ppo.clip_coef"),
        ("ppo.gamma=.nan", "ppo.gamma"),
        ("ppo=3", "ppo"),
    ],
)
def test_wrong_type_names_key(override, key):
    message = _error(PARAMS, [override])
    assert message.startswith(f"{key}: expected") and f"override {override!r}" in message


def test_quoted_number_is_a_string_not_a_float(tmp_path):
    assert "ppo.gamma: expected a float" in _error(_project(tmp_path, "ppo:\n  gamma: '0.9'\n"))


# --- ranges and combinations ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["ppo.clip_coef=-0.1"], "ppo.clip_coef: expected a float > 0, got -0.1"),
        (["ppo.gamma=1.5"], "ppo.gamma: expected a float in [0, 1], got 1.5"),
        (["ppo.update_epochs=0"], "ppo.update_epochs: expected an int >= 1, got 0"),
        (["ppo.target_kl=0"], "ppo.target_kl: expected a float > 0 or null, got 0.0"),
        (["sampler.window_start=4"], "sampler.window_size: expected"),
        (["sampler.noise_min_std=0.2"], "sampler.noise_max_std: expected"),
        (["sampler.noise_level=1.5"], "sampler.noise_level: expected a float in [0, 1], got 1.5"),
        (["env.image_size=8"], "env.image_size: expected an int >= 16, got 8"),
        (["env.tasks=[a,a]"], "env.tasks: expected no duplicates"),
        (["eval.modes=[eval,test]"], "eval.modes: expected"),
        (["report.ci=1"], "report.ci: expected a float in (0, 1), got 1.0"),
        (["grpo.group_size=1"], "grpo.group_size: expected an int >= 2, got 1"),
        (["policy.num_heads=3"], "policy.num_heads: expected a divisor of hidden_dim"),
        (["seed=-1"], "seed: expected an int >= 0, got -1"),
    ],
)
def test_out_of_range_names_key_value_and_source(overrides, expected):
    message = _error(PARAMS, overrides)
    assert message.startswith(expected)
    assert f"override {overrides[-1]!r}" in message


def test_combination_error_names_the_file_that_set_the_other_key(tmp_path):
    base = "preset: p\nsampler:\n  window_start: 3\n"
    path = _project(tmp_path, base, p="sampler:\n  num_steps: 2\n")
    message = _error(path)
    assert "sampler.window_size" in message and "p.yaml" in message and "params.yaml" in message


def test_window_schedule_and_allowed_combinations():
    cfg = load_config(
        PARAMS, ["sampler.schedule=window", "sampler.window_start=1", "sampler.window_size=3"]
    )
    assert cfg.sampler.window_start + cfg.sampler.window_size == cfg.sampler.num_steps
    assert load_config(PARAMS, ["sampler.method=ode", "sampler.mdp=two_layer"])
    assert load_config(PARAMS, ["sampler.method=flow_noise", "sampler.schedule=hybrid"])


def test_sections_validate_when_built_in_code():
    with pytest.raises(ConfigError, match="clip_coef"):
        PPOConfig(clip_coef=0.0)
    with pytest.raises(ConfigError, match="window_size"):
        SamplerConfig(num_steps=2, window_start=1, window_size=2)
    with pytest.raises(ConfigError, match="max_episode_steps"):
        EnvConfig(chunk_size=10, max_episode_steps=5)


# --- dump / load ---------------------------------------------------------------------------


def test_dump_load_round_trip(tmp_path):
    cfg = load_config(PARAMS, ["env.tasks=[reach-v3]", "ppo.target_kl=0.05"], preset="paper")
    dumped = tmp_path / "run" / "config.yaml"
    dumped.parent.mkdir()
    dump_config(cfg, dumped)
    assert load_config(dumped) == cfg
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_config_to_dict_is_plain_yaml():
    data = config_to_dict(Config())
    assert data["eval"]["seeds"] == [0, 1, 2] and data["env"]["tasks"] == []
    assert yaml.safe_load(yaml.safe_dump(data)) == data


# --- house style ---------------------------------------------------------------------------


@pytest.mark.parametrize("module", [config_schema, config_studies])
def test_every_schema_field_has_a_docstring(module):
    tree = ast.parse(Path(module.__file__).read_text())
    for node in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        body = node.body
        for i, stmt in enumerate(body):
            if isinstance(stmt, ast.AnnAssign):
                nxt = body[i + 1] if i + 1 < len(body) else None
                doc = isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant)
                assert doc, f"{node.name}.{stmt.target.id} has no docstring"


def test_sections_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Config().ppo.gamma = 0.5  # type: ignore[misc]


# --- CLI -----------------------------------------------------------------------------------


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pirl_core.config", "--params", str(PARAMS), *args],
        capture_output=True, text=True, cwd=REPO, check=False,
    )


def test_cli_prints_resolved_config():
    result = _cli("--preset", "smoke", "ppo.clip_coef=0.3")
    assert result.returncode == 0, result.stderr
    data = yaml.safe_load(result.stdout)
    assert data["ppo"]["clip_coef"] == 0.3 and data["preset"] == "smoke"


def test_cli_bad_override_exits_2():
    result = _cli("ppo.clip_coef=-0.1")
    assert result.returncode == 2
    assert "ppo.clip_coef" in result.stderr and "-0.1" in result.stderr


def test_benchmark_selects_its_env_section():
    cfg = load_config(PARAMS, ["maniskill.image_size=96", "env.image_size=48"],
                      benchmark="maniskill")
    assert cfg.env.benchmark == "maniskill" and cfg.env.image_size == 96
    assert cfg.env == cfg.maniskill and cfg.env.grasp_reward == 0.1
    mw = load_config(PARAMS, ["env.image_size=48"])
    assert mw.env.benchmark == "metaworld" and mw.env.image_size == 48 and mw.env.grasp_reward == 0
    with pytest.raises(ConfigError, match="'robosuite'"):
        load_config(PARAMS, benchmark="robosuite")
    with pytest.raises(ConfigError, match="maniskill.benchmark"):
        load_config(PARAMS, ["maniskill.benchmark=metaworld"])
    with pytest.raises(ConfigError, match="maniskill.grasp_reward"):
        load_config(PARAMS, ["maniskill.grasp_reward=-1"])


def test_libero_section_is_its_stages_env():
    cfg = load_config(PARAMS, ["libero.num_envs=3", "libero.fixed_init_states=true"],
                      benchmark="libero")
    assert cfg.env == cfg.libero and cfg.env.benchmark == "libero"
    assert cfg.env.num_envs == 3 and cfg.env.fixed_init_states and cfg.env.max_episode_steps == 320
    with pytest.raises(ConfigError, match="libero.fixed_init_states"):
        load_config(PARAMS, ["libero.fixed_init_states=sometimes"])


def test_benchmark_section_sets_its_protocol_fields():
    ms = load_config(PARAMS, ["maniskill.num_demos_per_task=7", "maniskill.total_timesteps=5000"],
                     benchmark="maniskill")
    assert ms.sft.num_demos_per_task == 7 and ms.ppo.total_timesteps == 5000
    mw = load_config(PARAMS, ["maniskill.num_demos_per_task=7"])
    assert mw.sft.num_demos_per_task == 2 and mw.ppo.total_timesteps == 288000  # env's 0: shared
    steps = load_config(PARAMS, ["maniskill.sft_num_steps=9"], benchmark="maniskill")
    assert steps.sft.num_steps == 9 and load_config(PARAMS).sft.num_steps == 3000
    with pytest.raises(ConfigError, match="maniskill.sft_num_steps.*-1"):
        load_config(PARAMS, ["maniskill.sft_num_steps=-1"], benchmark="maniskill")
    zero = load_config(PARAMS, ["maniskill.num_demos_per_task=0"], benchmark="maniskill")
    assert zero.sft.num_demos_per_task == 2
    lib = load_config(PARAMS, benchmark="libero")
    assert lib.grpo.group_size == 2 and mw.grpo.group_size == 8
    shared = load_config(PARAMS, ["libero.group_size=0"], benchmark="libero")
    assert shared.grpo.group_size == 8
    with pytest.raises(ConfigError, match="libero.group_size"):
        load_config(PARAMS, ["libero.group_size=1"])


# --- study sections --------------------------------------------------------------------------


def test_vlm_lora_variants_differ_only_where_the_paper_says():
    cfg = load_config(PARAMS)
    vl = cfg.vlm_lora
    pi0 = cfg.models.overrides("pi0")
    frozen, lora_i, lora_ii = (load_config(PARAMS, list(pi0 + vl.overrides(v)))
                               for v in VLM_VARIANTS)
    assert frozen.policy.lora_rank == 0 and frozen.policy.freeze_prefix
    assert lora_i.policy.lora_rank == vl.lora_rank and not lora_i.policy.freeze_prefix
    assert (lora_i.ppo.learning_rate, lora_i.ppo.update_epochs) == (frozen.ppo.learning_rate,
                                                                   frozen.ppo.update_epochs)
    assert (lora_ii.ppo.learning_rate, lora_ii.ppo.update_epochs) == (
        vl.conservative_learning_rate, vl.conservative_update_epochs)
    assert lora_ii.policy == lora_i.policy
    with pytest.raises(ValueError, match="'lora_iii'"):
        vl.overrides("lora_iii")
    assert _error(PARAMS, ["vlm_lora.lora_rank=0"]).startswith(
        "vlm_lora.lora_rank: expected an int >= 1, got 0")
