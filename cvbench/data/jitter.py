"""Resizing and pix2pix's random jitter (Isola et al., 2017, section 6.2: resize to ``load_size``,
random ``crop_size`` crop, random horizontal flip), applied alike to aligned images and label
maps, as image synthesis and image-to-image translation use them.

Photos are resized with PIL's bilinear filter (antialiased when it shrinks); label maps, and
images holding flat label colours, with :func:`resize_nearest`, so a pixel keeps a value that
was there and an image and its label map stay aligned pixel for pixel.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from PIL import Image

Interpolation = Literal["bilinear", "nearest"]
INTERPOLATIONS = ("bilinear", "nearest")


def resize_nearest(array: np.ndarray, height: int, width: int) -> np.ndarray:
    """``array`` (H, W, ...) of any dtype resized to (height, width, ...) by nearest neighbour,
    pixel centres aligned: output pixel ``i`` takes input pixel ``floor((i + 0.5) * H /
    height)``. Written here because PIL and OpenCV disagree on the convention and OpenCV does
    not take int64; one function for images and label maps keeps them aligned.

    >>> resize_nearest(np.arange(4).reshape(2, 2), 4, 4).tolist()[1]
    [0, 0, 1, 1]
    """
    h, w = array.shape[:2]
    if (h, w) == (height, width):
        return array
    rows = np.minimum(((np.arange(height) + 0.5) * (h / height)).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * (w / width)).astype(np.int64), w - 1)
    return array[rows[:, None], cols[None, :]]


def resize_image(
    image: np.ndarray, height: int, width: int, interpolation: Interpolation = "bilinear"
) -> np.ndarray:
    """``image`` (H, W, C) uint8 resized to (height, width, C) uint8: PIL bilinear (rounded to
    uint8, as a saved file would hold it) or :func:`resize_nearest`."""
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    if image.shape[:2] == (height, width):
        return image
    if interpolation == "nearest":
        return resize_nearest(image, height, width)
    channels = [
        np.asarray(
            Image.fromarray(image[:, :, c]).resize((width, height), Image.Resampling.BILINEAR)
        )
        for c in range(image.shape[2])
    ]  # one mode-"L" image per channel: PIL resizes 1- and 3-channel uint8 alike
    return np.stack(channels, axis=2)


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` (H, W, C) uint8 with its short side resized (PIL bilinear) to ``size`` and
    centre-cropped to (size, size, C); a square image is simply resized.

    >>> resize_square(np.zeros((8, 16, 1), np.uint8), 4).shape
    (4, 4, 1)
    """
    h, w = image.shape[:2]
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    image = resize_image(image, new_h, new_w)
    top, left = (new_h - size) // 2, (new_w - size) // 2
    return image[top : top + size, left : left + size]


def jitter(
    arrays: Sequence[np.ndarray | None],
    interpolations: Sequence[Interpolation],
    *,
    load_size: int,
    crop_size: int,
    flip: bool,
    rng: np.random.Generator | None,
) -> list[np.ndarray | None]:
    """Aligned arrays of one size, each resized to a square, cropped and flipped alike.

    With ``rng`` (training): resized to ``load_size`` x ``load_size``, one random ``crop_size``
    crop and, when ``flip``, one horizontal flip with probability 1/2 for all. Without
    (evaluation): resized to ``crop_size`` x ``crop_size``, nothing random.

    Args:
        arrays: (H, W, C) uint8 images or (H, W) label maps of one size; None entries are
            passed through.
        interpolations: per array, "bilinear" (PIL; images only) or "nearest".
        load_size: side the training arrays are resized to (>= ``crop_size``).
        crop_size: side of the output.
        flip: random horizontal flips in training.
        rng: the sample's random stream; None for evaluation.

    Returns:
        the arrays (crop_size, crop_size[, C]), contiguous.
    """
    side = crop_size if rng is None else load_size
    top = left = 0
    mirror = False
    if rng is not None:
        top, left = (int(v) for v in rng.integers(0, load_size - crop_size + 1, 2))
        mirror = flip and bool(rng.random() < 0.5)
    out: list[np.ndarray | None] = []
    for array, interpolation in zip(arrays, interpolations, strict=True):
        if array is None:
            out.append(None)
            continue
        if array.ndim == 2:
            array = resize_nearest(array, side, side)
        else:
            array = resize_image(array, side, side, interpolation)
        array = array[top : top + crop_size, left : left + crop_size]
        out.append(np.ascontiguousarray(array[:, ::-1] if mirror else array))
    return out
