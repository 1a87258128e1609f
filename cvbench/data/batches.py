"""The batch types data gives tasks, one per family, and what a datamodule tells a task about a
split (its ground truth, its class names). Data and tasks both import these; nothing here
imports above ``cvbench.data``. Each family's records (what its readers return) are the
Protocols of :mod:`cvbench.data.records`.

Batches are ``NamedTuple``\\s: they unpack like the plain tuples they replace
(``images, targets, indices = batch``), name their fields, and Lightning moves them to the
device field by field. ``indices`` are always the (B,) int64 dataset indices of the samples:
the metrics count each image once across processes by them. A data YAML's ``contract.batch``
names the type its datamodule yields (checked by ``tests/data/test_data_contracts.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

import torch
from torch import Tensor

from cvbench.data.records import ObjectRecords

Images = Tensor | list[Tensor]
"""(B, C, H, W) float when every image of the batch has one size, else B tensors (C, H_i, W_i)."""


def stack_or_list(tensors: Sequence[Tensor]) -> Images:
    """The tensors stacked along a new first dimension when their shapes agree, else a list.

    >>> stack_or_list([torch.zeros(3, 2), torch.ones(3, 2)]).shape
    torch.Size([2, 3, 2])
    >>> [t.shape[1] for t in stack_or_list([torch.zeros(3, 2), torch.ones(3, 4)])]
    [2, 4]
    """
    if len({t.shape for t in tensors}) == 1:
        return torch.stack(list(tensors))
    return list(tensors)


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


class ImageBatch(NamedTuple):
    """Images a generator learns (image synthesis), with their class where the data has one
    (class-conditional generation).

    Attributes:
        images: (B, 3, H, W) float in [0, 1].
        labels: (B,) int64 class ids in ``[0, num_classes)``, or -1 for an unlabelled image.
        indices: (B,) int64 dataset indices.
    """

    images: Tensor
    labels: Tensor
    indices: Tensor


class TranslationBatch(NamedTuple):
    """Aligned pairs of a source-domain and a target-domain image (paired image-to-image
    translation: pix2pix's ``A`` -> ``B``).

    Attributes:
        source: (B, 3, H, W) float in [0, 1], domain A (for labels -> photo, the label map
            rendered in its palette's colours).
        target: (B, 3, H, W) float in [0, 1], domain B, aligned with ``source``.
        index: (B,) int64 dataset indices.
        label_map: (B, H, W) int64 class ids of ``source`` where the data knows them (a label
            map rendered in colours: what a segmenter of domain B is scored against, the
            FCN-score), else -1 everywhere.
    """

    source: Tensor
    target: Tensor
    index: Tensor
    label_map: Tensor


class StyleBatch(NamedTuple):
    """Content images with the style images they are to be rendered in (style transfer).

    Attributes:
        content: (B, 3, H, W) float RGB in [0, 1].
        style: (B, 3, H', W') float RGB in [0, 1], one per content image.
        index: (B,) int64 sample indices: in evaluation the cell ``c * M + s`` of the split's
            grid of N content x M style images, counted once by the metrics.
        content_index: (B,) int64 indices into the split's content records.
        style_index: (B,) int64 indices into the split's style records.
    """

    content: Tensor
    style: Tensor
    index: Tensor
    content_index: Tensor
    style_index: Tensor


class UnpairedBatch(NamedTuple):
    """Images of two domains with no correspondence (CycleGAN, style transfer): sample b of
    ``images_a`` and sample b of ``images_b`` are drawn independently.

    Attributes:
        images_a: (B, 3, H, W) float in [0, 1], domain A.
        images_b: (B, 3, H, W) float in [0, 1], domain B.
        indices_a: (B,) int64 dataset indices into domain A.
        indices_b: (B,) int64 dataset indices into domain B.
    """

    images_a: Tensor
    images_b: Tensor
    indices_a: Tensor
    indices_b: Tensor


class TextBatch(NamedTuple):
    """Text images with their transcriptions (OCR, CTC-trained recognizers).

    Attributes:
        images: (B, C, H, W) float in [0, 1]: crops resized to one height (aspect ratio kept,
            the width capped) and padded on the right to the batch's widest.
        widths: (B,) int64 width in pixels of each crop before padding.
        texts: B transcriptions, as annotated (what accuracy and edit distance score).
        targets: (B, L) int64 character codes in 1..V of the charset, padded with 0 (the CTC
            blank) after each text's length; L is the batch's longest length (at least 1).
        lengths: (B,) int64 number of codes of each text.
        names: B image names (a file name or an LMDB key: what a predictions file's lines
            start with).
        indices: (B,) int64 dataset indices.
    """

    images: Tensor
    widths: Tensor
    texts: list[str]
    targets: Tensor
    lengths: Tensor
    names: list[str]
    indices: Tensor


class TextDetectionBatch(NamedTuple):
    """Images with text regions (ICDAR 2015: quadrilaterals, "###" for "don't care").

    Attributes:
        images: (B, 3, H, W) float in [0, 1], every image resized (and padded) to one size.
        polygons: B tensors (N_i, 4, 2) float32 xy pixels of the resized image, clockwise from
            the top-left corner as annotated.
        ignore: B tensors (N_i,) bool: True for a "don't care" region (transcription "###").
        texts: B lists of N_i transcriptions.
        scales: (B, 2) float32 (sx, sy): resized = original x scale (to write result files in
            the original image's pixels).
        names: B image names (file stems, e.g. ``img_12``: ICDAR's result file is
            ``res_img_12.txt``).
        indices: (B,) int64 dataset indices.
    """

    images: Tensor
    polygons: list[Tensor]
    ignore: list[Tensor]
    texts: list[list[str]]
    scales: Tensor
    names: list[str]
    indices: Tensor


class FaceBatch(NamedTuple):
    """Images with face boxes and five landmarks each (face detection, RetinaFace's targets).

    Attributes:
        images: B tensors (3, H_i, W_i) float in [0, 1].
        boxes: B tensors (N_i, 4) float xyxy pixels.
        landmarks: B tensors (N_i, 5, 2) float xy pixels: left eye, right eye, nose, left and
            right mouth corners; NaN for a face annotated without landmarks.
        indices: (B,) int64 dataset indices.
    """

    images: list[Tensor]
    boxes: list[Tensor]
    landmarks: list[Tensor]
    indices: Tensor


@runtime_checkable
class DetectionGroundTruthSource(Protocol):
    """A datamodule that gives the COCO ground truth of a split (detection, instance
    segmentation, localization).

    ``records_of(split)`` returns the split's :class:`~cvbench.data.records.ObjectRecords`,
    which carry ``coco`` (the COCO dict), ``image_ids`` (original image id of each dataset
    index) and ``category_ids`` (original category id of each label 1..K, in order).
    """

    def records_of(self, split: str) -> ObjectRecords: ...


@runtime_checkable
class ClassNamesSource(Protocol):
    """A datamodule that names its classes (index = class id)."""

    class_names: Sequence[str]
