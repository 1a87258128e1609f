"""Welch's t-test against scipy and textbook answers; the paired bootstrap's properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cvbench.bench import stats as bench_stats
from cvbench.bench.stats import paired_bootstrap, welch_test

# Wikipedia, "Welch's t-test", example 1: t = -2.46, df = 25.0, p = 0.021 for A1 - A2.
WIKI_A1 = [27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7, 21.4]
WIKI_A2 = [27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5, 24.4]


def test_welch_textbook_example() -> None:
    result = welch_test(WIKI_A1, WIKI_A2)  # B - A = A2 - A1: the sign flips
    assert round(result.t, 2) == 2.46
    assert round(result.df, 1) == 25.0
    assert round(result.p_value, 3) == 0.021
    assert result.mean_diff == pytest.approx(np.mean(WIKI_A2) - np.mean(WIKI_A1))


def test_welch_worked_by_hand() -> None:
    # a: mean 2, variance 1; b: mean 7, variance 20/3. se^2 = 1/3 + 5/3 = 2,
    # t = 5 / sqrt(2), df = 2^2 / ((1/3)^2 / 2 + (5/3)^2 / 3) = 216 / 53.
    result = welch_test([1, 2, 3], [4, 6, 8, 10])
    assert result.mean_diff == 5
    assert result.t == pytest.approx(5 / math.sqrt(2), rel=1e-12)
    assert result.df == pytest.approx(216 / 53, rel=1e-12)
    half = stats.t.ppf(0.975, 216 / 53) * math.sqrt(2)
    assert (result.ci_low, result.ci_high) == pytest.approx((5 - half, 5 + half), rel=1e-12)
    assert (result.n_a, result.n_b) == (3, 4)


@pytest.mark.parametrize(
    ("n_a", "n_b", "shift", "scale_b"), [(2, 2, 0.3, 1), (3, 5, 1, 4), (8, 3, -2, 0.1)]
)
def test_welch_matches_scipy(n_a: int, n_b: int, shift: float, scale_b: float) -> None:
    rng = np.random.default_rng(n_a * 10 + n_b)
    a = rng.normal(0, 1, n_a)
    b = rng.normal(shift, scale_b, n_b)
    result = welch_test(a.tolist(), b.tolist(), confidence=0.9)
    reference = stats.ttest_ind(b, a, equal_var=False)
    interval = reference.confidence_interval(0.9)
    assert result.t == pytest.approx(reference.statistic, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-10)
    assert result.df == pytest.approx(reference.df, rel=1e-10)
    assert result.ci_low == pytest.approx(interval.low, rel=1e-10)
    assert result.ci_high == pytest.approx(interval.high, rel=1e-10)


def test_welch_without_spread() -> None:
    same = welch_test([2.0, 2.0], [2.0, 2.0, 2.0])
    assert same.p_value == 1 and same.ci_low == same.ci_high == 0
    apart = welch_test([2.0, 2.0], [3.0, 3.0])
    assert apart.mean_diff == 1 and math.isnan(apart.p_value) and math.isnan(apart.t)


@pytest.mark.parametrize(
    ("a", "b", "message"),
    [([1.0], [1.0, 2.0], "at least 2"), ([1.0, float("nan")], [1.0, 2.0], "finite")],
)
def test_welch_rejects_bad_samples(a: list[float], b: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        welch_test(a, b)


def test_bootstrap_identical_runs_are_not_different() -> None:
    scores = np.random.default_rng(0).normal(30, 2, 50).tolist()
    result = paired_bootstrap(scores, scores, resamples=2000)
    assert result.mean_diff == 0 and result.ci_low == 0 and result.ci_high == 0
    assert result.p_value == 1
    assert (result.n, result.resamples, result.seed) == (50, 2000, 0)


def test_bootstrap_clear_shift_is_significant() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(30, 2, 100)
    b = a + 0.5 + rng.normal(0, 0.3, 100)  # per-image gain 0.5 dB, noise 0.3 dB
    result = paired_bootstrap(a.tolist(), b.tolist(), resamples=5000)
    assert result.p_value < 1 / 5000 + 1e-12  # no resampled mean at or below zero
    assert 0 < result.ci_low < result.mean_diff < result.ci_high
    assert result.mean_diff == pytest.approx(np.mean(b - a))


def test_bootstrap_zero_mean_noise_is_not_significant() -> None:
    noise = np.random.default_rng(2).normal(0, 1, 200)
    noise -= noise.mean()  # the observed mean difference is zero up to rounding
    result = paired_bootstrap(np.zeros(200).tolist(), noise.tolist(), resamples=4000)
    assert result.p_value > 0.5
    assert result.ci_low < 0 < result.ci_high


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_bootstrap_interval_holds_observed_difference(seed: int) -> None:
    rng = np.random.default_rng(seed + 10)
    a = rng.uniform(0, 1, 30)
    b = a + rng.normal(rng.uniform(-0.2, 0.2), 0.5, 30)
    result = paired_bootstrap(a.tolist(), b.tolist(), resamples=3000, seed=seed)
    assert result.ci_low <= result.mean_diff <= result.ci_high


def test_bootstrap_matches_normal_theory() -> None:
    """With many images the resampled means are close to normal with sd = sd(d) / sqrt(n):
    the interval is mean +- 1.96 sd and the share p matches the two-sided normal p."""
    rng = np.random.default_rng(3)
    n = 1000
    d = rng.normal(0, 1, n)
    se = d.std() / math.sqrt(n)
    d += 2.0 * se - d.mean()  # observed mean 2 standard errors above zero
    result = paired_bootstrap(np.zeros(n).tolist(), d.tolist(), resamples=20000)
    assert result.mean_diff == pytest.approx(2.0 * se)
    assert result.ci_low == pytest.approx(2.0 * se - 1.96 * se, abs=0.1 * se)
    assert result.ci_high == pytest.approx(2.0 * se + 1.96 * se, abs=0.1 * se)
    assert result.p_value == pytest.approx(2 * stats.norm.sf(2.0), abs=0.015)


def test_bootstrap_is_seeded_and_chunk_independent(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, 40).tolist(), rng.normal(0.1, 1, 40).tolist()
    first = paired_bootstrap(a, b, resamples=500, seed=7)
    assert paired_bootstrap(a, b, resamples=500, seed=7) == first
    assert paired_bootstrap(a, b, resamples=500, seed=8) != first
    monkeypatch.setattr(bench_stats, "BOOTSTRAP_CHUNK_ELEMENTS", 40 * 3)  # 3 resamples a chunk
    assert paired_bootstrap(a, b, resamples=500, seed=7) == first


@pytest.mark.parametrize(
    ("a", "b", "resamples", "message"),
    [
        ([1.0, 2.0], [1.0], 10, "pair them"),
        ([], [], 10, "at least 1"),
        ([1.0], [float("inf")], 10, "finite"),
        ([1.0], [2.0], 0, "resamples"),
    ],
)
def test_bootstrap_rejects_bad_input(
    a: list[float], b: list[float], resamples: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        paired_bootstrap(a, b, resamples=resamples)
