"""Build the run's objects from the typed config: task list, envs, policy, agent.

The one place that maps config values to classes, so notebooks stay thin and every stage builds
the same things the same way. A benchmark plugs in here: its tasks, vector env, demos, dims.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from pirl_core.agent import Agent
from pirl_core.checkpoint import load_checkpoint
from pirl_core.config import Config, ConfigError, EnvConfig
from pirl_core.normalize import attach_normalizer

# MetaWorld's MT10: ten diverse manipulation skills (reach, push, pick-place, doors, drawers,
# buttons, pegs, windows) that its scripted experts solve, with MT50's own task names; the standard
# multi-task subset, and 10 tasks x 10 episodes is an evaluation a 2-core CPU does in ~1 minute.
MT10 = ("reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3",
        "drawer-close-v3", "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3",
        "window-close-v3")
# The mini suite: MT10 less the four tasks whose goal is a 1-2 px marker at the mini scale's 64 px
# (reach, push, pick-place: a dot; peg-insert: the hole). Few-shot SFT of the small VLA, whose
# frozen stride-16 backbone sees a 4 x 4 grid, stays at 0-0.4 on those at 64 px AND at 128 px
# (measured: reach 0.2 / 0.3, push 0.4 / 0.0, pick-place 0.0 / 0.0, peg 0.1 / 0.0), and RL with a
# frozen prefix cannot add the missing perception. The six kept tasks have goals the camera shows
# (door, drawer, button, window); their failures are motor errors that RL can correct.
MINI = ("door-open-v3", "drawer-open-v3", "drawer-close-v3", "button-press-topdown-v3",
        "window-open-v3", "window-close-v3")
METAWORLD_ACTION_DIM = METAWORLD_STATE_DIM = 4
# benchmark -> (action dim D, proprio state dim P, the dataset's image keys in the policy's camera
# order); see each env module
BENCHMARKS = {
    "metaworld": (METAWORLD_ACTION_DIM, METAWORLD_STATE_DIM, ("observation.images.corner",)),
    "maniskill": (8, 15, ("observation.images.base_camera",)),
    "libero": (7, 8, ("observation.images.image", "observation.images.wrist_image")),
}


def _suites(benchmark: str) -> dict[str, tuple[str, ...]]:
    """Suite name -> tasks; the "all" entry lists every task the benchmark can name."""
    if benchmark == "metaworld":
        from pirl_core.envs.metaworld import MT50_TASKS

        return {"mini": MINI, "mt10": MT10, "mt50": MT50_TASKS, "all": MT50_TASKS}
    if benchmark == "maniskill":
        from pirl_core.envs.maniskill import ROBOT_OF, SUITES

        return SUITES | {"all": tuple(ROBOT_OF)}
    if benchmark == "libero":
        from pirl_core.envs.libero import SUITES as LIBERO_SUITES, suite_tasks

        suites = {k: suite_tasks(k) for k in LIBERO_SUITES}
        # mini: two tasks each of Spatial and Object. A LIBERO scene holds ~1.2 GB and steps at
        # ~40 env steps/s with both cameras here, and the evaluator builds one env per task
        return suites | {"mini": suites["spatial"][:2] + suites["object"][:2],
                         "all": sum(suites.values(), ())}
    raise ConfigError(f"env.benchmark: {benchmark!r} is not wired up")


def benchmark_tasks(env: EnvConfig) -> tuple[str, ...]:
    """env.tasks with suite names (metaworld: "mini", "mt10", "mt50"; maniskill: "mini",
    "tabletop", "simpler"; libero: "mini", "spatial", "object", "goal", "long") expanded; empty
    means "mini"."""
    suites = _suites(env.benchmark)
    names = env.tasks or ("mini",)
    tasks: list[str] = []
    for name in names:
        if name in suites and name != "all":
            tasks += suites[name]
        elif name in suites["all"]:
            tasks.append(name)
        else:
            raise ConfigError(f"env.tasks: unknown {env.benchmark} task or suite {name!r}")
    return tuple(dict.fromkeys(tasks))


def make_vec_env(env: EnvConfig, tasks: tuple[str, ...] | list[str], num_envs: int, seed: int,
                 group_size: int = 1, evaluation: bool = False) -> Any:
    """A chunked vector env of `env.benchmark` over `tasks` with env's settings (`evaluation`:
    LIBERO walks its 50 fixed initial states in order, the canonical protocol)."""
    fixed_init_states = evaluation or getattr(env, "fixed_init_states", False)
    kwargs = dict(image_size=env.image_size, obs_mode=env.obs_mode,
                  max_episode_steps=env.max_episode_steps, seed=seed, group_size=group_size)
    if env.benchmark == "metaworld":
        from pirl_core.envs.metaworld import MetaWorldVecEnv

        return MetaWorldVecEnv(list(tasks), num_envs, **kwargs)
    if env.benchmark == "maniskill":
        if maniskill_backend(env) == "physx_cuda":
            from pirl_core.envs.maniskill_batched import ManiSkillBatchedVecEnv

            return ManiSkillBatchedVecEnv(list(tasks), num_envs, grasp_reward=env.grasp_reward,
                                          sim_backend="physx_cuda", **kwargs)
        from pirl_core.envs.maniskill import ManiSkillVecEnv

        return ManiSkillVecEnv(list(tasks), num_envs, grasp_reward=env.grasp_reward, **kwargs)
    if env.benchmark == "libero":
        from pirl_core.envs.libero import LiberoVecEnv

        return LiberoVecEnv(list(tasks), num_envs, fixed_init_states=fixed_init_states, **kwargs)
    raise ConfigError(f"env.benchmark: {env.benchmark!r} has no vector env yet")


def maniskill_backend(env: EnvConfig) -> str:
    """The physics backend a ManiSkill env section asks for, "auto" resolved."""
    backend = getattr(env, "sim_backend", "physx_cpu")
    if backend == "auto":
        backend = "physx_cuda" if torch.cuda.is_available() else "physx_cpu"
    return backend


def make_envs(cfg: Config, seed: int, num_envs: int | None = None, group_size: int = 1) -> Any:
    """The training vector env; with group_size G (GRPO), G envs per task share initial states
    and there are len(tasks) * G envs."""
    env, tasks = cfg.env, benchmark_tasks(cfg.env)
    num_envs = training_envs(cfg, group_size) if group_size > 1 else num_envs or env.num_envs
    if env.benchmark == "libero":
        check_scene_memory(num_envs, group_size)
    return make_vec_env(env, tasks, num_envs, seed, group_size)


LIBERO_SCENE_GB = 1.2  # measured: 4 training scenes took a process from 0.2 to 4.5 GB


def available_memory_gb() -> float:
    """MemAvailable from /proc/meminfo (Linux); infinity where there is none to read."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("inf")


def training_envs(cfg: Config, group_size: int = 1) -> int:
    """Envs in a training rollout: tasks x group_size for GRPO groups, else env.num_envs."""
    return len(benchmark_tasks(cfg.env)) * group_size if group_size > 1 else cfg.env.num_envs


def check_scene_memory(num_envs: int, group_size: int, available_gb: float | None = None) -> None:
    """Refuse, before building anything, a LIBERO vector env that cannot fit in memory: the
    machine would otherwise swap or kill the run midway (GRPO builds tasks x group_size envs)."""
    avail = available_memory_gb() if available_gb is None else available_gb
    need = num_envs * LIBERO_SCENE_GB
    if need > avail:
        why = (f"libero.group_size (GRPO's group size, {group_size})" if group_size > 1
               else "libero.num_envs")
        raise MemoryError(f"{num_envs} LIBERO scenes need ~{need:.0f} GB, {avail:.0f} GB are "
                          f"available; lower {why} (or libero.tasks)")


def parallel_runs(cfg: Config, method: str, requested: int,
                  available_gb: float | None = None) -> int:
    """How many RL runs of `method` may train side by side: `requested`, or on LIBERO as many
    as their scenes (training envs + one evaluator env per task) fit in memory, at least one
    (a run that cannot fit alone is refused by `check_scene_memory`)."""
    if cfg.env.benchmark != "libero":
        return requested
    group = cfg.grpo.group_size if RL_ALGORITHM[method] == "grpo" else 1
    scenes = training_envs(cfg, group) + len(benchmark_tasks(cfg.env))
    avail = available_memory_gb() if available_gb is None else available_gb
    return max(1, min(requested, int(avail // (scenes * LIBERO_SCENE_GB))))


def env_factory(env: EnvConfig):
    """An `EnvFactory` (tasks, num_envs, seed) -> vector env, for the evaluator."""
    return lambda tasks, num_envs, seed: make_vec_env(env, tasks, num_envs, seed,
                                                      evaluation=True)


def image_keys(env: EnvConfig) -> tuple[str, ...]:
    """The dataset keys of the cameras the policy sees, in its camera order."""
    return BENCHMARKS[env.benchmark][2]


def image_key(env: EnvConfig) -> str:
    """The dataset key of the policy's first (third-person) camera."""
    return image_keys(env)[0]


def record_demos(cfg: Config, root: str | Path):
    """The benchmark's expert demonstrations (sft.num_demos_per_task per task) into a LeRobot
    dataset at `root`; returns the expert's `ExpertReport`."""
    env, tasks = cfg.env, benchmark_tasks(cfg.env)
    args = (root, tasks, cfg.sft.num_demos_per_task, env.image_size, env.max_episode_steps,
            cfg.seed)
    if env.benchmark == "maniskill":
        from pirl_core.data.maniskill_demos import record_maniskill_demos

        return record_maniskill_demos(*args)
    if env.benchmark == "libero":
        from pirl_core.data.libero_demos import record_libero_demos

        return record_libero_demos(*args)
    from pirl_core.data.demos import record_metaworld_demos

    return record_metaworld_demos(*args)


def make_policy(cfg: Config):
    """The configured policy (random or pretrained weights), with a normalizer if asked."""
    action_dim, state_dim, _ = BENCHMARKS[cfg.env.benchmark]
    return attach_normalizer(_make_policy(cfg), cfg.env.normalization, action_dim, state_dim)


def _make_policy(cfg: Config):
    action_dim, state_dim, cameras = BENCHMARKS[cfg.env.benchmark]
    if cfg.policy.name == "small":
        from pirl_core.policies.small import SmallVLA

        return SmallVLA(action_dim, cfg.env.chunk_size, state_dim, cfg.policy,
                        image_size=cfg.env.image_size, num_cameras=len(cameras))
    if cfg.policy.name == "gr00t":
        from pirl_core.policies.gr00t import GR00TPolicy

        return GR00TPolicy(action_dim, cfg.env.chunk_size, state_dim, cfg.policy,
                           image_size=cfg.env.image_size, num_cameras=len(cameras))
    if cfg.policy.name in ("pi0", "pi05"):
        from pirl_core.policies.pi0 import make_pi0_policy
        from pirl_core.policies.pi05 import make_pi05_policy

        make = make_pi0_policy if cfg.policy.name == "pi0" else make_pi05_policy
        return make(cfg.policy, action_dim, state_dim, cfg.env.chunk_size, cfg.env.image_size,
                    len(cameras))
    raise ConfigError(f"policy.name: {cfg.policy.name!r} is not wired up "
                      "(small, pi0, pi05 and gr00t are)")


def load_sft_policy(cfg: Config, checkpoint: str | Path):
    """The SFT policy saved by the sft stage, configured for RL (prefix frozen if asked)."""
    policy = make_policy(cfg)
    load_checkpoint(checkpoint, {"policy": policy})
    if cfg.policy.lora_rank:  # RL-only adapters, added after the SFT weights are in
        policy.attach_lora(cfg.policy.lora_rank, cfg.policy.lora_alpha)
    policy.configure_stage("rl")
    return policy


def make_agent(cfg: Config, policy) -> Agent:
    torch.manual_seed(cfg.seed)  # the noise and value heads' initialisation
    return Agent(policy, cfg.sampler, cfg.critic)


# The RL methods the pipeline's matrix runs, as overrides of params.yaml's sampler section (the
# paper's pairings: Flow-Noise = one-layer MDP over the whole chain; Flow-SDE = hybrid two-layer;
# GRPO = Flow-SDE with group advantages instead of a critic, paper Table 5).
_FLOW_SDE = ("sampler.method=flow_sde", "sampler.mdp=two_layer", "sampler.schedule=hybrid")
RL_METHODS: dict[str, tuple[str, ...]] = {
    "flow_noise": ("sampler.method=flow_noise", "sampler.mdp=one_layer", "sampler.schedule=all"),
    "flow_sde": _FLOW_SDE,
    "grpo": _FLOW_SDE,
}
RL_ALGORITHM = {"flow_noise": "ppo", "flow_sde": "ppo", "grpo": "grpo"}


def method_overrides(method: str) -> tuple[str, ...]:
    if method not in RL_METHODS:
        raise ConfigError(f"RL method {method!r} unknown; expected one of {sorted(RL_METHODS)}")
    return RL_METHODS[method]
