"""Figures and tables of the ablations (paper Tables 5-6, Figs. 5-13) from the runs' JSONs.

A run JSON is what `pirl_core.experiment.run_rl` writes: `history` (per iteration), `start` and
`final` (canonical evaluations). Curves of training success are smoothed with a moving mean, as
rollouts of ~20 finished episodes make each point noisy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# ablation -> (paper figure, file stem, metrics plotted: history key -> axis label)
FIGURES: dict[str, tuple[str, str, dict[str, str]]] = {
    "critic": ("Figure 6", "fig6_critic", {
        "eval/success": "eval success", "losses/value_loss": "value loss",
        "losses/explained_variance": "explained variance"}),
    "injection": ("Figure 7", "fig7_noise_injection", {"charts/success_rate": "train success",
                                                       "eval/success": "eval success"}),
    "mdp": ("Figure 8", "fig8_mdp_formulation", {
        "eval/success": "eval success", "time/update_s": "update time (s)",
        "losses/explained_variance": "explained variance"}),
    "noise_level": ("Figure 9", "fig9_noise_level", {"charts/success_rate": "train success",
                                                     "eval/success": "eval success",
                                                     "losses/clipfrac": "clip fraction"}),
    "denoise_steps": ("Figure 10", "fig10_denoise_steps", {"charts/success_rate": "train success",
                                                           "eval/success": "eval success"}),
    "chunk_size": ("Figure 11", "fig11_chunk", {"eval/success": "eval success",
                                                "losses/explained_variance": "explained variance"}),
    "lr_schedule": ("Figure 12", "fig12_lr_schedule", {"eval/success": "eval success",
                                                       "losses/approx_kl": "approx KL"}),
}
TABLE6 = ("noise_level", "denoise_steps", "chunk_size")
SMOOTH = 10  # iterations in the moving mean of per-iteration metrics


def series(run: dict[str, Any], key: str, x: str = "iteration") -> tuple[np.ndarray, np.ndarray]:
    """(x, y) of one metric over a run; per-iteration metrics smoothed, evaluations raw."""
    rows = [h for h in run["history"] if key in h]
    xs = np.asarray([h[x] for h in rows], dtype=float)
    ys = np.asarray([h[key] for h in rows], dtype=float)
    if key != "eval/success" and len(ys) >= SMOOTH:
        kernel = np.ones(SMOOTH) / SMOOTH
        ys = np.convolve(ys, kernel, mode="valid")
        xs = xs[SMOOTH - 1:]
    return xs, ys


def plot_ablation(name: str, runs: list[dict[str, Any]], source: str):
    """The ablation's figure: one panel per metric, one line per variant."""
    import matplotlib.pyplot as plt

    paper, _, metrics = FIGURES[name]
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3), squeeze=False)
    for ax, (key, label) in zip(axes[0], metrics.items()):
        for run in runs:
            xs, ys = series(run, key)
            ax.plot(xs, ys, "-o" if key == "eval/success" else "-", ms=3, lw=1,
                    label=f"{name}={run['label']}")
        ax.set_xlabel("iteration")
        ax.set_ylabel(label)
    axes[0][0].legend(fontsize=7)
    fig.suptitle(f"{paper} (ours: {source})", fontsize=8)
    fig.tight_layout()
    return fig


def _success(evaluation: dict[str, Any], mode: str) -> float | str:
    return evaluation[mode]["mean_success"] if mode in evaluation else "n/a"


def table6_rows(ablations: dict[str, list[dict[str, Any]]], paper: dict[str, Any]) -> list[dict]:
    """Table 6's layout: per hyperparameter value, SFT and RL success in train (stochastic) and
    eval (ODE) mode, ours beside the paper's (both as fractions; the paper prints %)."""
    rows = []
    for name in TABLE6:
        for run in ablations.get(name, []):
            theirs = paper.get(name, {}).get(str(run["label"]), {})
            row = {"hyperparameter": name, "value": run["label"]}
            for stage, key in (("sft", "start"), ("rl", "final")):
                for mode in ("train", "eval"):
                    row[f"{stage}_{mode}"] = _success(run[key], mode)
                    pct = theirs.get(f"{stage}_{mode}")
                    row[f"paper_{stage}_{mode}"] = "" if pct is None else pct / 100
            rows.append(row)
    return rows


def ppo_vs_grpo_rows(summary: dict[str, Any], paper: dict[str, Any]) -> list[dict]:
    """Table 5's layout from the benchmark summary: SFT, +GRPO, +PPO (Flow-SDE) with CIs."""
    rows = [{"source": "paper (pi0, LIBERO avg)", "method": k, "success": v / 100,
             "ci_low": "", "ci_high": "", "delta_vs_sft": ""} for k, v in paper.items()]
    for label, key in (("SFT", "sft"), ("+GRPO", "grpo"), ("+PPO", "flow_sde")):
        s = summary.get(key, {})
        if "mean" not in s:
            rows.append({"source": "ours", "method": label, "success": "pending", "ci_low": "",
                         "ci_high": "", "delta_vs_sft": ""})
            continue
        rows.append({"source": "ours", "method": label, "success": s["mean"],
                     "ci_low": s["ci"][0], "ci_high": s["ci"][1],
                     "delta_vs_sft": s.get("delta_vs_sft", "")})
    return rows


def _by_method(runs: list[dict[str, Any]], methods: tuple[str, ...]) -> dict[str, list[dict]]:
    return {m: sorted((r for r in runs if r["method"] == m), key=lambda r: r["seed"])
            for m in methods}


def steps_note(runs: list[dict[str, Any]], methods: tuple[str, ...]) -> str:
    """A caption sentence with the env steps each method's runs actually took: a run ends at
    `ppo.total_timesteps` or at the wall-clock cap, whichever comes first, so the configured
    budget alone overstates runs the cap cut (GRPO's whole-episode iterations run slower)."""
    parts = []
    for method, mine in _by_method(runs, methods).items():
        if not mine:
            continue
        steps = [r["global_steps"] for r in mine]
        cut = sum(bool(r.get("cut_by_budget")) for r in mine)
        low, high = f"{min(steps) / 1e3:.0f}k", f"{max(steps) / 1e3:.0f}k"
        span = low if low == high else f"{low}-{high}"
        parts.append(f"{method} {span}" + (f" ({cut} of {len(mine)} cut by the time cap)"
                                           if cut else ""))
    return f" Env steps per run, done: {', '.join(parts)}." if parts else ""


def plot_methods(runs: list[dict[str, Any]], methods: tuple[str, ...], key: str, ylabel: str,
                 title: str, hline: tuple[float, str] | None = None):
    """One metric against env steps for the main runs of `methods`, a line per seed (Fig. 5's
    PPO vs GRPO, Fig. 13's episode length with the expert's as `hline`)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, (method, mine) in enumerate(_by_method(runs, methods).items()):
        for j, run in enumerate(mine):
            xs, ys = series(run, key, x="global_step")
            ax.plot(xs, ys, color=f"C{i}", lw=1, alpha=0.9,
                    label=method if j == 0 else None)
    if hline is not None:
        ax.axhline(hline[0], color="gray", ls="--", label=hline[1])
    ax.set_xlabel("env steps")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=8)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
