"""The `rl` stage's runs of one method with extra config overrides, outside the pipeline: a quick
way to try a variant from the same SFT checkpoint (same seeds, budget and evaluation) without
touching results/. Writes each run's JSON under --out and prints eval / train success per seed,
pooled with its bootstrap CI and per task (`summary.method_summary`, as Table 4 pools them).

    .venv/bin/python benchmarks/rl_variant.py --method flow_sde --out checkpoints/variants/sde_1l \\
        sampler.mdp=one_layer sampler.schedule=all
"""

from __future__ import annotations

import argparse

from pirl_core.config import load_config
from pirl_core.experiment import RunSpec, run_many
from pirl_core.factory import method_overrides
from pirl_core.summary import method_summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--checkpoint", default="checkpoints/sft")
    ap.add_argument("--method", default="flow_sde")
    ap.add_argument("--out", required=True, help="folder for the runs' checkpoints and JSONs")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    overrides = tuple(args.overrides)
    # fail here, naming the bad key, rather than inside a worker process
    cfg = load_config(args.params, overrides=method_overrides(args.method) + overrides)
    specs = [RunSpec(args.params, args.method, seed, args.checkpoint, f"{args.out}/seed{seed}",
                     f"{args.out}/dvclive/seed{seed}", f"{args.out}/seed{seed}.json",
                     overrides=overrides) for seed in cfg.eval.seeds]
    runs = run_many(specs, len(specs))
    for mode in cfg.eval.modes:
        s = method_summary(runs, mode, cfg.report)
        print(f"{mode}: seeds {' / '.join(f'{v:.3f}' for v in s['per_seed'])}, pooled "
              f"{s['mean']:.3f} [{s['ci'][0]:.3f}, {s['ci'][1]:.3f}], per task "
              + ", ".join(f"{t} {v:.2f}" for t, v in s["per_task"].items()))
    print("env steps", [r["global_steps"] for r in runs],
          "minutes", [round(r["wall_minutes"], 1) for r in runs])


if __name__ == "__main__":
    main()
