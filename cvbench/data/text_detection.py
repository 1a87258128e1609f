"""Lightning datamodule for text detection: scene images with quadrilateral text regions (ICDAR
2015), batched as :class:`~cvbench.data.batches.TextDetectionBatch`.

Records are :class:`~cvbench.data.records.TextDetectionRecords` (e.g.
:func:`~cvbench.data.formats.icdar2015_folder.icdar2015_folder` or the embedded
:func:`~cvbench.data.embedded.text_scenes.text_scenes`).

- Every image is resized to ``image_size`` x ``image_size`` (``keep_aspect``: its long side to
  ``image_size``, then padded with black at the bottom and right), the polygons scaled with
  it; ``scales`` (sx, sy) = resized size / original size, so a detector's polygons divided by
  them are in the original image's pixels (ICDAR result files). Shrinking uses area
  interpolation (antialiased), enlarging bilinear.
- Training: after the resize, the config's albumentations pipeline (``data.transforms.train``)
  moves the polygon corners with the image as keypoints. Flips are left out on purpose
  (mirrored text is not text): small rotations, scale, shifts and colour only. A polygon the
  augmentation pushes wholly out of the image is dropped; one with less than ``min_visible`` of
  its area inside is kept as "don't care" (``ignore`` True, transcription ``###``), so neither
  a sliver of a word nor the border around it is taught as text or background; the others are
  kept whole, their corners possibly outside the image (a target builder clips them when it
  rasterizes). The decision is made on areas with shapely.
- Evaluation (val, test): in index order, resized only, never augmented; the polygons are the
  ground truth's, scaled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
import shapely
import torch
from torch import Tensor
from torch.utils.data import Dataset

from cvbench.data.batches import TextDetectionBatch
from cvbench.data.datamodule import RecordsDataModule
from cvbench.data.records import TextDetectionRecords

DONT_CARE = "###"


def resize_square(image: np.ndarray, size: int, *, keep_aspect: bool = False) -> tuple:
    """``image`` (H, W, 3) uint8 as (size, size, 3) uint8, and its scale (2,) float32 (sx, sy)
    = resized / original pixels.

    >>> out, scale = resize_square(np.zeros((20, 40, 3), np.uint8), 10, keep_aspect=True)
    >>> out.shape, scale.tolist()
    ((10, 10, 3), [0.25, 0.25])
    """
    h, w = image.shape[:2]
    if keep_aspect:
        factor = size / max(h, w)
        new_w, new_h = max(1, round(w * factor)), max(1, round(h * factor))
    else:
        new_w = new_h = size
    if (new_w, new_h) != (w, h):
        shrink = new_w < w and new_h < h
        interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        image = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    if keep_aspect and (new_w, new_h) != (size, size):
        image = cv2.copyMakeBorder(image, 0, size - new_h, 0, size - new_w, cv2.BORDER_CONSTANT)
    return image, np.array([new_w / w, new_h / h], dtype=np.float32)


def visible_fraction(polygons: np.ndarray, width: float, height: float) -> np.ndarray:
    """(N,) float64: the share of each polygon's area inside the image ``[0, width] x [0,
    height]``; a degenerate (zero-area) polygon counts 1 if its corners are all inside, else 0.

    Args:
        polygons: (N, 4, 2) xy pixels.

    >>> visible_fraction(np.array([[[-5, 0], [5, 0], [5, 2], [-5, 2]]], float), 10, 10).tolist()
    [0.5]
    """
    if len(polygons) == 0:
        return np.zeros(0)
    shapes = shapely.make_valid(shapely.polygons(np.asarray(polygons, dtype=np.float64)))
    areas = shapely.area(shapes)
    inside = shapely.area(shapely.intersection(shapes, shapely.box(0, 0, width, height)))
    corners_in = ((polygons >= 0) & (polygons <= (width, height))).all(axis=(1, 2))
    return np.where(areas > 0, inside / np.where(areas > 0, areas, 1.0), corners_in * 1.0)


class TextDetectionSamples(Dataset):
    """One split's samples (see the module docstring), as dicts of ``image`` (3, S, S) float32
    in [0, 1], ``polygons`` (N, 4, 2) float32, ``ignore`` (N,) bool, ``texts``, ``scale`` (2,)
    float32, ``name`` and ``index``.

    Args:
        records: the split's records.
        transform: albumentations pipeline with ``keypoint_params`` (format xy,
            ``remove_invisible`` false), run after the resize; None: resize only.
        image_size: side S of every image.
        keep_aspect: resize the long side to S and pad, instead of stretching to S x S.
        min_visible: polygons of which a smaller share stays inside the image after the
            transform become "don't care".
        where: names the data in messages, e.g. ``data 'icdar2015' split 'train'``.
    """

    def __init__(
        self,
        records: TextDetectionRecords,
        transform: Callable | None,
        *,
        image_size: int,
        keep_aspect: bool = False,
        min_visible: float = 0.5,
        where: str = "data",
    ) -> None:
        self.records = records
        self.transform = transform
        self.image_size = image_size
        self.keep_aspect = keep_aspect
        self.min_visible = min_visible
        self.where = where

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, scale = resize_square(
            self.records.load(index), self.image_size, keep_aspect=self.keep_aspect
        )
        regions = self.records.regions(index)
        polygons = np.asarray(regions["polygons"], dtype=np.float32).reshape(-1, 4, 2) * scale
        ignored = np.asarray(regions["ignore"], dtype=bool).tolist()
        texts = [DONT_CARE if i else t for t, i in zip(regions["texts"], ignored, strict=True)]
        if self.transform is not None:
            out = self.transform(image=image, keypoints=polygons.reshape(-1, 2))
            image = out["image"]
            polygons = np.asarray(out["keypoints"], dtype=np.float32)[:, :2].reshape(-1, 4, 2)
            image = self._checked(image, index)
            size = self.image_size
            visible = visible_fraction(polygons, size, size)
            keep = visible > 0
            texts = [
                DONT_CARE if v < self.min_visible else t
                for t, v in zip(texts, visible, strict=True)
                if v > 0
            ]
            polygons = polygons[keep]
        if not isinstance(image, Tensor):
            image = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))
        if image.dtype == torch.uint8:
            image = image.float() / 255
        return {
            "image": image,
            "polygons": torch.from_numpy(np.ascontiguousarray(polygons, dtype=np.float32)),
            "ignore": torch.tensor([t == DONT_CARE for t in texts], dtype=torch.bool),
            "texts": texts,
            "scale": torch.from_numpy(scale),
            "name": self.records.name(index),
            "index": index,
        }

    def _checked(self, image: Any, index: int) -> Any:
        """The transform's image, which must still be S x S (it moves keypoints, it must not
        crop or resize: the resize is the datamodule's)."""
        shape = tuple(getattr(image, "shape", ()))
        size = self.image_size
        if shape not in ((size, size, 3), (3, size, size)):
            raise ValueError(
                f"{self.where}: the train transform (data.transforms.train) gave an image of "
                f"shape {shape} for {self.records.source(index)}; expected ({size}, {size}, 3) "
                "(data.image_size): the datamodule resizes, the transform must keep the size"
            )
        return image


def collate_text_detection(samples: Sequence[dict[str, Any]]) -> TextDetectionBatch:
    """A :class:`~cvbench.data.batches.TextDetectionBatch`: images (B, 3, S, S) stacked,
    polygons, ignore flags and texts as per-image lists, scales (B, 2), indices (B,) int64."""
    return TextDetectionBatch(
        images=torch.stack([s["image"] for s in samples]),
        polygons=[s["polygons"] for s in samples],
        ignore=[s["ignore"] for s in samples],
        texts=[s["texts"] for s in samples],
        scales=torch.stack([s["scale"] for s in samples]),
        names=[s["name"] for s in samples],
        indices=torch.tensor([s["index"] for s in samples], dtype=torch.int64),
    )


def check_keypoint_pipeline(transform: Callable | None, where: str) -> None:
    """Raise unless ``transform`` is None or an albumentations pipeline that moves keypoints
    in xy format and keeps the invisible ones (a polygon needs all 4 corners)."""
    if transform is None:
        return
    processor = getattr(transform, "processors", {}).get("keypoints")
    params = getattr(processor, "params", None)
    if params is None or params.format != "xy" or params.remove_invisible:
        raise ValueError(
            f"{where}: data.transforms.train must be an albumentations.Compose with "
            "keypoint_params {format: xy, remove_invisible: false}: the polygon corners move "
            "with the image as keypoints, 4 per polygon"
        )


class TextDetectionDataModule(RecordsDataModule):
    """Batches of :class:`~cvbench.data.batches.TextDetectionBatch` (see the module docstring).

    Args:
        image_size: side of every image, pixels (models read ``${data.image_size}``).
        keep_aspect: resize the long side to ``image_size`` and pad bottom/right, instead of
            stretching every image to a square.
        min_visible: share of a polygon's area that must stay inside the augmented training
            image for it to stay a word; below it, "don't care"; wholly outside, dropped.
        **kwargs: ``name``, ``records``, ``transforms``, ``batch_size``, ... of
            :class:`~cvbench.data.datamodule.RecordsDataModule`; ``transforms`` has only a
            "train" pipeline (evaluation is never augmented).
    """

    collate_fn = staticmethod(collate_text_detection)

    def __init__(
        self,
        *,
        image_size: int = 320,
        keep_aspect: bool = False,
        min_visible: float = 0.5,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if image_size < 8:
            raise ValueError(f"data.image_size must be >= 8, got {image_size}")
        if not 0.0 < min_visible <= 1.0:
            raise ValueError(f"data.min_visible must be in (0, 1], got {min_visible}")
        self.refuse_eval_transforms(
            "evaluation images are only resized (data.image_size), never augmented"
        )
        self.image_size = image_size
        self.keep_aspect = keep_aspect
        self.min_visible = min_visible

    def make_dataset(
        self, records: TextDetectionRecords, transform: Callable | None, split: str
    ) -> TextDetectionSamples:
        where = f"data '{self.name}' split '{split}'"
        train = split == "train"
        if train:
            check_keypoint_pipeline(transform, where)
        return TextDetectionSamples(
            records,
            transform if train else None,
            image_size=self.image_size,
            keep_aspect=self.keep_aspect,
            min_visible=self.min_visible,
            where=where,
        )

    def records_of(self, split: str) -> TextDetectionRecords:
        """The records of ``split`` (its ground truth, in the original images' pixels)."""
        return self.split(split).records
