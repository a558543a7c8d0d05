"""Seconds per action chunk of the pi0 adapter for K denoising steps, showing the prefix is computed
once per observation.

One chunk = one PaliGemma pass over images + prompt (`encode_prefix`) + K expert passes against
its K/V cache (pirl's ODE sampler). A forward hook counts the VLM passes: 1 per chunk whatever K.
The issue's target is on a GPU at pi0's size: chunk time at K = 10 <= 1.5x K = 1. On this CPU
the script runs at a small size, where the expert is a larger share of the model, so the ratio
is higher; the printout gives the split (prefix ms, ms per expert step) that predicts it.

    .venv/bin/python benchmarks/bench_pi0_sampling.py [--family pi0|pi05]
        [--size tiny|small|full] [--batch 8]
        [--steps 1 4 10] [--device cpu] [--dtype float32|bfloat16] [--threads 2]
        [--out results/metrics/bench_pi0_sampling.json]

Sizes: tiny (test config, ~0.3 M parameters), small (width 256, 4 layers, 64 px, ~9 M), full
(pi0's 3.5 B at 224 px; a GPU). Weights are random: timing does not depend on them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from pirl_core.config import PolicyConfig, SamplerConfig
from pirl_core.policies.base import Observation, policy_velocity
from pirl_core.policies.pi0 import PI0Policy
from pirl_core.policies.pi05 import PI05Policy
from pirl_core.policies.pi0_build import build_pi0, byte_tokenizer, full_pi0_config
from pirl_core.samplers import ode_config, sample_chain

ACTION_DIM, STATE_DIM, CHUNK = 7, 8, 5
SIZES = {
    "tiny": (PolicyConfig(name="pi0", hidden_dim=64, num_layers=2, num_heads=4,
                          expert_hidden_dim=32, patch_size=8, max_text_tokens=48), 32),
    "small": (PolicyConfig(name="pi0", hidden_dim=256, num_layers=4, num_heads=4,
                           expert_hidden_dim=128, patch_size=8, max_text_tokens=48), 64),
}


def build(size: str, dtype: torch.dtype, family: str = "pi0") -> tuple[PI0Policy, int]:
    """The policy and the camera image side it is fed; pi05 = the same PaliGemma with pi0.5's
    expert, its prompt long enough for the discretised state."""
    torch.manual_seed(0)
    if size == "full":
        from transformers import PI0ForConditionalGeneration

        tok = byte_tokenizer()
        model = PI0ForConditionalGeneration(full_pi0_config(ACTION_DIM, STATE_DIM, CHUNK, tok))
        cfg, side = PolicyConfig(name="pi0", max_text_tokens=48), 224
    else:
        cfg, side = SIZES[size]
        model, tok = build_pi0(cfg, ACTION_DIM, STATE_DIM, CHUNK, side)
    if family == "pi05":
        cfg = replace(cfg, name="pi05", max_text_tokens=128)
        return PI05Policy(model, tok, cfg, ACTION_DIM, STATE_DIM).to(dtype).eval(), side
    return PI0Policy(model.to(dtype), tok, cfg, ACTION_DIM, STATE_DIM).eval(), side


def time_chunk(policy: PI0Policy, obs: Observation, steps: int, repeats: int) -> dict[str, float]:
    """Median seconds of (prefix, whole chunk) over `repeats`, and VLM passes per chunk."""
    cfg = ode_config(SamplerConfig(method="flow_sde", num_steps=steps))
    calls = []
    hook = policy.model.model.vlm.register_forward_hook(lambda *_: calls.append(1))
    prefix_s, chunk_s = [], []
    sync = torch.cuda.synchronize if obs.state.is_cuda else (lambda: None)
    try:
        for _ in range(repeats + 1):  # the first is a warm-up
            calls.clear()
            sync()
            t0 = time.perf_counter()
            cache = policy.encode_prefix(obs)
            sync()
            t1 = time.perf_counter()
            sample_chain(policy_velocity(policy), (cache, obs.state), cfg, obs.batch_size,
                         policy.action_shape, torch.Generator(obs.state.device).manual_seed(0),
                         device=obs.state.device)
            sync()
            prefix_s.append(t1 - t0)
            chunk_s.append(time.perf_counter() - t0)
    finally:
        hook.remove()
    return {"prefix_s": statistics.median(prefix_s[1:]), "chunk_s": statistics.median(chunk_s[1:]),
            "vlm_passes_per_chunk": len(calls)}


def model_args(description: str) -> argparse.ArgumentParser:
    """The options both pi0 benchmarks take: which model, where, in what precision."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--family", choices=["pi0", "pi05"], default="pi0")
    ap.add_argument("--size", choices=["tiny", "small", "full"], default="small")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    return ap


def main() -> None:
    ap = model_args(__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 4, 10])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    policy, side = build(args.size, getattr(torch, args.dtype), args.family)
    policy.to(args.device)
    g = torch.Generator().manual_seed(0)
    obs = Observation(torch.randint(0, 256, (args.batch, side, side, 3), generator=g,
                                    dtype=torch.uint8).to(args.device),
                      torch.randn(args.batch, STATE_DIM, generator=g).to(args.device),
                      ("pick up the red block and place it in the bowl",) * args.batch)
    params = sum(p.numel() for p in policy.parameters())
    print(f"{args.family} {args.size}: {params / 1e6:.1f} M parameters, batch {args.batch}, "
          f"{args.device} {args.dtype}, {args.threads} threads")
    rows = {}
    with torch.no_grad():
        for k in args.steps:
            rows[k] = time_chunk(policy, obs, k, args.repeats)
    base = rows[min(rows)]["chunk_s"]
    print(f"{'K':>3} {'chunk ms':>9} {'prefix ms':>10} {'ms/expert step':>15} "
          f"{'x K=' + str(min(rows)):>7} {'VLM passes':>11}")
    for k, r in rows.items():
        r["ratio"] = r["chunk_s"] / base
        per_step = (r["chunk_s"] - r["prefix_s"]) / k
        print(f"{k:>3} {1e3 * r['chunk_s']:>9.1f} {1e3 * r['prefix_s']:>10.1f} "
              f"{1e3 * per_step:>15.2f} {r['ratio']:>7.2f} {r['vlm_passes_per_chunk']:>11}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        info = {"family": args.family, "size": args.size, "parameters": params, "batch": args.batch,
                "device": args.device, "dtype": args.dtype, "threads": args.threads}
        args.out.write_text(json.dumps(info | {"steps": {str(k): v for k, v in rows.items()}},
                                       indent=1) + "\n")


if __name__ == "__main__":
    main()
