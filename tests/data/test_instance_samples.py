"""Instance masks in detection samples: rasterized as pycocotools does, moved with the image,
kept aligned with the boxes albumentations keeps, (N, H, W) uint8 in {0, 1}."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from albumentations.pytorch import ToTensorV2
from fakes_detection import write_coco
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from cvbench.data.detection import DetectionDataModule, DetectionSamples, collate_detection
from cvbench.data.formats.coco import coco_instances

BOXES = A.BboxParams(format="pascal_voc", label_fields=["labels"], min_visibility=0.3)
W, H = 40, 30


def _mask(x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[y0:y1, x0:x1] = 1
    mask[y0, x0] = 0  # not a full box: a mask that equals its box would hide a swap
    return mask


def _rle(mask: np.ndarray) -> dict:
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": list(rle["size"]), "counts": rle["counts"].decode()}


def _uncompressed(mask: np.ndarray) -> dict:
    flat = mask.flatten(order="F").astype(np.int8)
    change = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return {"size": list(mask.shape), "counts": np.diff(np.concatenate([[0], change])).tolist()}


def _ann(id_: int, category_id: int, bbox: list, segmentation, *, crowd: int = 0) -> dict:
    return {
        "id": id_,
        "image_id": 5,
        "category_id": category_id,
        "bbox": bbox,
        "area": 1.0,
        "iscrowd": crowd,
        "segmentation": segmentation,
    }


def instance_coco() -> dict:
    """Image 5 (40 x 30): a polygon (category 7), a compressed RLE (category 2) reaching the
    right border, an uncompressed RLE (category 3) and a crowd region (not a target); image 8
    (20 x 25) without objects."""
    return {
        "images": [
            {"id": 5, "file_name": "a.png", "width": W, "height": H},
            {"id": 8, "file_name": "b.png", "width": 20, "height": 25},
        ],
        "categories": [{"id": 7, "name": "dog"}, {"id": 2, "name": "cat"}, {"id": 3, "name": "x"}],
        "annotations": [
            _ann(11, 7, [2.0, 3.0, 8.5, 6.0], [[2, 3, 10.5, 3, 10.5, 9, 2, 9]]),
            _ann(12, 2, [32, 10, 8, 12], _rle(_mask(32, 10, 40, 22))),
            _ann(13, 3, [14, 14, 10, 10], _uncompressed(_mask(14, 14, 24, 24))),
            _ann(14, 2, [0, 20, 10, 10], _uncompressed(_mask(0, 20, 10, 30)), crowd=1),
        ],
    }


@pytest.fixture
def records(tmp_path: Path):
    write_coco(tmp_path, "val", instance_coco())
    return coco_instances(str(tmp_path), "val")


def ann_to_mask(root: Path, ann_id: int) -> np.ndarray:
    """The reference: pycocotools ``COCO.annToMask`` on the file."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(root / "annotations" / "instances_val.json"))
    return coco.annToMask(coco.anns[ann_id])


def test_target_masks_are_pycocotools_masks_aligned_with_boxes(records, tmp_path: Path) -> None:
    target = records.target(0, masks=True)
    assert target["ann_ids"].tolist() == [11, 12, 13]  # the crowd region is no target
    masks = target["masks"]
    assert masks.dtype == np.uint8 and masks.shape == (3, H, W)
    for mask, ann_id in zip(masks, target["ann_ids"], strict=True):
        np.testing.assert_array_equal(mask, ann_to_mask(tmp_path, int(ann_id)))
    assert set(np.unique(masks)) == {0, 1}
    assert "masks" not in records.target(0)  # only when asked
    empty = records.target(1, masks=True)["masks"]
    assert empty.shape == (0, 25, 20) and empty.dtype == np.uint8


def test_flip_moves_masks_with_the_image(records) -> None:
    flip = A.Compose([A.HorizontalFlip(p=1.0), A.ToFloat(max_value=255)], bbox_params=BOXES)
    image, target, _ = DetectionSamples(records, flip, masks=True)[0]
    raw = records.target(0, masks=True)
    masks = target["masks"]
    assert masks.dtype == torch.uint8 and masks.shape == (3, H, W) == (3, *image.shape[1:])
    np.testing.assert_array_equal(masks.numpy(), raw["masks"][:, :, ::-1])
    assert target["labels"].tolist() == (raw["labels"] + 1).tolist()
    # each mask fills its own box, after the flip as before (to a pixel: pycocotools
    # rasterizes the polygon's x = 10.5 edge into pixel column 10)
    for mask, box in zip(masks.numpy(), target["boxes"].numpy(), strict=True):
        ys, xs = np.nonzero(mask)
        np.testing.assert_allclose([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], box, atol=1)


def test_masks_stay_with_their_boxes_when_a_box_is_dropped(records) -> None:
    """A shift right by 12 px pushes most of object 12 (x 32..40) out: its box goes, and the
    masks left are those of objects 11 and 13, shifted, in that order, with their labels."""
    shift = A.Compose(
        [A.Affine(translate_px={"x": 12, "y": 0}, p=1.0), A.ToFloat(max_value=255), ToTensorV2()],
        bbox_params=BOXES,
    )
    image, target, _ = DetectionSamples(records, shift, masks=True)[0]
    raw = records.target(0, masks=True)
    assert target["labels"].tolist() == [raw["labels"][0] + 1, raw["labels"][2] + 1]
    shifted = np.zeros_like(raw["masks"])
    shifted[:, :, 12:] = raw["masks"][:, :, :-12]
    np.testing.assert_array_equal(target["masks"].numpy(), shifted[[0, 2]])
    assert target["masks"].dtype == torch.uint8 and image.shape == (3, H, W)


def test_image_without_objects_and_batches(records) -> None:
    samples = DetectionSamples(
        records,
        A.Compose([A.HorizontalFlip(p=0.0), A.ToFloat(max_value=255)], bbox_params=BOXES),
        masks=True,
    )
    _, target, _ = samples[1]
    assert target["masks"].shape == (0, 25, 20) and target["masks"].dtype == torch.uint8
    untransformed = DetectionSamples(records, None, masks=True)[0][1]
    assert untransformed["masks"].shape == (3, H, W)
    images, targets, indices = collate_detection([samples[0], samples[1]])
    assert [t["masks"].shape[0] for t in targets] == [3, 0] and indices.tolist() == [0, 1]
    assert "masks" not in DetectionSamples(records, None)[0][1]


def test_datamodule_with_masks_names_annotations_without_segmentation(tmp_path: Path) -> None:
    write_coco(tmp_path / "coco", "val")  # the detection fake: annotation 101 has no mask
    kwargs = {
        "num_classes": 3,
        "name": "fake",
        "records": lambda split: coco_instances(str(tmp_path / "coco"), split),
        "split_names": {"train": "val", "val": "val", "test": "val"},
    }
    with pytest.raises(ValueError, match=r"data.masks is true but 3 of 4 .*annotation id 101"):
        DetectionDataModule(masks=True, **kwargs).setup("fit")
    DetectionDataModule(**kwargs).setup("fit")  # boxes only: fine


def test_unusable_segmentation_names_the_annotation(tmp_path: Path) -> None:
    coco = instance_coco()
    coco["annotations"][1]["segmentation"] = {"size": [10, 10], "counts": "PP4"}
    write_coco(tmp_path, "val", coco)
    records = coco_instances(str(tmp_path), "val")
    with pytest.raises(ValueError, match="annotation id 12 of .*a.png"):
        records.target(0, masks=True)
