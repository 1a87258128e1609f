"""Hole masks for inpainting: random boxes and free-form brush strokes.

The strokes follow the free-form masks of Yu et al., "Free-Form Image Inpainting with Gated
Convolution" (DeepFill v2, ICCV 2019): a few polylines of random vertices, angles, lengths and
brush widths, drawn with round joints. Sizes are in pixels, not fractions of the image, so the
holes of whole test images are the size of those the network learned on training crops.
Written here because neither albumentations nor torchvision makes inpainting masks
(albumentations' ``CoarseDropout`` only cuts boxes).
"""

from __future__ import annotations

import cv2
import numpy as np

Range = tuple[float, float]


def random_boxes(mask: np.ndarray, rng: np.random.Generator, *, count: int, size: Range) -> None:
    """Set ``count`` random rectangles of ``mask`` (H, W) uint8 to 1, in place.

    Each side is drawn in ``size`` = (min, max) pixels (at most the image's side).
    """
    h, w = mask.shape
    for _ in range(count):
        bh = int(np.clip(rng.uniform(*size), 1, h))
        bw = int(np.clip(rng.uniform(*size), 1, w))
        top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        mask[top : top + bh, left : left + bw] = 1


def random_strokes(
    mask: np.ndarray,
    rng: np.random.Generator,
    *,
    count: int,
    width: Range,
    length: Range,
    vertices: tuple[int, int] = (4, 10),
) -> None:
    """Draw ``count`` free-form strokes into ``mask`` (H, W) uint8 as 1, in place.

    Args:
        mask: the mask to draw into.
        rng: the random source.
        count: number of strokes.
        width: (min, max) brush width in pixels.
        length: (min, max) length of each segment in pixels.
        vertices: (min, max) vertices of a stroke's polyline.
    """
    h, w = mask.shape
    for _ in range(count):
        x, y = float(rng.uniform(0, w)), float(rng.uniform(0, h))
        brush = max(1, int(rng.uniform(*width)))
        angle = rng.uniform(0, 2 * np.pi)
        for _ in range(int(rng.integers(vertices[0], vertices[1] + 1))):
            angle += rng.uniform(-np.pi / 3, np.pi / 3)
            step = rng.uniform(*length)
            nx = float(np.clip(x + step * np.cos(angle), 0, w - 1))
            ny = float(np.clip(y + step * np.sin(angle), 0, h - 1))
            cv2.line(mask, (int(x), int(y)), (int(nx), int(ny)), 1, brush)
            cv2.circle(mask, (int(nx), int(ny)), brush // 2, 1, -1)
            x, y = nx, ny


def hole_mask(
    height: int,
    width: int,
    rng: np.random.Generator,
    *,
    max_boxes: int = 2,
    max_strokes: int = 3,
    box_size: Range = (12, 48),
    stroke_width: Range = (5, 15),
    stroke_length: Range = (8, 32),
    max_fraction: float = 0.5,
) -> np.ndarray:
    """A random hole mask of boxes and strokes, never empty, covering at most ``max_fraction``.

    Args:
        height, width: the image's size.
        rng: the random source (seed it per image for a fixed test set).
        max_boxes: up to this many boxes (0..max_boxes, drawn at random).
        max_strokes: up to this many strokes (at least one shape overall).
        box_size: (min, max) box side in pixels.
        stroke_width: (min, max) brush width in pixels.
        stroke_length: (min, max) length of a stroke's segments in pixels.
        max_fraction: masks covering more of the image are drawn again.

    Returns:
        (H, W) bool, True where the pixel is missing.

    >>> m = hole_mask(64, 48, np.random.default_rng(0))
    >>> m.shape, m.dtype, bool(0 < m.mean() <= 0.5)
    ((64, 48), dtype('bool'), True)
    """
    while True:
        mask = np.zeros((height, width), dtype=np.uint8)
        boxes = int(rng.integers(0, max_boxes + 1))
        strokes = int(rng.integers(0 if boxes else 1, max_strokes + 1))
        random_boxes(mask, rng, count=boxes, size=box_size)
        random_strokes(mask, rng, count=strokes, width=stroke_width, length=stroke_length)
        if 0 < mask.mean() <= max_fraction:
            return mask.astype(bool)
