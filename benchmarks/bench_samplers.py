"""Sampling and log-prob recomputation time per sampler and schedule (issue #2's benchmark).

A small MLP velocity net (the `VelocityMLP` of pirl_core.nn, 3 layers of 128), batch 64, chunk
H x D = 5 x 4, K in {1, 4, 10}. For each (method, schedule, mdp) it times:
  sample_ms   one `sample_chain` call (no grad), i.e. one rollout's action sampling
  replay_ms   `replay_transitions` + `chain_logprob` (forward only)
  update_ms   the same plus backward (what one PPO minibatch pays for log-probs)
Median of `--repeats` runs after a warm-up. Prints a table; `--out file.json` also writes it.

    .venv/bin/python benchmarks/bench_samplers.py [--threads 1] [--out results/metrics/x.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from pirl_core.config import SamplerConfig
from pirl_core.logprob import chain_logprob
from pirl_core.nn import NoiseHead, VelocityMLP
from pirl_core.samplers import replay_transitions, sample_chain

CASES = [  # (method, schedule, mdp): the formulations of paper Sec. 4 and Fig. 8
    ("ode", "all", "one_layer"),
    ("flow_noise", "all", "one_layer"),
    ("flow_sde", "all", "one_layer"),
    ("flow_sde", "all", "two_layer"),
    ("flow_sde", "hybrid", "two_layer"),
    ("flow_sde", "window", "two_layer"),
    ("flow_cps", "all", "two_layer"),
]
BATCH, SHAPE, CONTEXT = 64, (5, 4), 32


def _time(fn, repeats: int) -> float:
    fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return 1000 * statistics.median(samples)


def bench_case(model, head, ctx, method, schedule, mdp, k, repeats) -> dict:
    cfg = SamplerConfig(method=method, num_steps=k, schedule=schedule, mdp=mdp,
                        window_start=0, window_size=max(1, k // 2))
    noise_fn = None
    if method == "flow_noise":
        noise_fn = lambda x, tau, c, f: head(f, tau).view(-1, *SHAPE)  # noqa: E731
    gen = torch.Generator().manual_seed(0)
    chain = sample_chain(model, ctx, cfg, BATCH, SHAPE, gen, noise_std_fn=noise_fn)

    def replay(backward: bool):
        lp = chain_logprob(chain, *replay_transitions(model, chain, ctx, cfg, noise_fn), cfg)
        if backward and lp.requires_grad:  # CPS at K = 1 has no stochastic step: nothing to train
            lp.sum().backward()

    row = {"method": method, "schedule": schedule, "mdp": mdp, "K": k}
    row["sample_ms"] = _time(lambda: sample_chain(model, ctx, cfg, BATCH, SHAPE, gen,
                                                  noise_std_fn=noise_fn), repeats)
    if method == "ode":  # nothing to replay: the ODE has no log-prob
        return row | {"replay_ms": 0.0, "update_ms": 0.0}
    with torch.no_grad():
        row["replay_ms"] = _time(lambda: replay(False), repeats)
    row["update_ms"] = _time(lambda: replay(True), repeats)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = VelocityMLP(SHAPE, context_dim=CONTEXT, hidden_dim=128, num_layers=3)
    head = NoiseHead(model.feature_dim, SHAPE[0] * SHAPE[1], hidden_dim=64)
    ctx = torch.randn(BATCH, CONTEXT)
    rows = [bench_case(model, head, ctx, m, s, d, k, args.repeats)
            for k in (1, 4, 10) for (m, s, d) in CASES]
    print(f"batch {BATCH}, chunk {SHAPE}, MLP 3x128, torch threads {args.threads}")
    print(f"{'method':<11}{'schedule':<9}{'mdp':<10}{'K':>3}{'sample ms':>11}{'replay ms':>11}"
          f"{'update ms':>11}")
    for r in rows:
        print(f"{r['method']:<11}{r['schedule']:<9}{r['mdp']:<10}{r['K']:>3}{r['sample_ms']:>11.3f}"
              f"{r['replay_ms']:>11.3f}{r['update_ms']:>11.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {"batch": BATCH, "chunk": list(SHAPE), "threads": args.threads,
                "torch": torch.__version__}
        args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
