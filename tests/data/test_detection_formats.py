"""Detection readers (COCO JSON, Pascal VOC XML, YOLO txt) and the generated shapes dataset.

Every test writes its dataset in the real format into ``tmp_path`` (``fakes_detection``);
pycocotools is the reference for masks, areas, boxes and the COCO format itself.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import multiprocessing
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from fakes_detection import voc_xml, write_coco, write_image, write_voc, write_yolo
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from cvbench.data.embedded.shapes import CLASSES, shapes
from cvbench.data.formats.coco import coco_instances
from cvbench.data.formats.voc import VOC_CLASSES, voc_detection
from cvbench.data.formats.yolo import yolo_detection

# ---------------------------------------------------------------- COCO


def test_coco_reader(tmp_path: Path) -> None:
    coco = write_coco(tmp_path)
    records = coco_instances(str(tmp_path), "val")
    assert records.classes == ["person", "cat", "dog"] and records.category_ids == [1, 3, 7]
    assert records.image_ids == [42, 7, 9] and len(records) == 3 and records.num_skipped == 0
    assert records.coco["annotations"] == coco["annotations"]  # ids, crowd and masks kept

    first = records.target(0)  # the crowd region (id 102) is not a target
    np.testing.assert_array_equal(first["boxes"], [[1.5, 2, 11.5, 10], [20, 5, 35, 25]])
    assert first["boxes"].dtype == np.float32 and first["labels"].dtype == np.int64
    assert first["labels"].tolist() == [2, 0] and first["ann_ids"].tolist() == [100, 101]
    np.testing.assert_array_equal(first["area"], [80, 300])
    second = records.target(1)  # the zero-width box is dropped, the other clipped to 50 x 20
    np.testing.assert_array_equal(second["boxes"], [[45, 10, 50, 20]])
    assert second["labels"].tolist() == [0] and second["ann_ids"].tolist() == [104]
    empty = records.target(2)
    assert empty["boxes"].shape == (0, 4) and empty["labels"].shape == (0,)

    np.testing.assert_array_equal(records.load(0), np.asarray(Image.open(tmp_path / "val/a.png")))
    gray = records.load(1)  # an 8-bit gray PNG becomes RGB
    assert gray.shape == (20, 50, 3) and gray.dtype == np.uint8
    assert (gray[..., 0] == gray[..., 2]).all()
    assert records.source(1) == f"{tmp_path / 'val' / 'sub' / 'b.png'} (image id 7)"

    reference = COCO(str(tmp_path / "annotations" / "instances_val.json"))
    assert sorted(reference.getAnnIds(imgIds=[42], iscrowd=False)) == [100, 101]
    assert mask_utils.area(reference.annToRLE(reference.anns[102])) == 80


def test_coco_2017_layout(tmp_path: Path) -> None:
    write_coco(tmp_path, split="val2017")
    records = coco_instances(
        str(tmp_path),
        "val",
        annotation_file="annotations/instances_{split}2017.json",
        image_dir="{split}2017",
    )
    assert records.image_ids == [42, 7, 9]
    assert records.source(0).startswith(str(tmp_path / "val2017" / "a.png"))
    with pytest.raises(FileNotFoundError, match="instances_val.json") as info:
        coco_instances(str(tmp_path), "val")
    assert "never downloads" in str(info.value) and "2017" in str(info.value)


def _set(path: str, value: object):
    """A mutation of the COCO dict: set ``coco[k0][k1]...`` (last key popped if value is ...)."""
    *keys, last = path.split(".")

    def mutate(coco: dict) -> None:
        node = coco
        for key in keys:
            node = node[int(key) if key.isdigit() else key]
        last_key = int(last) if last.isdigit() else last
        if value is ...:
            node.pop(last_key)
        else:
            node[last_key] = value

    return mutate


COCO_ERRORS = {
    "no categories": (_set("categories", ...), ["no list 'categories' at the top level"]),
    "annotation without area": (
        _set("annotations.1.area", ...),
        ["annotations[1] (id 101)", "no key 'area'"],
    ),
    "image without width": (_set("images.2.width", ...), ["images[2] (id 9)", "no key 'width'"]),
    "negative width": (
        _set("annotations.0.bbox", [1, 2, -3, 4]),
        ["annotations[0] (id 100)", "w >= 0 and h >= 0"],
    ),
    "nan in box": (
        _set("annotations.0.bbox", [1, math.nan, 3, 4]),
        ["annotations[0] (id 100)", "4 finite numbers"],
    ),
    "short box": (
        _set("annotations.4.bbox", [1, 2, 3]),
        ["annotations[4] (id 104)", "4 finite numbers"],
    ),
    "unknown image": (
        _set("annotations.3.image_id", 999),
        ["annotations[3] (id 103)", "image_id 999"],
    ),
    "unknown category": (
        _set("annotations.4.category_id", 2),
        ["annotations[4] (id 104)", "category_id 2", "[1, 3, 7]"],
    ),
    "duplicate image id": (_set("images.1.id", 42), ["images[1] (id 42)", "repeats image id 42"]),
    "duplicate annotation id": (
        _set("annotations.2.id", 100),
        ["annotations[2] (id 100)", "repeats annotation id 100"],
    ),
    "iscrowd 2": (_set("annotations.2.iscrowd", 2), ["annotations[2] (id 102)", "expected 0 or 1"]),
    "zero image height": (_set("images.0.height", 0), ["images[0] (id 42)", "positive integers"]),
    "file_name not a string": (_set("images.1.file_name", 3), ["images[1] (id 7)", "file_name 3"]),
}


def _rewrite(root: Path, mutate) -> Path:
    """The fake COCO set with its JSON replaced by a mutated copy; returns the JSON path."""
    coco = write_coco(root)
    bad = copy.deepcopy(coco)
    mutate(bad)
    path = root / "annotations" / "instances_val.json"
    path.write_text(json.dumps(bad))
    return path


@pytest.mark.parametrize("case", sorted(COCO_ERRORS))
def test_coco_errors_name_file_and_record(tmp_path: Path, case: str) -> None:
    mutate, fragments = COCO_ERRORS[case]
    path = _rewrite(tmp_path, mutate)
    with pytest.raises(ValueError) as info:
        coco_instances(str(tmp_path), "val")
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in message


def test_coco_invalid_json_names_line(tmp_path: Path) -> None:
    path = tmp_path / "annotations" / "instances_val.json"
    path.parent.mkdir()
    path.write_text('{"images": [\n  1,\n  oops]}')
    with pytest.raises(ValueError, match="line 3 column 3") as info:
        coco_instances(str(tmp_path), "val")
    assert str(path) in str(info.value)


def test_coco_missing_images(tmp_path: Path) -> None:
    write_coco(tmp_path)
    (tmp_path / "val" / "sub" / "b.png").unlink()
    (tmp_path / "val" / "c.png").unlink()
    with pytest.raises(FileNotFoundError) as info:
        coco_instances(str(tmp_path), "val")
    message = str(info.value)
    assert str(tmp_path / "val" / "sub" / "b.png") in message and "2 of 3" in message
    assert "images[1] (id 7)" in message


def test_coco_skip_invalid(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def mutate(coco: dict) -> None:
        coco["annotations"][0]["bbox"] = [1, 2, -3, 4]
        coco["annotations"][1]["image_id"] = 999

    _rewrite(tmp_path, mutate)
    (tmp_path / "val" / "sub" / "b.png").unlink()
    with pytest.raises(ValueError):
        coco_instances(str(tmp_path), "val")
    with caplog.at_level(logging.WARNING):
        records = coco_instances(str(tmp_path), "val", skip_invalid=True)
    assert records.num_skipped == 2 and records.num_missing_images == 1
    assert "skipped 2 invalid annotations" in caplog.text and "negative" in caplog.text
    assert records.image_ids == [42, 9]
    assert [a["id"] for a in records.coco["annotations"]] == [102]  # 103, 104: image 7 is gone
    assert records.target(0)["boxes"].shape == (0, 4)  # 102 is a crowd region


def test_coco_load_errors_name_file(tmp_path: Path) -> None:
    write_coco(tmp_path)
    records = coco_instances(str(tmp_path), "val")
    write_image(tmp_path / "val" / "a.png", 41, 30)
    with pytest.raises(ValueError, match="declares width 40, height 30") as info:
        records.load(0)
    assert str(tmp_path / "val" / "a.png") in str(info.value)
    (tmp_path / "val" / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n not a PNG")
    with pytest.raises(ValueError, match="cannot read image") as info:
        records.load(2)
    assert "c.png (image id 9)" in str(info.value) and info.value.__cause__ is not None
    (tmp_path / "val" / "c.png").unlink()
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "val" / "c.png"))):
        records.load(2)


# ---------------------------------------------------------------- Pascal VOC


def test_voc_reader(tmp_path: Path) -> None:
    write_voc(tmp_path)
    records = voc_detection(str(tmp_path), "test")
    assert records.classes == list(VOC_CLASSES) and records.category_ids == list(range(1, 21))
    assert records.image_ids == [0, 1]  # split-file order
    images = records.coco["images"]
    assert [(i["file_name"], i["width"], i["height"]) for i in images] == [
        ("000005.jpg", 50, 40),
        ("000001.jpg", 30, 20),
    ]
    anns = records.coco["annotations"]
    # 1-based inclusive (xmin, ymin, xmax, ymax) -> [xmin - 1, ymin - 1, xmax - xmin + 1, ...]
    assert [a["bbox"] for a in anns] == [
        [0, 0, 10, 20],
        [5, 5, 10, 10],
        [10, 10, 40, 30],
        [2, 3, 1, 1],
    ]
    assert [a["category_id"] for a in anns] == [9, 15, 9, 12]  # chair, person, chair, dog
    assert [a["area"] for a in anns] == [200, 100, 1200, 1]
    assert [(a["iscrowd"], a["difficult"]) for a in anns] == [(0, 0), (1, 1), (0, 0), (0, 0)]
    assert [a["image_id"] for a in anns] == [0, 0, 0, 1]

    target = records.target(0)  # the difficult person is not a target
    np.testing.assert_array_equal(target["boxes"], [[0, 0, 10, 20], [10, 10, 50, 40]])
    assert target["labels"].tolist() == [8, 8]
    np.testing.assert_array_equal(records.target(1)["boxes"], [[2, 3, 3, 4]])
    assert records.load(0).shape == (40, 50, 3)
    assert records.source(1) == f"{tmp_path / 'VOC2007' / 'JPEGImages' / '000001.jpg'} (image id 1)"


def test_voc_iou_equals_devkit_plus_one(tmp_path: Path) -> None:
    """IoU of the converted boxes (pycocotools) = the devkit's "+1" IoU of the raw boxes."""
    write_voc(tmp_path)
    anns = voc_detection(str(tmp_path), "test").coco["annotations"]
    raw = [(1, 1, 10, 20), (6, 6, 15, 15), (11, 11, 50, 40)]  # chair, person, chair in the XML
    for i in range(3):
        for j in range(3):
            a, b = raw[i], raw[j]
            iw = min(a[2], b[2]) - max(a[0], b[0]) + 1  # VOCevaldet.m
            ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
            inter = max(iw, 0) * max(ih, 0)
            union = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
            devkit = inter / (union - inter)
            ours = mask_utils.iou([anns[i]["bbox"]], [anns[j]["bbox"]], [0])[0, 0]
            assert ours == pytest.approx(devkit, abs=1e-12)
    assert devkit == 1.0 and 0 < mask_utils.iou([anns[0]["bbox"]], [anns[1]["bbox"]], [0]) < 1


def test_voc_custom_classes_and_year(tmp_path: Path) -> None:
    write_voc(tmp_path, year="2012", split="val")
    records = voc_detection(str(tmp_path), "val", year="2012", classes=["dog", "chair", "person"])
    assert records.classes == ["dog", "chair", "person"] and records.category_ids == [1, 2, 3]
    assert [a["category_id"] for a in records.coco["annotations"]] == [2, 3, 2, 1]


def test_voc_errors_name_xml(tmp_path: Path) -> None:
    base = write_voc(tmp_path)
    with pytest.raises(ValueError, match="'chair'") as info:
        voc_detection(str(tmp_path), "test", classes=["dog", "person"])
    assert str(base / "Annotations" / "000005.xml") in str(info.value)

    xml = base / "Annotations" / "000001.xml"
    xml.write_text(voc_xml("000001.jpg", None, [{"name": "dog", "box": (3, 4, 3, 4)}]))
    with pytest.raises(ValueError, match="no <size>") as info:
        voc_detection(str(tmp_path), "test")
    assert str(xml) in str(info.value)
    no_box = "<object><name>dog</name></object></annotation>"
    xml.write_text(voc_xml("000001.jpg", (30, 20), []).replace("</annotation>", no_box))
    with pytest.raises(ValueError, match="<object> 0 has no <name> or <bndbox>") as info:
        voc_detection(str(tmp_path), "test")
    assert str(xml) in str(info.value)
    xml.write_text(voc_xml("000001.jpg", (30, 20), [{"name": "dog", "box": (9, 4, 3, 4)}]))
    with pytest.raises(ValueError, match="xmin <= xmax"):
        voc_detection(str(tmp_path), "test")

    xml.write_text(voc_xml("000001.jpg", (30, 20), []))  # no objects: an image without boxes
    assert voc_detection(str(tmp_path), "test").target(1)["boxes"].shape == (0, 4)
    (base / "JPEGImages" / "000001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match="000001.jpg"):
        voc_detection(str(tmp_path), "test")
    with pytest.raises(FileNotFoundError, match="never downloads") as info:
        voc_detection(str(tmp_path), "trainval")
    assert str(base / "ImageSets" / "Main" / "trainval.txt") in str(info.value)


# ---------------------------------------------------------------- YOLO


def test_yolo_reader(tmp_path: Path) -> None:
    write_yolo(tmp_path)
    records = yolo_detection(str(tmp_path), "train", classes=["cat", "dog", "bird"])
    assert records.classes == ["cat", "dog", "bird"] and records.category_ids == [1, 2, 3]
    images = records.coco["images"]
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in images] == [
        (0, "a.png", 40, 20),
        (1, "b.jpg", 30, 30),
        (2, "sub/c.png", 10, 10),
    ]
    anns = records.coco["annotations"]
    # a.png is 40 x 20: "0 0.5 0.5 0.5 0.5" -> [10, 5, 20, 10],
    # "2 0.25 0.75 0.1 0.5" -> [0.25 * 40 - 0.1 * 40 / 2, 0.75 * 20 - 0.5 * 20 / 2, 4, 10]
    np.testing.assert_allclose([a["bbox"] for a in anns], [[10, 5, 20, 10], [8, 10, 4, 10]])
    np.testing.assert_allclose([a["area"] for a in anns], [200, 40])
    assert [a["category_id"] for a in anns] == [1, 3] and {a["image_id"] for a in anns} == {0}
    target = records.target(0)
    np.testing.assert_allclose(target["boxes"], [[10, 5, 30, 15], [8, 10, 12, 20]], rtol=1e-6)
    assert target["labels"].tolist() == [0, 2]
    assert records.target(1)["boxes"].shape == (0, 4)  # empty label file
    assert records.target(2)["boxes"].shape == (0, 4)  # no label file
    assert records.load(2).shape == (10, 10, 3)


@pytest.mark.parametrize(
    "line, fragment",
    [
        ("0 0.5 0.5 0.5", "4 fields"),
        ("3 0.5 0.5 0.1 0.1", "class '3'"),
        ("0.5 0.5 0.5 0.1 0.1", "expected an integer in [0, 3)"),
        ("0 0.5 1.2 0.1 0.1", "outside [0, 1]"),
        ("0 0.5 abc 0.1 0.1", "non-numeric"),
    ],
)
def test_yolo_bad_line_names_file_and_line(tmp_path: Path, line: str, fragment: str) -> None:
    write_yolo(tmp_path)
    label = tmp_path / "labels" / "train" / "a.txt"
    label.write_text(f"0 0.5 0.5 0.5 0.5\n{line}\n")
    with pytest.raises(ValueError) as info:
        yolo_detection(str(tmp_path), "train", classes=["cat", "dog", "bird"])
    assert str(info.value).startswith(f"{label}, line 2: ") and fragment in str(info.value)


def test_yolo_tolerance_and_missing_folder(tmp_path: Path) -> None:
    write_yolo(tmp_path)
    (tmp_path / "labels" / "train" / "b.txt").write_text("1 0.999 0.5 1.0008 0.2\n")
    records = yolo_detection(str(tmp_path), "train", classes=["cat", "dog", "bird"])
    box = records.coco["annotations"][-1]["bbox"]  # b.jpg is 30 x 30; w within the tolerance
    assert box[0] == pytest.approx(30 * (0.999 - 0.5004)) and box[0] + box[2] == 30  # clipped
    with pytest.raises(FileNotFoundError, match="never downloads") as info:
        yolo_detection(str(tmp_path), "val", classes=["cat"])
    assert str(tmp_path / "images" / "val") in str(info.value)


# ---------------------------------------------------------------- shapes

SHAPES = {"num_images": {"train": 60, "val": 10, "test": 10}, "crowded_fraction": 0.3}


@pytest.fixture(scope="module")
def shapes_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shapes")
    shapes("train", root=str(root), **SHAPES)
    return root


def _folder(root: Path) -> Path:
    (folder,) = root.iterdir()  # one dataset, no temporary folder left
    return folder


def test_shapes_layout(shapes_root: Path) -> None:
    folder = _folder(shapes_root)
    assert re.fullmatch(r"shapes-[0-9a-f]{10}", folder.name)
    mtime = (folder / "annotations" / "instances_train.json").stat().st_mtime_ns
    for split, n in SHAPES["num_images"].items():
        records = shapes(split, root=str(shapes_root), **SHAPES)  # read back, not regenerated
        assert len(records) == n and records.image_ids == list(range(1, n + 1))
        assert records.classes == list(CLASSES) and records.category_ids == [1, 2, 3, 4]
        assert records.source(0) == f"{folder / split / '000001.png'} (image id 1)"
        assert records.load(n - 1).shape == (128, 128, 3)
    assert (folder / "annotations" / "instances_train.json").stat().st_mtime_ns == mtime
    assert len(list(shapes_root.iterdir())) == 1


def test_shapes_deterministic(shapes_root: Path, tmp_path: Path) -> None:
    again = _folder(shapes_root).name
    shapes("val", root=str(tmp_path), **SHAPES)
    assert _folder(tmp_path).name == again
    for split in SHAPES["num_images"]:
        name = f"annotations/instances_{split}.json"
        first = (shapes_root / again / name).read_bytes()
        assert (tmp_path / again / name).read_bytes() == first
    for k in (1, 5, 10):
        pixels = [
            np.asarray(Image.open(r / again / f"val/{k:06d}.png")) for r in (shapes_root, tmp_path)
        ]
        np.testing.assert_array_equal(*pixels)
    other = shapes("val", root=str(tmp_path), **SHAPES, seed=1)
    assert len(list(tmp_path.iterdir())) == 2
    assert (
        other.coco["annotations"] != shapes("val", root=str(tmp_path), **SHAPES).coco["annotations"]
    )


def test_shapes_content(shapes_root: Path) -> None:
    records = shapes("train", root=str(shapes_root), **SHAPES)
    anns = records.coco["annotations"]
    objects = [a for a in anns if not a["iscrowd"]]
    areas = np.array([a["area"] for a in objects])
    ranges = Counter(np.digitize(areas, [32**2, 96**2]).tolist())  # COCO small, medium, large
    assert min(ranges[0], ranges[1], ranges[2]) >= 3, ranges
    assert {a["category_id"] for a in objects} == {1, 2, 3, 4}
    per_image = Counter(a["image_id"] for a in objects)
    counts = [per_image[i] for i in records.image_ids]
    assert counts.count(0) == 3  # round(0.05 * 60) empty images
    assert sum(c >= 5 for c in counts) >= 10  # crowded: 5..8 objects (placement may drop some)
    assert max(counts) <= 8
    crowd = [a for a in anns if a["iscrowd"]]
    assert crowd and all(isinstance(a["segmentation"], dict) for a in crowd)
    for i in range(len(records)):
        target = records.target(i)
        assert len(target["boxes"]) == counts[i]
        assert (target["boxes"][:, 2:] > target["boxes"][:, :2]).all()
        assert (target["boxes"] >= 0).all() and (target["boxes"] <= 128).all()


def _shoelace(polygon: list[float]) -> tuple[float, float]:
    """Area and perimeter of a flat [x0, y0, x1, y1, ...] polygon."""
    x, y = np.array(polygon[0::2]), np.array(polygon[1::2])
    area = abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2
    return area, float(np.hypot(x - np.roll(x, -1), y - np.roll(y, -1)).sum())


def test_shapes_masks_match_pycocotools(shapes_root: Path) -> None:
    folder = _folder(shapes_root)
    reference = COCO(str(folder / "annotations" / "instances_train.json"))
    for ann in reference.dataset["annotations"]:
        rle = reference.annToRLE(ann)
        mask_box = mask_utils.toBbox(rle)
        assert mask_utils.area(rle) == ann["area"]  # area is COCO's mask area
        if ann["iscrowd"]:
            np.testing.assert_array_equal(mask_box, ann["bbox"])
            continue
        (polygon,) = ann["segmentation"]
        area, perimeter = _shoelace(polygon)
        assert abs(area - ann["area"]) <= perimeter / 2  # pixel rounding along the outline
        xs, ys = polygon[0::2], polygon[1::2]
        assert ann["bbox"] == pytest.approx(
            [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]
        )
        x, y, w, h = ann["bbox"]
        mx, my, mw, mh = mask_box  # a 60-degree tip may pass a pixel row without its centre
        np.testing.assert_allclose([mx, my, mx + mw, my + mh], [x, y, x + w, y + h], atol=2.0)
    anns = reference.dataset["annotations"]
    rings = [a for a in anns if a["category_id"] == 4 and not a["iscrowd"]]
    for ring in rings:  # the keyhole polygon leaves the hole out of the mask
        x, y, w, h = ring["bbox"]
        assert reference.annToMask(ring)[int(y + h / 2), int(x + w / 2)] == 0
    assert len(rings) >= 5


def test_shapes_scored_by_pycocotools(shapes_root: Path) -> None:
    """The ground truth as detections scores AP 100 in every area range (no -1: all present)."""
    reference = COCO(str(_folder(shapes_root) / "annotations" / "instances_train.json"))
    results = [
        {
            "image_id": a["image_id"],
            "category_id": a["category_id"],
            "bbox": a["bbox"],
            "score": 1.0,
        }
        for a in reference.dataset["annotations"]
        if not a["iscrowd"]
    ]
    evaluation = COCOeval(reference, reference.loadRes(results), "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    np.testing.assert_allclose(evaluation.stats[:6], 1.0)


def test_shapes_one_object_per_image(tmp_path: Path) -> None:
    records = shapes(
        "val",
        root=str(tmp_path),
        num_images={"train": 4, "val": 30, "test": 4},
        min_objects=1,
        max_objects=1,
        empty_fraction=0.0,
        crowded_fraction=0.0,
    )
    anns = records.coco["annotations"]
    assert [a["image_id"] for a in anns] == records.image_ids and not any(
        a["iscrowd"] for a in anns
    )
    assert all(len(records.target(i)["boxes"]) == 1 for i in range(len(records)))


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"num_images": {"train": 5}}, "splits ['train']"),
        ({"min_objects": 3, "max_objects": 2}, "min_objects <= max_objects"),
        ({"empty_fraction": 0.6, "crowded_fraction": 0.6}, "sum is at most 1"),
        ({"image_size": 16}, "at least 32"),
    ],
)
def test_shapes_bad_parameters(tmp_path: Path, overrides: dict, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        shapes("val", root=str(tmp_path), **overrides)
    assert not list(tmp_path.iterdir())


def _generate_after(barrier, root: str, queue) -> None:
    barrier.wait()
    queue.put(len(shapes("train", root=root, num_images={"train": 30, "val": 2, "test": 2})))


def test_shapes_concurrent_generation(tmp_path: Path) -> None:
    """Two processes (as two DDP ranks) generate into the same root at once: both read one set."""
    context = multiprocessing.get_context("spawn")
    barrier, queue = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_generate_after, args=(barrier, str(tmp_path), queue))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    assert [queue.get(timeout=5), queue.get(timeout=5)] == [30, 30]
    folder = _folder(tmp_path)  # one dataset, both temporary folders gone
    assert len(list((folder / "train").iterdir())) == 30
