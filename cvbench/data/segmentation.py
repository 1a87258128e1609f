"""Lightning datamodule for semantic segmentation: label-map records + albumentations with masks.

A sample is ``(image, mask, index)``: image (3, H, W) float32 (normalized by the transform);
mask (H', W') int64 label map with class ids in ``[0, num_classes)`` and ``ignore_index``
(default 255) for void pixels; index the record's position in its split. In the train split the
mask goes through the transform with the image (same H, W; nearest interpolation, padding with
the ignore value). In val/test the image goes through the eval transform and the mask is the
record's original label map, so predictions are scored at the label's own resolution (the
MMSegmentation / torchvision references protocol).

Records: :class:`~cvbench.data.records.LabelMapRecords` of one split (``formats/masks.py``,
``voc_segmentation.py``, ``cityscapes.py``, ``ade20k.py``, ``coco_semantic.py``): ``load(i)``
(H, W, 3) uint8 RGB, ``load_mask(i)`` (H, W) int64 already mapped to class ids, ``source(i)``
and ``mask_source(i)`` (paths for messages), ``classes`` (names or None). Batches are
:class:`~cvbench.data.batches.MaskBatch`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from cvbench.data.batches import MaskBatch, stack_or_list
from cvbench.data.datamodule import RecordsDataModule
from cvbench.data.label_maps import check_binary_trap, check_label_values, label_values
from cvbench.data.records import LabelMapRecords

log = logging.getLogger(__name__)


def _mask_source(records: LabelMapRecords, index: int) -> str:
    return f"mask {records.mask_source(index)} (record {index}, image {records.source(index)})"


def scan_label_values(
    records: LabelMapRecords,
    *,
    num_classes: int,
    ignore_index: int,
    where: str,
    threads: int | None = None,
) -> np.ndarray:
    """Read every label map of a split once and check its values; the values seen.

    Masks are decoded in a thread pool (PNG decoding releases the GIL). Logs how long the scan
    took when it took more than a second.

    Args:
        records: semantic records of one split (``load_mask``, ``mask_source``, ``source``).
        num_classes: K; values must be in ``[0, K)`` or ``ignore_index``.
        ignore_index: the void value.
        where: the dataset and split, put in messages.
        threads: decoding threads (default: up to 8, at most the CPU count).

    Returns:
        (V,) int64 sorted distinct values over all masks.

    Raises:
        ValueError: a mask holds a value outside ``[0, K) ∪ {ignore_index}`` (names the mask
            file and the value), or the split falls into the 0/255 binary-mask trap.
    """
    start = time.perf_counter()
    seen = np.zeros(0, dtype=np.int64)
    pool = ThreadPoolExecutor(threads or min(8, os.cpu_count() or 1))
    try:
        values = pool.map(lambda i: label_values(records.load_mask(i)), range(len(records)))
        for index, mask_values in enumerate(values):
            check_label_values(
                mask_values,
                num_classes=num_classes,
                ignore_index=ignore_index,
                where=f"{where}: {_mask_source(records, index)}",
            )
            seen = np.union1d(seen, mask_values)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    check_binary_trap(seen, num_classes=num_classes, ignore_index=ignore_index, where=where)
    elapsed = time.perf_counter() - start
    if elapsed > 1.0:
        log.info("%s: checked the labels of %d masks in %.1f s", where, len(records), elapsed)
    return seen


def _compact(mask: np.ndarray, low: int, high: int) -> np.ndarray:
    """The mask in the smallest dtype OpenCV resizes and pads (albumentations runs on cv2)."""
    if low >= 0 and high <= 255:
        return mask.astype(np.uint8)
    if low >= 0 and high <= 65535:
        return mask.astype(np.uint16)
    return mask.astype(np.int32)


class SegmentationSamples(Dataset):
    """Semantic records with an albumentations transform that moves the mask with the image.

    Args:
        records: semantic records of one split (see the module docstring).
        transform: albumentations pipeline; called with ``image=`` and ``mask=`` in training,
            with ``image=`` only otherwise. None: images become float32 in [0, 1], unchanged.
        train: transform the mask with the image; otherwise the target is the original mask.
        num_classes: K, for the per-sample value check.
        ignore_index: the void value.
        where: the dataset and split, put in messages.
    """

    def __init__(
        self,
        records: LabelMapRecords,
        transform: Callable | None,
        *,
        train: bool,
        num_classes: int,
        ignore_index: int = 255,
        where: str = "segmentation data",
    ) -> None:
        self.records = records
        self.transform = transform
        self.train = train
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.where = where

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[Tensor, Tensor, int]:
        image = self.records.load(index)
        mask = self.records.load_mask(index)
        if mask.shape != image.shape[:2]:
            raise ValueError(
                f"{self.where}: {_mask_source(self.records, index)} is {mask.shape[1]}x"
                f"{mask.shape[0]} (WxH) but its image is {image.shape[1]}x{image.shape[0]}; "
                f"expected a label map of the image's size"
            )
        low, high = self._check(mask, index)
        if self.transform is None:
            target = mask
        elif self.train:
            out = self.transform(image=image, mask=_compact(mask, low, high))
            image, target = out["image"], out["mask"]
        else:
            image, target = self.transform(image=image)["image"], mask
        if not isinstance(image, Tensor):  # no ToTensorV2 in the pipeline
            image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if image.dtype == torch.uint8:
            image = image.float() / 255
        if not isinstance(target, Tensor):
            target = torch.from_numpy(np.ascontiguousarray(target))
        return image, target.long(), index

    def _check(self, mask: np.ndarray, index: int) -> tuple[int, int]:
        """(min, max) of the mask; raises if a value is neither a class id nor ignore."""
        if mask.size == 0:
            return 0, 0
        low, high = int(mask.min()), int(mask.max())
        if not (low >= 0 and high < self.num_classes):  # else: slower exact check
            check_label_values(
                label_values(mask),
                num_classes=self.num_classes,
                ignore_index=self.ignore_index,
                where=f"{self.where}: {_mask_source(self.records, index)}",
            )
        return low, high


def collate_segmentation(batch: Sequence[tuple[Tensor, Tensor, int]]) -> MaskBatch:
    """``MaskBatch(images, masks, indices)``: images (B, 3, H, W) and masks (B, H, W) int64
    stacked when all their sizes agree, else lists of (3, H, W) / (H, W); indices (B,) int64."""
    images, masks, indices = zip(*batch, strict=True)
    return MaskBatch(
        stack_or_list(images), stack_or_list(masks), torch.tensor(indices, dtype=torch.int64)
    )


class SegmentationDataModule(RecordsDataModule):
    """Batches of ``(images, masks, indices)`` for semantic segmentation (see the module).

    Args:
        num_classes: K, the number of classes (class ids 0..K-1).
        ignore_index: the void value of the label maps, never scored; not a class id.
        classes: class names (K of them); None: the records' names, else "0".."K-1".
        check_labels: read every mask of a split once when it is built and raise on a value
            that is neither a class id nor ``ignore_index`` (naming the mask file) and on the
            0/255 binary-mask trap. Each sample's values are checked when loaded either way.
        crop_size: side of the training crops (the train transform and sliding-window
            inference read it as ``${data.crop_size}``); None if not used.
        **kwargs: ``name``, ``records``, ``transforms``, ... of
            :class:`~cvbench.data.datamodule.RecordsDataModule`. Train transforms get
            ``image=`` and ``mask=``; val/test transforms ``image=`` only.
    """

    collate_fn = staticmethod(collate_segmentation)

    def __init__(
        self,
        *,
        num_classes: int,
        ignore_index: int = 255,
        classes: Sequence[str] | None = None,
        check_labels: bool = True,
        crop_size: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if num_classes < 1:
            raise ValueError(f"data.num_classes must be at least 1, got {num_classes}")
        if 0 <= ignore_index < num_classes:
            raise ValueError(
                f"data.ignore_index {ignore_index} is a class id (data.num_classes is "
                f"{num_classes}); set it to the void value of the masks, e.g. 255"
            )
        if classes is not None and len(classes) != num_classes:
            raise ValueError(
                f"data.classes has {len(classes)} names but data.num_classes is {num_classes}"
            )
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.classes = list(classes) if classes is not None else None
        self.check_labels = check_labels
        self.crop_size = crop_size

    def make_dataset(
        self, records: LabelMapRecords, transform: Callable | None, split: str
    ) -> SegmentationSamples:
        where = f"data '{self.name}' split '{split}'"
        names = getattr(records, "classes", None)
        if names is not None and len(names) != self.num_classes:
            raise ValueError(
                f"{where} has {len(names)} classes ({', '.join(names[:5])}"
                f"{', ...' if len(names) > 5 else ''}) but data.num_classes is "
                f"{self.num_classes}; set data.num_classes={len(names)}"
            )
        if self.check_labels:
            scan_label_values(
                records, num_classes=self.num_classes, ignore_index=self.ignore_index, where=where
            )
        return SegmentationSamples(
            records,
            transform,
            train=split == "train",
            num_classes=self.num_classes,
            ignore_index=self.ignore_index,
            where=where,
        )

    def records_of(self, split: str) -> LabelMapRecords:
        """The records of ``split`` (its ground truth for the metrics)."""
        return self.split(split).records

    @property
    def class_names(self) -> list[str]:
        """K class names: ``data.classes``, else the records' names, else "0".."K-1"."""
        if self.classes is not None:
            return list(self.classes)
        datasets = list(self.datasets.values()) or [self.split("val")]
        names = getattr(datasets[0].records, "classes", None)
        if names is not None:
            return list(names)
        return [str(c) for c in range(self.num_classes)]
