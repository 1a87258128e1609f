"""FID, KID, Inception Score and precision/recall of two sets of judge features, computed by
torch-fidelity's own functions (0.4.0), so the numbers equal ``torch_fidelity.calculate_metrics``
on the same features:

- FID (Heusel et al. 2017): ``fid_features_to_statistics`` (mean, ``np.cov``) and
  ``fid_statistics_to_metric``: ``||mu_g - mu_r||^2 + Tr(S_g + S_r - 2 (S_g S_r)^(1/2))``, the
  trace of the square root from the eigenvalues of ``S_g S_r`` (D x D: seconds at D = 2048).
- KID (Binkowski et al. 2018): ``kid_features_to_metric``: the unbiased MMD^2 with the cubic
  polynomial kernel ``(x.y / D + 1)^3``, averaged over ``subsets`` pairs of random subsets
  drawn without replacement (``np.random.RandomState(2020)``: generated, then real, per pair).
- IS (Salimans et al. 2016): ``isc_features_to_metric`` on the generated set's logits, shuffled
  with ``np.random.RandomState(2020)``, in ``splits`` chunks.
- Precision and recall (Kynkaanniemi et al. 2019): ``prc_features_to_metric``, k-NN balls of
  radius the distance to the k-th neighbour (``torch.cdist``).

torch-fidelity's argument order is kept: the generated set first ("input1"), the real second.
Features are float32 as torch-fidelity keeps them.
"""

from __future__ import annotations

import math

from torch import Tensor
from torch_fidelity.metric_fid import (
    KEY_METRIC_FID,
    fid_features_to_statistics,
    fid_statistics_to_metric,
)
from torch_fidelity.metric_isc import (
    KEY_METRIC_ISC_MEAN,
    KEY_METRIC_ISC_STD,
    isc_features_to_metric,
)
from torch_fidelity.metric_kid import (
    KEY_METRIC_KID_MEAN,
    KEY_METRIC_KID_STD,
    kid_features_to_metric,
)
from torch_fidelity.metric_prc import (
    KEY_METRIC_PRECISION,
    KEY_METRIC_RECALL,
    prc_features_to_metric,
)

SEED = 2020  # torch-fidelity's rng_seed: KID's subsets and IS's shuffle


def _cpu(features: Tensor) -> Tensor:
    return features.detach().cpu().float()


def frechet_distance(real: Tensor, fake: Tensor) -> float:
    """FID of two feature sets (torch-fidelity's statistics and distance).

    Args:
        real: (N, D) features of the real images, N >= 2.
        fake: (M, D) features of the generated images, M >= 2.

    >>> import torch
    >>> real = torch.randn(50, 3, generator=torch.Generator().manual_seed(0))
    >>> round(frechet_distance(real, real + 10.0), 3)  # shifted by 10 along 3 axes
    300.0
    """
    stats_fake, stats_real = (
        fid_features_to_statistics(_cpu(fake)),
        fid_features_to_statistics(_cpu(real)),
    )
    return float(fid_statistics_to_metric(stats_fake, stats_real, verbose=False)[KEY_METRIC_FID])


def kernel_distance(
    real: Tensor,
    fake: Tensor,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    coef0: float = 1.0,
) -> tuple[float, float]:
    """KID's mean and standard deviation over ``subsets`` random subset pairs.

    Args:
        real: (N, D) features of the real images.
        fake: (M, D) features of the generated images.
        subsets: subset pairs.
        subset_size: images per subset, 2 <= subset_size <= min(N, M).
        degree: the polynomial kernel's degree (gamma is 1 / D).
        coef0: the polynomial kernel's constant.
    """
    kid = kid_features_to_metric(
        _cpu(fake),
        _cpu(real),
        kid_subsets=subsets,
        kid_subset_size=subset_size,
        kid_kernel="poly",
        kid_kernel_poly_degree=degree,
        kid_kernel_poly_gamma=None,
        kid_kernel_poly_coef0=coef0,
        rng_seed=SEED,
        verbose=False,
    )
    return kid[KEY_METRIC_KID_MEAN], kid[KEY_METRIC_KID_STD]


def inception_score(logits: Tensor, splits: int = 10) -> tuple[float, float]:
    """IS's mean and standard deviation over ``splits`` chunks of the shuffled samples.

    Args:
        logits: (M, K) class logits of the generated images.
        splits: chunks, at most M.

    >>> import torch
    >>> inception_score(torch.eye(4) * 100.0, splits=1)  # 4 sure and different classes
    (4.0, 0.0)
    """
    isc = isc_features_to_metric(_cpu(logits), splits, True, SEED)
    return isc[KEY_METRIC_ISC_MEAN], isc[KEY_METRIC_ISC_STD]


def precision_recall(real: Tensor, fake: Tensor, neighborhood: int = 3) -> tuple[float, float]:
    """Precision (share of generated images inside a real image's k-NN ball) and recall (share
    of real images inside a generated image's ball); NaN when a set has k images or fewer.

    Args:
        real: (N, D) features of the real images.
        fake: (M, D) features of the generated images.
        neighborhood: k.
    """
    if min(len(real), len(fake)) <= neighborhood:
        return math.nan, math.nan
    prc = prc_features_to_metric(
        _cpu(fake),
        _cpu(real),
        prc_neighborhood=neighborhood,
        prc_batch_size=10000,
        save_cpu_ram=False,
        verbose=False,
    )
    return prc[KEY_METRIC_PRECISION], prc[KEY_METRIC_RECALL]


def fidelity_scores(
    real: Tensor,
    fake: Tensor,
    fake_logits: Tensor | None = None,
    *,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    kid_degree: int = 3,
    kid_coef0: float = 1.0,
    isc_splits: int = 10,
    prc_neighborhood: int | None = 3,
) -> dict[str, float]:
    """FID, KID, IS (when logits are given) and precision/recall of generated against real.

    Args:
        real: (N, D) float32 features of the real images.
        fake: (M, D) float32 features of the generated images.
        fake_logits: (M, K) float32 logits of the generated images, or None (no IS).
        kid_subsets: KID's number of subset pairs.
        kid_subset_size: KID's subset size; min(kid_subset_size, N, M) is used.
        kid_degree: degree of KID's polynomial kernel (gamma is 1 / D).
        kid_coef0: constant of KID's polynomial kernel.
        isc_splits: IS's chunks; min(isc_splits, M) is used (torch-fidelity gives NaN for
            fewer samples than chunks).
        prc_neighborhood: k of precision/recall; None: not computed. NaN when a set has k
            images or fewer (no k-th neighbour).

    Returns:
        ``fid``, ``kid_mean``, ``kid_std``, ``kid_subset_size`` (the size used), ``is_mean``,
        ``is_std``, ``isc_splits`` (the splits used; with logits), ``precision``, ``recall``
        (with a k).

    Raises:
        ValueError: fewer than 2 real or 2 generated images, or features of different widths.

    >>> import torch
    >>> real = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    >>> scores = fidelity_scores(real, real + 10.0, kid_subsets=5)
    >>> round(scores["fid"], 3), scores["kid_subset_size"], scores["precision"], scores["recall"]
    (300.0, 40, 0.0, 0.0)
    """
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(
            f"features of shapes {tuple(real.shape)} (real) and {tuple(fake.shape)} (generated);"
            " expected (N, D) and (M, D)"
        )
    num_real, num_fake = len(real), len(fake)
    if num_real < 2 or num_fake < 2:
        raise ValueError(
            f"{num_real} real and {num_fake} generated images; FID and KID need at least 2 of "
            "each (a covariance, an unbiased MMD)"
        )
    subset = min(kid_subset_size, num_real, num_fake)
    kid_mean, kid_std = kernel_distance(
        real, fake, subsets=kid_subsets, subset_size=subset, degree=kid_degree, coef0=kid_coef0
    )
    scores = {
        "fid": frechet_distance(real, fake),
        "kid_mean": kid_mean,
        "kid_std": kid_std,
        "kid_subset_size": subset,
    }
    if fake_logits is not None:
        splits = min(isc_splits, num_fake)
        is_mean, is_std = inception_score(fake_logits, splits)
        scores |= {"is_mean": is_mean, "is_std": is_std, "isc_splits": splits}
    if prc_neighborhood is not None:
        precision, recall = precision_recall(real, fake, prc_neighborhood)
        scores |= {"precision": precision, "recall": recall}
    return scores
