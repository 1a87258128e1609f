"""Detectors built from torchvision's parts, with the label convention cvbench trains with.

torchvision's detectors reserve label 0 for the background (Faster R-CNN, SSD) or at least
accept it as a class index (FCOS, RetinaNet), so object classes are 1..K and the network is
built for K + 1 classes. cvbench's detection datamodule gives labels 1..K to every detector,
and the metrics map them back to the dataset's own category ids.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


def with_background_class(detector: Callable[..., nn.Module], *, num_classes: int) -> nn.Module:
    """Build ``detector`` for ``num_classes`` object classes plus torchvision's background 0.

    Args:
        detector: a partial of a torchvision detector class or builder that takes
            ``num_classes`` (e.g. ``torchvision.models.get_model`` with ``name`` set, or
            ``torchvision.models.detection.FCOS`` with ``backbone`` set).
        num_classes: number of object classes K of the dataset.

    Returns:
        the detector, for labels 1..K: in training mode ``net(images, targets)`` returns a
        dict of losses; in eval mode ``net(images)`` returns per image ``boxes (N, 4)`` xyxy
        in the input image's pixels, ``scores (N,)`` and ``labels (N,)``.
    """
    if num_classes < 1:
        raise ValueError(f"data.num_classes must be >= 1 for a detector, got {num_classes}")
    return detector(num_classes=num_classes + 1)
