"""The share of translated images that a judge classifier assigns to the target class (for
CycleGAN: the percentage of A -> B translations a classifier of the two domains takes for B,
as the "AMT real vs fake" and classifier scores of Zhu et al., 2017, ask whether a translation
passes for the target domain). Each translated image counts once (its sample index)."""

from __future__ import annotations

import torch
from torch import Tensor

from cvbench.metrics.per_image import PerImageMetric


def share_percent(hits: Tensor) -> float | None:
    """100 x the mean of 0/1 ``hits`` (N,); None without images.

    >>> share_percent(torch.tensor([1, 0, 1, 1]))
    75.0
    >>> share_percent(torch.tensor([], dtype=torch.int64)) is None
    True
    """
    return 100.0 * hits.double().mean().item() if len(hits) else None


class JudgedShare(PerImageMetric):
    """Percentage of images whose judge logits' argmax is ``target_class``, reported as
    ``name``; each index counted once across processes (``cvbench.metrics.per_image``).

    Args:
        name: the reported key (``ab_as_b``).
        target_class: the class id that counts as a hit.
    """

    higher_is_better = True

    def __init__(self, *, name: str, target_class: int) -> None:
        super().__init__()
        self.name, self.target_class = name, target_class
        self.add_field("hit", torch.int64)

    def update(self, logits: Tensor, index: Tensor) -> None:
        """Add a batch: (B, K) judge logits, (B,) int64 sample indices."""
        hits = (logits.argmax(1) == self.target_class).long()
        self.add_images(torch.as_tensor(index).reshape(-1), {"hit": hits})

    def compute(self) -> dict[str, float | None]:
        """``{name: percent}``."""
        return {self.name: share_percent(self.kept_images(device="cpu")["hit"])}
