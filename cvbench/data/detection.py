"""Lightning datamodule for object detection: COCO-style records + albumentations with boxes.

A sample is ``(image, target, index)``: image (3, H, W) float32 in [0, 1]; target
``{"boxes": (N, 4) float32 xyxy pixels, "labels": (N,) int64 in 1..K}`` with torchvision's
label convention (0 is the background); index the record's position in its split, so the
metrics can map detections back to image ids and drop a distributed sampler's duplicates.
Batches are lists, since images and box counts vary: ``(list[image], list[target], indices)``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from cvbench.data.datamodule import RecordsDataModule
from cvbench.data.detection_records import DetectionRecords

Target = dict[str, Tensor]


def nonempty_boxes(boxes: np.ndarray) -> np.ndarray:
    """(N,) bool: boxes (N, 4) xyxy with positive width and height."""
    return (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])


class DetectionSamples(Dataset):
    """Records with an albumentations transform that moves the boxes with the image.

    Boxes that the transform pushes out of the image or shrinks below its ``BboxParams``
    limits are dropped by albumentations, degenerate ones here; an image may end with no
    box, which torchvision's detectors train on as pure background.
    """

    def __init__(self, records: DetectionRecords, transform: Callable | None) -> None:
        self.records = records
        self.transform = transform

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[Tensor, Target, int]:
        image = self.records.load(index)
        target = self.records.target(index)
        boxes = target["boxes"].astype(np.float32)
        labels = target["labels"].astype(np.int64) + 1
        if self.transform is not None:
            out = self.transform(image=image, bboxes=boxes, labels=labels)
            image = out["image"]
            boxes = np.asarray(out["bboxes"], dtype=np.float32).reshape(-1, 4)
            labels = np.asarray(out["labels"], dtype=np.int64).reshape(-1)
        if not isinstance(image, Tensor):  # no ToTensorV2 in the pipeline
            image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if image.dtype == torch.uint8:
            image = image.float() / 255
        keep = nonempty_boxes(boxes)
        return (
            image,
            {"boxes": torch.from_numpy(boxes[keep]), "labels": torch.from_numpy(labels[keep])},
            index,
        )


def collate_detection(
    batch: list[tuple[Tensor, Target, int]],
) -> tuple[list[Tensor], list[Target], Tensor]:
    """Lists of images and targets (sizes vary) and the (B,) int64 record indices."""
    images, targets, indices = zip(*batch, strict=True)
    return list(images), list(targets), torch.tensor(indices, dtype=torch.int64)


class DetectionDataModule(RecordsDataModule):
    """Batches of ``(images, targets, indices)`` for torchvision-style detectors.

    Args:
        num_classes: number of object classes K; the dataset's categories must number K.
        voc_version: the Pascal VOC AP ("2007" or "2010") this data is scored with besides
            COCO's, or None; the detection task reads it from the data config.
        **kwargs: ``name``, ``records``, ``transforms``, ... of
            :class:`~cvbench.data.datamodule.RecordsDataModule`. Train
            transforms need ``bbox_params`` with ``format: pascal_voc`` and
            ``label_fields: [labels]``.
    """

    collate_fn = staticmethod(collate_detection)

    def __init__(self, *, num_classes: int, voc_version: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.voc_version = voc_version

    def make_dataset(
        self, records: DetectionRecords, transform: Callable | None, split: str
    ) -> DetectionSamples:
        where = f"data '{self.name}' split '{split}'"
        if len(records.classes) != self.num_classes:
            raise ValueError(
                f"{where} has {len(records.classes)} categories ({', '.join(records.classes)}) "
                f"but data.num_classes is {self.num_classes}; set data.num_classes="
                f"{len(records.classes)}"
            )
        return DetectionSamples(records, transform)

    def records_of(self, split: str) -> DetectionRecords:
        """The records of ``split`` (its ground truth for the metrics)."""
        return self.split(split).records
