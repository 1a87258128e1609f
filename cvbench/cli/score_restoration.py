"""``cvbench score --task restoration``: PSNR and SSIM of a folder of restored images against a
folder of ground-truth images, per image and the mean over images, with the protocol of
``cvbench.metrics.restoration`` (BasicSR's ``calculate_psnr`` / ``calculate_ssim``: 8-bit
rounding, ``crop_border``, Y of BT.601 or RGB).

Both folders hold image files (``IMAGE_SUFFIXES``: PNG, JPEG, BMP, TIFF, WebP) directly inside
(sub-folders are not read), matched by file name, extension included. Images are read as 8-bit
RGB: gray ones are repeated to three channels, alpha is dropped; 16-bit and float images are
refused rather than silently truncated. Pixels are scored as stored (no EXIF rotation).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cvbench.data.formats.images import read_rgb
from cvbench.data.formats.masks import IMAGE_SUFFIXES
from cvbench.metrics.restoration import RestorationMetric

__all__ = ["image_names", "score_restoration"]


def image_names(folder: Path) -> list[str]:
    """Sorted names of the image files directly in ``folder`` (``IMAGE_SUFFIXES``, any case).

    Raises:
        FileNotFoundError: no such folder.
        ValueError: ``folder`` is a file, or holds no image.
    """
    if not folder.exists():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(folder))
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder; --task restoration scores folders of images")
    names = sorted(
        p.name for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
    )
    if not names:
        raise ValueError(
            f"{folder}: no image files ({', '.join(IMAGE_SUFFIXES)}) in this folder "
            "(sub-folders are not read)"
        )
    return names


def _matched_names(gt: Path, pred: Path) -> list[str]:
    """The file names of both folders, which must be the same; otherwise the first odd one."""
    gt_names, pred_names = image_names(gt), image_names(pred)
    missing = sorted(set(gt_names) - set(pred_names))
    if missing:
        stem = Path(missing[0]).stem
        near = [n for n in pred_names if Path(n).stem == stem]
        hint = f"; found {pred / near[0]}: names must match, extension included" if near else ""
        raise ValueError(
            f"{pred / missing[0]}: missing; every ground-truth image ({gt / missing[0]}) needs "
            f"an output of the same file name ({len(missing)} missing in all){hint}"
        )
    extra = sorted(set(pred_names) - set(gt_names))
    if extra:
        raise ValueError(
            f"{pred / extra[0]}: no ground truth {gt / extra[0]} for this output "
            f"({len(extra)} extra in all); the folders must hold the same file names"
        )
    return gt_names


def _as_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, H, W) float64 in [0, 1] (exact: rounding gives back the bytes)."""
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].double() / 255.0


def score_restoration(
    gt: Path, pred: Path, *, color: str = "y", crop_border: int = 0
) -> dict[str, Any]:
    """Per-image and mean PSNR (dB) and SSIM of a folder of outputs against the ground truth.

    Args:
        gt: folder of ground-truth images (directly inside).
        pred: folder of outputs, the same file names, each of its ground truth's size.
        color: ``y`` (Y of BT.601, the SR papers') or ``rgb``.
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
    metric = RestorationMetric(color=color, crop_border=crop_border)
    names = _matched_names(gt, pred)
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
            raise ValueError(f"{pred / name}: {message} (--crop-border {crop_border})") from None
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
