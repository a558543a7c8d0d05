"""Load, merge, validate and dump the pirl config; the project's only YAML reader.

Merge order, later wins: dataclass defaults <- params.yaml <- params/<preset>.yaml <- overrides.
Overrides are dotted `key=value` strings whose values are parsed with `yaml.safe_load`, the way
`dvc exp run -S` writes them (`ppo.clip_coef=0.1`, `env.tasks=[reach-v3,push-v3]`).

Every value is type-checked and range-checked before `load_config` returns; a bad one raises
`ConfigError` naming the dotted key, the value and the file or override it came from. Each
benchmark's stages read their env settings from their own section (`env` for MetaWorld,
`maniskill`, `libero`), which `load_config(..., benchmark=...)` puts in `cfg.env`.

CLI: `python -m pirl_core.config [--params params.yaml] [--preset NAME] [--benchmark NAME]
[overrides...]` prints the resolved config as YAML (exit code 2 on a bad config).
"""

from __future__ import annotations

import argparse
import difflib
import functools
import math
import re
import sys
import types
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from pirl_core.config_schema import (
    PRESET_NAME,
    AblationConfig,
    Config,
    ConfigError,
    CriticConfig,
    EnvConfig,
    EvalConfig,
    FieldError,
    FPOConfig,
    GRPOConfig,
    LiberoEnvConfig,
    ManiSkillEnvConfig,
    ModelsConfig,
    PolicyConfig,
    PPOConfig,
    ReportConfig,
    ToyConfig,
    SamplerConfig,
    VLMLoraConfig,
    SFTConfig,
)

__all__ = [
    "Config", "ConfigError", "CriticConfig", "EnvConfig", "EvalConfig", "FPOConfig", "GRPOConfig",
    "AblationConfig", "LiberoEnvConfig", "ManiSkillEnvConfig", "ModelsConfig", "PolicyConfig",
    "PPOConfig", "ReportConfig", "SamplerConfig", "SFTConfig", "ToyConfig", "VLMLoraConfig",
    "config_from_dict", "config_to_dict", "config_to_yaml", "dump_config", "load_config",
    "select_benchmark", "BENCHMARK_SECTIONS",
]

# benchmark -> the section that is its stages' `env` ("env" itself: the main MetaWorld pipeline)
BENCHMARK_SECTIONS = {"metaworld": "env", "maniskill": "maniskill", "libero": "libero"}

#: Top-level key written by `dump_config`: the file already holds the merged preset values.
RESOLVED_KEY = "_resolved"

# PyYAML follows YAML 1.1, whose floats need a dot and a signed exponent, so `1e-5` and `3e5`
# load as strings; those spellings (and only those) are accepted for float fields.
_EXPONENT_FLOAT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")

#: Flattened layers: dotted key -> (raw value, "from <file or override>").
_Flat = dict[str, tuple[Any, str]]


class _Dumper(yaml.SafeDumper):
    """Block mappings and one-line lists, so a dumped config reads like params.yaml."""


_Dumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, True)
)


class _Mismatch(Exception):
    """A raw value that does not fit a field's type."""


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    resolved = get_type_hints(cls)
    return {f.name: resolved[f.name] for f in fields(cls)}


def _is_section(hint: Any) -> bool:
    return isinstance(hint, type) and is_dataclass(hint)


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _describe(hint: Any) -> str:
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else _describe(a) for a in args)
    if origin is tuple:
        return f"a list of {_describe(args[0]).removeprefix('a ').removeprefix('an ')}s"
    names = {bool: "a bool", int: "an int", float: "a float", str: "a string"}
    return names.get(hint, str(hint))


def _coerce(value: Any, hint: Any) -> Any:
    """`value` converted to `hint` (int -> float, list -> tuple), or raise _Mismatch."""
    origin, args = get_origin(hint), get_args(hint)
    if hint is float and isinstance(value, str) and _EXPONENT_FLOAT.fullmatch(value):
        value = float(value)
    if hint in (int, float) and isinstance(value, bool):
        raise _Mismatch
    if hint is float and isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    if hint in (bool, int, str) and isinstance(value, hint):
        return value
    if origin is Literal and any(type(value) is type(a) and value == a for a in args):
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, option)
            except _Mismatch:
                pass
    if origin is tuple and isinstance(value, (list, tuple)):
        return tuple(_coerce(item, args[0]) for item in value)
    raise _Mismatch


def _unknown_key(path: str, key: object, valid: Sequence[str], source: str) -> ConfigError:
    full = _join(path, str(key))
    close = difflib.get_close_matches(str(key), valid, n=1)
    if close:
        hint = f"did you mean {_join(path, close[0])!r}?"
    else:
        hint = f"valid keys: {', '.join(valid)}"
    return ConfigError(f"{full}: unknown key ({source}); {hint}")


def _flatten(data: Any, cls: type, path: str, source: str, out: _Flat) -> None:
    """Check `data`'s keys against the schema of `cls` and record its leaves in `out`."""
    if data is None:  # a section header with every key commented out
        return
    if not isinstance(data, Mapping):
        where = path or "top level"
        raise ConfigError(f"{where}: expected a mapping, got {data!r} ({source})")
    hints = _hints(cls)
    for key, value in data.items():
        if key not in hints:
            raise _unknown_key(path, key, list(hints), source)
        if _is_section(hints[key]):
            _flatten(value, hints[key], _join(path, key), source, out)
        else:
            out[_join(path, key)] = (value, source)


def _build(cls: type, path: str, flat: _Flat) -> Any:
    """Instantiate `cls` from `flat`; fields absent from it keep their defaults."""
    kwargs: dict[str, Any] = {}
    for name, hint in _hints(cls).items():
        key = _join(path, name)
        if _is_section(hint):
            kwargs[name] = _build(hint, key, flat)
        elif key in flat:
            value, source = flat[key]
            try:
                kwargs[name] = _coerce(value, hint)
            except _Mismatch:
                raise ConfigError(
                    f"{key}: expected {_describe(hint)}, got {value!r} ({source})"
                ) from None
    try:
        return cls(**kwargs)
    except FieldError as err:
        keys = [_join(path, n) for n in (err.name, *err.related)]
        sources = dict.fromkeys(flat[k][1] for k in keys if k in flat) or {"default": None}
        shown = list(err.value) if isinstance(err.value, tuple) else err.value
        raise ConfigError(
            f"{_join(path, err.name)}: expected {err.expected}, got {shown!r} "
            f"({'; '.join(sources)})"
        ) from None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {data!r}")
    return data


def _parse_override(text: str) -> dict[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected KEY=VALUE, e.g. ppo.clip_coef=0.1")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise ConfigError(f"{key}: cannot parse {raw!r} as YAML (from override {text!r})") from None
    for part in reversed(key.strip().split(".")):
        value = {part: value}
    return value


def _preset_choice(arg: str | None, overrides: _Flat, base: _Flat) -> tuple[str, str]:
    """The preset name and where it was chosen; checked here because it becomes a path."""
    if arg is not None:
        name, source = arg, "from the preset argument"
    else:
        name, source = overrides.get("preset") or base.get("preset") or ("mini", "default")
    if not isinstance(name, str) or not PRESET_NAME.fullmatch(name):
        raise ConfigError(
            f"preset: expected a preset name matching {PRESET_NAME.pattern}, got {name!r} "
            f"({source})"
        )
    return name, source


def select_benchmark(cfg: Config, benchmark: str) -> Config:
    """`cfg` with the env section of `benchmark`'s stages as its `env` (see BENCHMARK_SECTIONS),
    and that section's non-zero protocol fields (demos per task, SFT steps, RL env steps, GRPO
    group size) in force."""
    if benchmark not in BENCHMARK_SECTIONS:
        raise ConfigError(f"benchmark: expected one of {sorted(BENCHMARK_SECTIONS)}, "
                          f"got {benchmark!r}")
    env = getattr(cfg, BENCHMARK_SECTIONS[benchmark])
    sft, ppo = cfg.sft, cfg.ppo
    if env.num_demos_per_task:
        sft = replace(sft, num_demos_per_task=env.num_demos_per_task)
    if env.sft_num_steps:
        sft = replace(sft, num_steps=env.sft_num_steps)
    if env.total_timesteps:
        ppo = replace(ppo, total_timesteps=env.total_timesteps)
    grpo = replace(cfg.grpo, group_size=env.group_size) if env.group_size else cfg.grpo
    return replace(cfg, env=env, sft=sft, ppo=ppo, grpo=grpo)


def load_config(
    path: str | Path = "params.yaml", overrides: Sequence[str] = (), preset: str | None = None,
    benchmark: str = "metaworld",
) -> Config:
    """Resolve defaults <- `path` <- params/<preset>.yaml beside it <- `overrides`, validated;
    then `select_benchmark(cfg, benchmark)`.

    The preset is `preset` if given, else a `preset=` override, else `path`'s `preset` key. A
    file written by `dump_config` is taken as is unless a preset is asked for explicitly.
    """
    path = Path(path)
    data = _read_yaml(path)
    resolved = data.pop(RESOLVED_KEY, False)
    if not isinstance(resolved, bool):
        raise ConfigError(f"{RESOLVED_KEY}: expected a bool, got {resolved!r} (from {path})")
    flat: _Flat = {}
    _flatten(data, Config, "", f"from {path}", flat)
    extra: _Flat = {}
    for text in overrides:
        _flatten(_parse_override(text), Config, "", f"from override {text!r}", extra)
    if preset is not None or "preset" in extra or not resolved:
        name, source = _preset_choice(preset, extra, flat)
        preset_path = path.parent / "params" / f"{name}.yaml"
        if not preset_path.is_file():
            raise ConfigError(f"preset: no preset file {preset_path} for {name!r} ({source})")
        preset_data = _read_yaml(preset_path)
        if "preset" in preset_data:
            raise ConfigError(f"preset: a preset file cannot choose a preset (from {preset_path})")
        _flatten(preset_data, Config, "", f"from {preset_path}", flat)
        flat["preset"] = (name, source)
    flat.update(extra)
    return select_benchmark(_build(Config, "", flat), benchmark)


def config_from_dict(data: Mapping[str, Any], source: str = "a dict") -> Config:
    """A validated Config from a nested mapping laid out like params.yaml (no preset merge)."""
    flat: _Flat = {}
    _flatten(data, Config, "", f"from {source}", flat)
    return _build(Config, "", flat)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, YAML-serialisable nested dict of a config or section; tuples become lists."""
    out: dict[str, Any] = {}
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if is_dataclass(value):
            value = config_to_dict(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[f.name] = value
    return out


def config_to_yaml(cfg: Config) -> str:
    """The resolved config as YAML text that `load_config` reads back to an equal Config."""
    header = "# Resolved pirl config (pirl_core.config); the preset is already merged in.\n"
    body = yaml.dump(config_to_dict(cfg), Dumper=_Dumper, sort_keys=False)
    return f"{header}{RESOLVED_KEY}: true\n{body}"


def dump_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config to `path`, e.g. beside a run's outputs."""
    Path(path).write_text(config_to_yaml(cfg), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pirl_core.config", description="Print the resolved pirl config as YAML."
    )
    parser.add_argument("--params", default="params.yaml", help="base params file")
    parser.add_argument("--preset", default=None, help="preset in params/ (default: its key)")
    parser.add_argument("--benchmark", default="metaworld",
                        help=f"whose env section becomes `env`: {sorted(BENCHMARK_SECTIONS)}")
    parser.add_argument("overrides", nargs="*", help="dotted overrides, e.g. ppo.clip_coef=0.1")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.params, args.overrides, args.preset, args.benchmark)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    sys.stdout.write(config_to_yaml(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
