"""Simulated benchmarks as chunked vector envs (frame only at replan points, partial resets).

Simulator modules are imported lazily by their users (`from pirl_core.envs.metaworld import ...`)
so that importing this package needs no simulator and sets no GL backend.
"""

from pirl_core.envs.chunked import ChunkedVecEnv, SingleEnv, episode_seed, stack_obs

__all__ = ["ChunkedVecEnv", "SingleEnv", "episode_seed", "stack_obs"]
