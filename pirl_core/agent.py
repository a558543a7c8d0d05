"""The RL agent: a FlowPolicy plus the Flow-Noise head and a value head, glued to the samplers.

The agent only combines parts; losses live in pirl_core.losses and the loop in pirl_core.train.
Critic placement (paper Sec. 4.3.2, Fig. 4):
- "expert": V_expert(o) = mean over the denoising chain of V(o, A^tau) (Eq. 16), from the action
  expert's features at each chain state (the features the sampler recorded).
- "vlm": V_vlm(o) from the pooled prefix features.
The value head reads DETACHED features: value gradients never reach the policy, so the actor's
update is exactly PPO's policy loss (plus the entropy bonus), and a frozen prefix stays frozen.

Shapes: B batch, K denoising steps, H actions per chunk, D action dim, F feature dim.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn

from pirl_core.config import CriticConfig, SamplerConfig
from pirl_core.critics import ValueHead, average_over_chain
from pirl_core.logprob import chain_logprob
from pirl_core.nn import NoiseHead
from pirl_core.normalize import normalizer_of
from pirl_core.policies.base import Observation, PrefixCache, policy_noise_std, policy_velocity
from pirl_core.samplers import Chain, ode_config, replay_transitions, sample_chain


@dataclass(frozen=True)
class Step:
    """What one policy call at a replan point produced (no gradients)."""

    cache: PrefixCache
    state: Tensor  # [B, P]
    chain: Chain
    logprob: Tensor  # [B] one-layer, [B, K] two-layer
    value: Tensor  # [B]
    critic_input: Tensor  # [B, K, F] (expert) or [B, F] (vlm), detached
    obs: Observation | None = None  # kept only when the prefix trains in RL (it is re-encoded)


class Agent(nn.Module):
    """Policy + optional Flow-Noise head + value head, with the sampler config they share."""

    def __init__(self, policy: nn.Module, sampler: SamplerConfig, critic: CriticConfig):
        super().__init__()
        self.policy = policy
        self.sampler = sampler
        self.placement = critic.placement
        self.noise_head = None
        if sampler.method == "flow_noise":
            h, d = policy.action_shape
            self.noise_head = NoiseHead(policy.expert_feature_dim, h * d,
                                        min_std=sampler.noise_min_std,
                                        max_std=sampler.noise_max_std)
        in_dim = policy.expert_feature_dim if self.placement == "expert" else policy.prefix_feature_dim
        self.critic = ValueHead(in_dim, critic.hidden_dim, critic.num_layers)

    @property
    def device(self) -> torch.device:
        return next(self.critic.parameters()).device

    @property
    def prefix_trains(self) -> bool:
        """True when RL trains the prefix (policy.freeze_prefix false, or LoRA on the VLM): the
        stored cache is then stale after the first step, and the learner re-encodes the obs."""
        return any(p.requires_grad for p in self.policy.prefix_parameters())

    # Bound methods, not closures: a deepcopy of the agent (an old-policy snapshot) must sample
    # through ITS copy of the policy, and a closure would keep pointing at the original.
    def velocity(self, x: Tensor, tau: Tensor, context: tuple[PrefixCache, Tensor]):
        return policy_velocity(self.policy)(x, tau, context)

    @property
    def noise_fn(self):
        if self.noise_head is None:
            return None
        return policy_noise_std(self.noise_head, self.policy.action_shape)

    def critic_input(self, cache: PrefixCache, chain: Chain) -> Tensor:
        if self.placement == "vlm":
            return self.policy.prefix_features(cache).detach()
        if chain.features is None:
            raise ValueError("critic placement 'expert' needs a policy that returns expert features")
        return chain.features.detach()

    def value(self, critic_input: Tensor) -> Tensor:
        """[B] state value from the critic input (averaged over the chain for V_expert)."""
        values = self.critic(critic_input)
        return average_over_chain(values) if self.placement == "expert" else values

    @torch.no_grad()
    def act(self, obs: Observation, generator: torch.Generator | None,
            deterministic: bool = False) -> Step:
        """Encode the prefix once, sample one chunk, score it and value the state."""
        cfg = ode_config(self.sampler) if deterministic else self.sampler
        obs = self.policy_input(obs)
        cache = self.policy.encode_prefix(obs)
        batch = obs.state.shape[0]
        chain = sample_chain(self.velocity, (cache, obs.state), cfg, batch,
                             tuple(self.policy.action_shape), generator,
                             noise_std_fn=self.noise_fn, device=obs.state.device)
        logprob = chain_logprob(chain, chain.means, chain.stds, self.sampler)
        critic_input = self.critic_input(cache, chain)
        return Step(cache, obs.state, chain, logprob, self.value(critic_input), critic_input,
                    obs if self.prefix_trains else None)

    def policy_input(self, obs: Observation) -> Observation:
        """The env's observation in the policy's units: the state normalised when the policy
        carries a normalizer (the Step, hence the learner, then only sees normalised states)."""
        norm = normalizer_of(self.policy)
        return obs if norm is None else replace(obs, state=norm.state(obs.state))

    def env_chunk(self, chain: Chain) -> np.ndarray:
        """The [B, H, D_env] chunk the environments execute (a padded model keeps more dims),
        back in env units when the chain lives in normalised ones."""
        actions = self.policy.env_actions(chain.actions)
        norm = normalizer_of(self.policy)
        if norm is not None:
            actions = norm.unnormalize_actions(actions)
        return actions.float().cpu().numpy()

    def replay(self, cache: PrefixCache, state: Tensor, chain: Chain,
               obs: Observation | None = None) -> tuple[Tensor, Tensor]:
        """Current (means, stds) of a stored chain's stochastic steps, with gradients (through
        the prefix too when `obs` is given: the prefix trains)."""
        if obs is not None:
            cache = self.policy.encode_prefix(obs)
        return replay_transitions(self.velocity, chain, (cache, state), self.sampler,
                                  self.noise_fn)

    def trainable_parameters(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(actor parameters for the RL stage, critic parameters)."""
        actor = list(self.policy.parameters_for("rl"))
        if self.noise_head is not None:
            actor += list(self.noise_head.parameters())
        return actor, list(self.critic.parameters())

