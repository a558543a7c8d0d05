"""What a policy did, as pictures: the frames it saw in one evaluation episode per task.

Shapes: a frame is [S, S, 3] uint8 (the policy's own camera image, one per replan).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from pirl_core.evaluate import AgentPolicy, EnvFactory


def episode_frames(agent: Any, env_factory: EnvFactory, tasks: Sequence[str], seed: int
                   ) -> dict[str, tuple[list[np.ndarray], bool]]:
    """The first episode of each task from the evaluation initial states `seed`, ODE sampling:
    task -> (the frame at every replan, success)."""
    policy = AgentPolicy(agent)
    generator = torch.Generator().manual_seed(0)
    out: dict[str, tuple[list[np.ndarray], bool]] = {}
    with env_factory(tasks, len(tasks), seed) as envs, torch.no_grad():
        obs = envs.reset(seed=seed)
        frames = [[obs["image"][i].copy()] for i in range(len(tasks))]
        active = np.ones(len(tasks), dtype=bool)
        while active.any():
            obs, _, term, trunc, info = envs.step_chunk(policy.act_chunk(obs, generator, True))
            for i in np.flatnonzero(active):
                if term[i] or trunc[i]:  # obs[i] is already the next episode's first frame
                    out[tasks[i]] = (frames[i], bool(info["success"][i]))
                    active[i] = False
                else:
                    frames[i].append(obs["image"][i].copy())
    return {t: out[t] for t in tasks}


def plot_frame_strips(rollouts: dict[str, dict[str, tuple[list[np.ndarray], bool]]],
                      columns: int = 6):
    """A row per (task, policy), `columns` frames evenly spaced over the episode; each row's
    label says whether the episode succeeded and how many replans it took."""
    import matplotlib.pyplot as plt

    policies = list(rollouts)
    tasks = list(rollouts[policies[0]])
    rows = [(t, p) for t in tasks for p in policies]
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.2 * columns, 1.25 * len(rows)),
                             squeeze=False)
    for r, (task, name) in enumerate(rows):
        frames, success = rollouts[name][task]
        picks = np.linspace(0, len(frames) - 1, columns).round().astype(int)
        for c, k in enumerate(picks):
            axes[r][c].imshow(frames[k])
            axes[r][c].set_xticks([])
            axes[r][c].set_yticks([])
        label = f"{task.removesuffix('-v3')}\n{name}: {'success' if success else 'fail'}"
        axes[r][0].set_ylabel(f"{label} ({len(frames) - 1} chunks)", fontsize=5, rotation=0,
                              ha="right", va="center")
    fig.tight_layout(pad=0.2)
    return fig
