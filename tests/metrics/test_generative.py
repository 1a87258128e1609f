"""``GenerativeMetric`` and the pure functions of ``cvbench.metrics.fidelity``: the Fréchet
distance against its closed form on Gaussians, KID against an unbiased MMD written here, IS and
precision/recall against computations written here and torchmetrics, each index counted once,
real and generated never mixed, and one process against two real gloo processes. (The same
numbers as torch-fidelity's ``calculate_metrics`` on image folders: tests/cli/test_score_fid.py.)
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from gloo import run_two_processes
from scipy.linalg import sqrtm
from torch import nn
from torch_fidelity.metric_fid import fid_statistics_to_metric
from torchmetrics.image import FrechetInceptionDistance, InceptionScore, KernelInceptionDistance

from cvbench.metrics.fidelity import (
    fidelity_scores,
    frechet_distance,
    inception_score,
    kernel_distance,
    precision_recall,
)
from cvbench.metrics.generative import GenerativeMetric, metric_names


def features(n: int, d: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen) + shift


# --- the Fréchet distance ---------------------------------------------------------------------


def closed_form_diagonal(mu1, s1, mu2, s2) -> float:
    """||mu1 - mu2||^2 + sum (sqrt s1 - sqrt s2)^2: FID of N(mu1, diag s1), N(mu2, diag s2)."""
    return float(np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2))


def test_frechet_statistics_function_equals_the_closed_form() -> None:
    """torch-fidelity's statistics-to-FID function, which cvbench calls: exact on diagonal
    covariances, and against scipy's matrix square root on full ones."""
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    s1, s2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 1.0])
    got = fid_statistics_to_metric(
        {"mu": mu1, "sigma": np.diag(s1)}, {"mu": mu2, "sigma": np.diag(s2)}, verbose=False
    )["frechet_inception_distance"]
    assert got == pytest.approx(7.25 + 5.25, rel=1e-12)  # means 1 + 6.25, covariances 4 + 1 + .25
    assert got == pytest.approx(closed_form_diagonal(mu1, s1, mu2, s2), rel=1e-12)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    c1, c2 = a @ a.T + np.eye(4), b @ b.T + 0.5 * np.eye(4)
    expected = np.sum((mu1[:1] - mu2[:1]) ** 2) + np.trace(c1 + c2 - 2 * sqrtm(c1 @ c2).real)
    got = fid_statistics_to_metric(
        {"mu": np.repeat(mu1[:1], 4), "sigma": c1},
        {"mu": np.repeat(mu2[:1], 4), "sigma": c2},
        verbose=False,
    )["frechet_inception_distance"]
    assert got == pytest.approx(expected + 3 * (mu1[0] - mu2[0]) ** 2, rel=1e-9)


def test_fid_of_gaussian_samples_is_the_closed_form_within_sampling_error() -> None:
    """4000 samples of each of two diagonal Gaussians in 4-d: the metric's FID is within the
    sampling error (about 1%) of the closed form, 12.5; a wrong square root (Tr(S1 + S2 -
    2 S1 S2)) would give -3."""
    mu1, s1 = np.array([0.0, 1.0, -2.0, 0.5]), np.array([1.0, 4.0, 0.25, 1.0])
    mu2, s2 = np.array([1.0, 1.0, 0.5, 0.5]), np.array([9.0, 1.0, 1.0, 1.0])
    expected = closed_form_diagonal(mu1, s1, mu2, s2)
    assert expected == 7.25 + 5.25
    gen = torch.Generator().manual_seed(0)
    real = torch.randn(4000, 4, generator=gen) * torch.tensor(s1).sqrt() + torch.tensor(mu1)
    fake = torch.randn(4000, 4, generator=gen) * torch.tensor(s2).sqrt() + torch.tensor(mu2)
    metric = GenerativeMetric("gauss", 4, kid_subsets=2, prc_neighborhood=None)
    metric.update_real(real, torch.arange(4000))
    metric.update_fake(fake, torch.arange(4000))
    got = metric.compute()
    assert got["fid@gauss"] == pytest.approx(expected, rel=0.02)
    assert got["num_real"] == got["num_fake"] == 4000


class _Features(nn.Identity):
    """A torchmetrics ``feature=`` network whose "images" are already features."""

    num_features = 6


def test_fid_equals_torchmetrics_on_the_same_features() -> None:
    """torchmetrics' FID (float64 sums, torch.linalg.eigvals) on full-rank covariances."""
    real, fake = features(40, 6, 0), features(30, 6, 1, shift=0.5) * 1.5
    reference = FrechetInceptionDistance(feature=_Features())
    reference.update(real, real=True)
    reference.update(fake, real=False)
    ours = frechet_distance(real, fake)
    assert ours == pytest.approx(float(reference.compute()), rel=1e-6) and ours > 1


# --- KID ----------------------------------------------------------------------------------------


def unbiased_mmd2(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0) -> float:
    """The unbiased MMD^2 (Gretton et al. 2012, eq. 3) with k(a, b) = (a.b / d + coef0)^degree,
    written out with loops over pairs (independent of torch-fidelity's matrix sums)."""
    d = x.shape[1]

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (float(a @ b) / d + coef0) ** degree

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_is_the_unbiased_mmd_on_torch_fidelity_subsets() -> None:
    """Subsets drawn as torch-fidelity draws them: RandomState(2020), per subset the generated
    set's then the real set's, without replacement."""
    real, fake = features(30, 8, 0).double(), features(25, 8, 1, shift=0.3).double()
    got_mean, got_std = kernel_distance(real.float(), fake.float(), subsets=7, subset_size=10)
    rng = np.random.RandomState(2020)
    r, f = real.float().double().numpy(), fake.float().double().numpy()
    mmds = []
    for _ in range(7):
        fake_rows = rng.choice(25, 10, replace=False)
        real_rows = rng.choice(30, 10, replace=False)
        mmds.append(unbiased_mmd2(f[fake_rows], r[real_rows]))
    assert got_mean == pytest.approx(np.mean(mmds), rel=1e-5)
    assert got_std == pytest.approx(np.std(mmds), rel=1e-4)
    assert np.std(mmds) > 0.01 * abs(np.mean(mmds))  # the subsets differ: the draw matters


@pytest.mark.filterwarnings("ignore:Metric `Kernel Inception Distance` will save")
def test_kid_with_one_subset_of_everything_and_torchmetrics() -> None:
    """Subsets of the whole sets: every subset is the same MMD; torchmetrics' KID (whose
    subsets come from torch.randperm) agrees then."""
    real, fake = features(12, 6, 2), features(12, 6, 3, shift=0.5)
    mean, std = kernel_distance(real, fake, subsets=3, subset_size=12)
    expected = unbiased_mmd2(fake.double().numpy(), real.double().numpy())
    assert mean == pytest.approx(expected, rel=1e-5) and std < 1e-6 * mean  # float32 sums
    reference = KernelInceptionDistance(feature=nn.Identity(), subsets=3, subset_size=12)
    reference.update(real, real=True)
    reference.update(fake, real=False)
    tm_mean, tm_std = reference.compute()
    assert mean == pytest.approx(float(tm_mean), rel=1e-5)


# --- IS, precision and recall -------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Metric `InceptionScore` will save", "ignore:std\\(\\)")
def test_inception_score_against_its_definition_and_torchmetrics() -> None:
    """exp(mean_x KL(p(y|x) || p(y))) on one split; torchmetrics' InceptionScore (splits=1, so
    its torch.randperm shuffle does not matter) on the same logits."""
    logits = features(20, 10, 4) * 3
    p = torch.softmax(logits.double(), 1).numpy()
    marginal = p.mean(0)
    expected = math.exp(np.mean(np.sum(p * (np.log(p) - np.log(marginal)), 1)))
    mean, std = inception_score(logits, splits=1)
    assert mean == pytest.approx(expected, rel=1e-12) and std == 0.0
    reference = InceptionScore(feature=nn.Identity(), splits=1)
    reference.update(logits)
    assert mean == pytest.approx(float(reference.compute()[0]), rel=1e-5)
    many_mean, many_std = inception_score(logits, splits=4)
    assert many_std > 0 and many_mean != mean


def test_precision_recall_against_nearest_neighbour_balls() -> None:
    """Kynkäänniemi et al.: a generated sample counts for precision when it lies within the
    k-NN radius (k=3, itself excluded) of some real sample; recall the other way."""
    real, fake = features(15, 3, 5), features(12, 3, 6, shift=0.8)

    def radii(x: np.ndarray) -> np.ndarray:
        dist = np.linalg.norm(x[:, None] - x[None], axis=2)
        return np.sort(dist, axis=1)[:, 3]  # column 0 is the point itself

    r, f = real.double().numpy(), fake.double().numpy()
    cross = np.linalg.norm(f[:, None] - r[None], axis=2)  # (fake, real)
    precision = np.mean((cross <= radii(r)[None]).any(1))
    recall = np.mean((radii(f)[None] >= cross.T).any(1))
    assert 0 < precision < 1 and 0 < recall < 1
    assert precision_recall(real, fake, 3) == pytest.approx((precision, recall), abs=1e-7)
    assert all(math.isnan(v) for v in precision_recall(real[:3], fake, 3))


# --- the metric: keys, counting once, errors ----------------------------------------------------


def test_keys_plain_only_for_the_tf_inception_and_prefixed() -> None:
    assert set(metric_names("inception_v3_tf")) == set(metric_names("x"))
    assert metric_names("inception_v3_tf", "ab_") == {
        "fid": "ab_fid",
        "kid_mean": "ab_kid_mean",
        "kid_std": "ab_kid_std",
        "is_mean": "ab_is_mean",
        "is_std": "ab_is_std",
        "precision": "ab_precision",
        "recall": "ab_recall",
        "num_real": "ab_num_real",
        "num_fake": "ab_num_fake",
    }
    metric = GenerativeMetric("cnn_digits32_s0", 4, 3, prefix="baseline_untrained_")
    metric.update_real(features(6, 4, 0), torch.arange(6))
    metric.update_fake(features(5, 4, 1), torch.arange(5), features(5, 3, 2))
    got = metric.compute()
    assert sorted(got) == sorted(
        "baseline_untrained_" + k
        for k in (
            "fid@cnn_digits32_s0",
            "kid@cnn_digits32_s0",
            "kid_std@cnn_digits32_s0",
            "is_mean@cnn_digits32_s0",
            "is_std@cnn_digits32_s0",
            "precision@cnn_digits32_s0",
            "recall@cnn_digits32_s0",
            "num_real",
            "num_fake",
        )
    )
    assert metric.last_kid_subset_size == 5 and metric.last_isc_splits == 5
    assert "min(1000, num_real, num_fake)" in metric.protocol and "PR k=3" in metric.protocol


def test_each_index_once_and_real_never_mixed_with_generated() -> None:
    """Real image 3 and generated sample 3 are different images; a repeat of an index (a
    padded sampler, a second pass) counts once, its first copy kept; the order of updates does
    not matter (KID's subsets and IS's shuffle see the sets in index order)."""
    real, fake, logits = features(9, 5, 0), features(8, 5, 1, shift=0.4), features(8, 4, 2)
    expected = fidelity_scores(real, fake, logits, kid_subset_size=4, isc_splits=2)

    ordered = GenerativeMetric("inception_v3_tf", 5, 4, kid_subset_size=4, isc_splits=2)
    ordered.update_real(real, torch.arange(9))
    ordered.update_fake(fake, torch.arange(8), logits)
    got = ordered.compute()

    shuffled = GenerativeMetric("inception_v3_tf", 5, 4, kid_subset_size=4, isc_splits=2)
    fake_order, real_order = torch.tensor([5, 1, 7, 0, 2, 6, 3, 4]), torch.arange(9).flip(0)
    shuffled.update_fake(fake[fake_order[:3]], fake_order[:3], logits[fake_order[:3]])
    shuffled.update_real(real[real_order[:5]], real_order[:5])
    shuffled.update_fake(fake[fake_order[3:]], fake_order[3:], logits[fake_order[3:]])
    shuffled.update_real(real[real_order[5:]], real_order[5:])
    shuffled.update_real(real[:2] + 100.0, torch.arange(2))  # repeats: the first copy is kept
    shuffled.update_fake(fake[:1] - 50.0, torch.tensor([0]), logits[:1] * 7)
    assert shuffled.compute() == got

    for key in ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall"):
        assert got[key] == expected[key], key
    assert got["num_real"] == 9 and got["num_fake"] == 8
    ordered.update_fake(fake[:2] + 3.0, torch.tensor([8, 9]), logits[:2])  # after a compute
    assert ordered.compute()["num_fake"] == 10  # not torchmetrics' cached result
    with_repeat = GenerativeMetric("inception_v3_tf", 5, 4, kid_subset_size=4, isc_splits=2)
    with_repeat.update_real(real[:2] + 100.0, torch.arange(2))  # now the odd copy comes first
    with_repeat.update_real(real, torch.arange(9))
    with_repeat.update_fake(fake, torch.arange(8), logits)
    assert with_repeat.compute()["fid"] != got["fid"]  # the test can fail


def test_too_few_images_and_missing_logits_are_one_line_errors() -> None:
    metric = GenerativeMetric("inception_v3_tf", 4, 3)
    metric.update_real(features(5, 4, 0), torch.arange(5))
    metric.update_fake(features(1, 4, 1), torch.tensor([0]), features(1, 3, 2))
    with pytest.raises(ValueError, match=r"5 real and 1 generated images; FID and KID need at"):
        metric.compute()
    with pytest.raises(ValueError, match="update_fake needs the judge's logits"):
        metric.update_fake(features(2, 4, 1), torch.arange(2))
    with pytest.raises(ValueError, match=r"indices \[-1\]; expected integers >= 0"):
        metric.update_real(features(1, 4, 1), torch.tensor([-1]))


# --- two real gloo processes --------------------------------------------------------------------


def _ddp_worker(rank: int, world: int, init_file: str, out: str, shards: list) -> None:
    torch.set_num_threads(1)  # a forked child must not use the parent's OpenMP pool
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        real, fake, logits = _sets()
        metric = GenerativeMetric("inception_v3_tf", 5, 4, kid_subset_size=4, isc_splits=3)
        for kind, rows in shards[rank]:
            index = torch.tensor(rows, dtype=torch.int64)
            if kind == "real":
                metric.update_real(real[index], index)
            else:
                metric.update_fake(fake[index], index, logits[index])
        Path(out, f"{rank}.json").write_text(json.dumps(metric.compute()))
    finally:
        dist.destroy_process_group()


def _sets() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return features(7, 5, 0), features(6, 5, 1, shift=0.4), features(6, 4, 2)


@pytest.mark.timeout(120)
def test_two_processes_give_the_one_process_scores(tmp_path: Path) -> None:
    """7 real images and 6 samples shared by two processes as a padding DistributedSampler
    shares them (rank 1 repeats real image 0 and sample 0); rank 1 holds no sample of its own
    in a second batch: the same scores as one process, on both ranks."""
    real, fake, logits = _sets()
    single = GenerativeMetric("inception_v3_tf", 5, 4, kid_subset_size=4, isc_splits=3)
    single.update_real(real, torch.arange(7))
    single.update_fake(fake, torch.arange(6), logits)
    expected = single.compute()
    shards = [
        [("real", [0, 2, 4, 6]), ("fake", [0, 2, 4]), ("fake", [1, 3, 5])],
        [("real", [1, 3, 5, 0]), ("fake", [0])],
    ]
    for got in run_two_processes(_ddp_worker, tmp_path, shards):
        assert got == pytest.approx(expected, rel=1e-12)
