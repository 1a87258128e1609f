"""Lightning datamodule for object detection: COCO-style records + albumentations with boxes.

A sample is ``(image, target, index)``: image (3, H, W) float32 in [0, 1]; target
``{"boxes": (N, 4) float32 xyxy pixels, "labels": (N,) int64 in 1..K}`` with torchvision's
label convention (0 is the background), plus ``"masks": (N, H, W) uint8`` in {0, 1} for
instance segmentation (Mask R-CNN's targets); index the record's position in its split, so the
metrics can map detections back to image ids and drop a distributed sampler's duplicates.
Batches are :class:`~cvbench.data.batches.DetectionBatch` (lists, since images and box
counts vary): ``(list[image], list[target], indices)``. Records are
:class:`~cvbench.data.records.ObjectRecords`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from cvbench.data.batches import DetectionBatch
from cvbench.data.datamodule import RecordsDataModule
from cvbench.data.records import ObjectRecords

Target = dict[str, Tensor]


def nonempty_boxes(boxes: np.ndarray) -> np.ndarray:
    """(N,) bool: boxes (N, 4) xyxy with positive width and height."""
    return (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])


class DetectionSamples(Dataset):
    """Records with an albumentations transform that moves the boxes (and masks) with the image.

    Boxes that the transform pushes out of the image or shrinks below its ``BboxParams``
    limits are dropped by albumentations, degenerate ones here; an image may end with no
    box, which torchvision's detectors train on as pure background.

    The transform's label field carries each box's position in the record's target, not its
    class: the boxes albumentations keeps are looked up by position, so labels and masks stay
    aligned with them whatever it drops.

    Args:
        records: one split's records.
        transform: albumentations pipeline with ``BboxParams(format="pascal_voc",
            label_fields=["labels"])``, or None.
        masks: add each object's mask, transformed with the image as albumentations'
            ``masks`` target (nearest-neighbour, so it stays in {0, 1}).
    """

    def __init__(
        self, records: ObjectRecords, transform: Callable | None, *, masks: bool = False
    ) -> None:
        self.records = records
        self.transform = transform
        self.masks = masks

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[Tensor, Target, int]:
        image = self.records.load(index)
        target = self.records.target(index, masks=self.masks)
        boxes = target["boxes"].astype(np.float32)
        labels = target["labels"].astype(np.int64) + 1
        masks = target.get("masks")
        kept = np.arange(len(boxes))
        if self.transform is not None:
            extra = {"masks": masks} if masks is not None and len(masks) else {}
            out = self.transform(image=image, bboxes=boxes, labels=kept, **extra)
            image = out["image"]
            boxes = np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4)
            kept = np.asarray(out["labels"], dtype=np.int64).reshape(-1)
            if extra:
                masks = np.asarray(out["masks"])
        if not isinstance(image, Tensor):  # no ToTensorV2 in the pipeline
            image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if image.dtype == torch.uint8:
            image = image.float() / 255
        keep = nonempty_boxes(boxes)
        kept = kept[keep]
        result = {"boxes": torch.from_numpy(boxes[keep]), "labels": torch.from_numpy(labels[kept])}
        if masks is not None:
            height, width = image.shape[-2:]
            masks = masks[kept] if len(masks) else np.zeros((0, height, width), np.uint8)
            result["masks"] = torch.from_numpy(np.ascontiguousarray(masks, dtype=np.uint8))
        return image, result, index


def check_segmentations(records: ObjectRecords, where: str) -> None:
    """Raise if a non-crowd annotation has no ``segmentation`` (boxes-only data such as VOC or
    YOLO, or a COCO file without masks), naming the first one and the config key."""
    anns = [a for a in records.coco["annotations"] if not a["iscrowd"]]
    missing = [a for a in anns if not a.get("segmentation")]
    if missing:
        raise ValueError(
            f"{where}: data.masks is true but {len(missing)} of {len(anns)} annotations of "
            f"{records.source_file} have no 'segmentation' (first: annotation id "
            f"{missing[0]['id']}); use a dataset with instance masks or set data.masks=false"
        )


def collate_detection(batch: list[tuple[Tensor, Target, int]]) -> DetectionBatch:
    """``DetectionBatch``: lists of images and targets (sizes vary) and the (B,) int64 record
    indices."""
    images, targets, indices = zip(*batch, strict=True)
    return DetectionBatch(list(images), list(targets), torch.tensor(indices, dtype=torch.int64))


class DetectionDataModule(RecordsDataModule):
    """Batches (:class:`~cvbench.data.batches.DetectionBatch`) ``(images, targets, indices)`` for
    torchvision-style detectors.

    Args:
        num_classes: number of object classes K; the dataset's categories must number K.
        voc_version: the Pascal VOC AP ("2007" or "2010") this data is scored with besides
            COCO's, or None; the detection task reads it from the data config.
        masks: targets also hold the objects' masks (instance segmentation, config key
            ``data.masks``); every non-crowd annotation needs a ``segmentation``.
        **kwargs: ``name``, ``records``, ``transforms``, ... of
            :class:`~cvbench.data.datamodule.RecordsDataModule`. Train
            transforms need ``bbox_params`` with ``format: pascal_voc`` and
            ``label_fields: [labels]``.
    """

    collate_fn = staticmethod(collate_detection)

    def __init__(
        self,
        *,
        num_classes: int,
        voc_version: str | None = None,
        masks: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.voc_version = voc_version
        self.masks = masks

    def make_dataset(
        self, records: ObjectRecords, transform: Callable | None, split: str
    ) -> DetectionSamples:
        where = f"data '{self.name}' split '{split}'"
        if len(records.classes) != self.num_classes:
            raise ValueError(
                f"{where} has {len(records.classes)} categories ({', '.join(records.classes)}) "
                f"but data.num_classes is {self.num_classes}; set data.num_classes="
                f"{len(records.classes)}"
            )
        if self.masks:
            check_segmentations(records, where)
        return DetectionSamples(records, transform, masks=self.masks)

    def records_of(self, split: str) -> ObjectRecords:
        """The records of ``split`` (its ground truth for the metrics)."""
        return self.split(split).records
