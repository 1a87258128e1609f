"""The batch types data gives tasks, one per family, and what a datamodule tells a task about a
split (its ground truth, its class names). Data and tasks both import these; nothing here
imports above ``cvbench.data``.

Batches are ``NamedTuple``\\s: they unpack like the plain tuples they replace
(``images, targets, indices = batch``), name their fields, and Lightning moves them to the
device field by field. ``indices`` are always the (B,) int64 dataset indices of the samples:
the metrics count each image once across processes by them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol, runtime_checkable

from torch import Tensor

Images = Tensor | list[Tensor]
"""(B, C, H, W) float when every image of the batch has one size, else B tensors (C, H_i, W_i)."""


class ClassificationBatch(NamedTuple):
    """Labelled images.

    Attributes:
        images: (B, C, H, W) float.
        targets: (B,) int64 class ids in ``[0, num_classes)``.
        indices: (B,) int64 dataset indices.
    """

    images: Tensor
    targets: Tensor
    indices: Tensor


class DetectionBatch(NamedTuple):
    """Images with boxes (and masks), as torchvision's detectors take them.

    Attributes:
        images: B tensors (3, H_i, W_i) float in [0, 1].
        targets: B dicts: ``boxes`` (N_i, 4) float xyxy pixels, ``labels`` (N_i,) int64 in
            1..K, with instance masks also ``masks`` (N_i, H_i, W_i) uint8.
        indices: (B,) int64 dataset indices.
    """

    images: list[Tensor]
    targets: list[dict[str, Tensor]]
    indices: Tensor


class MaskBatch(NamedTuple):
    """Images with per-pixel label maps (semantic segmentation).

    Attributes:
        images: (B, 3, H, W) float, or B tensors (3, H_i, W_i) when sizes differ.
        masks: (B, H, W) int64 class ids or the ignore index, or B tensors (H_i, W_i); at the
            label map's original size in evaluation.
        indices: (B,) int64 dataset indices.
    """

    images: Images
    masks: Images
    indices: Tensor


class PairBatch(NamedTuple):
    """Degraded inputs with their clean targets (restoration: super-resolution, colorization,
    inpainting; paired image-to-image data).

    Attributes:
        input: (B, C_in, h, w) float, or a list of B (C_in, h_i, w_i).
        target: (B, C_out, H, W) float: what the network is trained to output.
        image: (B, 3, H, W) float in [0, 1]: the clean RGB image that is scored.
        index: (B,) int64 dataset indices.
    """

    input: Images
    target: Images
    image: Images
    index: Tensor


@runtime_checkable
class DetectionGroundTruthSource(Protocol):
    """A datamodule that gives the COCO ground truth of a split (detection, instance
    segmentation, localization).

    ``records_of(split)`` returns the split's records, which carry ``coco`` (the COCO dict),
    ``image_ids`` (original image id of each dataset index) and ``category_ids`` (original
    category id of each label 1..K, in order).
    """

    def records_of(self, split: str) -> Any: ...


@runtime_checkable
class ClassNamesSource(Protocol):
    """A datamodule that names its classes (index = class id)."""

    class_names: Sequence[str]
