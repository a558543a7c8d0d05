"""Policies: the `FlowPolicy` interface and its implementations (the small CPU VLA for now).

Lower floors (samplers, logprob, losses) never import this package; policies may import them.
"""

from pirl_core.policies.base import (
    FlowPolicy,
    Observation,
    PrefixCache,
    policy_noise_std,
    policy_velocity,
    velocity_field,
)
from pirl_core.policies.encoders import (
    InstructionEncoder,
    MobileNetV2Features,
    load_instruction_encoder,
)
from pirl_core.policies.small import SmallVLA

__all__ = [
    "FlowPolicy",
    "InstructionEncoder",
    "MobileNetV2Features",
    "Observation",
    "PrefixCache",
    "SmallVLA",
    "load_instruction_encoder",
    "policy_noise_std",
    "policy_velocity",
    "velocity_field",
]
