"""FID, KID, IS and precision/recall of a generator as a torchmetrics metric: the judge's
features of the real images of the split and of the generated samples kept per image, each
real dataset index and each generated sample index counted once across processes
(:class:`~cvbench.metrics.per_image.PerImageMetric`), scored once by torch-fidelity's functions
(:func:`cvbench.metrics.fidelity.fidelity_scores`).

Real image ``i`` is kept under the index ``2 i``, generated sample ``j`` under ``2 j + 1``: one
index space in which the two sets never mix, and each set comes back in ascending index order
(the same sets in the same order whatever the batch size or number of processes, so KID's
random subsets and IS's shuffle are the same too).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from cvbench.metrics.fidelity import fidelity_scores
from cvbench.metrics.per_image import PerImageMetric

STANDARD_JUDGE = "inception_v3_tf"  # the only judge whose scores carry the plain names


def metric_names(network: str, prefix: str = "") -> dict[str, str]:
    """The reported key of each score: plain for the standard TF-Inception, else suffixed with
    ``@<network>`` (KID's mean as ``kid@<network>``); ``prefix`` before every key.

    >>> metric_names("cnn_digits32_s0")["kid_mean"], metric_names("inception_v3_tf", "ab_")["fid"]
    ('kid@cnn_digits32_s0', 'ab_fid')
    """
    scores = ("fid", "kid_mean", "kid_std", "is_mean", "is_std", "precision", "recall")
    if network == STANDARD_JUDGE:
        names = {s: s for s in scores}
    else:
        names = {s: f"{s}@{network}" for s in scores} | {"kid_mean": f"kid@{network}"}
    names |= {"num_real": "num_real", "num_fake": "num_fake"}
    return {k: prefix + v for k, v in names.items()}


class GenerativeMetric(PerImageMetric):
    """FID, KID, IS (when the judge has logits) and precision/recall, as torch-fidelity.

    Args:
        network: the judge's name (``inception_v3_tf``: plain metric names).
        feature_dim: D, the judge's feature width.
        num_logits: K, the judge's class logits (0: no IS).
        kid_subsets: KID's subset pairs (torch-fidelity: 100).
        kid_subset_size: KID's subset size (torch-fidelity: 1000); min(it, N real, N fake).
        kid_degree: KID's polynomial kernel degree (3; gamma 1 / D).
        kid_coef0: KID's polynomial kernel constant (1).
        isc_splits: IS's chunks of the generated set (10; fewer when fewer samples).
        prc_neighborhood: k of precision/recall (3); None: no precision/recall.
        prefix: put before every key (``baseline_untrained_``, ``ab_``).
        kwargs: torchmetrics ``Metric`` options.
    """

    def __init__(
        self,
        network: str,
        feature_dim: int,
        num_logits: int = 0,
        *,
        kid_subsets: int = 100,
        kid_subset_size: int = 1000,
        kid_degree: int = 3,
        kid_coef0: float = 1.0,
        isc_splits: int = 10,
        prc_neighborhood: int | None = 3,
        prefix: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.network, self.feature_dim, self.num_logits = network, feature_dim, num_logits
        self.options = {
            "kid_subsets": kid_subsets,
            "kid_subset_size": kid_subset_size,
            "kid_degree": kid_degree,
            "kid_coef0": kid_coef0,
            "isc_splits": isc_splits,
            "prc_neighborhood": prc_neighborhood,
        }
        self.prefix = prefix
        self.names = metric_names(network, prefix)
        self.add_field("feature", torch.float32, (feature_dim,))
        if num_logits:  # generated samples only: 1 row each, real images 0
            self.add_field("logits", torch.float32, (num_logits,), rows="logit")
        self.last_kid_subset_size: int | None = None
        self.last_isc_splits: int | None = None

    @property
    def protocol(self) -> str:
        """One line: the formulas and their settings (the judge's own protocol says which
        network, layer, resize and weights)."""
        o = self.options
        isc = f"; IS {o['isc_splits']} splits, shuffled (seed 2020)" if self.num_logits else ""
        k = o["prc_neighborhood"]
        return (
            f"torch-fidelity FID/KID/IS/PR on {self.network} features (D={self.feature_dim}); "
            f"KID {o['kid_subsets']} subsets of min({o['kid_subset_size']}, num_real, num_fake),"
            f" poly kernel degree {o['kid_degree']}, gamma 1/D, coef0 {o['kid_coef0']:g}, "
            f"seed 2020{isc}; " + (f"PR k={k}" if k is not None else "no PR")
        )

    def update_real(self, features: Tensor, index: Tensor, logits: Tensor | None = None) -> None:
        """Keep the features of real images (logits are not needed: IS is of generated ones).

        Args:
            features: (B, D) judge features.
            index: (B,) dataset indices of the real images.
            logits: ignored (accepted so that real and generated batches read alike).
        """
        self.update(features, index, None, real=True)

    def update_fake(self, features: Tensor, index: Tensor, logits: Tensor | None = None) -> None:
        """Keep the features (and logits, for IS) of generated samples.

        Args:
            features: (B, D) judge features.
            index: (B,) sample indices (each generated sample's own, counted once).
            logits: (B, K) judge logits; required when ``num_logits`` > 0.
        """
        self.update(features, index, logits, real=False)

    def update(
        self, features: Tensor, index: Tensor, logits: Tensor | None = None, *, real: bool
    ) -> None:
        """:meth:`update_real` (``real=True``) or :meth:`update_fake`; through torchmetrics'
        ``update`` wrapper, which counts updates and clears the cached result.

        Args:
            features: (B, D) judge features.
            index: (B,) dataset indices (real) or sample indices (generated), >= 0.
            logits: (B, K) judge logits of generated samples (real: ignored).
            real: whether the images are real.
        """
        if not real and self.num_logits and logits is None:
            raise ValueError(
                f"GenerativeMetric({self.network}): update_fake needs the judge's logits "
                f"(num_logits={self.num_logits}) for the Inception Score"
            )
        index = torch.as_tensor(index, device=self.device).reshape(-1)
        if index.dtype.is_floating_point or (len(index) and int(index.min()) < 0):
            raise ValueError(f"GenerativeMetric: indices {index.tolist()}; expected integers >= 0")
        encoded = 2 * index.to(torch.int64) + int(not real)
        values = {"feature": features}
        rows = {}
        if self.num_logits:  # a row of logits per generated sample, none per real image
            values["logits"] = features.new_zeros(0, self.num_logits) if real else logits
            rows["logit"] = torch.full((len(index),), int(not real))
        self.add_images(encoded, values, rows)

    def compute(self) -> dict[str, float | int]:
        """The scores under :func:`metric_names` (NaN precision/recall when a set has k images
        or fewer); KID's subset size and IS's splits used are kept in ``last_kid_subset_size``
        and ``last_isc_splits``.

        Raises:
            ValueError: fewer than 2 real or 2 generated images.
        """
        kept = self.kept_images(device="cpu")
        fake = kept.index % 2 == 1
        real_features, fake_features = kept["feature"][~fake], kept["feature"][fake]
        try:
            scores = fidelity_scores(
                real_features,
                fake_features,
                kept["logits"] if self.num_logits else None,
                **self.options,
            )
        except ValueError as err:
            raise ValueError(f"GenerativeMetric({self.network}): {err}") from None
        self.last_kid_subset_size = int(scores.pop("kid_subset_size"))
        self.last_isc_splits = scores.pop("isc_splits", None)
        scores |= {"num_real": int((~fake).sum()), "num_fake": int(fake.sum())}
        return {self.names[k]: v for k, v in scores.items()}
