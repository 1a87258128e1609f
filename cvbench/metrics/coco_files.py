"""Checks of COCO files from outside (a user's ground truth or results file) before scoring.

Each problem is a ValueError naming the file (``where``), the record's index and id, and what
was expected, e.g. ``r.json, result 12: image_id 999 is not an image of the ground truth``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from cvbench.metrics.coco_rle import is_int, rle_problem, segmentation_problem

IOU_TYPES = ("bbox", "segm")
AREA_FROM = ("mask", "box")
RESULT_FORMAT = {
    "bbox": '{"image_id": int, "category_id": int, "bbox": [x, y, w, h], "score": float}',
    "segm": '{"image_id": int, "category_id": int, "segmentation": RLE {"size", "counts"}, '
    '"score": float}',
}


def is_finite(value: Any) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, (bool, np.bool_))
        and math.isfinite(value)
    )


def _box_problem(bbox: Any) -> str | None:
    """Why ``bbox`` is not ``[x, y, w, h]`` of 4 finite numbers with w, h >= 0, or None."""
    if not isinstance(bbox, (list, tuple)) or len(bbox) != 4 or not all(map(is_finite, bbox)):
        return f"bbox {bbox!r} is not [x, y, w, h] of 4 finite numbers"
    if bbox[2] < 0 or bbox[3] < 0:
        return f"bbox {list(bbox)} has a negative width or height; expected w, h >= 0"
    return None


def check_gt_keys(gt: Any, where: str) -> None:
    if not isinstance(gt, dict):
        raise ValueError(
            f"{where}: expected a COCO instances object with 'images', 'annotations' and "
            f"'categories', got a JSON {type(gt).__name__}"
        )
    for key in ("images", "annotations", "categories"):
        if key not in gt:
            raise ValueError(
                f"{where}: missing key {key!r}; expected a COCO instances object with "
                f"'images', 'annotations' and 'categories'"
            )
        if not isinstance(gt[key], list):
            raise ValueError(f"{where}: {key!r} is a {type(gt[key]).__name__}; expected a list")


def _ids(gt: dict, key: str, where: str) -> set[int]:
    """The ids of ``gt[key]`` (images or categories), checked to be unique integers."""
    ids: set[int] = set()
    for i, item in enumerate(gt[key]):
        if not isinstance(item, dict) or not is_int(item.get("id")):
            found = item.get("id") if isinstance(item, dict) else item
            raise ValueError(f"{where}, {key} {i}: id {found!r} is not an integer")
        if item["id"] in ids:
            raise ValueError(f"{where}, {key} {i}: id {item['id']} is repeated; ids are unique")
        ids.add(item["id"])
    return ids


def check_ground_truth(gt: Any, *, where: str, iou_type: str = "bbox") -> None:
    """Check a COCO instances dict: unique image and category ids; each annotation with a
    known image_id and category_id, a bbox [x, y, w, h] (w, h >= 0), a finite ``area`` >= 0,
    ``iscrowd`` 0 or 1 if present, and for ``segm`` a ``segmentation`` and image sizes.

    Raises:
        ValueError: naming ``where`` (the file), the annotation's index and id, and the problem.
    """
    check_gt_keys(gt, where)
    image_ids, category_ids = _ids(gt, "images", where), _ids(gt, "categories", where)
    sizes = {}
    if iou_type == "segm":
        for i, image in enumerate(gt["images"]):
            size = [image.get("height"), image.get("width")]
            if not all(is_int(v) and v > 0 for v in size):
                raise ValueError(
                    f"{where}, images {i} (id {image['id']}): no integer 'height' and 'width' "
                    f">= 1 (found {size}); mask evaluation needs the image size"
                )
            sizes[image["id"]] = size
    for i, ann in enumerate(gt["annotations"]):
        name = f"{where}, annotation {i}"
        if not isinstance(ann, dict):
            raise ValueError(f"{name}: a JSON {type(ann).__name__}; expected an object")
        name += f" (id {ann.get('id')})"
        needs = ("image_id", "category_id", "bbox", "area")
        for key in needs + (("segmentation",) if iou_type == "segm" else ()):
            if key not in ann:
                raise ValueError(f"{name}: missing {key!r}; expected the keys {', '.join(needs)}")
        # is_int first: an unhashable id (a list) makes ``in`` raise TypeError.
        if not is_int(ann["image_id"]) or ann["image_id"] not in image_ids:
            raise ValueError(f"{name}: image_id {ann['image_id']!r} is not in 'images'")
        if not is_int(ann["category_id"]) or ann["category_id"] not in category_ids:
            raise ValueError(f"{name}: category_id {ann['category_id']!r} is not in 'categories'")
        problem = _box_problem(ann["bbox"])
        if problem:
            raise ValueError(f"{name}: {problem}")
        if not is_finite(ann["area"]) or ann["area"] < 0:
            raise ValueError(f"{name}: area {ann['area']!r} is not a finite number >= 0")
        if ann.get("iscrowd", 0) not in (0, 1):
            raise ValueError(f"{name}: iscrowd {ann['iscrowd']!r}; expected 0 or 1")
        if iou_type == "segm":
            problem = segmentation_problem(ann["segmentation"], sizes[ann["image_id"]])
            if problem:
                raise ValueError(f"{name}: {problem}")


def check_results(
    results: Any, gt: dict, *, where: str, iou_type: str = "bbox", area_from: str = "mask"
) -> None:
    """Check COCO results against the ground truth they will be scored on.

    Each result needs an image_id and a category_id of the ground truth, a finite score and,
    for ``bbox``, a bbox of 4 finite numbers [x, y, w, h] with w, h >= 0; for ``segm``, a
    compressed RLE ``segmentation`` whose size is the image's [height, width] and whose runs
    cover it (and with ``area_from="box"`` a bbox as well, which gives the detection's area).

    Raises:
        ValueError: naming ``where`` (the file), the result's index and ids, e.g.
            ``results.json, result 12: image_id 999 is not an image of the ground truth``.

    >>> gt = {"images": [{"id": 1}], "annotations": [], "categories": [{"id": 3}]}
    >>> check_results([{"image_id": 2, "category_id": 3, "bbox": [0, 0, 1, 1], "score": 1}],
    ...               gt, where="r.json")
    Traceback (most recent call last):
    ...
    ValueError: r.json, result 0: image_id 2 is not an image of the ground truth
    """
    check_gt_keys(gt, "ground truth")
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type {iou_type!r}; expected one of {IOU_TYPES}")
    if area_from not in AREA_FROM:
        raise ValueError(f"area_from {area_from!r}; expected one of {AREA_FROM}")
    if not isinstance(results, list):
        raise ValueError(
            f"{where}: a JSON {type(results).__name__}; expected a list of results "
            f"{RESULT_FORMAT[iou_type]}"
        )
    images = {image["id"]: image for image in gt["images"]}
    category_ids = {category["id"] for category in gt["categories"]}
    needs = ("image_id", "category_id", "bbox" if iou_type == "bbox" else "segmentation", "score")
    box_area = iou_type == "segm" and area_from == "box"
    for i, result in enumerate(results):
        name = f"{where}, result {i}"
        if not isinstance(result, dict):
            raise ValueError(f"{name}: a JSON {type(result).__name__}; expected an object")
        for key in needs:
            if key not in result:
                raise ValueError(f"{name}: missing {key!r}; expected {RESULT_FORMAT[iou_type]}")
        if box_area and "bbox" not in result:
            raise ValueError(
                f"{name}: missing 'bbox'; area_from=box takes each detection's area from its "
                "bbox (area_from=mask: from its mask)"
            )
        image_id, category_id = result["image_id"], result["category_id"]
        if not is_int(image_id) or image_id not in images:
            raise ValueError(f"{name}: image_id {image_id!r} is not an image of the ground truth")
        name += f" (image_id {image_id})"
        if not is_int(category_id) or category_id not in category_ids:
            raise ValueError(
                f"{name}: category_id {category_id!r} is not a category of the ground truth"
            )
        if not is_finite(result["score"]):
            raise ValueError(f"{name}: score {result['score']!r} is not a finite number")
        problem = _box_problem(result["bbox"]) if iou_type == "bbox" or box_area else None
        if iou_type == "segm" and not problem:
            image = images[image_id]
            size = [image.get("height"), image.get("width")]
            problem = rle_problem(result["segmentation"], size, compressed_only=True)
        if problem:
            raise ValueError(f"{name}: {problem}")
