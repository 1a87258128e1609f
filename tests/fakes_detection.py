"""Writers of tiny detection datasets in the real on-disk formats (COCO JSON, VOC XML, YOLO txt).

Shared by the tests; every file is what the official tools read: pycocotools loads the JSON,
the VOC XML has the devkit's layout, the YOLO labels are what Ultralytics reads.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image


def write_image(path: Path, width: int, height: int, *, seed: int = 0, mode: str = "RGB") -> None:
    """A random image of ``width`` x ``height`` pixels (PNG, JPEG, ... by the suffix)."""
    rng = np.random.default_rng(seed)
    shape = (height, width, 3) if mode == "RGB" else (height, width)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(path)  # L or RGB


def _ann(id_: int, image_id: int, category_id: int, bbox: list, area: float, **extra) -> dict:
    return {
        "id": id_,
        "image_id": image_id,
        "category_id": category_id,
        "bbox": bbox,
        "area": area,
        "iscrowd": 0,
        **extra,
    }


def coco_dict() -> dict:
    """Three images (one gray, one in a subfolder, one without boxes); category ids 7, 1, 3 (gaps,
    unsorted); a crowd region (RLE), a zero-width box and a box reaching out of its image."""
    crowd = {"counts": [0, *[2, 28] * 40], "size": [30, 40]}  # rows 0-1 of a 40 x 30 image
    return {
        "info": {"description": "cvbench test set"},
        "images": [
            {"id": 42, "file_name": "a.png", "width": 40, "height": 30},
            {"id": 7, "file_name": "sub/b.png", "width": 50, "height": 20},
            {"id": 9, "file_name": "c.png", "width": 20, "height": 20},
        ],
        "categories": [
            {"id": 7, "name": "dog"},
            {"id": 1, "name": "person"},
            {"id": 3, "name": "cat"},
        ],
        "annotations": [
            _ann(
                100,
                42,
                7,
                [1.5, 2.0, 10.0, 8.0],
                80.0,
                segmentation=[[1.5, 2.0, 11.5, 2.0, 11.5, 10.0, 1.5, 10.0]],
            ),
            _ann(101, 42, 1, [20, 5, 15, 20], 300),
            _ann(102, 42, 3, [0, 0, 40, 2], 80, iscrowd=1, segmentation=crowd),
            _ann(103, 7, 3, [5, 5, 0, 4], 0),  # zero width: scored by pycocotools, not a target
            _ann(104, 7, 1, [45, 10, 10, 15], 150),  # reaches out of the 50 x 20 image
        ],
    }


def write_coco(root: Path, split: str = "val", coco: dict | None = None) -> dict:
    """``root/annotations/instances_{split}.json`` and its images under ``root/{split}/``."""
    coco = coco_dict() if coco is None else coco
    for k, image in enumerate(coco["images"]):
        mode = "L" if image["file_name"].startswith("sub/") else "RGB"
        write_image(
            root / split / image["file_name"], image["width"], image["height"], seed=k, mode=mode
        )
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / f"instances_{split}.json").write_text(json.dumps(coco, indent=1))
    return coco


def voc_xml(filename: str, size: tuple[int, int] | None, objects: list[dict]) -> str:
    """A VOC annotation XML; ``objects`` hold name, box (xmin, ymin, xmax, ymax) and optionally
    difficult (left out when absent, as in some VOC2012 files)."""
    parts = [f"<annotation><folder>VOC2007</folder><filename>{filename}</filename>"]
    if size is not None:
        parts.append(
            f"<size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>"
        )
    for obj in objects:
        difficult = f"<difficult>{obj['difficult']}</difficult>" if "difficult" in obj else ""
        box = "".join(
            f"<{k}>{v}</{k}>"
            for k, v in zip(("xmin", "ymin", "xmax", "ymax"), obj["box"], strict=True)
        )
        parts.append(
            f"<object><name>{obj['name']}</name><pose>Unspecified</pose><truncated>0</truncated>"
            f"{difficult}<bndbox>{box}</bndbox></object>"
        )
    return "\n".join([*parts, "</annotation>"])


VOC_OBJECTS = {
    "000005": (
        (50, 40),
        [
            {"name": "chair", "box": (1, 1, 10, 20), "difficult": 0},
            {"name": "person", "box": (6, 6, 15, 15), "difficult": 1},
            {"name": "chair", "box": (11, 11, 50, 40), "difficult": 0},
        ],
    ),
    "000001": ((30, 20), [{"name": "dog", "box": (3, 4, 3, 4)}]),
}


def write_voc(root: Path, year: str = "2007", split: str = "test") -> Path:
    """``root/VOC{year}/`` with ImageSets/Main/{split}.txt (000005 before 000001), Annotations and
    JPEGImages; returns the VOC{year} folder. Called again with another split, it adds that
    split's list (the same images)."""
    base = root / f"VOC{year}"
    (base / "ImageSets" / "Main").mkdir(parents=True, exist_ok=True)  # a split at a time
    (base / "Annotations").mkdir(exist_ok=True)
    (base / "ImageSets" / "Main" / f"{split}.txt").write_text("000005\n000001\n")
    for k, (name, (size, objects)) in enumerate(VOC_OBJECTS.items()):
        (base / "Annotations" / f"{name}.xml").write_text(voc_xml(f"{name}.jpg", size, objects))
        write_image(base / "JPEGImages" / f"{name}.jpg", *size, seed=k)
    return base


YOLO_LABELS = {
    "a.png": "0 0.5 0.5 0.5 0.5\n2 0.25 0.75 0.1 0.5\n",  # 40 x 20 image
    "b.jpg": "",  # an empty label file
    # sub/c.png: no label file
}


def write_yolo(root: Path, split: str = "train") -> None:
    """``root/images/{split}/`` with a.png (40x20), b.jpg (30x30), sub/c.png (10x10) and
    ``root/labels/{split}/`` with a.txt (two boxes), b.txt (empty) and no label for sub/c."""
    for k, (name, size) in enumerate(
        (("a.png", (40, 20)), ("b.jpg", (30, 30)), ("sub/c.png", (10, 10)))
    ):
        write_image(root / "images" / split / name, *size, seed=k)
    (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    (root / "labels" / split / "notes.md").write_text("not a label file")
    for name, text in YOLO_LABELS.items():
        (root / "labels" / split / Path(name).with_suffix(".txt")).write_text(text)
