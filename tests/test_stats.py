"""Aggregate statistics: IQM against scipy, percentile bootstrap, stratified bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import trim_mean

from pirl_core.stats import (
    bootstrap_ci,
    bootstrap_distribution,
    iqm,
    stratified_bootstrap_ci,
    stratified_bootstrap_distribution,
)


def test_iqm_hand_case_and_scipy():
    assert iqm(np.arange(1, 9)) == 4.5  # middle four of 1..8: 3, 4, 5, 6
    assert iqm([10.0, 1.0, 2.0, 100.0]) == 6.0  # unsorted input, the two extremes cut
    rng = np.random.default_rng(0)
    for n in (1, 2, 3, 4, 5, 7, 10, 33):
        x = rng.normal(size=n)
        assert iqm(x) == pytest.approx(trim_mean(x, 0.25))
    m = rng.normal(size=(6, 11))
    np.testing.assert_allclose(iqm(m, axis=-1), trim_mean(m, 0.25, axis=-1))
    np.testing.assert_allclose(iqm(m, axis=0), trim_mean(m, 0.25, axis=0))
    with pytest.raises(ValueError):
        iqm([])


@pytest.mark.parametrize("statistic", [np.mean, iqm])
def test_bootstrap_ci_contains_point_and_shrinks(statistic):
    rng = np.random.default_rng(1)
    small, large = rng.normal(size=20), rng.normal(size=2000)
    p_s, lo_s, hi_s = bootstrap_ci(small, statistic, num_samples=1000)
    p_l, lo_l, hi_l = bootstrap_ci(large, statistic, num_samples=1000)
    assert lo_s <= p_s <= hi_s and lo_l <= p_l <= hi_l
    assert p_s == pytest.approx(float(statistic(small)))
    assert hi_l - lo_l < 0.3 * (hi_s - lo_s)  # width ~ 1 / sqrt(n): ratio ~0.1
    # a wider level gives a wider interval
    _, lo_99, hi_99 = bootstrap_ci(small, statistic, num_samples=1000, ci=0.99)
    assert lo_99 <= lo_s and hi_99 >= hi_s


def test_bootstrap_reproducible_and_seeded():
    x = np.random.default_rng(2).uniform(size=30)
    assert bootstrap_ci(x, generator_seed=3) == bootstrap_ci(x, generator_seed=3)
    assert bootstrap_ci(x, generator_seed=3) != bootstrap_ci(x, generator_seed=4)
    np.testing.assert_array_equal(bootstrap_distribution(x, num_samples=50, generator_seed=5),
                                  bootstrap_distribution(x, num_samples=50, generator_seed=5))


def test_bootstrap_constant_is_degenerate():
    for c in (0.0, 1.0, 0.7):
        point, lo, hi = bootstrap_ci(np.full(17, c), num_samples=200)
        assert point == lo == hi == pytest.approx(c)
    assert bootstrap_ci([3.0], iqm) == (3.0, 3.0, 3.0)


def test_bootstrap_rejects_bad_arguments():
    with pytest.raises(ValueError):
        bootstrap_ci([])
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], ci=1.0)
    with pytest.raises(ValueError):
        bootstrap_ci([1.0, 2.0], num_samples=0)
    with pytest.raises(ValueError):
        stratified_bootstrap_ci({})


def test_stratified_bootstrap_never_mixes_tasks():
    scores = {"a": np.ones(10), "b": np.zeros(7)}
    samples = stratified_bootstrap_distribution(scores, num_samples=500, generator_seed=0)
    assert samples.shape == (500,) and np.all(samples == 0.5)
    assert stratified_bootstrap_ci(scores, num_samples=500) == (0.5, 0.5, 0.5)
    # a pooled (unstratified) bootstrap of the same values would wander away from 0.5
    pooled = bootstrap_distribution(np.concatenate(list(scores.values())), num_samples=500)
    assert pooled.std() > 0.05


def test_stratified_bootstrap_point_ci_and_determinism():
    rng = np.random.default_rng(6)
    scores = {"a": rng.uniform(size=12) < 0.8, "b": rng.uniform(size=12) < 0.3,
              "c": rng.uniform(size=5) < 0.5}
    point, lo, hi = stratified_bootstrap_ci(scores, num_samples=1000, ci=0.95, generator_seed=1)
    assert point == pytest.approx(np.mean([np.mean(v) for v in scores.values()]))
    assert lo <= point <= hi and 0.0 <= lo and hi <= 1.0
    assert stratified_bootstrap_ci(scores, num_samples=1000, generator_seed=1) == (point, lo, hi)
    p_iqm, lo_iqm, hi_iqm = stratified_bootstrap_ci(scores, iqm, num_samples=200)
    assert p_iqm == pytest.approx(np.mean([trim_mean(v.astype(float), 0.25)
                                           for v in scores.values()]))
    assert lo_iqm <= hi_iqm
