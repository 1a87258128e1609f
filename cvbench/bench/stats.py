"""Is a difference between two results more than noise? Two tests, both on ``B - A``.

- Welch's t-test (Welch 1947, "The generalization of 'Student's' problem when several different
  population variances are involved"): two independent samples, e.g. a metric over the seeds
  of two experiments, without assuming equal variances. The statistic and p-value come from
  ``scipy.stats.ttest_ind(equal_var=False)``; the Welch-Satterthwaite degrees of freedom and the
  confidence interval of the difference of means are computed here.
- Paired bootstrap over test images (Efron & Tibshirani 1993, "An Introduction to the
  Bootstrap"; Koehn 2004 for its use on paired system outputs): the same test images scored
  by both models; images are drawn with replacement and the mean per-image difference is
  recomputed each time, giving a percentile interval and a two-sided p-value-like share.
  It measures how much the result depends on which test images were drawn, not seed noise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

# Resampled means drawn per numpy call: bounds the memory of one chunk (indices are int64).
BOOTSTRAP_CHUNK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class WelchResult:
    """Welch's t-test of ``mean(b) - mean(a)``.

    Attributes:
        mean_diff: ``mean(b) - mean(a)``.
        t: the t statistic of ``b - a`` (nan when both samples have no spread).
        df: Welch-Satterthwaite degrees of freedom.
        p_value: two-sided.
        ci_low, ci_high: the ``confidence`` interval of ``mean_diff``.
        confidence: e.g. 0.95.
        n_a, n_b: sample sizes.
    """

    mean_diff: float
    t: float
    df: float
    p_value: float
    ci_low: float
    ci_high: float
    confidence: float
    n_a: int
    n_b: int


@dataclass(frozen=True)
class BootstrapResult:
    """Paired bootstrap of the mean per-image difference ``b - a``.

    Attributes:
        mean_diff: the observed ``mean(b - a)`` over the images.
        ci_low, ci_high: the ``confidence`` percentile interval of the resampled means.
        p_value: two-sided share: twice the share of resampled means on the far side of zero
            from the observed difference (at most 1); 0 means below ``1 / resamples``.
        confidence: e.g. 0.95.
        resamples: the number of bootstrap samples.
        n: the number of paired images.
        seed: the seed of the resampling.
    """

    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    confidence: float
    resamples: int
    n: int
    seed: int


def _sample(values: Sequence[float], name: str, minimum: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or len(array) < minimum:
        raise ValueError(f"{name}: needs a list of at least {minimum} values, got {len(array)}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: values must be finite numbers, got {array.tolist()}")
    return array


def welch_test(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95) -> WelchResult:
    """Welch's unequal-variance t-test of ``mean(b) - mean(a)``.

    Args:
        a, b: the two samples, each at least 2 finite values (e.g. a metric per seed).
        confidence: of the interval of the difference, in (0, 1).

    Returns:
        The result; with zero spread on both sides ``t``, ``p_value`` and the interval's ends
        are nan (no test is possible) unless the means are equal too.

    Raises:
        ValueError: fewer than 2 values on a side, or a non-finite value.

    >>> r = welch_test([1, 2, 3], [4, 6, 8, 10])
    >>> round(r.mean_diff, 4), round(r.t, 4), round(r.df, 4), round(r.p_value, 4)
    (5.0, 3.5355, 4.0755, 0.0234)
    """
    x = _sample(a, "welch_test a", 2)
    y = _sample(b, "welch_test b", 2)
    diff = float(y.mean() - x.mean())
    var_a, var_b = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    se2 = var_a + var_b
    if se2 == 0:  # no spread on either side: equal means agree exactly, others cannot be tested
        same = 1.0 if diff == 0 else math.nan
        end = diff if diff == 0 else math.nan
        return WelchResult(diff, math.nan, math.nan, same, end, end, confidence, len(x), len(y))
    df = se2**2 / (var_a**2 / (len(x) - 1) + var_b**2 / (len(y) - 1))
    result = stats.ttest_ind(y, x, equal_var=False)
    half = stats.t.ppf(0.5 + confidence / 2, df) * math.sqrt(se2)
    return WelchResult(
        mean_diff=diff,
        t=float(result.statistic),
        df=float(df),
        p_value=float(result.pvalue),
        ci_low=diff - half,
        ci_high=diff + half,
        confidence=confidence,
        n_a=len(x),
        n_b=len(y),
    )


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    resamples: int = 10_000,
    seed: int = 0,
    confidence: float = 0.95,
) -> BootstrapResult:
    """Paired bootstrap of the mean per-image difference ``b - a``.

    Args:
        a, b: per-image scores of the same images in the same order, finite values.
        resamples: how many times the images are drawn with replacement (>= 1).
        seed: seeds numpy's generator, so the same inputs give the same result.
        confidence: of the percentile interval, in (0, 1).

    Raises:
        ValueError: empty or unequal lengths, non-finite values, ``resamples < 1``.

    >>> r = paired_bootstrap([1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0], resamples=200)
    >>> r.mean_diff, r.ci_low, r.ci_high, r.p_value
    (1.0, 1.0, 1.0, 0.0)
    """
    x = _sample(a, "paired_bootstrap a", 1)
    y = _sample(b, "paired_bootstrap b", 1)
    if len(x) != len(y):
        raise ValueError(f"paired_bootstrap: a has {len(x)} values and b {len(y)}; pair them")
    if resamples < 1:
        raise ValueError(f"paired_bootstrap: resamples must be >= 1, got {resamples}")
    diffs = y - x
    n = len(diffs)
    rng = np.random.default_rng(seed)
    chunk = max(1, BOOTSTRAP_CHUNK_ELEMENTS // n)
    means = np.empty(resamples)
    for start in range(0, resamples, chunk):
        stop = min(start + chunk, resamples)
        index = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = diffs[index].mean(axis=1)
    observed = float(diffs.mean())
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    # The share of resampled means on the other side of zero (ties count on both sides).
    far = np.mean(means <= 0) if observed > 0 else np.mean(means >= 0)
    if observed == 0:
        far = max(np.mean(means <= 0), np.mean(means >= 0))
    return BootstrapResult(
        mean_diff=observed,
        ci_low=float(low),
        ci_high=float(high),
        p_value=float(min(1.0, 2 * far)),
        confidence=confidence,
        resamples=resamples,
        n=n,
        seed=seed,
    )
