"""Semantic segmentation batches from the real data configs on real files.

The data YAMLs are composed with ``make_cfg`` (the real Hydra config) on the fake files their
``contract:`` names, built and batched; the label checks run before training as they would in a
run. That every segmentation YAML gives valid batches is ``test_data_contracts.py``'s.
"""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pytest
import torch
from data_contracts import TINY, data_config
from fakes_segmentation import write_mask_folders
from hydra.errors import InstantiationException

from cvbench.data.batches import MaskBatch
from cvbench.data.segmentation import (
    SegmentationDataModule,
    SegmentationSamples,
    collate_segmentation,
)
from cvbench.run.build import build_datamodule

MEAN, STD = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
MASKS = ("data=segmentation/masks", *TINY, "data.crop_size=32")  # on files a test writes


def _datamodule(make_cfg, name: str, *overrides: str) -> SegmentationDataModule:
    """``data=segmentation/<name>`` on the fake files its contract names."""
    return build_datamodule(data_config(make_cfg, f"segmentation/{name}", *overrides))


def _check_values(masks: torch.Tensor, num_classes: int) -> None:
    assert masks.dtype == torch.int64
    assert (((masks >= 0) & (masks < num_classes)) | (masks == 255)).all()


def test_varied_sizes_batch_as_lists_and_class_names(make_cfg) -> None:
    dm = _datamodule(make_cfg, "masks", "data.batch_size=3")
    assert dm.class_names == ["0", "1", "2"]
    images, masks, indices = next(iter(dm.val_dataloader()))  # 30x40, 36x28, 24x20
    assert isinstance(images, list) and isinstance(masks, list) and len(images) == 3
    assert [tuple(m.shape) for m in masks] == [tuple(i.shape[1:]) for i in images]
    assert indices.tolist() == [0, 1, 2]
    images, masks, _ = next(iter(dm.train_dataloader()))  # crops: one size, stacked
    assert images.shape == (3, 3, 32, 32) and masks.shape == (3, 32, 32)
    voc = _datamodule(make_cfg, "voc")
    assert voc.class_names[:2] == ["background", "aeroplane"] and len(voc.class_names) == 21
    named = _datamodule(make_cfg, "masks", "data.classes=[sky,road,car]")
    assert named.class_names == ["sky", "road", "car"]


def test_train_crop_pads_with_ignore_and_invents_no_value(make_cfg) -> None:
    """Crops larger than the scaled image are padded: image 0 (before Normalize), mask 255."""
    dm = _datamodule(make_cfg, "masks", "data.crop_size=64")
    dataset = dm.split("train")
    zero = torch.tensor((0 - MEAN) / STD, dtype=torch.float32)[:, None, None]
    padded_pixels = 0
    for draw in range(12):
        index = draw % len(dataset)
        original = set(np.unique(dataset.records.load_mask(index)).tolist())
        image, mask, _ = dataset[index]
        assert image.shape == (3, 64, 64) and mask.shape == (64, 64)
        padded = torch.isclose(image, zero, atol=1e-5).all(0)
        padded_pixels += int(padded.sum())
        assert (mask[padded] == 255).all()
        assert set(mask.unique().tolist()) <= original  # nearest interpolation only
    assert padded_pixels > 1000  # images of at most 40 px in 64 px crops: padding happened


def test_train_mask_moves_with_the_image(make_cfg) -> None:
    dm = _datamodule(make_cfg, "masks")
    records = dm.split("train").records
    flip = A.Compose([A.HorizontalFlip(p=1.0)])
    train = SegmentationSamples(records, flip, train=True, num_classes=3)
    image, mask, index = train[0]
    assert index == 0 and image.dtype == torch.float32 and image.max() <= 1
    np.testing.assert_array_equal(mask.numpy(), records.load_mask(0)[:, ::-1])
    expected = torch.from_numpy(records.load(0)[:, ::-1].transpose(2, 0, 1).copy()).float() / 255
    torch.testing.assert_close(image, expected)
    val = SegmentationSamples(records, flip, train=False, num_classes=3)
    _, target, _ = val[0]  # the image is transformed, the target stays the original
    np.testing.assert_array_equal(target.numpy(), records.load_mask(0))
    batch = collate_segmentation([train[0], train[0]])
    assert isinstance(batch, MaskBatch) and batch.indices.tolist() == [0, 0]
    images, masks, _ = batch
    assert images.shape == (2, 3, 30, 40) and masks.shape == (2, 30, 40)


def test_bad_mask_value_raises_naming_the_file(make_cfg, tmp_path: Path) -> None:
    data = tmp_path / "data" / "masks"
    for split in ("train", "val"):
        write_mask_folders(data, split, values=(0, 1, 7, 255))
    with pytest.raises(ValueError) as info:
        build_datamodule(make_cfg(*MASKS, "data.num_classes=3")).setup("fit")
    message = str(info.value)
    assert "data 'masks' split 'train'" in message and "label value 7" in message
    assert str(data / "masks" / "train" / "a.png") in message
    unchecked = build_datamodule(make_cfg(*MASKS, "data.num_classes=3", "data.check_labels=false"))
    unchecked.setup("fit")  # no scan, but no sample with a bad value gets through either
    with pytest.raises(ValueError, match="label value 7") as info:
        unchecked.split("val")[2]
    assert str(data / "masks" / "val" / "sub" / "b.png") in str(info.value)


def test_binary_trap_and_its_fix(make_cfg, tmp_path: Path) -> None:
    data = tmp_path / "data" / "masks"
    for split in ("train", "val"):
        write_mask_folders(data, split, values=(0, 255))
    with pytest.raises(ValueError, match="0/255 binary-mask trap") as info:
        build_datamodule(make_cfg(*MASKS, "data.num_classes=2")).setup("fit")
    assert "data.records.value_map={255: 1}" in str(info.value)
    fixed = build_datamodule(
        make_cfg(*MASKS, "data.num_classes=2", "data.records.value_map={255: 1}")
    )
    fixed.setup("fit")
    _, masks, _ = next(iter(fixed.train_dataloader()))
    assert set(masks.unique().tolist()) <= {0, 1, 255}
    assert set(np.unique(fixed.records_of("val").load_mask(0)).tolist()) == {0, 1}


def test_config_mistakes_are_named(make_cfg) -> None:
    with pytest.raises(ValueError, match="set data.num_classes=21"):
        _datamodule(make_cfg, "voc", "data.num_classes=20").setup("fit")
    with pytest.raises(InstantiationException, match="ignore_index 1 is a class id"):
        _datamodule(make_cfg, "voc", "data.ignore_index=1")
    with pytest.raises(InstantiationException, match="data.classes has 2 names"):
        _datamodule(make_cfg, "masks", "data.classes=[a,b]")


def test_shapes_semantic_has_all_classes(make_cfg) -> None:
    small = "data.records.instances.num_images={train: 8, val: 8, test: 2}"
    dm = _datamodule(make_cfg, "shapes", small, "data.batch_size=4", "data.crop_size=128")
    assert dm.num_classes == 5 and dm.crop_size == 128
    dm.setup("fit")
    assert dm.class_names == ["background", "circle", "square", "triangle", "ring"]
    seen: set[int] = set()
    for images, masks, _ in dm.val_dataloader():
        assert images.shape == (4, 3, 128, 128) and masks.shape == (4, 128, 128)
        _check_values(masks, 5)
        seen |= set(masks.unique().tolist())
    assert {0, 1, 2, 3, 4} <= seen
    images, masks, _ = next(iter(dm.train_dataloader()))
    assert images.shape == (4, 3, 128, 128) and masks.shape == (4, 128, 128)
    _check_values(masks, 5)
    detection = make_cfg("data=detection/shapes").data.records  # the same generator and files
    assert make_cfg("data=segmentation/shapes").data.records.instances == detection
