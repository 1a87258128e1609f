"""Writers of tiny semantic segmentation datasets in the real on-disk layouts.

Mask folders (gray, palette and 16-bit PNGs), Pascal VOC 2012 (palette PNGs with VOC's colour
map and ImageSets/Segmentation), Cityscapes (leftImg8bit + gtFine labelIds) and ADE20K
(ADEChallengeData2016). Each writer returns the label maps it wrote, as stored on disk.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fakes_detection import write_coco
from PIL import Image


def write_rgb(path: Path, height: int, width: int, *, seed: int = 0) -> np.ndarray:
    """A random RGB image with values in [64, 255]: far from 0 even after JPEG, so pixels padded
    with 0 are recognizable."""
    pixels = np.random.default_rng(seed).integers(64, 256, (height, width, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, **({"quality": 95} if path.suffix == ".jpg" else {}))
    return pixels


def label_map(
    height: int, width: int, values: tuple[int, ...], *, seed: int = 0, dtype=np.uint8
) -> np.ndarray:
    """(H, W) label map of horizontal bands, one per value (every value present)."""
    rows = np.arange(height) * len(values) // height
    band = np.asarray(values, dtype=dtype)[rows]
    out = np.repeat(band[:, None], width, axis=1)
    rng = np.random.default_rng(seed)  # a few random pixels too, so no two maps are equal
    ys, xs = rng.integers(0, height, 5), rng.integers(0, width, 5)
    out[ys, xs] = np.asarray(values, dtype=dtype)[rng.integers(0, len(values), 5)]
    return out


def voc_palette() -> list[int]:
    """The VOC devkit's colour map (``VOClabelcolormap.m``), 256 RGB triples flattened."""
    palette = []
    for index in range(256):
        r = g = b = 0
        c = index
        for shift in range(7, -1, -1):
            r |= ((c >> 0) & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        palette += [r, g, b]
    return palette


def write_palette_png(path: Path, labels: np.ndarray) -> None:
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(voc_palette())
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)


def write_gray_png(path: Path, labels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(labels).save(path)  # uint8 -> "L", uint16 -> "I;16"


def write_mask_folders(
    root: Path,
    split: str = "train",
    *,
    values: tuple[int, ...] = (0, 1, 2, 255),
    mask_suffix: str = "",
    images_dir: str = "images",
    masks_dir: str = "masks",
) -> dict[str, np.ndarray]:
    """``root/{images_dir}/{split}/`` with a.jpg (30x40), sub/b.png (24x20) and c.png (36x28)
    and their masks ``root/{masks_dir}/{split}/<name>{mask_suffix}.png``: a.png gray, sub/b.png
    palette, c.png 16-bit. Returns ``{relative name without extension: stored label map}``."""
    files = {"a": (".jpg", 30, 40), "sub/b": (".png", 24, 20), "c": (".png", 36, 28)}
    written = {}
    for k, (name, (suffix, height, width)) in enumerate(files.items()):
        write_rgb(root / images_dir / split / f"{name}{suffix}", height, width, seed=k)
        labels = label_map(height, width, values, seed=k)
        mask = root / masks_dir / split / f"{name}{mask_suffix}.png"
        if name == "sub/b":
            write_palette_png(mask, labels)
        elif name == "c":
            write_gray_png(mask, labels.astype(np.uint16))
        else:
            write_gray_png(mask, labels)
        written[name] = labels
    return written


VOC_NAMES = {"train": ("2007_000032", "2007_000039"), "val": ("2007_000033",)}


def write_voc_segmentation(root: Path, splits: tuple[str, ...] = ("train", "val")) -> Path:
    """``root/VOC2012/`` with ImageSets/Segmentation/{split}.txt, JPEGImages/*.jpg and
    SegmentationClass/*.png (palette PNGs: background 0, person 15, aeroplane 1, void 255).
    Returns the VOC2012 folder."""
    base = root / "VOC2012"
    (base / "ImageSets" / "Segmentation").mkdir(parents=True, exist_ok=True)
    for split in splits:
        names = VOC_NAMES[split]
        (base / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(names) + "\n")
        for k, name in enumerate(names):
            height, width = 32 + 4 * k, 44 - 2 * k
            write_rgb(base / "JPEGImages" / f"{name}.jpg", height, width, seed=k)
            write_palette_png(
                base / "SegmentationClass" / f"{name}.png",
                label_map(height, width, (0, 15, 255, 1), seed=k),
            )
    return base


# Cityscapes label ids in the fake masks: unlabeled 0, road 7, parking 9, car 26, person 24,
# bicycle 33; their train ids are 255, 0, 255, 13, 11, 18.
CITYSCAPES_IDS = (0, 7, 9, 26, 24, 33)


def write_cityscapes(root: Path, split: str = "train") -> dict[str, np.ndarray]:
    """``root/leftImg8bit/{split}/<city>/<name>_leftImg8bit.png`` and ``root/gtFine/{split}/
    <city>/<name>_gtFine_labelIds.png`` (plus the color and instance files the real set has);
    two cities. Returns ``{"<city>/<name>": labelIds}``."""
    written = {}
    names = (
        "aachen/aachen_000000_000019",
        "aachen/aachen_000001_000019",
        "bremen/bremen_000000_000019",
    )
    for k, name in enumerate(names):
        height, width = 32, 64
        write_rgb(root / "leftImg8bit" / split / f"{name}_leftImg8bit.png", height, width, seed=k)
        labels = label_map(height, width, CITYSCAPES_IDS, seed=k)
        gt = root / "gtFine" / split / f"{name}_gtFine"
        write_gray_png(Path(f"{gt}_labelIds.png"), labels)
        write_gray_png(Path(f"{gt}_instanceIds.png"), labels.astype(np.uint16) * 1000)
        Image.fromarray(np.zeros((height, width, 3), dtype=np.uint8)).save(f"{gt}_color.png")
        Path(f"{gt}_polygons.json").write_text("{}")
        written[name] = labels
    return written


def write_ade20k(root: Path, split: str = "training") -> dict[str, np.ndarray]:
    """``root/images/{split}/ADE_*.jpg`` and ``root/annotations/{split}/ADE_*.png`` (gray, 0
    unlabelled, 1 wall, 150 flag). Returns ``{name: stored labels}``."""
    kind = "train" if split == "training" else "val"
    written = {}
    for k in range(2):
        name = f"ADE_{kind}_{k + 1:08d}"
        height, width = 30 + 6 * k, 40
        write_rgb(root / "images" / split / f"{name}.jpg", height, width, seed=k)
        labels = label_map(height, width, (0, 1, 2, 150), seed=k)
        write_gray_png(root / "annotations" / split / f"{name}.png", labels)
        written[name] = labels
    return written


def _square(x0: float, y0: float, x1: float, y1: float) -> list[list[float]]:
    return [[x0, y0, x1, y0, x1, y1, x0, y1]]


def coco_semantic_dict() -> dict:
    """One 20 x 16 image: a dog and a cat overlapping, two overlapping persons, a crowd region
    (uncompressed RLE, column 0) and an image without annotations; category ids 5 (person),
    9 (cat), 2 (dog): contiguous order dog, person, cat -> labels 1, 2, 3."""
    crowd = {"counts": [0, 16, 16 * 19], "size": [16, 20]}  # column x = 0
    anns = [
        (1, 2, _square(2, 2, 8, 8), 0),  # dog
        (2, 9, _square(6, 6, 12, 12), 0),  # cat, overlaps the dog in x, y in [6, 8)
        (3, 5, _square(13, 1, 17, 5), 0),  # person
        (4, 5, _square(15, 3, 19, 7), 0),  # person, overlaps the other person
        (5, 9, crowd, 1),  # crowd of cats
    ]
    return {
        "images": [
            {"id": 1, "file_name": "x.png", "width": 20, "height": 16},
            {"id": 2, "file_name": "y.png", "width": 10, "height": 6},
        ],
        "categories": [
            {"id": 5, "name": "person"}, {"id": 9, "name": "cat"}, {"id": 2, "name": "dog"}
        ],
        "annotations": [
            {"id": i, "image_id": 1, "category_id": c, "segmentation": s, "iscrowd": crowd_,
             "bbox": [0, 0, 1, 1], "area": 1}
            for i, c, s, crowd_ in anns
        ],
    }  # fmt: skip


def write_coco_semantic(root: Path, split: str) -> dict:
    """``root/annotations/instances_{split}.json`` holding :func:`coco_semantic_dict` and its
    images under ``root/{split}/`` (COCO's layout)."""
    return write_coco(root, split, coco_semantic_dict())


# torchvision's VOC categories among COCO's ids, in VOC order (conf/data/segmentation/coco_voc)
COCO_VOC_IDS = (5, 2, 16, 9, 44, 6, 3, 17, 62, 21, 67, 18, 19, 4, 1, 64, 20, 63, 7, 72)


def coco_voc_dict() -> dict:
    """COCO ids of the 20 VOC categories plus a non-VOC one (90); three images: x.png (48x40)
    with an aeroplane (COCO id 5) of 1280 px, y.png (40x40) with a bicycle (2) of 1080 px and a
    toothbrush (90), z.png (20x20) with a 100 px person (1): below torchvision's 1000 px, so it
    leaves the training split."""
    anns = [
        (1, 1, 5, (4, 4, 44, 36)),
        (2, 2, 2, (2, 2, 32, 38)),
        (3, 2, 90, (30, 30, 38, 38)),
        (4, 3, 1, (5, 5, 15, 15)),
    ]
    return {
        "images": [
            {"id": 1, "file_name": "x.png", "width": 48, "height": 40},
            {"id": 2, "file_name": "y.png", "width": 40, "height": 40},
            {"id": 3, "file_name": "z.png", "width": 20, "height": 20},
        ],
        "categories": [{"id": c, "name": f"voc_{c}"} for c in COCO_VOC_IDS]
        + [{"id": 90, "name": "toothbrush"}],
        "annotations": [
            {"id": i, "image_id": image, "category_id": c, "segmentation": _square(*box),
             "iscrowd": 0, "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]],
             "area": (box[2] - box[0]) * (box[3] - box[1])}
            for i, image, c, box in anns
        ],
    }  # fmt: skip


def write_coco_voc(root: Path, split: str) -> dict:
    """COCO files of :func:`coco_voc_dict` for ``split`` in COCO's layout under ``root``."""
    return write_coco(root, split, coco_voc_dict())
