"""``cvbench score task=fid``: FID, KID, IS (of the generated folder) and precision/recall of
two folders of images from any source, on torch-fidelity's TF-Inception read from a local file,
as torch-fidelity's ``fidelity --fid --kid --isc --prc`` command computes them.

Each folder's image files directly inside (``IMAGE_SUFFIXES``; sub-folders are not read) are
read in sorted order as torch-fidelity reads them: PIL decoded and converted to 8-bit RGB (gray
repeated, alpha dropped); 16-bit images are refused rather than truncated. Images of any sizes
(the network resizes each to 299 x 299). torch-fidelity reads ``png,jpg,jpeg`` by default: on
folders of those the numbers are the same.

A composition of the two bottom layers, so it lives above both: ``cvbench.data`` reads the
images, ``cvbench.models.inception`` gives the features, ``cvbench.metrics.generative`` scores.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cvbench.cli.folders import FolderKind, file_names
from cvbench.data.formats.images import read_rgb
from cvbench.data.formats.masks import IMAGE_SUFFIXES
from cvbench.metrics.generative import GenerativeMetric
from cvbench.models.inception import TFInception

__all__ = ["IMAGES", "folder_batches", "score_fid_folders"]

IMAGES = FolderKind(
    task="fid",
    suffixes=IMAGE_SUFFIXES,
    files="images",
    described=f"image files ({', '.join(IMAGE_SUFFIXES)})",
    prediction="generated image",
)


def folder_batches(folder: Path, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The folder's images in sorted file-name order, as batches of consecutive images of one
    size.

    Yields:
        images (B, 3, H, W) uint8 and their positions (B,) int64 in the sorted file list.

    Raises:
        FileNotFoundError: no such folder. ValueError: not a folder, no image file in it, or an
            unreadable image; naming it.
    """
    names = file_names(folder, IMAGES)
    images: list[np.ndarray] = []
    start = 0
    for position, name in enumerate(names):
        image = read_rgb(folder / name)
        if images and (image.shape != images[0].shape or len(images) == batch_size):
            yield _stacked(images), torch.arange(start, position)
            images, start = [], position
        images.append(image)
    yield _stacked(images), torch.arange(start, len(names))


def _stacked(images: list[np.ndarray]) -> torch.Tensor:
    """(H, W, 3) uint8 arrays of one size -> (B, 3, H, W) uint8."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def score_fid_folders(
    real: Path,
    fake: Path,
    *,
    features: Path = None,  # type: ignore[assignment]  # None: torch-fidelity's default file
    batch_size: int = 50,
    kid_subset_size: int = 1000,
    isc_splits: int = 10,
    prc: bool = True,
) -> dict[str, Any]:
    """FID, KID, IS of the generated folder and precision/recall, as torch-fidelity computes them.

    Args:
        real: folder of the real (reference) images.
        fake: folder of the generated images.
        features: torch-fidelity's TF-Inception weights file
            (weights-inception-2015-12-05-6726825d.pth); default: the one in torch.hub's
            checkpoints folder, where torch-fidelity and torchmetrics keep it.
        batch_size: images per forward pass of the network (same-size images only).
        kid_subset_size: KID's subset size (torch-fidelity's default 1000); min(it, N real,
            N generated) is used.
        isc_splits: IS's chunks of the generated images (torch-fidelity's default 10); min(it,
            N generated) is used.
        prc: also compute precision and recall (k=3 nearest neighbours).

    Returns:
        ``fid``, ``kid_mean``, ``kid_std``, ``is_mean``, ``is_std`` (of the generated folder),
        ``precision``, ``recall`` (null when prc=false), ``num_real``, ``num_fake`` and
        ``protocol`` (one line: network, weights, resize, KID subsets, IS splits, PR k).

    Raises:
        FileNotFoundError, ValueError: a missing or empty folder, an unreadable image, a missing
            or unsafe weights file, fewer than 2 images in a folder; naming it.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size}: expected 1 or more")
    if kid_subset_size < 2:
        raise ValueError(f"kid_subset_size={kid_subset_size}: expected 2 or more")
    if isc_splits < 1:
        raise ValueError(f"isc_splits={isc_splits}: expected 1 or more")
    for folder in (real, fake):  # a missing, empty or too small folder before the network loads
        count = len(file_names(folder, IMAGES))
        if count < 2:
            raise ValueError(
                f"{folder}: 1 image file; FID and KID need at least 2 images per folder"
            )
    judge = TFInception(str(features) if features is not None else None)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    judge.to(device)
    metric = GenerativeMetric(
        judge.name,
        judge.feature_dim,
        judge.num_logits,
        kid_subset_size=kid_subset_size,
        isc_splits=isc_splits,
        prc_neighborhood=3 if prc else None,
    )
    for folder, update in ((real, metric.update_real), (fake, metric.update_fake)):
        for images, index in folder_batches(folder, batch_size):
            feats, logits = judge.forward_uint8(images.to(device))
            update(feats.cpu(), index, logits.cpu())
    scores = metric.compute()
    n_real, n_fake = scores["num_real"], scores["num_fake"]
    protocol = (
        f"{judge.protocol}; real {real} ({n_real} images), generated {fake} ({n_fake} images); "
        f"{metric.protocol}; KID subset size used {metric.last_kid_subset_size}, IS splits used "
        f"{metric.last_isc_splits}"
    )
    return {"precision": None, "recall": None, **scores, "protocol": protocol}
