"""Shape scenes as a small "labels -> photo" dataset (pix2pix's facades and cityscapes tasks,
Isola et al., 2017) and as two unpaired colour domains (CycleGAN, Zhu et al., 2017): the
embedded data of image-to-image translation. Nothing is downloaded.

A scene is a label map: background (0) and one to three circles (1), squares (2), triangles
(3) and rings (4), the outlines and rasterization of :mod:`cvbench.data.embedded.shapes`. Its
"photo" has a muted, textured, shaded background and each object filled with its class's hue
(a little jitter of hue, saturation and brightness, shading and noise), so a generator can learn
labels -> photo and a segmenter of the photos tells the classes by shape and hue.

- :func:`shape_pairs`: source A = the label map in the flat colours of :data:`PALETTE` (as
  facades' label images), target B = the photo (:data:`PHOTO_HUES`), and the label map itself,
  written once in pix2pix's layout ``shape_pairs-<hash>/{split}/{A,B,labels}/000001.png`` and
  read back by :func:`~cvbench.data.formats.paired_images.pix2pix_images`.
- :func:`shapes_unpaired`: photos of other scenes in warm hues (domain A) and in cool hues
  (domain B), written in CycleGAN's layout ``shapes_unpaired-<hash>/{train,val,test}{A,B}/``
  and read back by :func:`~cvbench.data.formats.unpaired.cyclegan_folders`.

Generation is seeded (the same parameters give byte-identical files) and atomic (a temporary
folder renamed into place), so concurrent processes never see a partial dataset.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import logging
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType

import cv2
import numpy as np
from PIL import Image

from cvbench.data.embedded.shapes import outline, raster, write_atomically
from cvbench.data.formats.paired_images import pix2pix_images
from cvbench.data.formats.unpaired import cyclegan_folders
from cvbench.data.records import PairedRecords, UnpairedRecords

log = logging.getLogger(__name__)

VERSION = 1  # bump when the generator's output changes: the folder name changes with it
SPLITS = ("train", "val", "test")
CLASSES = ("background", "circle", "square", "triangle", "ring")
PALETTE = ((0, 0, 170), (255, 85, 0), (0, 170, 255), (255, 255, 0), (170, 255, 85))
"""RGB of each class in the source label images (flat, facades-like)."""
PHOTO_HUES = (0.0, 0.33, 0.6, 0.13)  # circle red, square green, triangle blue, ring amber
WARM_HUES = (0.0, 0.07, 0.14, 0.92)  # red, orange, yellow, pink
COOL_HUES = (0.5, 0.63, 0.36, 0.75)  # cyan, blue, green, violet
PAIR_IMAGES = MappingProxyType({"train": 400, "val": 50, "test": 100})
UNPAIRED_IMAGES = MappingProxyType({"train": 300, "val": 30, "test": 60})
MAX_OVERLAP = 0.15  # share of the smaller of two objects' boxes they may share


def scene(rng: np.random.Generator, size: int) -> list[tuple[int, np.ndarray]]:
    """One to three objects as ``(class id 1..4, mask (size, size) bool)``, in painting order
    (a later one covers an earlier one). Sides (square root of the area) span 22% to 38% of
    the image."""
    objects: list[tuple[int, np.ndarray]] = []
    boxes: list[np.ndarray] = []
    for _ in range(int(rng.integers(1, 4))):
        label = int(rng.integers(1, len(CLASSES)))
        hole = float(rng.uniform(0.4, 0.55)) if CLASSES[label] == "ring" else 0.0
        side = float(rng.uniform(0.22, 0.38)) * size
        verts = outline(CLASSES[label], side, float(rng.uniform(0, 2 * math.pi)), hole)
        low, extent = verts.min(0), np.ptp(verts, axis=0)
        for corner in rng.uniform(1.0, size - 1.0 - extent, (20, 2)):
            box = np.concatenate([corner, corner + extent])
            if all(_shared(box, other) <= MAX_OVERLAP for other in boxes):
                boxes.append(box)
                objects.append((label, raster(np.round(verts - low + corner, 2), size)))
                break
    return objects


def _shared(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection of boxes ``a`` and ``b`` (x0, y0, x1, y1) over the smaller one's area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    smaller = min(np.prod(a[2:] - a[:2]), np.prod(b[2:] - b[:2]))
    return max(w, 0.0) * max(h, 0.0) / smaller


def label_map(objects: list[tuple[int, np.ndarray]], size: int) -> np.ndarray:
    """(size, size) uint8 class ids of a scene."""
    labels = np.zeros((size, size), dtype=np.uint8)
    for label, mask in objects:
        labels[mask] = label
    return labels


def photo(
    rng: np.random.Generator, objects: list[tuple[int, np.ndarray]], size: int, hues: tuple
) -> np.ndarray:
    """(size, size, 3) uint8: the scene's "photo", object class c filled in hue ``hues[c - 1]``
    (see the module docstring)."""
    base = 255.0 * np.array(
        colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.05, 0.25), rng.uniform(0.35, 0.7))
    )
    blotches = cv2.resize(rng.normal(0.0, 14.0, (4, 4, 3)).astype(np.float32), (size, size))
    image = base.astype(np.float32) + blotches
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    for label, mask in objects:
        hue = hues[label - 1] + float(np.clip(rng.normal(0.0, 0.01), -0.025, 0.025))
        colour = colorsys.hsv_to_rgb(hue % 1.0, rng.uniform(0.65, 0.95), rng.uniform(0.7, 0.95))
        light = rng.uniform(0, 2 * math.pi)  # light across the object: +-20% at its rim
        ramp = np.cos(light) * xx[mask] + np.sin(light) * yy[mask]
        shade = 1.0 + 1.2 * (ramp - ramp.mean())
        image[mask] = 255.0 * np.asarray(colour, np.float32) * shade[:, None]
    angle = rng.uniform(0, 2 * math.pi)  # light across the whole scene
    image *= (1.0 + 0.3 * (np.cos(angle) * xx + np.sin(angle) * yy))[..., None]
    grain = cv2.resize(
        rng.normal(0.0, 8.0, (size // 4, size // 4)).astype(np.float32), (size, size)
    )
    image += grain[..., None] + rng.normal(0.0, 3.0, image.shape).astype(np.float32)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _folder(root: str, kind: str, params: dict) -> Path:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
    return Path(root).expanduser() / f"{kind}-{digest}"


def _params(num_images: Mapping[str, int], image_size: int, seed: int) -> dict:
    counts = {k: int(v) for k, v in sorted(dict(num_images).items())}
    if set(counts) != set(SPLITS) or any(n < 1 for n in counts.values()):
        raise ValueError(f"num_images={counts}: expected a count >= 1 for each of {SPLITS}")
    if image_size < 32:
        raise ValueError(f"image_size={image_size}: expected at least 32 pixels")
    return {"version": VERSION, "num_images": counts, "image_size": int(image_size),
            "seed": int(seed)}  # fmt: skip


def _generate(folder: Path, write: Callable[[Path], None]) -> None:
    """``write`` the dataset into ``folder`` unless it is there (atomic)."""
    if not folder.is_dir():
        write_atomically(folder, write)


def _save(array: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, compress_level=1)


def _write_pairs(tmp: Path, p: dict) -> None:
    size = p["image_size"]
    palette = np.asarray(PALETTE, dtype=np.uint8)
    for split_index, split in enumerate(SPLITS):
        for k in range(p["num_images"][split]):
            rng = np.random.default_rng([p["seed"], 0, split_index, k])
            objects = scene(rng, size)
            labels = label_map(objects, size)
            name = f"{k + 1:06d}.png"
            _save(palette[labels], tmp / split / "A" / name)
            _save(photo(rng, objects, size, PHOTO_HUES), tmp / split / "B" / name)
            _save(labels, tmp / split / "labels" / name)


def _write_unpaired(tmp: Path, p: dict) -> None:
    size = p["image_size"]
    for split_index, split in enumerate(SPLITS):
        for domain, (stream, hues) in {"A": (1, WARM_HUES), "B": (2, COOL_HUES)}.items():
            for k in range(p["num_images"][split]):
                rng = np.random.default_rng([p["seed"], stream, split_index, k])
                image = photo(rng, scene(rng, size), size, hues)
                _save(image, tmp / f"{split}{domain}" / f"{k + 1:06d}.png")


def shape_pairs(
    split: str,
    *,
    root: str,
    num_images: Mapping[str, int] = PAIR_IMAGES,
    image_size: int = 64,
    seed: int = 0,
    direction: str = "AtoB",
) -> PairedRecords:
    """One split of the label map -> photo pairs, generated on first use.

    Args:
        split: "train", "val" or "test".
        root: folder that holds (or will hold) ``shape_pairs-<hash>/``.
        num_images: pairs per split.
        image_size: side of the square images, pixels (>= 32).
        seed: seed of everything; the same parameters give byte-identical files.
        direction: "AtoB" (label image -> photo) or "BtoA".

    Returns:
        pix2pix records with label maps (class ids of :data:`CLASSES`).
    """
    params = _params(num_images, image_size, seed)
    folder = _folder(root, "shape_pairs", params)
    _generate(folder, lambda tmp: _write_pairs(tmp, params))
    return pix2pix_images(split, root=str(folder), direction=direction, labels_dir="labels")


def shapes_unpaired(
    split: str,
    *,
    root: str,
    num_images: Mapping[str, int] = UNPAIRED_IMAGES,
    image_size: int = 64,
    seed: int = 0,
) -> UnpairedRecords:
    """One split of the two colour domains (warm A, cool B; other scenes in each), generated
    on first use.

    Args:
        split: "train", "val" or "test".
        root: folder that holds (or will hold) ``shapes_unpaired-<hash>/``.
        num_images: images per split and domain.
        image_size: side of the square images, pixels (>= 32).
        seed: seed of everything; the same parameters give byte-identical files.

    Returns:
        CycleGAN records (``a``, ``b``) read from ``{split}A`` and ``{split}B``.
    """
    params = _params(num_images, image_size, seed)
    folder = _folder(root, "shapes_unpaired", params)
    _generate(folder, lambda tmp: _write_unpaired(tmp, params))
    return cyclegan_folders(split, root=str(folder))
