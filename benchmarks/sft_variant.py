"""The SFT stage of one benchmark with extra config overrides, outside the pipeline, evaluated
(canonical evaluator, `eval.modes`) every --eval-every steps along one training run: how SFT
success grows with the number of steps (or any other SFT knob) without touching results/.

    .venv/bin/python benchmarks/sft_variant.py --benchmark maniskill --demos data/maniskill_demos \\
        --out checkpoints/variants/maniskill_sft_12k --eval-every 3000 sft.num_steps=12000

A checkpoint is saved at each evaluation (`--out/step<N>`), N the optimizer steps taken: 3001,
6001, ... with --eval-every 3000 (train_sft's log callback fires after steps 3000, 6000, ...),
then num_steps. The training run itself is the one the SFT stage would make with these overrides.
A row's `loss` is the mean CFM loss over the steps since the previous evaluation.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from pirl_core.checkpoint import save_checkpoint
from pirl_core.config import load_config
from pirl_core.data.lerobot_format import read_dataset
from pirl_core.evaluate import evaluate_modes
from pirl_core.factory import benchmark_tasks, env_factory, image_keys, make_agent, make_policy
from pirl_core.report import write_json
from pirl_core.sft import build_sft_data, train_sft


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="params.yaml")
    ap.add_argument("--benchmark", default="metaworld")
    ap.add_argument("--demos", required=True, help="the demos stage's LeRobot-format folder")
    ap.add_argument("--out", required=True, help="folder for the checkpoints and results.json")
    ap.add_argument("--eval-every", type=int, default=0, help="0: evaluate at the end only")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    if args.eval_every < 0:
        ap.error(f"--eval-every: expected an int >= 0, got {args.eval_every}")
    torch.set_num_threads(args.threads)
    cfg = load_config(args.params, overrides=tuple(args.overrides), benchmark=args.benchmark)
    torch.manual_seed(cfg.seed)
    policy = make_policy(cfg)
    data = build_sft_data(read_dataset(args.demos), policy, image_keys(cfg.env), cfg.env.chunk_size)
    factory, tasks = env_factory(cfg.env), benchmark_tasks(cfg.env)
    out, rows, t0 = Path(args.out), [], time.perf_counter()
    last, every = cfg.sft.num_steps - 1, args.eval_every or cfg.sft.num_steps

    def evaluate(step: int, metrics: dict[str, float]) -> None:
        if step == 0 or (step % every and step != last):
            return
        save_checkpoint(out / f"step{step + 1}", {"policy": policy}, meta={"stage": "sft"})
        res = evaluate_modes(make_agent(cfg, policy), factory, tasks, cfg.eval, cfg.report,
                             cfg.eval.initial_state_seed)
        row = {"steps": step + 1, "loss": metrics["sft/loss"],
               "train_minutes": metrics["sft/seconds"] / 60}
        for mode, r in res.items():  # the fields benchmarks/reevaluate.py keeps, to read alike
            full = r.to_json()
            row[mode] = {k: full[k] for k in ("mean_success", "ci_low", "ci_high", "success_rate")}
        rows.append(row)
        print(json.dumps(row), flush=True)

    train_sft(policy, data, cfg.sft, torch.Generator().manual_seed(cfg.seed), log=evaluate,
              log_every=every)
    write_json({"overrides": args.overrides, "frames": len(data), "rows": rows},
               out / "results.json")
    print(f"{len(data)} frames, {(time.perf_counter() - t0) / 60:.1f} min")


if __name__ == "__main__":
    main()
