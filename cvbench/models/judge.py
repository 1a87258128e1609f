"""The judge: the frozen feature network that FID, KID, IS and precision/recall are computed on
(Heusel et al. 2017; Binkowski et al. 2018; Salimans et al. 2016; Kynkaanniemi et al. 2019).

The standard judge is the TF-Inception of torch-fidelity (:mod:`cvbench.models.inception`);
where its weights cannot be had, a small network cvbench trains on the run's own data
(:mod:`cvbench.models.feature_cnn`) scores under its own name (``fid@<name>``). Every judge
takes images in [0, 1] and gives features, and class logits when it has them.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor


@runtime_checkable
class Judge(Protocol):
    """A frozen feature network (``requires_grad`` False, eval mode, never in a checkpoint).

    Attributes:
        name: ``inception_v3_tf`` for the standard TF-Inception (plain metric names); any other
            name suffixes the metric names (``fid@<name>``) and names the network's recipe.
        feature_dim: D, the width of the features.
        num_logits: K, the number of class logits (0: none, then no Inception Score).
        protocol: one line: the network, the layer, the input resize, the weights file and the
            first 12 hex digits of its sha256.
    """

    name: str
    feature_dim: int
    num_logits: int
    protocol: str

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor | None]:
        """Features and logits of a batch.

        Args:
            images: (B, 3, H, W) float in [0, 1].

        Returns:
            features (B, D) float32 and logits (B, K) float32, or None when K is 0.
        """
        ...


def to_uint8(images: Tensor) -> Tensor:
    """Images in [0, 1] as the 8-bit values a PNG file of them holds: ``floor(x * 255 + 0.5)``
    clamped to [0, 255] (round half up, as ``torchvision.utils.save_image`` writes them), so a
    judge scores generated images exactly as it scores the same images saved and read back.

    Args:
        images: (B, 3, H, W) float (values outside [0, 1] are clipped).

    Returns:
        (B, 3, H, W) uint8.

    >>> to_uint8(torch.tensor([-0.1, 0.0, 0.5 / 255, 0.499 / 255, 0.5, 1.0, 1.2])).tolist()
    [0, 0, 1, 0, 128, 255, 255]
    """
    return torch.floor(images * 255.0 + 0.5).clamp_(0, 255).to(torch.uint8)
