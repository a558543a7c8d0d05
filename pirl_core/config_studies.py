"""Config sections of the studies beside the main runs: the Gaussian toy and the ablations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pirl_core.config_checks import _at_least, _positive, _require

CRITIC_VARIANTS = ("vlm:1", "vlm:4", "expert:1", "expert:4")
MDP_VARIANTS = ("one_layer", "two_layer", "hybrid")


@dataclass(frozen=True)
class ToyConfig:
    """The Gaussian-toy sampler study (stage `samplers`): data N(data_mean, data_std^2) whose exact
    velocity field is known, sampled by every sampler over a grid of K and noise levels."""

    data_mean: float = 1.5
    """Mean of the 1-D Gaussian data distribution."""
    data_std: float = 0.3
    """Standard deviation of the data distribution."""
    num_samples: int = 40000
    """Chains per (sampler, K, a) cell; Monte-Carlo error of the std is ~data_std / sqrt(2 n)."""
    steps: tuple[int, ...] = (1, 2, 4, 8, 10, 50, 400)
    """Denoising step counts K to sweep (the paper's ablation uses 1 / 2 / 4 / 8)."""
    noise_levels: tuple[float, ...] = (0.2, 0.5, 0.8)
    """Noise levels a to sweep (the paper's ablation values)."""

    def __post_init__(self) -> None:
        _positive(self, "data_std")
        _at_least(self, 2, "num_samples")
        _require(len(self.steps) > 0 and min(self.steps) >= 1, "steps",
                 "a non-empty list of ints >= 1", self.steps)
        _require(len(self.noise_levels) > 0 and all(0 <= a <= 1 for a in self.noise_levels),
                 "noise_levels", "a non-empty list of floats in [0, 1]", self.noise_levels)


@dataclass(frozen=True)
class AblationConfig:
    """The paper's ablations (Sec. 5.3, Tables 5-6, Figs. 5-12) at a scale this CPU runs: one
    seed, a shorter step budget, every other setting from the main config. Each list is one
    ablation stage; its values are the variants, and the one equal to the main config is the
    shared `ablation_base` run, trained once."""

    method: Literal["flow_sde", "flow_noise"] = "flow_sde"
    """RL method every variant starts from (the paper ablates Flow-SDE)."""
    seed: int = 0
    """Training seed of every ablation run."""
    num_iterations: int = 50
    """PPO iterations per ablation run, whatever a variant's iteration size (the paper's Table 6
    reads RL after 100 training steps; 50 keeps the mini preset's MetaWorld results within 4 h
    on 2 cores); the main ppo.total_timesteps does not apply here."""
    noise_level: tuple[float, ...] = (0.2, 0.5, 0.8)
    """Flow-SDE noise levels a (Table 6, Fig. 9)."""
    denoise_steps: tuple[int, ...] = (1, 2, 4, 8)
    """Denoising steps K (Table 6, Fig. 10)."""
    chunk_size: tuple[int, ...] = (5, 10, 20)
    """Action chunk sizes H (Table 6, Fig. 11); each size other than env.chunk_size trains its
    own SFT policy from the same demos first."""
    critic: tuple[str, ...] = ("vlm:4", "expert:4", "expert:1")
    """Critic placement:MLP layers (Fig. 6)."""
    injection: tuple[str, ...] = ("fixed", "learned")
    """Noise injection (Fig. 7): Flow-SDE's fixed level vs Flow-Noise's learned std, both in
    the same MDP, entropy bonus 0."""
    mdp: tuple[str, ...] = MDP_VARIANTS
    """Flow-policy MDP (Fig. 8): one-layer, standard two-layer, hybrid two-layer."""
    lr_schedule: tuple[str, ...] = ("constant", "cosine")
    """Actor learning-rate schedule (Fig. 12)."""

    def __post_init__(self) -> None:
        _at_least(self, 0, "seed")
        _at_least(self, 1, "num_iterations")
        _require(len(self.noise_level) > 0 and all(0 < a <= 1 for a in self.noise_level),
                 "noise_level", "a non-empty list of floats in (0, 1]", self.noise_level)
        for name in ("denoise_steps", "chunk_size"):
            values = getattr(self, name)
            _require(len(values) > 0 and min(values) >= 1, name,
                     "a non-empty list of ints >= 1", values)
        for name, allowed in (("critic", CRITIC_VARIANTS), ("injection", ("fixed", "learned")),
                              ("mdp", MDP_VARIANTS), ("lr_schedule", ("constant", "cosine"))):
            values = getattr(self, name)
            _require(len(values) > 0 and set(values) <= set(allowed), name,
                     f"a non-empty list of {', '.join(allowed)}", values)


MODEL_FAMILIES = ("pi0", "pi05", "gr00t")


@dataclass(frozen=True)
class ModelsConfig:
    """The real-scale model families (pi0, ...) taken through the whole loop at a width this CPU
    trains (stage `models`): built from scratch, SFT on the MetaWorld demos, a short Flow-SDE PPO
    run with the VLM frozen, canonical evaluation. It exercises each family's code path end to
    end; it says nothing about the capacity of the full-size model."""

    names: tuple[str, ...] = MODEL_FAMILIES
    """Families the stage's matrix runs."""
    hidden_dim: int = 128
    """VLM (Gemma and SigLIP) width."""
    expert_hidden_dim: int = 64
    """Action-expert width."""
    num_layers: int = 2
    """Depth of the VLM, the expert and SigLIP."""
    num_heads: int = 4
    """Attention heads (one shared K/V head, as pi0)."""
    patch_size: int = 8
    """SigLIP patch side (64 px images: 64 tokens per camera)."""
    max_text_tokens: int = 96
    """Prompt length in bytes of the byte tokenizer (pi0 on MetaWorld needs <= 42; pi0.5's
    prompt, "Task: ..., State: ...;\\nAction: ", up to ~85)."""
    sft_steps: int = 1500
    """CFM steps of the family's SFT."""
    num_iterations: int = 20
    """PPO iterations of the short RL run."""
    seed: int = 0
    """Seed of the SFT and the RL run."""

    def __post_init__(self) -> None:
        _require(len(self.names) > 0 and set(self.names) <= set(MODEL_FAMILIES), "names",
                 f"a non-empty list of {', '.join(MODEL_FAMILIES)}", self.names)
        _at_least(self, 1, "hidden_dim", "expert_hidden_dim", "num_layers", "num_heads",
                  "patch_size", "max_text_tokens", "num_iterations")
        _at_least(self, 0, "sft_steps", "seed")

    def overrides(self, name: str) -> tuple[str, ...]:
        """Config overrides that make the main config this family's run."""
        if name not in MODEL_FAMILIES:
            raise ValueError(f"model family {name!r} unknown; expected one of {MODEL_FAMILIES}")
        sizes = ("hidden_dim", "expert_hidden_dim", "num_layers", "num_heads", "patch_size",
                 "max_text_tokens")
        return ((f"policy.name={name}",) + tuple(f"policy.{k}={getattr(self, k)}" for k in sizes)
                + (f"sft.num_steps={self.sft_steps}", f"seed={self.seed}",
                   f"ppo.num_iterations={self.num_iterations}", "ppo.total_timesteps=null"))


VLM_VARIANTS = ("frozen", "lora_i", "lora_ii")


@dataclass(frozen=True)
class VLMLoraConfig:
    """The VLM study of paper Fig. 15 (stage `vlm_lora`): the `models` section's pi0, from its SFT
    policy, fine-tuned by Flow-SDE PPO three ways: VLM frozen; LoRA on the VLM with the same
    optimiser settings (LoRA-I); LoRA with a smaller learning rate and fewer epochs (LoRA-II).
    Iterations and seed are the `models` section's."""

    lora_rank: int = 32
    """LoRA rank on every Gemma projection of the VLM (paper: 32)."""
    lora_alpha: int = 32
    """LoRA scaling numerator (paper: 32)."""
    learning_rate: float = 1.0e-5
    """Actor learning rate of the frozen baseline and of LoRA-I (paper: 5e-6; ours is the main
    ppo.learning_rate)."""
    update_epochs: int = 4
    """PPO epochs of the frozen baseline and of LoRA-I (paper: 4)."""
    conservative_learning_rate: float = 2.0e-6
    """LoRA-II actor learning rate (paper: 1e-6, a fifth of its baseline's)."""
    conservative_update_epochs: int = 2
    """LoRA-II PPO epochs (paper: 2)."""

    def __post_init__(self) -> None:
        _at_least(self, 1, "lora_rank", "lora_alpha", "update_epochs",
                  "conservative_update_epochs")
        _positive(self, "learning_rate", "conservative_learning_rate")

    def overrides(self, variant: str) -> tuple[str, ...]:
        """Config overrides (over the models section's pi0 ones) of one variant."""
        if variant not in VLM_VARIANTS:
            raise ValueError(f"VLM variant {variant!r} unknown; expected one of {VLM_VARIANTS}")
        lora = ("policy.freeze_prefix=false", f"policy.lora_rank={self.lora_rank}",
                f"policy.lora_alpha={self.lora_alpha}")
        lr, epochs = ((self.conservative_learning_rate, self.conservative_update_epochs)
                      if variant == "lora_ii" else (self.learning_rate, self.update_epochs))
        return ((lora if variant != "frozen" else ())
                + (f"ppo.learning_rate={lr}", f"ppo.update_epochs={epochs}"))
