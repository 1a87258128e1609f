"""Shapes: a generated detection dataset of filled circles, squares, triangles and rings.

In the spirit of the "shapes" toy set of the Mask R-CNN tutorials (matterport), written as a
real COCO instances dataset (https://cocodataset.org/#format-data) so that the COCO reader
reads it back and pycocotools scores it. Nothing is downloaded: the first call generates all
splits into ``root/shapes-<hash of the parameters>/`` (``annotations/instances_{split}.json``
and ``{split}/000001.png``); later calls, in any process, read them.

Every object is a polygon, drawn filled in a random saturated colour on a muted, noisy
textured background and stored as its COCO ``segmentation`` (a ring is one "keyhole" polygon:
outer circle, a zero-width cut, inner circle backwards). ``area`` is the pixel count of the
polygon's mask as pycocotools rasterizes it (COCO's definition; also exactly the painted pixels)
and ``bbox`` the polygon's tight box. Object sizes span COCO's small (area < 32^2), medium and
large (> 96^2) ranges. Larger objects are drawn first; a later one may cover at most 25% (40% in
crowded images) of an earlier one's box. Crowded images hold more objects, clustered, and
sometimes one ``iscrowd`` region: a cluster of tiny shapes of one class with an uncompressed
RLE mask, which COCO metrics ignore and training skips.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import MappingProxyType

import cv2
import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from cvbench.data.formats.coco import coco_instances
from cvbench.data.records import ObjectRecords

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
CLASSES = ("circle", "square", "triangle", "ring")
VERSION = 2  # bump when the generator's output changes: the folder name changes with it
NUM_IMAGES = MappingProxyType({"train": 2000, "val": 200, "test": 300})
SIZE_RANGES = ((12.0, 32.0), (32.0, 96.0), (96.0, math.inf))  # sqrt(area): small, medium, large
# Small objects start at 12 px: below that a ring, a circle and a square are a few pixels apart.
SIZE_PROBS = {False: (0.4, 0.4, 0.2), True: (0.7, 0.3, 0.0)}  # by crowded
MAX_COVER = {False: 0.25, True: 0.4}  # share of an object's box later objects may cover
CROWD_REGION_PROB = 0.3  # share of crowded images with an iscrowd region
MARGIN = 1.0  # pixels kept free at the image border
# Widest side of the upright shape of area 1 (a ring: 2 / sqrt(pi (1 - hole^2))).
EXTENT = {"circle": 2 / math.sqrt(math.pi), "square": 1.0, "triangle": math.sqrt(4 / math.sqrt(3))}


def shapes(
    split: str,
    *,
    root: str,
    num_images: Mapping[str, int] = NUM_IMAGES,
    image_size: int = 128,
    min_objects: int = 0,
    max_objects: int = 8,
    empty_fraction: float = 0.05,
    crowded_fraction: float = 0.1,
    seed: int = 0,
) -> ObjectRecords:
    """One split of the shapes dataset, generated on first use.

    Image kinds are exact shares of each split: ``round(empty_fraction * n)`` images without
    objects, ``round(crowded_fraction * n)`` crowded ones, the rest normal. A normal image holds
    ``max(min_objects, 1)`` to ``max(min_objects, 1, ceil(max_objects / 2))`` objects, a crowded
    one the count above that up to ``max_objects`` (plus, in 30% of them, one crowd region).
    These are upper bounds: an object with no free place among 40 random ones is left out
    (about 1 in 6 of the objects by default). With ``min_objects = max_objects = 1`` and both
    fractions 0, every image has exactly one object.

    Args:
        split: "train", "val" or "test" (a key of ``num_images``).
        root: folder that holds (or will hold) ``shapes-<hash>/``.
        num_images: images per split.
        image_size: side of the square RGB images, pixels (>= 32).
        min_objects: fewest objects in an image that is not one of the empty ones.
        max_objects: most objects in an image (not counting crowd regions).
        empty_fraction: share of images without objects.
        crowded_fraction: share of crowded images.
        seed: seed of everything; the same parameters give byte-identical files.

    Returns:
        records read back with :func:`~cvbench.data.formats.coco.coco_instances`; classes
        ``CLASSES`` with category ids 1..4, image ids 1..n.
    """
    params = {
        "version": VERSION,
        "num_images": {k: int(v) for k, v in sorted(dict(num_images).items())},
        "image_size": int(image_size),
        "min_objects": int(min_objects),
        "max_objects": int(max_objects),
        "empty_fraction": float(empty_fraction),
        "crowded_fraction": float(crowded_fraction),
        "seed": int(seed),
    }
    _check(split, params)
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    folder = Path(root).expanduser() / f"shapes-{digest}"
    if not folder.is_dir():
        _generate(folder, params)
    return coco_instances(str(folder), split)


def _check(split: str, p: dict) -> None:
    if split not in p["num_images"]:
        raise ValueError(f"shapes has splits {sorted(p['num_images'])} (num_images), got {split!r}")
    if any(s not in SPLITS or n < 0 for s, n in p["num_images"].items()):
        raise ValueError(f"num_images={p['num_images']}: expected counts >= 0 for {SPLITS}")
    if p["image_size"] < 32:
        raise ValueError(f"image_size={p['image_size']}: expected at least 32 pixels")
    if not 0 <= p["min_objects"] <= p["max_objects"] or p["max_objects"] < 1:
        raise ValueError(
            f"min_objects={p['min_objects']}, max_objects={p['max_objects']}: expected "
            f"0 <= min_objects <= max_objects and max_objects >= 1"
        )
    fractions = (p["empty_fraction"], p["crowded_fraction"])
    if not (all(0 <= f <= 1 for f in fractions) and sum(fractions) <= 1):
        raise ValueError(
            f"empty_fraction={fractions[0]}, crowded_fraction={fractions[1]}: expected shares "
            f"in [0, 1] whose sum is at most 1"
        )


def write_atomically(folder: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` into a temporary folder beside ``folder``, then rename it to ``folder``
    (atomic: a reader sees the whole dataset or none; another process finishing first wins)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    log.info("generating %s", folder)
    try:
        write(tmp)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not folder.is_dir():
                raise  # not another process that finished first
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _generate(folder: Path, params: dict) -> None:
    """Write every split of the shapes dataset ``params`` into ``folder`` (atomic)."""

    def write(tmp: Path) -> None:
        for split_index, split in enumerate(SPLITS):
            if split in params["num_images"]:
                coco = _write_split(tmp, split, split_index, params)
                (tmp / "annotations").mkdir(exist_ok=True)
                text = json.dumps(coco, separators=(",", ":"))
                (tmp / "annotations" / f"instances_{split}.json").write_text(text)

    write_atomically(folder, write)


def _write_split(tmp: Path, split: str, split_index: int, p: dict) -> dict:
    n, size, seed = p["num_images"][split], p["image_size"], p["seed"]
    (tmp / split).mkdir()
    kinds = np.zeros(n, dtype=np.int64)  # 0 normal, 1 empty, 2 crowded
    order = np.random.default_rng([seed, split_index]).permutation(n)
    n_empty, n_crowded = round(p["empty_fraction"] * n), round(p["crowded_fraction"] * n)
    kinds[order[:n_empty]] = 1
    kinds[order[n_empty : n_empty + n_crowded]] = 2
    low = max(p["min_objects"], 1)
    normal_high = max(low, math.ceil(p["max_objects"] / 2))
    crowded_low = max(low, min(normal_high + 1, p["max_objects"]))
    counts = {0: (low, normal_high), 1: (0, 0), 2: (crowded_low, p["max_objects"])}  # by kind
    images, annotations, saved = [], [], []
    with ThreadPoolExecutor(2) as writer:  # PNG encoding releases the GIL
        for k in range(n):
            rng = np.random.default_rng([seed, split_index, k])
            count = int(rng.integers(counts[kinds[k]][0], counts[kinds[k]][1] + 1))
            pixels, objects = _image(rng, size, count, bool(kinds[k] == 2))
            image_id = k + 1
            file_name = f"{image_id:06d}.png"
            path = tmp / split / file_name
            saved.append(writer.submit(Image.fromarray(pixels).save, path, compress_level=1))
            if len(saved) > 32:
                saved.pop(0).result()  # a bounded backlog; raises a write error here
            images.append({"id": image_id, "file_name": file_name, "width": size, "height": size})
            for obj in objects:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, **obj})
    for future in saved:
        future.result()
    categories = [
        {"id": c + 1, "name": name, "supercategory": "shape"} for c, name in enumerate(CLASSES)
    ]
    info = {"description": "cvbench shapes (generated)", "parameters": p}
    return {"info": info, "images": images, "annotations": annotations, "categories": categories}


def _image(
    rng: np.random.Generator, size: int, count: int, crowded: bool
) -> tuple[np.ndarray, list[dict]]:
    """(pixels (size, size, 3) uint8, annotations without id and image_id) of one image."""
    base = rng.uniform(70.0, 170.0, 3) * rng.uniform(0.85, 1.0) + rng.uniform(0.0, 20.0)
    blotches = rng.normal(0.0, 18.0, (4, 4, 3)).astype(np.float32)
    image = base.astype(np.float32) + cv2.resize(blotches, (size, size))
    placed: list[list[float]] = []  # x0, y0, x1, y1 and the area later objects cover
    annotations = []
    if crowded and rng.random() < CROWD_REGION_PROB:
        annotations.append(_crowd_region(rng, image))
        x, y, w, h = annotations[0]["bbox"]
        placed.append([x, y, x + w, y + h, 0.0])
    objects = [_sample_object(rng, size, crowded) for _ in range(count)]
    centre = rng.uniform(0.3 * size, 0.7 * size, 2) if crowded else None
    for _, label, outline in sorted(objects, key=lambda o: -o[0]):  # smaller ones on top
        verts = _place(rng, outline, size, placed, MAX_COVER[crowded], centre)
        if verts is None:
            continue
        (x0, y0), (x1, y1) = verts.min(0), verts.max(0)
        mask = raster(verts, size)
        rows = slice(max(int(y0) - 1, 0), math.ceil(y1) + 1)
        cols = slice(max(int(x0) - 1, 0), math.ceil(x1) + 1)
        _paint(rng, image[rows, cols], mask[rows, cols])
        annotations.append(
            {
                "category_id": label + 1,
                "bbox": [round(float(v), 2) for v in (x0, y0, x1 - x0, y1 - y0)],
                "area": int(mask.sum()),
                "iscrowd": 0,
                "segmentation": [verts.ravel().tolist()],
            }
        )
    grain = rng.normal(0.0, 8.0, (size // 4, size // 4)).astype(np.float32)
    image += cv2.resize(grain, (size, size))[..., None]  # texture over objects and background
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), annotations


def outline(name: str, side: float, theta: float, hole: float) -> np.ndarray:
    """(N, 2) vertices centred on 0 of a shape of area about ``side ** 2``, rotated by theta."""
    if name in ("circle", "ring"):
        r = side / math.sqrt(math.pi * (1.0 - hole**2))
        n = int(np.clip(math.ceil(2 * math.pi * r / 3), 12, 48))  # a vertex every ~3 px
        t = theta + np.arange(n) * (2 * math.pi / n)
        outer = r * np.stack([np.cos(t), np.sin(t)], 1)
        if name == "circle":
            return outer
        inner = hole * outer  # keyhole: outer loop, cut in, inner loop backwards, cut out
        return np.concatenate([outer, outer[:1], inner[:1], inner[::-1]])
    if name == "square":
        corners = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]) * side
    else:  # equilateral triangle of side a = side * EXTENT["triangle"], apex up at theta = 0
        t = -math.pi / 2 + np.arange(3) * (2 * math.pi / 3)
        corners = side * EXTENT["triangle"] / math.sqrt(3) * np.stack([np.cos(t), np.sin(t)], 1)
    c, s = math.cos(theta), math.sin(theta)
    return corners @ np.array([[c, s], [-s, c]])


def _sample_object(rng: np.random.Generator, size: int, crowded: bool) -> tuple:
    """(sqrt(area), class index, vertices centred on 0); sqrt(area) drawn from SIZE_RANGES."""
    label = int(rng.integers(len(CLASSES)))
    name = CLASSES[label]
    hole = float(rng.uniform(0.35, 0.55)) if name == "ring" else 0.0
    extent = 2 / math.sqrt(math.pi * (1 - hole**2)) if name == "ring" else EXTENT[name]
    room = size - 2 * MARGIN
    bin_ = int(rng.choice(3, p=SIZE_PROBS[crowded]))
    while bin_ > 0 and SIZE_RANGES[bin_][0] * extent >= room:
        bin_ -= 1  # e.g. no triangle is large at 128 px: a medium one instead
    low, high = SIZE_RANGES[bin_]
    side = float(rng.uniform(low, min(high, room / extent)))
    verts = outline(name, side, float(rng.uniform(0, 2 * math.pi)), hole)
    if np.ptp(verts, axis=0).max() > room:  # fits upright only
        verts = outline(name, side, 0.0, hole)
    return side, label, verts


def _place(
    rng: np.random.Generator,
    outline: np.ndarray,
    size: int,
    placed: list[list[float]],
    max_cover: float,
    centre: np.ndarray | None,
) -> np.ndarray | None:
    """Vertices moved into the image (rounded to 0.01 px) at the first of 40 random positions
    (the first 20 around ``centre`` if given) where later objects cover at most ``max_cover``
    of each earlier box; None if there is none. Updates ``placed``."""
    low = outline.min(0)
    extent = outline.max(0) - low
    high = size - MARGIN - extent
    corners = rng.uniform(MARGIN, high, (40, 2))
    if centre is not None:
        near = centre - extent / 2 + rng.normal(0.0, size / 6, (20, 2))
        corners[:20] = np.clip(near, MARGIN, high)
    choice, overlaps = 0, np.zeros((1, 0))
    if placed:
        boxes = np.array(placed)  # (P, 5): x0, y0, x1, y1, area covered so far
        x0, y0 = corners[:, :1], corners[:, 1:]
        w = np.minimum(x0 + extent[0], boxes[:, 2]) - np.maximum(x0, boxes[:, 0])
        h = np.minimum(y0 + extent[1], boxes[:, 3]) - np.maximum(y0, boxes[:, 1])
        overlaps = w.clip(0) * h.clip(0)  # (40, P)
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        fits = (boxes[:, 4] + overlaps <= max_cover * areas).all(1)
        if not fits.any():
            return None
        choice = int(np.argmax(fits))
    for box, overlap in zip(placed, overlaps[choice].tolist(), strict=True):
        box[4] += overlap
    x, y = corners[choice].tolist()
    placed.append([x, y, x + extent[0], y + extent[1], 0.0])
    return np.round(outline - low + corners[choice], 2)


def raster(verts: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool: the polygon rasterized by pycocotools, i.e. COCO's mask of it."""
    rle = mask_utils.merge(mask_utils.frPyObjects([verts.ravel().tolist()], size, size))
    return mask_utils.decode(rle).astype(bool)


def _paint(rng: np.random.Generator, region: np.ndarray, mask: np.ndarray) -> None:
    """Fill ``mask`` of ``region`` with a saturated colour that stands out from what is under it."""
    under = region[mask].mean(0) if mask.any() else np.full(3, 128.0)
    best, best_gap = under, -1.0
    for _ in range(6):
        hsv = (rng.random(), rng.uniform(0.6, 1.0), rng.uniform(0.55, 1.0))
        colour = 255.0 * np.array(colorsys.hsv_to_rgb(*hsv))
        gap = float(np.abs(colour - under).sum())
        if gap > best_gap:
            best, best_gap = colour, gap
        if gap >= 120:
            break
    region[mask] = best


def _crowd_region(rng: np.random.Generator, image: np.ndarray) -> dict:
    """Paint a cluster of 8-15 tiny shapes of one class; its iscrowd=1 annotation (RLE mask)."""
    size = image.shape[0]
    label = int(rng.integers(len(CLASSES)))
    span = rng.uniform(0.15, 0.28) * size
    corner = rng.uniform(MARGIN + 7, size - MARGIN - 7 - span, 2)
    union = np.zeros((size, size), dtype=bool)
    for _ in range(int(rng.integers(8, 16))):
        hole = 0.4 if CLASSES[label] == "ring" else 0.0
        verts = outline(CLASSES[label], rng.uniform(4.0, 7.0), rng.uniform(0, 6.3), hole)
        mask = raster(np.round(verts + corner + rng.uniform(0, span, 2), 2), size)
        _paint(rng, image, mask)
        union |= mask
    flat = union.ravel(order="F")  # COCO RLE: runs down the columns, starting with zeros
    ends = np.concatenate([np.flatnonzero(np.diff(flat)) + 1, [flat.size]])
    counts = np.diff(np.concatenate([[0], ends])).tolist()
    rows, cols = np.flatnonzero(union.any(1)), np.flatnonzero(union.any(0))
    return {
        "category_id": label + 1,
        "bbox": [int(cols[0]), int(rows[0]), int(np.ptp(cols) + 1), int(np.ptp(rows) + 1)],
        "area": int(union.sum()),
        "iscrowd": 1,
        "segmentation": {"counts": [0, *counts] if flat[0] else counts, "size": [size, size]},
    }
