"""The paper's ablations (Sec. 5.3) as variants of one base run: names, overrides, run specs.

Every variant is the main config with `ablation.method`'s sampler settings, the ablation's
iteration count and seed, and the few overrides that name the variant. The variant whose
resolved config equals the base's is not trained again: it is the `ablation_base` stage's run.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from pirl_core.config import AblationConfig, Config, ConfigError, load_config
from pirl_core.experiment import RunSpec, SFTSpec, run_many, run_sft
from pirl_core.factory import method_overrides

_MDP = {"one_layer": ("sampler.mdp=one_layer", "sampler.schedule=all"),
        "two_layer": ("sampler.mdp=two_layer", "sampler.schedule=all"),
        "hybrid": ("sampler.mdp=two_layer", "sampler.schedule=hybrid")}
# Fig. 7 compares the two noises inside one MDP with no entropy bonus (the fixed noise's entropy
# is a constant, so the bonus only ever moved the learned one)
_INJECTION = {"fixed": (), "learned": ("sampler.method=flow_noise", "ppo.ent_coef=0")}


def _critic(value: str) -> tuple[str, ...]:
    placement, layers = value.split(":")
    return (f"critic.placement={placement}", f"critic.num_layers={layers}")


# ablation name (= its key in the `ablation` config section) -> value -> config overrides
VARIANT_OVERRIDES = {
    "noise_level": lambda v: (f"sampler.noise_level={v}",),
    "denoise_steps": lambda v: (f"sampler.num_steps={v}",),
    "chunk_size": lambda v: (f"env.chunk_size={v}",),
    "critic": _critic,
    "injection": lambda v: _INJECTION[v],
    "mdp": lambda v: _MDP[v],
    "lr_schedule": lambda v: (f"ppo.anneal_lr={v}",),
}
ABLATIONS = tuple(VARIANT_OVERRIDES)


def base_overrides(ab: AblationConfig) -> tuple[str, ...]:
    """What every ablation run changes in the main config: method, iterations, seed."""
    return method_overrides(ab.method) + _budget(ab) + (f"seed={ab.seed}",)


def _budget(ab: AblationConfig) -> tuple[str, ...]:
    return (f"ppo.num_iterations={ab.num_iterations}", "ppo.total_timesteps=null")


def variants(name: str, ab: AblationConfig) -> list[tuple[str, tuple[str, ...]]]:
    """(label, overrides) of each value of ablation `name`, in the config's order."""
    if name not in VARIANT_OVERRIDES:
        raise ConfigError(f"ablation: unknown ablation {name!r}; expected one of {ABLATIONS}")
    return [(str(v), VARIANT_OVERRIDES[name](v)) for v in getattr(ab, name)]


def resolve(params_path: str | Path, overrides: tuple[str, ...]) -> Config:
    """The config a variant trains with (what decides whether it is the base run)."""
    cfg = load_config(params_path)
    return load_config(params_path, overrides=base_overrides(cfg.ablation) + overrides)


def needs_own_sft(cfg: Config, variant: Config) -> bool:
    """A variant whose policy shape differs (chunk size) cannot start from the main SFT."""
    return variant.env.chunk_size != cfg.env.chunk_size


def variant_spec(params_path: str, name: str, label: str, overrides: tuple[str, ...],
                 sft_checkpoint: str, root: str, metrics_dir: str) -> RunSpec:
    """The run of one variant; `root` holds its checkpoints and dvclive logs."""
    cfg = load_config(params_path)
    ab = cfg.ablation
    tag = f"{name}_{label}".replace(":", "-").replace(".", "p")
    return RunSpec(params_path, ab.method, ab.seed, sft_checkpoint, f"{root}/{tag}/run",
                   f"{root}/{tag}/dvclive", f"{metrics_dir}/{tag}.json",
                   overrides=_budget(ab) + overrides,
                   label=label, evaluate_start=True)


def run_ablation(params_path: str, name: str, sft_checkpoint: str, demos_dir: str,
                 base_json: str, root: str, metrics_dir: str, workers: int) -> list[dict]:
    """Train the variants of ablation `name` (or, for name "base", the base run itself);
    returns their run JSONs in the config's order, the base run's among them where it belongs.
    Chunk-size variants first train their own SFT policy, in parallel."""
    cfg = load_config(params_path)
    if name == "base":
        spec = variant_spec(params_path, "base", "base", (), sft_checkpoint, root, metrics_dir)
        return run_many([replace(spec, metrics_path=base_json)], workers)
    base = resolve(params_path, ())
    todo: dict[str, RunSpec] = {}
    sft_jobs: list[SFTSpec] = []
    for label, overrides in variants(name, cfg.ablation):
        variant = resolve(params_path, overrides)
        if variant == base:
            continue
        start = sft_checkpoint
        if needs_own_sft(cfg, variant):
            start = f"{root}/sft_{label}"
            sft_jobs.append(SFTSpec(params_path, demos_dir, start, overrides))
        todo[label] = variant_spec(params_path, name, label, overrides, start, root, metrics_dir)
    run_many(sft_jobs, workers, fn=run_sft)
    done = dict(zip(todo, run_many(list(todo.values()), workers)))
    base_run = json.loads(Path(base_json).read_text())
    return [done.get(label, base_run | {"label": label})
            for label, _ in variants(name, cfg.ablation)]
