"""The pirl config schema: frozen dataclasses whose defaults are the "mini" CPU scale.

Each section validates its own ranges and field combinations in `__post_init__`, so a config
built in code is checked exactly like one loaded from YAML. Loading, merging and type coercion
live in `pirl_core.config`, which re-exports everything here.

RL hyperparameters use CleanRL names (clip_coef, gae_lambda, update_epochs, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from pirl_core.config_checks import (ConfigError, FieldError, _at_least, _non_negative,
                                     _positive, _require, _unit_interval)
from pirl_core.config_studies import AblationConfig, ModelsConfig, ToyConfig, VLMLoraConfig

__all__ = ["AblationConfig", "ConfigError", "FieldError", "ToyConfig"]  # re-exported

PRESET_NAME = re.compile(r"[A-Za-z0-9_-]+")
Normalization = Literal["none", "mean_std"]  # pirl_core.normalize


@dataclass(frozen=True)
class SamplerConfig:
    """How actions are denoised during rollouts and how their log-probability is formed."""

    method: Literal["ode", "flow_sde", "flow_noise", "flow_cps"] = "flow_noise"
    """Denoising sampler: deterministic ODE, Flow-SDE, Flow-Noise (learned std) or Flow-CPS."""
    num_steps: int = 4
    """K, the number of denoising steps per action chunk."""
    noise_level: float = 0.5
    """a, the noise magnitude of Flow-SDE and Flow-CPS (paper Eq. 8)."""
    schedule: Literal["all", "hybrid", "window"] = "all"
    """Which steps are stochastic: all; one random step per sample (paper Sec. 4.2.3 hybrid
    ODE-SDE); or the fixed window [window_start, window_start + window_size) (Mix-GRPO)."""
    window_start: int = 0
    """First stochastic step of the "window" schedule."""
    window_size: int = 1
    """Number of stochastic steps of the "window" schedule."""
    noise_min_std: float = 0.08
    """Lower bound of the Flow-Noise per-element std. The paper's tables call the bounds
    min/max "log-var"; like ReinFlow we bound the std, through a tanh-squashed log-variance
    in [log min^2, log max^2]."""
    noise_max_std: float = 0.16
    """Upper bound of the Flow-Noise per-element std (see noise_min_std)."""
    mdp: Literal["one_layer", "two_layer"] = "one_layer"
    """one_layer: the chunk's log-prob is the joint over its denoising steps (Flow-Noise);
    two_layer: each stochastic denoising step is its own transition (Flow-SDE, DPPO)."""
    logprob_reduce_dims: Literal["sum", "mean"] = "sum"
    """How per-element log-probs are reduced over the H x D elements of a chunk."""
    logprob_reduce_steps: Literal["sum", "mean"] = "sum"
    """How per-step log-probs are reduced over stochastic steps (one-layer joint)."""

    def __post_init__(self) -> None:
        _at_least(self, 1, "num_steps", "window_size")
        _at_least(self, 0, "window_start")
        _unit_interval(self, "noise_level")
        # a = 0 is legal: the chain is then the ODE's and every step is masked out of the
        # log-prob (not NaN), which is what the a = 0 == ODE tests pin.
        end = self.window_start + self.window_size
        _require(
            end <= self.num_steps, "window_size",
            f"window_start + window_size <= num_steps = {self.num_steps} "
            f"(window_start = {self.window_start})",
            self.window_size, "window_start", "num_steps",
        )
        _positive(self, "noise_min_std")
        _require(
            self.noise_max_std >= self.noise_min_std, "noise_max_std",
            f"a float >= noise_min_std = {self.noise_min_std}", self.noise_max_std, "noise_min_std",
        )


@dataclass(frozen=True)
class PPOConfig:
    """PPO update, CleanRL names; the paper's Tables 7-8 give the GPU-scale values."""

    gamma: float = 0.99
    """Discount factor per action chunk (a chunk is one macro-step, paper Sec. 4.3.1)."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip_coef: float = 0.2
    """Ratio clip epsilon of the surrogate objective."""
    clip_vloss: bool = True
    """Clip the value loss around the old values, with clip_coef."""
    vf_coef: float = 0.5
    """Weight of the value loss."""
    ent_coef: float = 0.005
    """Weight of the entropy bonus (Flow-Noise; the paper's "entropy bonus")."""
    max_grad_norm: float = 1.0
    """Global gradient-norm clip."""
    update_epochs: int = 4
    """Passes over each rollout batch."""
    num_minibatches: int = 2
    """Minibatches per pass; minibatch size = batch size / num_minibatches."""
    target_kl: float | None = None
    """Stop the update epochs early once the approximate KL exceeds this; null disables."""
    learning_rate: float = 1e-5
    """Actor learning rate."""
    critic_learning_rate: float = 1e-3
    """Critic (value head) learning rate."""
    anneal_lr: Literal["constant", "cosine"] = "constant"
    """Learning-rate schedule over the run (num_iterations, or total_timesteps when set)."""
    norm_adv: bool = True
    """Normalise advantages per minibatch (PPO's GAE advantages; GRPO's are normalised within
    their groups and used as they are)."""
    ref_kl_coef: float = 0.0
    """Weight of a KL penalty to the policy RL started from (the SFT policy), summed over the
    replayed stochastic transitions; 0 turns it off. Not in the paper: a guard against the drift
    that noisy small-batch updates cause (see README, "RL at mini scale")."""
    num_iterations: int = 1000
    """Rollout + update iterations (the paper's "train epochs")."""
    total_timesteps: int | None = 288_000
    """Env-step budget (CleanRL's total_timesteps): training stops after the iteration that
    reaches it, whichever of this and num_iterations comes first; null: num_iterations alone.
    A step budget, unlike a wall-clock one, gives the same run on a busy or a quiet machine,
    and gives PPO and GRPO (whose iterations differ in size) the same experience."""
    num_steps: int = 40
    """Chunk steps per env per rollout (CleanRL's num_steps; one step = one action chunk)."""
    budget_minutes: float | None = 60.0
    """Wall-clock cap of one RL run, a safety net (issue 3: at most 60 minutes here); training
    stops after the iteration that exceeds it, and the run records that it was cut."""
    eval_every: int = 10
    """Iterations between evaluations during RL (0: evaluate only before and after)."""
    checkpoint_every: int = 10
    """Iterations between checkpoints (0: only the final one)."""

    def __post_init__(self) -> None:
        _unit_interval(self, "gamma", "gae_lambda")
        _positive(self, "clip_coef", "max_grad_norm", "learning_rate", "critic_learning_rate")
        _non_negative(self, "vf_coef", "ent_coef", "ref_kl_coef")
        _at_least(self, 1, "update_epochs", "num_minibatches", "num_iterations", "num_steps")
        _at_least(self, 0, "eval_every", "checkpoint_every")
        _require(self.total_timesteps is None or self.total_timesteps > 0, "total_timesteps",
                 "an int > 0 or null", self.total_timesteps)
        _require(self.budget_minutes is None or self.budget_minutes > 0, "budget_minutes",
                 "a float > 0 or null", self.budget_minutes)
        _require(
            self.target_kl is None or self.target_kl > 0,
            "target_kl", "a float > 0 or null", self.target_kl,
        )


@dataclass(frozen=True)
class GRPOConfig:
    """Critic-free GRPO: advantages from rewards normalised within a group (paper App. A)."""

    group_size: int = 8
    """G, rollouts per initial state."""
    adv_eps: float = 1e-6
    """Added to the group std so that all-equal groups give zero advantage, not NaN."""

    def __post_init__(self) -> None:
        _at_least(self, 2, "group_size")
        _positive(self, "adv_eps")


@dataclass(frozen=True)
class FPOConfig:
    """Flow Policy Optimization baseline: ratio from flow-matching loss differences."""

    num_pairs: int = 8
    """N, (tau, eps) pairs per sample for the conditional flow-matching loss estimate."""
    clip_coef: float = 0.2
    """Ratio clip epsilon of the FPO surrogate."""

    def __post_init__(self) -> None:
        _at_least(self, 1, "num_pairs")
        _positive(self, "clip_coef")


@dataclass(frozen=True)
class CriticConfig:
    """Value head (paper Sec. 4.3.2)."""

    placement: Literal["expert", "vlm"] = "vlm"
    """Attach after the action expert (averaged over the denoising path, pi0) or the VLM (pi0.5).
    "expert" reads the features of the SAMPLED chain, so its value also depends on the action
    taken (a biased baseline); "vlm" sees the observation only, and the paper's Fig. 6 finds it
    regresses better."""
    num_layers: Literal[1, 4] = 4
    """MLP depth; the paper's ablation (Fig. 6) compares 1 and 4 layers."""
    hidden_dim: int = 128
    """MLP width."""

    def __post_init__(self) -> None:
        _at_least(self, 1, "hidden_dim")


@dataclass(frozen=True)
class SFTConfig:
    """Few-shot supervised flow-matching fine-tuning before RL."""

    num_demos_per_task: int = 2
    """Expert demonstrations per task."""
    batch_size: int = 64
    """Samples per SFT step."""
    learning_rate: float = 3e-4
    """SFT learning rate."""
    num_steps: int = 3000
    """SFT optimiser steps; 0 skips SFT (e.g. when policy.checkpoint is already fine-tuned)."""
    tau_distribution: Literal["uniform", "beta"] = "uniform"
    """Training-time distribution of tau; pi0 uses a Beta skewed to the noise end."""
    beta_alpha: float = 1.5
    """Alpha of the Beta tau distribution."""
    beta_beta: float = 1.0
    """Beta of the Beta tau distribution."""

    def __post_init__(self) -> None:
        _at_least(self, 1, "num_demos_per_task", "batch_size")
        _at_least(self, 0, "num_steps")
        _positive(self, "learning_rate", "beta_alpha", "beta_beta")


@dataclass(frozen=True)
class EnvConfig:
    """Simulated benchmark and its vectorised environments."""

    benchmark: Literal["metaworld", "maniskill", "libero"] = "metaworld"
    """Simulator suite."""
    tasks: tuple[str, ...] = ()
    """Task names or suites (metaworld: "mini", "mt10", "mt50"); empty = the mini suite."""
    num_envs: int = 12
    """Parallel environments per rollout."""
    chunk_size: int = 5
    """H, actions executed per policy call (one chunk = one macro-step)."""
    image_size: int = 64
    """Square side of rendered RGB observations, in pixels."""
    obs_mode: Literal["rgb", "state"] = "rgb"
    """Policy input: images (+ proprioception) or low-dimensional state only."""
    max_episode_steps: int = 200
    """Environment steps (single actions, not chunks) before truncation."""
    grasp_reward: float = 0.0
    """Reward added once per episode when the gripper first holds the task's object (ManiSkill;
    the paper's 0.1 against throwing, Sec. 5.2.2); 0 = the sparse success reward alone."""
    num_demos_per_task: int = 0
    """This benchmark's SFT demonstrations per task; 0 = sft.num_demos_per_task."""
    sft_num_steps: int = 0
    """This benchmark's SFT optimizer steps; 0 = sft.num_steps."""
    total_timesteps: int = 0
    """This benchmark's env steps per RL run; 0 = ppo.total_timesteps."""
    group_size: int = 0
    """This benchmark's GRPO group size (GRPO builds tasks x group_size envs); 0 =
    grpo.group_size, else >= 2."""
    normalization: Normalization = "none"
    """Units of the policy's actions and proprio state: "mean_std" maps each dimension by the
    SFT demos' mean and std (fitted at SFT, saved in the policy's checkpoint), as LeRobot does;
    "none" feeds raw values (MetaWorld's actions already spread over [-1, 1])."""

    def __post_init__(self) -> None:
        _at_least(self, 1, "num_envs", "chunk_size", "max_episode_steps")
        _at_least(self, 0, "grasp_reward", "num_demos_per_task", "sft_num_steps",
                  "total_timesteps", "group_size")
        _require(self.group_size != 1, "group_size", "0 (grpo.group_size) or an int >= 2",
                 self.group_size)
        _at_least(self, 16, "image_size")
        _require(all(self.tasks), "tasks", "a list of non-empty task names", self.tasks)
        _require(len(set(self.tasks)) == len(self.tasks), "tasks", "no duplicates", self.tasks)
        _require(
            self.max_episode_steps >= self.chunk_size, "max_episode_steps",
            f"an int >= chunk_size = {self.chunk_size}", self.max_episode_steps, "chunk_size",
        )


@dataclass(frozen=True)
class ManiSkillEnvConfig(EnvConfig):
    """The ManiSkill3 stages' env section (`maniskill:`): EnvConfig with ManiSkill's defaults.
    Stages that run ManiSkill use it in place of `env` (`load_config(..., benchmark=...)`)."""

    benchmark: Literal["maniskill"] = "maniskill"
    """Always "maniskill" here."""
    tasks: tuple[str, ...] = ()
    """Task names or suites ("mini": PickCube, PushCube, StackCube; "tabletop"; "simpler", which
    needs asset packs); empty = the mini suite."""
    num_envs: int = 12
    """Parallel environments per rollout (4 per mini-suite task)."""
    image_size: int = 128
    """Square side of the third-person camera, in pixels (cubes are 2-3 px wide at 64)."""
    max_episode_steps: int = 120
    """Environment steps before truncation (motion-planning demos take 57-102)."""
    grasp_reward: float = 0.1
    """The paper's grasp bonus (Sec. 5.2.2)."""
    sim_backend: Literal["auto", "physx_cpu", "physx_cuda"] = "auto"
    """Physics: physx_cpu (one process-local env per task instance), physx_cuda (one batched env
    per task on the GPU, rendering there too); auto = physx_cuda when CUDA is available."""
    num_demos_per_task: int = 50
    """Motion-planning demos per task for SFT (overrides sft.num_demos_per_task)."""
    sft_num_steps: int = 6000
    """SFT steps (overrides sft.num_steps): at 3,000 the 50-demo SFT scored 0.14-0.18, at
    6,000 0.21-0.23 (40 episodes per task, 2026-12-07)."""
    normalization: Normalization = "mean_std"
    """Joint-delta actions spread over 0.04-0.33 per joint, far below the sampler's unit noise:
    mean/std units lifted the 6,000-step SFT from 0.21 to 0.23 and PickCube from 0 to 0.1."""
    total_timesteps: int = 120000
    """Env steps per RL run (overrides ppo.total_timesteps): a ManiSkill step costs ~5x a
    MetaWorld one on the CPU (rendering through lavapipe)."""


@dataclass(frozen=True)
class LiberoEnvConfig(EnvConfig):
    """The LIBERO stages' env section (`libero:`): EnvConfig with LIBERO's defaults (used in
    place of `env` by `load_config(..., benchmark="libero")`)."""

    benchmark: Literal["libero"] = "libero"
    """Always "libero" here."""
    tasks: tuple[str, ...] = ()
    """Suites ("spatial", "object", "goal", "long") or tasks ("libero_spatial/0"); empty = the
    mini suite (tasks 0 and 1 of LIBERO-Spatial and of LIBERO-Object)."""
    num_envs: int = 4
    """Parallel environments per rollout (each holds its own MuJoCo scene, ~1.2 GB)."""
    image_size: int = 64
    """Square side of both cameras, in pixels: 2 x 16 image tokens for the small VLA (at 128 px,
    2 x 64 tokens made a CPU SFT step over 1 s); rendering costs about the same at either size."""
    max_episode_steps: int = 320
    """Environment steps before truncation, one limit for every env; paper Table 7: Spatial 240,
    Object and Goal 320, Long 480 (the mini suite mixes Spatial and Object)."""
    fixed_init_states: bool = False
    """Training envs walk the 50 initial states in order (True) or draw them from the episode
    seed (False); evaluation always walks them in order (the canonical protocol)."""
    num_demos_per_task: int = 15
    """SFT demonstrations per task (at 2 the small VLA's SFT reached 0.075 on the mini suite)."""
    total_timesteps: int = 40_000
    """Env steps per RL run (~40 env steps/s with the policy in the loop here)."""
    group_size: int = 2
    """GRPO group size on LIBERO: 4 mini tasks x 2 = 8 training scenes (~10 GB); the shared
    grpo.group_size of 8 would need 32 scenes, more memory than this machine has."""
    normalization: Normalization = "mean_std"
    """The scripted demos barely rotate the gripper (rotation-delta std 0.02 / 0.05 / 0.13)
    while the samplers' exploration noise is 0.08-0.16 per denoising step: in raw units the
    noisy ("train") SFT policy scored 0.225 against the deterministic 0.70 (2026-12-02); in
    mean/std units 0.70 against 0.575 (2026-12-07)."""


@dataclass(frozen=True)
class PolicyConfig:
    """Flow-matching policy: the small CPU model, pi0, pi0.5 or the GR00T-style head; the size
    fields shape the models built from scratch."""

    name: Literal["small", "pi0", "pi05", "gr00t"] = "small"
    """Model family."""
    hidden_dim: int = 128
    """Transformer width of the small model."""
    num_layers: int = 2
    """Transformer depth of the small model."""
    num_heads: int = 4
    """Attention heads of the small model; must divide hidden_dim."""
    expert_hidden_dim: int = 64
    """Width of the action expert of a from-scratch pi0 / pi0.5 (pi0's own: 1024 beside 2048)
    and of the GR00T-style DiT head."""
    head_dropout: float = 0.2
    """Dropout inside the GR00T-style DiT head during SFT (GR00T's 0.2); RL swaps it for
    identity (paper App. C)."""
    patch_size: int = 8
    """SigLIP patch side of a from-scratch pi0 / pi0.5; must divide env.image_size."""
    max_text_tokens: int = 96
    """pi0 / pi0.5 prompt length in tokens (pi0: <bos> instruction \\n; pi0.5 adds the
    discretised state), right-padded; longer ones are refused."""
    freeze_prefix: bool = True
    """Freeze the observation encoder (the VLM for pi0/pi0.5) during RL; only the expert learns.
    False: RL trains the prefix too (the learner re-encodes each minibatch's observations)."""
    lora_rank: int = 0
    """pi0 / pi0.5: LoRA rank on the VLM's Gemma projections during RL (paper Fig. 15: 32);
    0 = none.
    Needs freeze_prefix false; the adapters are then the only VLM weights that train."""
    lora_alpha: int = 32
    """LoRA scaling numerator (scale = lora_alpha / lora_rank)."""
    checkpoint: str = ""
    """Local directory to start from; empty = from scratch / the SFT stage's output."""

    def __post_init__(self) -> None:
        _at_least(self, 1, "hidden_dim", "num_layers", "num_heads", "expert_hidden_dim",
                  "patch_size", "max_text_tokens", "lora_alpha")
        _at_least(self, 0, "lora_rank")
        _require(0 <= self.head_dropout < 1, "head_dropout", "a float in [0, 1)", self.head_dropout)
        _require(self.lora_rank == 0 or not self.freeze_prefix, "lora_rank",
                 "0 while freeze_prefix is true (frozen adapters would never train)",
                 self.lora_rank, "freeze_prefix")
        _require(self.lora_rank == 0 or self.name in ("pi0", "pi05"), "lora_rank",
                 "0 unless policy.name is pi0 or pi05", self.lora_rank, "name")
        _require(
            self.hidden_dim % self.num_heads == 0, "num_heads",
            f"a divisor of hidden_dim = {self.hidden_dim}", self.num_heads, "hidden_dim",
        )


@dataclass(frozen=True)
class EvalConfig:
    """Success-rate evaluation."""

    episodes_per_task: int = 10
    """Episodes per task, per seed and mode."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Training seeds to evaluate (one run per seed)."""
    modes: tuple[str, ...] = ("eval", "train")
    """eval: deterministic ODE sampling; train: the stochastic rollout sampler (paper Tab. 6)."""
    initial_state_seed: int = 1000
    """Published seed of the evaluation initial states (episode j of task t is seeded from it);
    kept apart from the training seeds so evaluation never replays training episodes."""
    during_rl_episodes_per_task: int = 3
    """Episodes per task of the ODE evaluations run every ppo.eval_every iterations (the final
    evaluation uses episodes_per_task)."""

    def __post_init__(self) -> None:
        _at_least(self, 1, "episodes_per_task", "during_rl_episodes_per_task")
        _at_least(self, 0, "initial_state_seed")
        _require(bool(self.seeds), "seeds", "a non-empty list", self.seeds)
        _require(all(s >= 0 for s in self.seeds), "seeds", "ints >= 0", self.seeds)
        _require(bool(self.modes), "modes", "a non-empty list", self.modes)
        _require(
            set(self.modes) <= {"eval", "train"} and len(set(self.modes)) == len(self.modes),
            "modes", "distinct values from 'eval', 'train'", self.modes,
        )


@dataclass(frozen=True)
class ReportConfig:
    """Statistics of the final report."""

    bootstrap_samples: int = 2000
    """Bootstrap resamples for confidence intervals."""
    ci: float = 0.95
    """Confidence level of the intervals."""

    def __post_init__(self) -> None:
        _at_least(self, 1, "bootstrap_samples")
        _require(0.0 < self.ci < 1.0, "ci", "a float in (0, 1)", self.ci)


@dataclass(frozen=True)
class Config:
    """The whole pirl config: params.yaml, a preset from params/ and overrides, resolved."""

    preset: str = "mini"
    """Name of the preset file params/<preset>.yaml merged over params.yaml."""
    seed: int = 0
    """Global random seed."""
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    """Denoising sampler and log-probability."""
    ppo: PPOConfig = field(default_factory=PPOConfig)
    """PPO hyperparameters."""
    grpo: GRPOConfig = field(default_factory=GRPOConfig)
    """GRPO hyperparameters."""
    fpo: FPOConfig = field(default_factory=FPOConfig)
    """FPO baseline hyperparameters."""
    critic: CriticConfig = field(default_factory=CriticConfig)
    """Value head."""
    sft: SFTConfig = field(default_factory=SFTConfig)
    """Supervised fine-tuning stage."""
    env: EnvConfig = field(default_factory=EnvConfig)
    """Benchmark and environments (MetaWorld: the main pipeline's stages)."""
    maniskill: ManiSkillEnvConfig = field(default_factory=ManiSkillEnvConfig)
    """The env section of the ManiSkill3 stages."""
    libero: LiberoEnvConfig = field(default_factory=LiberoEnvConfig)
    """The env section of the LIBERO stages."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Policy model."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """Evaluation protocol."""
    report: ReportConfig = field(default_factory=ReportConfig)
    """Report statistics."""
    toy: ToyConfig = field(default_factory=ToyConfig)
    """Gaussian-toy sampler study."""
    ablation: AblationConfig = field(default_factory=AblationConfig)
    """The paper's ablations at CPU scale (stages ablation_base and ablation)."""
    models: ModelsConfig = field(default_factory=ModelsConfig)
    """The real-scale model families at CPU width (stage models)."""
    vlm_lora: VLMLoraConfig = field(default_factory=VLMLoraConfig)
    """Frozen VLM vs LoRA on it during RL, paper Fig. 15 (stage vlm_lora)."""

    def __post_init__(self) -> None:
        _require(
            PRESET_NAME.fullmatch(self.preset) is not None, "preset",
            f"a preset name matching {PRESET_NAME.pattern}", self.preset,
        )
        _require(self.seed >= 0, "seed", "an int >= 0", self.seed)
