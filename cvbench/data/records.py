"""Records: what a reader returns for one split, one ``Protocol`` per data family.

A reader (a function in ``formats/`` or ``embedded/``, named by a data YAML's ``records:``)
returns an object with its family's interface for one split; the family's datamodule wraps it
with transforms and the sample index and batches it as the family's batch type
(:mod:`cvbench.data.batches`):

- classification: :class:`ClassificationRecords` -> ``ClassificationBatch``;
- detection, instance segmentation, localization: :class:`ObjectRecords` -> ``DetectionBatch``;
- semantic segmentation: :class:`LabelMapRecords` -> ``MaskBatch``;
- restoration (degraded on the fly): :class:`ImageRecords` -> ``PairBatch``;
- paired images (super-resolution inputs, image-to-image): :class:`PairedRecords` ->
  ``PairBatch``;
- image synthesis: :class:`ImageRecords` -> ``ImageBatch``;
- style transfer: two :class:`ImageRecords`, content and style -> ``StyleBatch``;
- unpaired images (two domains): :class:`UnpairedRecords` -> ``UnpairedBatch``;
- text recognition (OCR): :class:`TextRecords` -> ``TextBatch``;
- text detection: :class:`TextDetectionRecords` -> ``TextDetectionBatch``;
- faces: :class:`FaceRecords` -> ``FaceBatch``.

Every ``source(i)`` names where record ``i`` comes from (a file, or a file and a record), for
error messages. The Protocols are ``runtime_checkable``: ``isinstance(records, LabelMapRecords)``
checks that the members exist (not their types).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class ClassificationRecords(Protocol):
    """One split of a labelled image dataset (``formats/cifar.py``, ``formats/mnist.py``,
    ``formats/imagefolder.py``, ``embedded/digits.py``).

    Attributes:
        targets: (N,) int64 class ids in ``[0, num_classes)``.
        classes: class names, index = class id.
    """

    targets: np.ndarray
    classes: Sequence[str]

    def __len__(self) -> int: ...

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as (H, W) or (H, W, C) uint8, C in {1, 3, 4}."""
        ...

    def source(self, index: int) -> str: ...


@runtime_checkable
class ObjectRecords(Protocol):
    """One split of a detection dataset as a validated COCO instances dict (boxes, and polygon
    or RLE masks for instance segmentation): ``detection_records.DetectionRecords``, which
    every detection reader returns.

    Attributes:
        coco: the COCO instances dict ("images", "annotations", "categories"; original ids).
        classes: contiguous index c (0-based) -> category name, categories sorted by id.
        category_ids: contiguous index c -> dataset category id, ascending.
        image_ids: record index i -> COCO image id.
        image_root: the folder that ``coco["images"][i]["file_name"]`` is relative to.
        source_file: the annotation file, named in messages.
    """

    coco: dict[str, Any]
    classes: list[str]
    category_ids: list[int]
    image_ids: list[int]
    image_root: Path
    source_file: str

    def __len__(self) -> int: ...

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as (H, W, 3) uint8 RGB."""
        ...

    def source(self, index: int) -> str: ...

    def target(self, index: int, *, masks: bool = False) -> dict[str, np.ndarray]:
        """Training targets of image ``index``: ``boxes`` (N, 4) float32 xyxy pixels,
        ``labels`` (N,) int64 in ``[0, len(classes))``, ``area`` (N,) float32, ``ann_ids``
        (N,) int64, with ``masks`` also (N, H, W) uint8 in {0, 1}."""
        ...


@runtime_checkable
class LabelMapRecords(Protocol):
    """One split of a semantic segmentation dataset (``formats/masks.py``'s ``MaskRecords``,
    ``formats/coco_semantic.py``).

    Attributes:
        classes: class names (index = class id), or None when the files do not name them.
    """

    classes: Sequence[str] | None

    def __len__(self) -> int: ...

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as (H, W, 3) uint8 RGB."""
        ...

    def load_mask(self, index: int) -> np.ndarray:
        """Its label map, (H, W) int64 class ids in ``[0, K)`` or the ignore index, already
        mapped from the stored values."""
        ...

    def source(self, index: int) -> str: ...

    def mask_source(self, index: int) -> str:
        """Where the label map of record ``index`` comes from, for messages."""
        ...


@runtime_checkable
class ImageRecords(Protocol):
    """One split of clean images (``formats/images.py``'s ``ImageFiles``,
    ``embedded/photos.py``): restoration degrades them on the fly; image synthesis learns them.
    """

    def __len__(self) -> int: ...

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as (H, W, 3) uint8 RGB."""
        ...

    def name(self, index: int) -> str:
        """A short name for reports, e.g. the file's path relative to the dataset folder."""
        ...

    def source(self, index: int) -> str: ...


@runtime_checkable
class PairedRecords(ImageRecords, Protocol):
    """Images with an aligned input each (``formats/paired.py``: super-resolution's bicubic
    inputs; paired image-to-image data). ``load(i)`` is the target."""

    def load_input(self, index: int) -> np.ndarray:
        """The input of record ``index``, (h, w, C) uint8 (1/scale of the target's size for
        super-resolution, the same size for image-to-image)."""
        ...


@runtime_checkable
class UnpairedRecords(Protocol):
    """One split of two image domains with no correspondence between them (CycleGAN's
    ``trainA`` / ``trainB``, style transfer's content and style images).

    Attributes:
        a: the images of domain A.
        b: the images of domain B (another count, other sizes).
    """

    a: ImageRecords
    b: ImageRecords


@runtime_checkable
class TextRecords(Protocol):
    """One split of text images (OCR: word or line crops) with their transcriptions."""

    def __len__(self) -> int: ...

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as (H, W) or (H, W, 3) uint8."""
        ...

    def text(self, index: int) -> str:
        """Its transcription (unicode, as annotated)."""
        ...

    def name(self, index: int) -> str:
        """Its name in a predictions file: the image's path as the annotation file gives it
        (``word_1.png``), or its LMDB key (``image-000000001``)."""
        ...

    def source(self, index: int) -> str: ...


@runtime_checkable
class TextDetectionRecords(Protocol):
    """One split of scene images with text regions (ICDAR 2015 detection)."""

    def __len__(self) -> int: ...

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as (H, W, 3) uint8 RGB."""
        ...

    def regions(self, index: int) -> dict[str, Any]:
        """Its text regions: ``polygons`` (N, 4, 2) float32 xy pixels, ``ignore`` (N,) bool
        (transcription ``###``: "don't care") and ``texts`` (N transcriptions)."""
        ...

    def name(self, index: int) -> str:
        """The image's file stem (``img_12``: its ground truth is ``gt_img_12.txt``)."""
        ...

    def source(self, index: int) -> str: ...


@runtime_checkable
class FaceRecords(Protocol):
    """One split of a face detection dataset (WIDER FACE with RetinaFace's five landmarks)."""

    def __len__(self) -> int: ...

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as (H, W, 3) uint8 RGB."""
        ...

    def faces(self, index: int) -> dict[str, np.ndarray]:
        """Its faces: ``boxes`` (N, 4) float32 xyxy pixels and ``landmarks`` (N, 5, 2) float32
        xy pixels (left eye, right eye, nose, left and right mouth corners; NaN for a face
        annotated without landmarks)."""
        ...

    def source(self, index: int) -> str: ...


class ArrayRecords:
    """Records held in memory as one uint8 array (CIFAR, MNIST, digits).

    Args:
        images: (N, H, W) or (N, H, W, C) uint8.
        targets: (N,) integer class ids.
        classes: class names.
        source: maps a record index to a human-readable origin, e.g.
            ``"cifar-10-batches-py/data_batch_2, record 17"``.
    """

    def __init__(
        self,
        images: np.ndarray,
        targets: np.ndarray,
        classes: Sequence[str],
        source: Callable[[int], str],
    ) -> None:
        if images.dtype != np.uint8:
            raise TypeError(f"images must be uint8, got {images.dtype}")
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        self.images = images
        self.targets = np.asarray(targets, dtype=np.int64)
        self.classes = list(classes)
        self._source = source

    def __len__(self) -> int:
        return len(self.targets)

    def load(self, index: int) -> np.ndarray:
        return self.images[index]

    def source(self, index: int) -> str:
        return self._source(index)

    def subset(self, indices: np.ndarray) -> ArrayRecords:
        """The records at ``indices`` (their sources still name the original records)."""
        indices = np.asarray(indices, dtype=np.int64)
        return ArrayRecords(
            self.images[indices],
            self.targets[indices],
            self.classes,
            lambda i: self._source(int(indices[i])),
        )


def holdout_split(num_records: int, split: str, *, val_size: int | float, seed: int) -> np.ndarray:
    """Indices of ``split`` ("train" or "val") when val is held out of a training set.

    The permutation depends only on ``num_records`` and ``seed``, so train and val
    never overlap and are the same in every run and every process.

    Args:
        num_records: size of the official training set.
        split: "train" or "val".
        val_size: number of records (int) or share of them (float in (0, 1)) held out.
        seed: seed of the permutation.

    Returns:
        (M,) int64 sorted indices into the training set.

    >>> holdout_split(10, "val", val_size=0.2, seed=0).tolist()
    [4, 6]
    >>> len(holdout_split(10, "train", val_size=2, seed=0))
    8
    """
    n_val = int(round(val_size * num_records)) if isinstance(val_size, float) else int(val_size)
    if not 0 <= n_val < num_records:
        raise ValueError(f"val_size={val_size} must leave at least one of {num_records} records")
    perm = np.random.default_rng(seed).permutation(num_records)
    if split == "val":
        return np.sort(perm[:n_val])
    if split == "train":
        return np.sort(perm[n_val:])
    raise ValueError(f"split must be 'train' or 'val' here, got {split!r}")


def training_split(
    records: ArrayRecords, split: str, *, val_size: int | float, seed: int, title: str
) -> ArrayRecords:
    """The "train" or "val" part of an official training set (see :func:`holdout_split`).

    Raises:
        ValueError: "val" is asked for but ``val_size`` holds nothing out.
    """
    chosen = holdout_split(len(records), split, val_size=val_size, seed=seed)
    if len(chosen) == 0:
        raise ValueError(
            f"{title} split 'val' is empty because val_size={val_size}; set "
            f"data.records.val_size (e.g. 5000) to hold out part of the training set"
        )
    return records.subset(chosen)
