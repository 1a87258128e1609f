"""Semantic segmentation readers on real files: mask folders, Pascal VOC, Cityscapes, ADE20K and
COCO instances as label maps (pycocotools' ``annToMask`` is the reference rasterizer)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
from fakes_detection import write_coco
from fakes_segmentation import (
    coco_semantic_dict,
    write_ade20k,
    write_cityscapes,
    write_gray_png,
    write_mask_folders,
    write_rgb,
    write_voc_segmentation,
)
from PIL import Image
from pycocotools.coco import COCO

from cvbench.data.embedded.shapes import shapes
from cvbench.data.formats.ade20k import ADE20K_CLASSES, ade20k
from cvbench.data.formats.cityscapes import CITYSCAPES_CLASSES, cityscapes, label_id_to_train_id
from cvbench.data.formats.coco import coco_instances
from cvbench.data.formats.coco_semantic import CocoSemanticRecords, coco_semantic
from cvbench.data.formats.masks import mask_folders
from cvbench.data.formats.voc_segmentation import VOC_SEGMENTATION_CLASSES, voc_segmentation

# ---------------------------------------------------------------- mask folders


def test_mask_folders_pairs_and_reads_every_png_kind(tmp_path: Path) -> None:
    written = write_mask_folders(tmp_path)
    records = mask_folders("train", root=str(tmp_path))
    assert len(records) == 3 and records.classes is None
    names = [p.relative_to(tmp_path / "images" / "train").as_posix() for p in records.image_paths]
    assert names == ["a.jpg", "c.png", "sub/b.png"]
    assert records.mask_source(2) == str(tmp_path / "masks" / "train" / "sub" / "b.png")
    assert records.source(2) == str(tmp_path / "images" / "train" / "sub" / "b.png")
    with Image.open(tmp_path / "masks" / "train" / "sub" / "b.png") as palette:
        assert palette.mode == "P"  # read as indices, not colours
    for i, key in enumerate(["a", "c", "sub/b"]):
        mask = records.load_mask(i)
        assert mask.dtype == np.int64
        np.testing.assert_array_equal(mask, written[key])
        assert records.load(i).shape == (*mask.shape, 3)


def test_mask_folders_suffix_and_shared_folder(tmp_path: Path) -> None:
    written = write_mask_folders(tmp_path, mask_suffix="_mask", masks_dir="images")
    records = mask_folders("train", root=str(tmp_path), masks_dir="images", mask_suffix="_mask")
    assert [p.name for p in records.mask_paths] == ["a_mask.png", "c_mask.png", "b_mask.png"]
    np.testing.assert_array_equal(records.load_mask(0), written["a"])
    with pytest.raises(ValueError, match="mask_suffix"):
        mask_folders("train", root=str(tmp_path), masks_dir="images")


def test_mask_folders_value_map_and_reduce_zero_label(tmp_path: Path) -> None:
    written = write_mask_folders(tmp_path, values=(0, 255))
    binary = mask_folders("train", root=str(tmp_path), value_map={255: 1})
    for i, key in enumerate(["a", "c", "sub/b"]):  # gray, 16-bit and palette all remapped
        np.testing.assert_array_equal(binary.load_mask(i), (written[key] == 255).astype(np.int64))
    write_mask_folders(tmp_path / "z", values=(0, 1, 3, 255))
    reduced = mask_folders("train", root=str(tmp_path / "z"), reduce_zero_label=True)
    assert set(np.unique(reduced.load_mask(0)).tolist()) == {0, 2, 255}
    both = mask_folders("train", root=str(tmp_path / "z"), value_map={3: 7}, reduce_zero_label=True)
    assert set(np.unique(both.load_mask(1)).tolist()) == {0, 6, 255}  # 3 -> 7 -> 6


def test_mask_folders_unpaired_files_are_named(tmp_path: Path) -> None:
    write_mask_folders(tmp_path)
    extra = tmp_path / "images" / "train" / "sub" / "lonely.jpg"
    write_rgb(extra, 8, 8)
    with pytest.raises(ValueError) as info:
        mask_folders("train", root=str(tmp_path))
    message = str(info.value)
    assert message.startswith(f"image {extra} has no mask")
    assert str(tmp_path / "masks" / "train" / "sub" / "lonely.png") in message
    extra.unlink()
    orphan = tmp_path / "masks" / "train" / "d.png"
    write_gray_png(orphan, np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match=re.escape(f"mask {orphan} has no image")) as info:
        mask_folders("train", root=str(tmp_path))
    assert str(tmp_path / "images" / "train" / "d") in str(info.value)


def test_mask_folders_missing_folder_says_where(tmp_path: Path) -> None:
    write_mask_folders(tmp_path)
    with pytest.raises(FileNotFoundError) as info:
        mask_folders("val", root=str(tmp_path))
    message = str(info.value)
    assert str(tmp_path / "images" / "val") in message and "data.records.root" in message
    assert "never downloads" in message


def test_rgb_mask_is_rejected_naming_the_file(tmp_path: Path) -> None:
    write_mask_folders(tmp_path)
    colour = tmp_path / "masks" / "train" / "a.png"
    write_rgb(colour, 30, 40)
    records = mask_folders("train", root=str(tmp_path))
    with pytest.raises(ValueError, match="RGB image") as info:
        records.load_mask(0)
    assert str(colour) in str(info.value)


# ---------------------------------------------------------------- Pascal VOC


def test_voc_segmentation_reader(tmp_path: Path) -> None:
    base = write_voc_segmentation(tmp_path)
    records = voc_segmentation("train", root=str(tmp_path))
    assert records.classes == list(VOC_SEGMENTATION_CLASSES) and len(records.classes) == 21
    assert records.classes[0] == "background" and records.classes[15] == "person"
    assert [p.name for p in records.image_paths] == ["2007_000032.jpg", "2007_000039.jpg"]
    mask = records.load_mask(0)
    stored = np.asarray(Image.open(base / "SegmentationClass" / "2007_000032.png"))
    np.testing.assert_array_equal(mask, stored)  # palette indices, 255 (void) stays 255
    assert set(np.unique(mask).tolist()) == {0, 1, 15, 255}
    assert records.load(1).shape == (*records.load_mask(1).shape, 3)
    assert len(voc_segmentation("val", root=str(tmp_path))) == 1


def test_voc_segmentation_errors_name_the_file(tmp_path: Path) -> None:
    base = write_voc_segmentation(tmp_path)
    with pytest.raises(FileNotFoundError, match="never downloads") as info:
        voc_segmentation("trainval", root=str(tmp_path))
    assert str(base / "ImageSets" / "Segmentation" / "trainval.txt") in str(info.value)
    missing = base / "SegmentationClass" / "2007_000039.png"
    missing.unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))) as info:
        voc_segmentation("train", root=str(tmp_path))
    assert "label map" in str(info.value) and "train.txt" in str(info.value)
    (base / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000033\n2007_000033\n")
    with pytest.raises(ValueError, match="twice"):
        voc_segmentation("val", root=str(tmp_path))


# ---------------------------------------------------------------- Cityscapes


def test_cityscapes_label_ids_become_train_ids(tmp_path: Path) -> None:
    written = write_cityscapes(tmp_path)
    records = cityscapes("train", root=str(tmp_path))
    assert len(records) == 3 and records.classes == list(CITYSCAPES_CLASSES)
    assert records.mask_paths[0].name == "aachen_000000_000019_gtFine_labelIds.png"
    assert records.image_paths[2].parent.name == "bremen"
    stored = written["aachen/aachen_000000_000019"]
    mask = records.load_mask(0)
    expected = {0: 255, 7: 0, 9: 255, 24: 11, 26: 13, 33: 18}  # unlabeled, road, parking, ...
    for label_id, train_id in expected.items():
        assert (stored == label_id).any()
        assert (mask[stored == label_id] == train_id).all(), label_id
    assert records.load(0).shape == (32, 64, 3)


def test_cityscapes_table() -> None:
    table = label_id_to_train_id()
    assert len(table) == 34 and -1 not in table  # license plate (id -1) is never in a file
    assert sorted(v for v in table.values() if v != 255) == list(range(19))
    assert table[7] == 0 and table[26] == 13 and table[0] == 255 and table[33] == 18
    assert CITYSCAPES_CLASSES[13] == "car" and CITYSCAPES_CLASSES[0] == "road"
    assert len(CITYSCAPES_CLASSES) == 19 and CITYSCAPES_CLASSES[-1] == "bicycle"
    assert label_id_to_train_id(ignore_index=250)[0] == 250


def test_cityscapes_errors(tmp_path: Path) -> None:
    write_cityscapes(tmp_path)
    label = tmp_path / "gtFine/train/bremen/bremen_000000_000019_gtFine_labelIds.png"
    label.unlink()
    with pytest.raises(ValueError, match="has no mask") as info:
        cityscapes("train", root=str(tmp_path))
    assert "bremen_000000_000019_leftImg8bit.png" in str(info.value)
    assert str(label) in str(info.value)
    with pytest.raises(FileNotFoundError, match="gtFine_trainvaltest.zip") as info:
        cityscapes("val", root=str(tmp_path))
    assert str(tmp_path / "leftImg8bit" / "val") in str(info.value)


# ---------------------------------------------------------------- ADE20K


def test_ade20k_reduce_zero_label(tmp_path: Path) -> None:
    written = write_ade20k(tmp_path)
    records = ade20k("training", root=str(tmp_path))
    assert len(records) == 2 and records.classes == list(ADE20K_CLASSES)
    assert len(ADE20K_CLASSES) == 150
    assert records.classes[0] == "wall" and records.classes[-1] == "flag"
    assert records.classes[7] == "bed" and "chest of drawers" in records.classes
    assert len(set(records.classes)) == 150
    stored = written["ADE_train_00000001"]
    mask = records.load_mask(0)
    for value, label in {0: 255, 1: 0, 2: 1, 150: 149}.items():
        assert (mask[stored == value] == label).all(), value
    with pytest.raises(FileNotFoundError, match="'training' and 'validation'"):
        ade20k("val", root=str(tmp_path))
    (tmp_path / "annotations" / "training" / "ADE_train_00000002.png").unlink()
    with pytest.raises(ValueError, match="ADE_train_00000002.jpg has no mask"):
        ade20k("training", root=str(tmp_path))


# ---------------------------------------------------------------- COCO instances as label maps


def test_coco_semantic_matches_ann_to_mask(tmp_path: Path) -> None:
    coco = write_coco(tmp_path, "val", coco_semantic_dict())
    records = coco_semantic("val", instances=lambda split: coco_instances(str(tmp_path), split))
    assert isinstance(records, CocoSemanticRecords) and len(records) == 2
    assert records.classes == ["background", "dog", "person", "cat"]
    reference = COCO(str(tmp_path / "annotations" / "instances_val.json"))
    masks = {a["id"]: reference.annToMask(a).astype(bool) for a in coco["annotations"]}
    label = {2: 1, 5: 2, 9: 3}
    expected = np.zeros((16, 20), dtype=np.int64)
    for ann in coco["annotations"]:
        if not ann["iscrowd"]:
            expected[masks[ann["id"]]] = label[ann["category_id"]]
    expected[masks[1] & masks[2]] = 255  # dog and cat: ambiguous
    expected[masks[5]] = 255  # crowd
    got = records.load_mask(0)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, expected)
    assert (got[masks[3] & masks[4]] == 2).all() and (masks[3] & masks[4]).any()  # persons
    assert (got[:, 0] == 255).all() and (masks[1] & masks[2]).sum() > 0
    np.testing.assert_array_equal(records.load_mask(1), np.zeros((6, 10)))  # no annotations
    assert records.load(0).shape == (16, 20, 3)
    assert "instances_val.json" in records.mask_source(0) and "image id 1" in records.mask_source(0)


def test_coco_semantic_needs_segmentation(tmp_path: Path) -> None:
    write_coco(tmp_path, "val")  # the detection fake: annotation 101 has a box only
    records = coco_semantic("val", instances=lambda split: coco_instances(str(tmp_path), split))
    with pytest.raises(ValueError, match="annotation id 101 has no 'segmentation'") as info:
        records.load_mask(0)
    assert "instances_val.json" in str(info.value)


def test_shapes_as_label_maps_fast_and_exact(tmp_path: Path) -> None:
    params = {"num_images": {"train": 2, "val": 12, "test": 2}, "crowded_fraction": 0.3}
    records = coco_semantic(
        "val", instances=lambda split: shapes(split, root=str(tmp_path), **params)
    )
    assert records.classes == ["background", "circle", "square", "triangle", "ring"]
    start = time.perf_counter()
    maps = [records.load_mask(i) for i in range(len(records))]
    assert (time.perf_counter() - start) / len(maps) < 0.05  # ~1 ms here; no disk cache
    (folder,) = tmp_path.iterdir()
    reference = COCO(str(folder / "annotations" / "instances_val.json"))
    for i, got in enumerate(maps):
        image_id = records.instances.image_ids[i]
        anns = reference.loadAnns(reference.getAnnIds(imgIds=[image_id]))
        claims = np.zeros((128, 128, 5), dtype=bool)
        crowd = np.zeros((128, 128), dtype=bool)
        for ann in anns:
            if ann["iscrowd"]:
                crowd |= reference.annToMask(ann).astype(bool)
            else:
                claims[..., ann["category_id"]] |= reference.annToMask(ann).astype(bool)
        expected = claims.argmax(-1)
        expected[(claims.sum(-1) > 1) | crowd] = 255
        np.testing.assert_array_equal(got, expected)
    values = set(np.unique(np.stack(maps)).tolist())
    assert {0, 255} <= values and len(values - {0, 255}) >= 3
