"""Detection records: one split of a detection dataset held as a validated COCO instances dict.

Every detection reader (``formats/coco.py``, ``formats/voc.py``, ``formats/yolo.py``,
``embedded/shapes.py``) returns :class:`DetectionRecords`. The dict follows the COCO
"instances" format (https://cocodataset.org/#format-data) that pycocotools' ``COCO`` reads:
``bbox`` is ``[x, y, w, h]`` in continuous pixel coordinates (a box covering pixel columns
0..9 has x = 0, w = 10) and ``area`` is the mask area that COCOeval's area ranges use.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

log = logging.getLogger(__name__)

IMAGE_KEYS = ("id", "file_name", "width", "height")
ANNOTATION_KEYS = ("id", "image_id", "category_id", "bbox", "area", "iscrowd")
CATEGORY_KEYS = ("id", "name")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _where(kind: str, index: int, record: Any) -> str:
    """``"annotations[12] (id 345)"``, or without the id when the record has none."""
    if isinstance(record, dict) and "id" in record:
        return f"{kind}[{index}] (id {record['id']!r})"
    return f"{kind}[{index}]"


def _missing(record: Any, keys: tuple[str, ...]) -> str | None:
    """The problem of a record that is not a dict or lacks a key, else None."""
    if not isinstance(record, dict):
        return f"is a {type(record).__name__}; expected an object with keys {list(keys)}"
    absent = [k for k in keys if k not in record]
    if absent:
        return f"has no key {absent[0]!r}; expected keys {list(keys)}"
    return None


def _annotation_problem(
    ann: Any, image_ids: set[int], category_ids: set[int], seen: set[int]
) -> tuple[str, str] | None:
    """(short reason, full message) of an invalid annotation, or None if it is valid."""
    missing = _missing(ann, ANNOTATION_KEYS)
    if missing:
        return "missing key", missing
    if not _is_int(ann["id"]):
        return "bad id", f"has id {ann['id']!r}; expected an integer"
    if ann["id"] in seen:
        return "duplicate id", f"repeats annotation id {ann['id']}; expected unique ids"
    bbox = ann["bbox"]
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        return "bad bbox", f"has bbox {bbox!r}; expected [x, y, w, h], 4 finite numbers"
    if bbox[2] < 0 or bbox[3] < 0:
        return "negative width/height", (
            f"has bbox {bbox} with negative width or height; expected [x, y, w, h] with "
            f"w >= 0 and h >= 0"
        )
    if not (_is_number(ann["area"]) and ann["area"] >= 0):
        return "bad area", f"has area {ann['area']!r}; expected a finite number >= 0"
    if ann["iscrowd"] not in (0, 1) or isinstance(ann["iscrowd"], bool):
        return "bad iscrowd", f"has iscrowd {ann['iscrowd']!r}; expected 0 or 1"
    if not _is_int(ann["image_id"]) or ann["image_id"] not in image_ids:
        return "unknown image_id", (
            f"has image_id {ann['image_id']!r}; expected the id of an entry of images"
        )
    if not _is_int(ann["category_id"]) or ann["category_id"] not in category_ids:
        return "unknown category_id", (
            f"has category_id {ann['category_id']!r}; expected one of {sorted(category_ids)}"
        )
    return None


def _check_table(coco: dict, kind: str, keys: tuple[str, ...], source: str) -> set[int]:
    """Validate ``coco[kind]`` (images or categories): keys, integer unique ids. Returns the ids."""
    ids: set[int] = set()
    for i, record in enumerate(coco[kind]):
        problem = _missing(record, keys)
        if problem is None and not _is_int(record["id"]):
            problem = f"has id {record['id']!r}; expected an integer"
        if problem is None and record["id"] in ids:
            problem = f"repeats {kind[:-1]} id {record['id']}; expected unique ids"
        if problem is None and kind == "images":
            size = (record["width"], record["height"])
            if not all(_is_int(v) and v > 0 for v in size):
                problem = f"has width, height {size}; expected positive integers"
            elif not (isinstance(record["file_name"], str) and record["file_name"]):
                problem = f"has file_name {record['file_name']!r}; expected a relative path"
        if problem:
            raise ValueError(f"{source}: {_where(kind, i, record)} {problem}")
        ids.add(record["id"])
    return ids


class DetectionRecords:
    """One split of a detection dataset held as a validated COCO instances dict.

    Args:
        coco: COCO instances dict with "images", "annotations" and "categories" (see the module
            docstring); not modified.
        image_root: folder that ``images[i]["file_name"]`` is relative to.
        source: the file the dict comes from, named in error messages.
        skip_invalid: drop invalid annotations (counted in ``num_skipped``) and images whose
            file is missing (counted in ``num_missing_images``) instead of raising.

    Attributes:
        coco: the validated dict (original ids), without what ``skip_invalid`` dropped.
        classes: contiguous index c (0-based) -> category name, categories sorted by id.
        category_ids: contiguous index c -> dataset category id, ascending.
        image_ids: record index i -> COCO image id, in the order of ``coco["images"]``.
        num_skipped: annotations dropped by ``skip_invalid`` (0 otherwise).
        num_missing_images: images dropped by ``skip_invalid`` because their file is missing.

    Raises:
        ValueError: a missing key, a bad id, a duplicate id, a box with negative or non-finite
            values, an annotation of an unknown image or category; the message names ``source``,
            the record (``annotations[12] (id 345)``) and what was expected.
        FileNotFoundError: image files are missing (names the first and how many).
    """

    def __init__(
        self, coco: dict, image_root: Path, *, source: str, skip_invalid: bool = False
    ) -> None:
        self.image_root = Path(image_root)
        self.source_file = source
        for key in ("images", "annotations", "categories"):
            if not isinstance(coco, dict) or not isinstance(coco.get(key), list):
                raise ValueError(
                    f"{source}: no list {key!r} at the top level; expected a COCO instances "
                    f'dict {{"images": [...], "annotations": [...], "categories": [...]}}'
                )
        image_ids = _check_table(coco, "images", IMAGE_KEYS, source)
        category_ids = _check_table(coco, "categories", CATEGORY_KEYS, source)
        annotations, reasons, seen = [], Counter(), set()
        for i, ann in enumerate(coco["annotations"]):
            problem = _annotation_problem(ann, image_ids, category_ids, seen)
            if problem is None:
                annotations.append(ann)
                seen.add(ann["id"])
            elif skip_invalid:
                reasons[problem[0]] += 1
            else:
                raise ValueError(f"{source}: {_where('annotations', i, ann)} {problem[1]}")
        self.num_skipped = sum(reasons.values())
        if reasons:
            why = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
            log.warning("%s: skipped %d invalid annotations (%s)", source, self.num_skipped, why)
        images = self._existing_images(coco["images"], skip_invalid)
        if len(images) < len(coco["images"]):
            kept = {image["id"] for image in images}
            annotations = [ann for ann in annotations if ann["image_id"] in kept]
        self.coco = {**coco, "images": images, "annotations": annotations}
        categories = sorted(coco["categories"], key=lambda c: c["id"])
        self.classes = [str(c["name"]) for c in categories]
        self.category_ids = [int(c["id"]) for c in categories]
        self.image_ids = [int(image["id"]) for image in images]
        self._label = {cid: c for c, cid in enumerate(self.category_ids)}
        self._by_image: dict[int, list[dict]] = {image_id: [] for image_id in self.image_ids}
        for ann in annotations:
            self._by_image[ann["image_id"]].append(ann)

    def _existing_images(self, images: list[dict], skip_invalid: bool) -> list[dict]:
        missing = [i for i, image in enumerate(images) if not self._path(image).is_file()]
        self.num_missing_images = len(missing) if skip_invalid else 0
        if not missing:
            return images
        first = images[missing[0]]
        if not skip_invalid:
            raise FileNotFoundError(
                f"{self.source_file}: image file {self._path(first)} of "
                f"{_where('images', missing[0], first)} not found; {len(missing)} of "
                f"{len(images)} image files are missing under {self.image_root}"
            )
        log.warning(
            "%s: skipped %d images whose file is missing (first: %s)",
            self.source_file,
            len(missing),
            self._path(first),
        )
        dropped = set(missing)
        return [image for i, image in enumerate(images) if i not in dropped]

    def _path(self, image: dict) -> Path:
        return self.image_root / image["file_name"]

    def __len__(self) -> int:
        return len(self.image_ids)

    def source(self, index: int) -> str:
        """``"<image path> (image id 17)"`` for error messages."""
        return f"{self._path(self.coco['images'][index])} (image id {self.image_ids[index]})"

    def load(self, index: int) -> np.ndarray:
        """Image ``index`` as (H, W, 3) uint8 RGB, decoded with PIL (no EXIF rotation).

        Raises:
            FileNotFoundError: the file is gone; names the path.
            ValueError: the file is unreadable, or its size is not the declared width and height.
        """
        image_info = self.coco["images"][index]
        path = self._path(image_info)
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)
        except FileNotFoundError as err:
            raise FileNotFoundError(f"image file {self.source(index)} not found") from err
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            raise ValueError(f"cannot read image {self.source(index)}: {err}") from err
        declared = (image_info["height"], image_info["width"])
        if pixels.shape[:2] != declared:
            raise ValueError(
                f"image {self.source(index)} is {pixels.shape[1]}x{pixels.shape[0]} (WxH) but "
                f"{self.source_file} declares width {declared[1]}, height {declared[0]}"
            )
        return pixels

    def target(self, index: int, *, masks: bool = False) -> dict[str, np.ndarray]:
        """Training targets of image ``index``: its non-crowd annotations with a positive box.

        Crowd regions (``iscrowd`` 1, which includes VOC "difficult" objects) and boxes of zero
        width or height are left out; they stay in ``coco`` for evaluation. Boxes are clipped
        to the image, and dropped if nothing of them is inside it.

        Args:
            index: record index.
            masks: also rasterize each annotation's ``segmentation`` (see :meth:`mask`).

        Returns:
            boxes: (N, 4) float32 (x0, y0, x1, y1) continuous pixel coordinates.
            labels: (N,) int64 contiguous class index in [0, len(classes)).
            area: (N,) float32 the annotations' ``area`` (mask area, pixels).
            ann_ids: (N,) int64 the annotations' ids.
            masks: only with ``masks``: (N, H, W) uint8 in {0, 1}, row n the mask of box n.
        """
        image = self.coco["images"][index]
        anns = [a for a in self._by_image[image["id"]] if not a["iscrowd"]]
        boxes = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, image["width"])
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, image["height"])
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        anns = [a for a, k in zip(anns, keep, strict=True) if k]
        target = {
            "boxes": boxes[keep].astype(np.float32),
            "labels": np.array([self._label[a["category_id"]] for a in anns], dtype=np.int64),
            "area": np.array([a["area"] for a in anns], dtype=np.float32),
            "ann_ids": np.array([a["id"] for a in anns], dtype=np.int64),
        }
        if masks:
            stack = np.zeros((len(anns), image["height"], image["width"]), dtype=np.uint8)
            for n, ann in enumerate(anns):
                stack[n] = self.mask(index, ann)
            target["masks"] = stack
        return target

    def mask(self, index: int, ann: dict) -> np.ndarray:
        """(H, W) uint8 in {0, 1}: annotation ``ann`` of image ``index`` rasterized as
        pycocotools' ``COCO.annToMask`` does (polygons, uncompressed and compressed RLE).

        Raises:
            ValueError: the annotation has no usable ``segmentation``; names the file, the
                annotation id and the fix.
        """
        image = self.coco["images"][index]
        height, width = image["height"], image["width"]
        segm = ann.get("segmentation")
        where = f"{self.source_file}: annotation id {ann['id']} of {self.source(index)}"
        try:
            if isinstance(segm, list) and segm:  # polygons: one RLE each, merged
                rle = mask_utils.merge(mask_utils.frPyObjects(segm, height, width))
            elif isinstance(segm, dict) and isinstance(segm.get("counts"), list):
                rle = mask_utils.frPyObjects(segm, height, width)  # uncompressed RLE
            elif isinstance(segm, dict) and "counts" in segm:
                rle = segm
            else:
                raise ValueError(f"segmentation {segm!r}")
            mask = mask_utils.decode(rle)
        except (ValueError, TypeError, IndexError) as err:
            raise ValueError(
                f"{where} has no usable mask ({err}); expected a COCO 'segmentation' "
                f"(polygons [[x0, y0, x1, y1, ...]] or RLE {{'size', 'counts'}}). Instance "
                f"segmentation needs masks for every object; set data.masks=false to train "
                f"boxes only"
            ) from err
        if mask.shape != (height, width):
            raise ValueError(
                f"{where}: its RLE mask is {mask.shape[1]}x{mask.shape[0]} (WxH) but the image "
                f"is {width}x{height}"
            )
        return mask
