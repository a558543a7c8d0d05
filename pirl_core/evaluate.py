"""Success-rate evaluation on fixed, published initial states (paper Tab. 6 protocol).

Protocol: one vector env with one env per task (B = T) runs exactly `episodes_per_task`
episodes per env in sequence. `ChunkedVecEnv` seeds episode j of env i from
`episode_seed(seed, i, j)` (i = task index here), and `reset(seed)` restarts every episode counter,
so the initial state of (task, episode) is a function of (seed, task index, episode index) alone:
the same for every policy, every mode and every rerun. An env whose quota is met keeps stepping
(its chunk is sampled with the others, so the batch and the generator's draws keep their shape)
but its later episodes are ignored; the loop stops when every quota is met.

Modes: "eval" samples with the plain Euler ODE (deterministic given its initial noise A_0);
"train" with the stochastic training sampler. All sampler noise (A_0 in both modes, the step noise
in "train") comes from a torch generator seeded with `generator_seed`, so both modes are
reproducible. The bootstrap CI of the mean over tasks resamples episodes within each task
(`pirl_core.stats.stratified_bootstrap_ci`), seeded with the env seed. Both modes run
under torch.no_grad with the agent's modules in eval() (flags restored afterwards); the
evaluator never touches parameters.

Anything with `act_chunk(obs, generator, deterministic) -> actions [B, H, D]` can be evaluated
(`ChunkPolicy`): `AgentPolicy` adapts the RL `Agent`; `MetaWorldExpert` plays MetaWorld's
scripted experts from the privileged observation (a sanity ceiling: it proves success is seen).

Shapes: T tasks, E episodes per task, B envs (= T), H chunk, D action dim.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from pirl_core.config import EvalConfig, ReportConfig
from pirl_core.envs.chunked import episode_seed
from pirl_core.rollout import to_observation
from pirl_core.stats import stratified_bootstrap_ci

MODES = ("eval", "train")
EnvFactory = Callable[[Sequence[str], int, int], Any]
"""(tasks, num_envs, seed) -> a vector env with ChunkedVecEnv's interface and seeding, env i
running tasks[i % len(tasks)]."""


class ChunkPolicy(Protocol):
    """What the evaluator needs from a policy."""

    def act_chunk(self, obs: dict[str, Any], generator: torch.Generator,
                  deterministic: bool) -> np.ndarray:
        """Batched env obs dict -> action chunk float32 [B, H, D]."""


class AgentPolicy:
    """`ChunkPolicy` view of an `Agent` (or anything with `act(Observation, generator,
    deterministic) -> Step`): deterministic = ODE sampler, else the training sampler."""

    def __init__(self, agent: nn.Module, device: torch.device | str | None = None):
        self.agent = agent
        if device is None:
            device = next(agent.parameters()).device
        self.device = torch.device(device)

    def act_chunk(self, obs: dict[str, Any], generator: torch.Generator,
                  deterministic: bool) -> np.ndarray:
        step = self.agent.act(to_observation(obs, self.device), generator,
                              deterministic=deterministic)
        return self.agent.env_chunk(step.chain)


class MetaWorldExpert:
    """MetaWorld's scripted expert as a `ChunkPolicy`: one closed-loop action per replan, repeated
    `chunk_size` times (chunk_size 1 is the expert itself). Needs obs["privileged"]."""

    def __init__(self, tasks: Sequence[str], chunk_size: int = 1):
        self.tasks = list(tasks)
        self.chunk_size = chunk_size

    def act_chunk(self, obs: dict[str, Any], generator: torch.Generator,
                  deterministic: bool) -> np.ndarray:
        from pirl_core.envs.metaworld import expert_actions

        actions = expert_actions(self.tasks, np.asarray(obs["privileged"]))  # [B, D]
        return np.repeat(actions[:, None], self.chunk_size, axis=1)


def metaworld_env_factory(image_size: int = 128, obs_mode: str = "rgb",
                          max_episode_steps: int = 500) -> EnvFactory:
    """An `EnvFactory` building `MetaWorldVecEnv`s with these settings."""

    def make(tasks: Sequence[str], num_envs: int, seed: int):
        from pirl_core.envs.metaworld import MetaWorldVecEnv

        return MetaWorldVecEnv(list(tasks), num_envs, image_size=image_size, obs_mode=obs_mode,
                               max_episode_steps=max_episode_steps, seed=seed)

    return make


@dataclass(frozen=True)
class EpisodeRecord:
    task: str
    episode: int  # index within its task, 0 .. E - 1
    success: bool
    length: int  # env steps
    env_seed: int  # the seed the env was reset with: fixes the initial state


@dataclass(frozen=True)
class EvalResult:
    mode: str  # "eval" (ODE) or "train" (stochastic sampler)
    tasks: tuple[str, ...]
    episodes_per_task: int
    seed: int  # env seed of the evaluation (initial states)
    generator_seed: int  # sampler noise ("train" mode)
    success_rate: dict[str, float]  # per task
    mean_success: float  # mean over tasks of the per-task success rates
    ci_low: float  # stratified percentile-bootstrap interval of mean_success
    ci_high: float
    ci: float  # its confidence level
    bootstrap_samples: int
    records: tuple[EpisodeRecord, ...]  # task-major, then episode

    def to_json(self) -> dict[str, Any]:
        """A plain (JSON-serialisable) dict."""
        out = asdict(self)
        out["tasks"] = list(self.tasks)
        out["records"] = [asdict(r) for r in self.records]
        return out


def _policy(agent: Any) -> ChunkPolicy:
    return agent if hasattr(agent, "act_chunk") else AgentPolicy(agent)


def run_episodes(policy: ChunkPolicy, envs: Any, tasks: Sequence[str], episodes_per_task: int,
                 seed: int, deterministic: bool, generator: torch.Generator
                 ) -> list[EpisodeRecord]:
    """Reset `envs` (one env per task) with `seed` and play E episodes in each env."""
    if envs.num_envs != len(tasks):
        raise ValueError(f"need one env per task ({len(tasks)}), got {envs.num_envs}")
    if list(getattr(envs, "tasks", tasks)) != list(tasks):
        raise ValueError(f"env tasks {envs.tasks} differ from {list(tasks)}")
    done = np.zeros(len(tasks), dtype=np.int64)
    records: list[EpisodeRecord] = []
    obs = envs.reset(seed=seed)
    while (done < episodes_per_task).any():
        actions = policy.act_chunk(obs, generator, deterministic)
        obs, _, terminated, truncated, info = envs.step_chunk(actions)
        for i in np.flatnonzero(terminated | truncated):
            if done[i] < episodes_per_task:
                j = int(done[i])
                records.append(EpisodeRecord(tasks[i], j, bool(info["success"][i]),
                                             int(info["final_episode_length"][i]),
                                             episode_seed(seed, int(i), j)))
                done[i] += 1
    order = {t: k for k, t in enumerate(tasks)}
    return sorted(records, key=lambda r: (order[r.task], r.episode))


def _check(tasks: tuple[str, ...], episodes_per_task: int, modes: Sequence[str]) -> None:
    if not tasks or len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks must be non-empty and distinct, got {tasks}")
    if episodes_per_task < 1:
        raise ValueError(f"episodes_per_task must be >= 1, got {episodes_per_task}")
    for mode in modes:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")


def _evaluate_on(envs: Any, agent: Any, tasks: tuple[str, ...], episodes_per_task: int,
                 seed: int, mode: str, generator_seed: int, bootstrap_samples: int, ci: float
                 ) -> EvalResult:
    policy = _policy(agent)
    generator = torch.Generator(device=getattr(policy, "device", "cpu")).manual_seed(
        generator_seed)
    modules = list(agent.modules()) if isinstance(agent, nn.Module) else []
    flags = [m.training for m in modules]
    try:
        if modules:
            agent.eval()
        with torch.no_grad():
            records = run_episodes(policy, envs, tasks, episodes_per_task, seed,
                                   mode == "eval", generator)
    finally:
        for m, flag in zip(modules, flags):
            m.training = flag
    per_task = {t: np.array([r.success for r in records if r.task == t], dtype=np.float64)
                for t in tasks}
    mean, lo, hi = stratified_bootstrap_ci(per_task, np.mean, bootstrap_samples, ci,
                                           generator_seed=seed)  # resamples seeded like the env
    return EvalResult(mode, tuple(tasks), episodes_per_task, seed, generator_seed,
                      {t: float(v.mean()) for t, v in per_task.items()}, mean, lo, hi, ci,
                      bootstrap_samples, tuple(records))


def evaluate(agent: Any, env_factory: EnvFactory, tasks: Sequence[str], episodes_per_task: int,
             seed: int, mode: str = "eval", generator_seed: int = 0,
             bootstrap_samples: int = 2000, ci: float = 0.95) -> EvalResult:
    """Success rates of `agent` (an `Agent` or a `ChunkPolicy`) over `episodes_per_task` fixed
    initial states per task, sampled in `mode`, with a stratified bootstrap CI over episodes."""
    tasks = tuple(tasks)
    _check(tasks, episodes_per_task, [mode])
    envs = env_factory(tasks, len(tasks), seed)
    try:
        return _evaluate_on(envs, agent, tasks, episodes_per_task, seed, mode, generator_seed,
                            bootstrap_samples, ci)
    finally:
        envs.close()


def evaluate_modes(agent: Any, env_factory: EnvFactory, tasks: Sequence[str],
                   eval_cfg: EvalConfig, report_cfg: ReportConfig, seed: int,
                   generator_seed: int = 0) -> dict[str, EvalResult]:
    """`evaluate` in every mode of `eval_cfg.modes`, on the same initial states (one env)."""
    tasks = tuple(tasks)
    _check(tasks, eval_cfg.episodes_per_task, eval_cfg.modes)
    envs = env_factory(tasks, len(tasks), seed)
    try:
        return {mode: _evaluate_on(envs, agent, tasks, eval_cfg.episodes_per_task, seed, mode,
                                   generator_seed, report_cfg.bootstrap_samples, report_cfg.ci)
                for mode in eval_cfg.modes}
    finally:
        envs.close()
