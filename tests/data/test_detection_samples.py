"""Detection samples: boxes move with the image, leave with it, and never come out degenerate."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import torch
from fakes_detection import write_coco

from cvbench.data.detection import DetectionSamples, collate_detection
from cvbench.data.formats.coco import coco_instances

BOXES = A.BboxParams(format="pascal_voc", label_fields=["labels"], min_visibility=0.3)


def test_flip_moves_boxes_and_labels_start_at_one(tmp_path: Path) -> None:
    write_coco(tmp_path, "val")
    records = coco_instances(str(tmp_path), "val")
    flip = A.Compose([A.HorizontalFlip(p=1.0), A.ToFloat(max_value=255)], bbox_params=BOXES)
    image, target, index = DetectionSamples(records, flip)[0]  # a.png, 40 x 30
    assert index == 0 and image.shape == (3, 30, 40) and image.dtype == torch.float32
    raw = records.target(0)
    expected = raw["boxes"].copy()
    expected[:, [0, 2]] = 40 - raw["boxes"][:, [2, 0]]
    np.testing.assert_allclose(target["boxes"].numpy(), expected, atol=1e-4)
    assert target["labels"].tolist() == (raw["labels"] + 1).tolist()


def test_boxes_pushed_out_are_dropped_and_empty_images_batch(tmp_path: Path) -> None:
    write_coco(tmp_path, "val")
    records = coco_instances(str(tmp_path), "val")
    shift = A.Compose(
        [A.Affine(translate_px={"x": 39, "y": 0}, p=1.0), A.ToFloat(max_value=255)],
        bbox_params=BOXES,
    )
    samples = DetectionSamples(records, shift)
    _, target, _ = samples[0]  # both boxes of a.png start left of x = 35: pushed out
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)
    images, targets, indices = collate_detection([samples[0], samples[2]])
    assert len(images) == 2 and indices.tolist() == [0, 2]
    assert all(t["boxes"].shape[1] == 4 for t in targets)
