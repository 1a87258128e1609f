"""``cvbench score task=restoration``: PSNR and SSIM of a folder of restored images against a
folder of ground-truth images, per image and the mean over images, with the protocol of
``cvbench.metrics.restoration`` (BasicSR's ``calculate_psnr`` / ``calculate_ssim``: 8-bit
rounding, ``crop_border``, Y of BT.601 or RGB).

Both folders hold image files (``IMAGE_SUFFIXES``: PNG, JPEG, BMP, TIFF, WebP) directly inside
(sub-folders are not read), matched by file name, extension included. Images are read as 8-bit
RGB: gray ones are repeated to three channels, alpha is dropped; 16-bit and float images are
refused rather than silently truncated. Pixels are scored as stored (no EXIF rotation).

A composition of the two bottom layers, so it lives above both: ``cvbench.data`` reads the
images, ``cvbench.metrics.restoration`` scores them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from cvbench.cli.folders import FolderKind, matched_names
from cvbench.data.formats.images import read_rgb
from cvbench.data.formats.masks import IMAGE_SUFFIXES
from cvbench.metrics.restoration import RestorationMetric

__all__ = ["IMAGES", "score_image_folders"]


IMAGES = FolderKind(
    task="restoration",
    suffixes=IMAGE_SUFFIXES,
    files="images",
    described=f"image files ({', '.join(IMAGE_SUFFIXES)})",
    prediction="output",
)


def _as_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float64 in [0, 1] (exact: rounding gives back the bytes)."""
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].double() / 255.0


def score_image_folders(
    gt: Path, pred: Path, *, color: Literal["y", "rgb"] = "y", crop_border: int = 0
) -> dict[str, Any]:
    """Per-image and mean PSNR (dB) and SSIM of a folder of outputs against the ground truth.

    Args:
        gt: folder of ground-truth 8-bit images (PNG, JPEG, BMP, TIFF, WebP directly inside).
        pred: folder of outputs, the same file names (extension included), each of its ground
            truth's size.
        color: score the Y of BT.601 YCbCr (y, the SR papers') or RGB.
        crop_border: pixels removed from each side before scoring (SR papers: the scale).

    Returns:
        ``psnr``, ``ssim`` (means over images; PSNR ``inf`` when every image is identical),
        ``num_images``, ``color``, ``crop_border`` and ``per_image``: ``[{name, psnr, ssim}]``
        sorted by name.

    Raises:
        FileNotFoundError, ValueError: a missing folder or file, an extra file, a size
            mismatch, an unreadable or 16-bit image, an image too small for ``crop_border`` or
            the SSIM window; naming the file.
    """
    if crop_border < 0:
        raise ValueError(f"crop_border={crop_border}: expected 0 or more")
    metric = RestorationMetric(color=color, crop_border=crop_border)
    names = matched_names(gt, pred, IMAGES)
    for index, name in enumerate(names):
        target = read_rgb(gt / name)
        output = read_rgb(pred / name)
        if output.shape != target.shape:
            raise ValueError(
                f"{pred / name}: output is {output.shape[0]}x{output.shape[1]} (HxW) but ground "
                f"truth {gt / name} is {target.shape[0]}x{target.shape[1]}; save outputs at "
                "the ground truth's size"
            )
        try:
            metric.update(_as_tensor(output), _as_tensor(target), torch.tensor([index]))
        except ValueError as err:
            message = str(err).removeprefix("RestorationMetric: ")
            raise ValueError(f"{pred / name}: {message} (crop_border={crop_border})") from None
    means = metric.compute()
    return {
        **means,
        "color": color,
        "crop_border": crop_border,
        "per_image": [
            {"name": names[row["index"]], "psnr": row["psnr"], "ssim": row["ssim"]}
            for row in metric.last_per_image
        ],
    }
