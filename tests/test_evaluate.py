"""The evaluator on the real MetaWorld simulator.

Pins: E records per task with the published env seeds; reruns give identical records; initial
states do not depend on the policy; "train" mode is reproducible from its generator seed; the
agent's parameters and train/eval flags are untouched; the scripted expert reaches success 1.0
(so the evaluator sees success at all).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pirl_core.agent import Agent
from tests.helpers import tiny_agent
from pirl_core.config import EvalConfig, ReportConfig, SamplerConfig
from pirl_core.envs.chunked import episode_seed
from pirl_core.envs.metaworld import MetaWorldVecEnv
from pirl_core.evaluate import (
    MetaWorldExpert,
    evaluate,
    evaluate_modes,
    metaworld_env_factory,
)

TASKS = ("reach-v3", "button-press-topdown-v3")
E = 2


class RecordingEnv:
    """Wraps one shared env: remembers the privileged obs at the start and end of every episode
    (keyed by (env, episode)) and ignores close(), so several evaluations reuse one simulator."""

    def __init__(self, env: MetaWorldVecEnv):
        self.env = env
        self.start: dict[tuple[int, int], np.ndarray] = {}
        self.end: dict[tuple[int, int], np.ndarray] = {}

    def __getattr__(self, name):
        return getattr(self.env, name)

    def reset(self, seed=None):
        obs = self.env.reset(seed=seed)
        self.start, self.end = {}, {}
        self.count = np.zeros(self.env.num_envs, dtype=int)
        for i in range(self.env.num_envs):
            self.start[i, 0] = obs["privileged"][i].copy()
        return obs

    def step_chunk(self, actions):
        obs, reward, term, trunc, info = self.env.step_chunk(actions)
        for i in np.flatnonzero(term | trunc):
            self.end[i, self.count[i]] = info["final_obs"]["privileged"][i].copy()
            self.count[i] += 1
            self.start[i, self.count[i]] = obs["privileged"][i].copy()
        return obs, reward, term, trunc, info

    def close(self):
        pass


@pytest.fixture(scope="module")
def shared():
    with MetaWorldVecEnv(TASKS, len(TASKS), image_size=64, max_episode_steps=15, seed=0) as env:
        yield RecordingEnv(env)


def factory_for(shared: RecordingEnv):
    def make(tasks, num_envs, seed):
        assert tuple(tasks) == TASKS and num_envs == len(TASKS)
        return shared

    return make


def make_agent(seed: int) -> Agent:
    return tiny_agent(SamplerConfig(method="flow_sde", num_steps=3, schedule="all",
                                    mdp="two_layer"), "expert", seed)


@pytest.fixture(scope="module")
def agent():
    return make_agent(0)


def _run(agent, shared, mode="eval", generator_seed=0, seed=0):
    result = evaluate(agent, factory_for(shared), TASKS, E, seed=seed, mode=mode,
                      generator_seed=generator_seed, bootstrap_samples=200)
    return result, dict(shared.start), dict(shared.end)


def _same_states(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_eval_records_reproducible_and_policy_independent(agent, shared):
    r1, start1, end1 = _run(agent, shared)
    assert [(r.task, r.episode) for r in r1.records] == [(t, j) for t in TASKS for j in range(E)]
    assert all(r.env_seed == episode_seed(0, TASKS.index(r.task), r.episode) for r in r1.records)
    assert all(1 <= r.length <= 15 for r in r1.records)
    assert set(r1.success_rate) == set(TASKS)
    assert all(0.0 <= v <= 1.0 for v in r1.success_rate.values())
    assert r1.mean_success == pytest.approx(np.mean(list(r1.success_rate.values())))
    assert r1.ci_low <= r1.mean_success <= r1.ci_high
    assert (r1.mode, r1.episodes_per_task, r1.seed) == ("eval", E, 0)
    assert json.loads(json.dumps(r1.to_json()))["records"][0]["task"] == TASKS[0]

    # rerun: fixed initial states + deterministic ODE -> identical records and trajectories
    r2, start2, end2 = _run(agent, shared)
    assert r2 == r1 and _same_states(start1, start2) and _same_states(end1, end2)

    # another policy: the same env seeds and initial states, different trajectories
    # (built afresh: a deepcopy of an Agent would keep sampling through the original policy,
    # whose velocity closure it shares)
    r3, start3, end3 = _run(make_agent(1), shared)
    assert [r.env_seed for r in r3.records] == [r.env_seed for r in r1.records]
    assert all(np.array_equal(start1[k], start3[k]) for k in [(i, j) for i in range(2)
                                                             for j in range(E)])
    assert not _same_states(end1, end3)

    # another evaluation seed: other initial states
    r4, start4, _ = _run(agent, shared, seed=1)
    assert all(r.env_seed != s.env_seed for r, s in zip(r4.records, r1.records))
    assert not np.array_equal(start4[0, 0], start1[0, 0])


def test_train_mode_reproducible_from_generator_seed(agent, shared):
    _, _, end_eval = _run(agent, shared)
    a, start_a, end_a = _run(agent, shared, mode="train", generator_seed=1)
    b, start_b, end_b = _run(agent, shared, mode="train", generator_seed=1)
    c, _, end_c = _run(agent, shared, mode="train", generator_seed=2)
    assert a.mode == "train" and a == b and _same_states(end_a, end_b)
    assert not _same_states(end_a, end_c)  # the sampler noise follows the generator seed
    assert not _same_states(end_a, end_eval)  # and "train" is not the ODE
    assert [r.env_seed for r in a.records] == [r.env_seed for r in c.records]


def test_agent_parameters_and_flags_untouched(agent, shared):
    agent.train()
    agent.critic.eval()  # a mixed pattern of flags must come back exactly
    flags = [m.training for m in agent.modules()]
    params = {k: v.clone() for k, v in agent.state_dict().items()}
    result = evaluate_modes(agent, factory_for(shared), TASKS,
                            EvalConfig(episodes_per_task=1, seeds=(0,), modes=("eval", "train")),
                            ReportConfig(bootstrap_samples=100, ci=0.9), seed=0)
    assert set(result) == {"eval", "train"}
    assert all(r.mode == m and len(r.records) == len(TASKS) and r.ci == 0.9
               for m, r in result.items())
    assert [m.training for m in agent.modules()] == flags
    assert all(torch.equal(v, params[k]) for k, v in agent.state_dict().items())


def test_bad_arguments_rejected(agent, shared):
    with pytest.raises(ValueError, match="mode"):
        evaluate(agent, factory_for(shared), TASKS, E, seed=0, mode="greedy")
    with pytest.raises(ValueError, match="distinct"):
        evaluate(agent, factory_for(shared), TASKS + TASKS[:1], E, seed=0)
    with pytest.raises(ValueError, match="episodes_per_task"):
        evaluate(agent, factory_for(shared), TASKS, 0, seed=0)


def test_scripted_expert_succeeds():
    # state-only obs: the expert reads the privileged observation and needs no frames; the two
    # tasks finish at different times, so the quota logic keeps stepping the faster env
    factory = metaworld_env_factory(obs_mode="state", max_episode_steps=150)
    result = evaluate(MetaWorldExpert(TASKS), factory, TASKS, E, seed=0, bootstrap_samples=100)
    assert result.success_rate == {t: 1.0 for t in TASKS}
    assert (result.mean_success, result.ci_low, result.ci_high) == (1.0, 1.0, 1.0)
    assert len(result.records) == len(TASKS) * E
    assert all(r.success and r.length < 150 for r in result.records)
