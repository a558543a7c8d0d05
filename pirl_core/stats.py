"""Aggregate statistics for the report, as rliable recommends (Agarwal et al. 2021): interquartile
mean and percentile-bootstrap confidence intervals, stratified by task.

Pure numpy and deterministic: every resample is drawn from `np.random.default_rng(generator_seed)`.

A `statistic` is any reducer called as `statistic(x, axis=-1)` on an array [..., n] that returns
[...] (np.mean, np.median and `iqm` all qualify); the bootstrap evaluates all resamples in one
vectorised call.

Shapes: n values (episodes or runs) per task, S bootstrap resamples, T tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

Statistic = Callable[..., np.ndarray]


def iqm(values: np.ndarray, axis: int = -1) -> np.ndarray:
    """Interquartile mean: the mean of the middle 50% of the values along `axis`.

    Same as `scipy.stats.trim_mean(values, 0.25, axis)`: int(0.25 * n) values are cut from each
    end of the sorted values (so for n < 4 nothing is cut and it is the plain mean).
    """
    x = np.sort(np.asarray(values, dtype=np.float64), axis=axis)
    n = x.shape[axis]
    if n == 0:
        raise ValueError("iqm of an empty array")
    cut = int(0.25 * n)
    return np.take(x, np.arange(cut, n - cut), axis=axis).mean(axis=axis)


def _check(num_samples: int, ci: float) -> None:
    if num_samples < 1:
        raise ValueError(f"num_samples must be >= 1, got {num_samples}")
    if not 0.0 < ci < 1.0:
        raise ValueError(f"ci must be in (0, 1), got {ci}")


def _as_values(values: np.ndarray, name: str = "values") -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {x.shape}")
    return x


def _resample(x: np.ndarray, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    """[S, n]: `num_samples` resamples of x with replacement."""
    return x[rng.integers(0, x.size, size=(num_samples, x.size))]


def _interval(samples: np.ndarray, ci: float) -> tuple[float, float]:
    alpha = (1.0 - ci) / 2.0
    lo, hi = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_distribution(values: np.ndarray, statistic: Statistic = np.mean,
                           num_samples: int = 2000, generator_seed: int = 0) -> np.ndarray:
    """[S] the statistic of `num_samples` resamples (with replacement) of `values`."""
    _check(num_samples, 0.5)
    x = _as_values(values)
    rng = np.random.default_rng(generator_seed)
    return np.asarray(statistic(_resample(x, num_samples, rng), axis=-1), dtype=np.float64)


def bootstrap_ci(values: np.ndarray, statistic: Statistic = np.mean, num_samples: int = 2000,
                 ci: float = 0.95, generator_seed: int = 0) -> tuple[float, float, float]:
    """(point, lo, hi): the statistic of `values` and its percentile-bootstrap `ci` interval."""
    _check(num_samples, ci)
    x = _as_values(values)
    point = float(statistic(x, axis=-1))
    lo, hi = _interval(bootstrap_distribution(x, statistic, num_samples, generator_seed), ci)
    return point, lo, hi


def stratified_bootstrap_distribution(scores: Mapping[str, np.ndarray],
                                      statistic: Statistic = np.mean, num_samples: int = 2000,
                                      generator_seed: int = 0) -> np.ndarray:
    """[S] the mean over tasks of the per-task statistic, each task resampled only from itself.

    Tasks may have different numbers of values; they are drawn in the mapping's order, so the
    result depends on that order (and the seed) only.
    """
    _check(num_samples, 0.5)
    if not scores:
        raise ValueError("scores must hold at least one task")
    rng = np.random.default_rng(generator_seed)
    per_task = [np.asarray(statistic(_resample(_as_values(v, f"scores[{t!r}]"), num_samples, rng),
                                     axis=-1), dtype=np.float64)
                for t, v in scores.items()]
    return np.mean(np.stack(per_task), axis=0)  # [T, S] -> [S]


def stratified_bootstrap_ci(scores: Mapping[str, np.ndarray], statistic: Statistic = np.mean,
                            num_samples: int = 2000, ci: float = 0.95, generator_seed: int = 0
                            ) -> tuple[float, float, float]:
    """(point, lo, hi) of the mean over tasks of `statistic(scores[task])`, with a stratified
    percentile-bootstrap interval: resampling happens WITHIN each task (per-episode or per-run
    scores), so every resample keeps every task with its own number of values."""
    _check(num_samples, ci)
    samples = stratified_bootstrap_distribution(scores, statistic, num_samples, generator_seed)
    point = float(np.mean([statistic(_as_values(v), axis=-1) for v in scores.values()]))
    lo, hi = _interval(samples, ci)
    return point, lo, hi
