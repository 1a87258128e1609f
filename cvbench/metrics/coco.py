"""COCO detection metrics (Lin et al., "Microsoft COCO", ECCV 2014), equal to pycocotools.

Reference: pycocotools ``COCOeval`` (iouType ``bbox``, or ``segm`` for RLE mask results).
``coco_evaluate`` runs it, or faster-coco-eval's C++ port of it (the default engine; the same
stats, several times faster), on an in-memory COCO instances dict and a list of COCO results.

Protocol (METRICS.md): 10 IoU thresholds 0.50:0.05:0.95 and 101 recall points 0:0.01:1
(float64); maxDets 1, 10, 100 per image and per category; area ranges small [0, 32^2],
medium [32^2, 96^2], large [96^2, 1e10], bounds inclusive, measured on the ground truth's
``area`` field; crowd regions (``iscrowd`` 1) are ignored, detections matched to them count
neither way. Stats are percent (100 x ``COCOeval.stats``); where pycocotools gives -1 (no
ground truth in that range) the stat is None. Image and category ids are the dataset's own.

Two departures from calling pycocotools by hand, neither changing a number on a valid file:
annotation ids are renumbered 1..N on an internal copy (pycocotools reads id 0 as "unmatched"
and collapses repeated ids), and a missing ``iscrowd`` means 0.

For ``segm``, the area of a detection (which decides whether an unmatched detection counts
against ``map_small``, ``map_medium`` or ``map_large``) is ``area_from``: ``mask`` (default)
drops the results' ``bbox`` before loading, so the area is the mask's, as detectron2's and
MMDetection's COCO evaluators do and as pycocotools gives on COCO's own segm results format (no
bbox); ``box`` keeps the bbox, so pycocotools' ``loadRes`` takes its w * h, as pycocotools does
on a file whose first result carries a bbox. Only ``map_small``, ``map_medium`` and ``map_large``
can differ: the area decides whether an unmatched detection of another size is ignored, but not
which detections match, so recall and the all-area stats are the same.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cvbench.metrics.coco_files import (
    AREA_FROM,
    IOU_TYPES,
    check_gt_keys,
)

COCO_STATS = (
    "map",
    "map_50",
    "map_75",
    "map_small",
    "map_medium",
    "map_large",
    "mar_1",
    "mar_10",
    "mar_100",
    "mar_small",
    "mar_medium",
    "mar_large",
)
ENGINES = ("faster_coco_eval", "pycocotools")


@dataclass
class CocoScores:
    """The result of one COCO evaluation.

    Attributes:
        stats: the 12 ``COCO_STATS`` keys, percent, None where pycocotools gives -1.
        per_class: one dict per ground-truth category, ascending id: ``category_id``, ``name``,
            ``ap`` (IoU .50:.95), ``ap_50``, ``ap_75`` (area all, maxDets 100; percent or None
            when the category has no ground truth), ``num_gt`` (non-crowd ground-truth objects)
            and ``num_det`` (detections), both counted over the evaluated images.
    """

    stats: dict[str, float | None]
    per_class: list[dict[str, Any]]


def engine_classes(engine: str) -> tuple[type, type]:
    """The engine's COCO and COCOeval classes."""
    if engine == "faster_coco_eval":
        from faster_coco_eval import COCO, COCOeval_faster

        return COCO, COCOeval_faster
    if engine == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        return COCO, COCOeval
    raise ValueError(f"engine {engine!r}; expected one of {ENGINES}")


def _mean_valid(precision: np.ndarray) -> float | None:
    """100 x the mean of the entries > -1, None if there are none (as ``summarize`` does)."""
    valid = precision[precision > -1]
    return 100.0 * float(np.mean(valid)) if valid.size else None


def _per_class(coco_eval: Any, gt: dict, results: list[dict], images: set[int]) -> list[dict]:
    """Per-category AP from ``coco_eval.eval["precision"]`` (T x R x K x A x M)."""
    params = coco_eval.params
    precision = np.asarray(coco_eval.eval["precision"], dtype=np.float64)
    t50, t75 = (np.flatnonzero(params.iouThrs == t) for t in (0.5, 0.75))
    num_gt = Counter(
        a["category_id"] for a in gt["annotations"] if a["image_id"] in images and not a["iscrowd"]
    )
    num_det = Counter(r["category_id"] for r in results if r["image_id"] in images)
    names = {
        category["id"]: category.get("name", str(category["id"])) for category in gt["categories"]
    }
    per_class = []
    for k, category_id in enumerate(int(c) for c in params.catIds):
        p = precision[:, :, k, 0, -1]  # area "all", maxDets 100
        per_class.append(
            {
                "category_id": category_id,
                "name": names[category_id],
                "ap": _mean_valid(p),
                "ap_50": _mean_valid(p[t50]),
                "ap_75": _mean_valid(p[t75]),
                "num_gt": num_gt[category_id],
                "num_det": num_det[category_id],
            }
        )
    return per_class


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """Raise logger ``name`` to WARNING for the duration of the block."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def coco_evaluate(
    gt: dict,
    results: list[dict],
    *,
    iou_type: str = "bbox",
    engine: str = "faster_coco_eval",
    image_ids: Sequence[int] | None = None,
    area_from: str = "mask",
) -> CocoScores:
    """COCO stats of ``results`` on ``gt``, as pycocotools ``COCOeval`` computes them.

    Neither argument is modified. Box results are indexed as pycocotools' ``loadRes`` does
    (area w * h, iscrowd 0, ids 1..N) without its polygon per box, which ``bbox`` never reads.
    Check untrusted input with ``check_ground_truth`` and ``check_results`` first
    (``cvbench score`` does).

    Args:
        gt: COCO instances dict (images, annotations with ``area``, categories).
        results: COCO results, ``bbox`` [x, y, w, h] in pixels (``segm``: RLE
            ``segmentation``) and ``score``, with the ground truth's image and category ids.
        iou_type: ``bbox`` or ``segm``.
        engine: ``faster_coco_eval`` (default) or ``pycocotools``; the stats are identical.
        image_ids: evaluate only these images (a partly predicted split); None = all of gt.
        area_from: ``segm`` only: a detection's area from its ``mask`` (default) or from its
            ``box`` (every result then needs a ``bbox``; pycocotools' ``loadRes``).

    Returns:
        ``CocoScores``: the 12 stats and per-class AP, percent, None where undefined.

    Area bounds are inclusive: a 32 x 32 object (area 1024) is both small and medium.

    >>> gt = {"images": [{"id": 5, "width": 64, "height": 64}],
    ...       "annotations": [{"image_id": 5, "category_id": 7, "bbox": [8, 8, 32, 32],
    ...                        "area": 1024.0, "iscrowd": 0}],
    ...       "categories": [{"id": 7, "name": "cat"}, {"id": 9, "name": "dog"}]}
    >>> scores = coco_evaluate(gt, [{"image_id": 5, "category_id": 7, "bbox": [8, 8, 32, 32],
    ...                              "score": 0.9}])
    >>> [scores.stats[k] for k in ("map", "map_small", "map_medium", "map_large")]
    [100.0, 100.0, 100.0, None]
    >>> [(c["name"], c["ap"], c["num_gt"]) for c in scores.per_class]
    [('cat', 100.0, 1), ('dog', None, 0)]
    """
    check_gt_keys(gt, "ground truth")
    if iou_type not in IOU_TYPES:
        raise ValueError(f"iou_type {iou_type!r}; expected one of {IOU_TYPES}")
    if area_from not in AREA_FROM:
        raise ValueError(f"area_from {area_from!r}; expected one of {AREA_FROM}")
    coco_class, eval_class = engine_classes(engine)
    # Copies: both engines write into the dicts they are given (ids, areas, "ignore").
    gt_copy = {
        "images": [dict(image) for image in gt["images"]],
        "categories": [dict(category) for category in gt["categories"]],
        "annotations": [
            {**ann, "id": i + 1, "iscrowd": ann.get("iscrowd", 0)}
            for i, ann in enumerate(gt["annotations"])
        ],
    }
    if iou_type == "bbox":  # what loadRes makes of bbox results, less a polygon per box
        results = [
            {**r, "area": r["bbox"][2] * r["bbox"][3], "id": i + 1, "iscrowd": 0}
            for i, r in enumerate(results)
        ]
    elif area_from == "mask":  # loadRes takes the area from the mask only without a bbox
        results = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
    else:  # loadRes: area w * h of the bbox (it reads the first result to choose)
        results = [dict(r) for r in results]
    all_images = {image["id"] for image in gt_copy["images"]}
    if image_ids is not None:
        image_ids = sorted({int(i) for i in image_ids})
        unknown = [i for i in image_ids if i not in all_images]
        if unknown:
            raise ValueError(f"image_ids: {unknown[0]} is not an image of the ground truth")
    # The engines report their progress: pycocotools by print, faster-coco-eval by logging.
    with contextlib.redirect_stdout(io.StringIO()), _quiet_logger("faster_coco_eval"):
        coco_gt = coco_class()
        coco_gt.dataset = gt_copy
        coco_gt.createIndex()
        if iou_type == "segm" and results:  # loadRes computes the areas (area_from)
            coco_dt = coco_gt.loadRes(results)
        else:  # (pycocotools' loadRes fails on an empty list; an empty index scores 0)
            coco_dt = coco_class()
            coco_dt.dataset = {**gt_copy, "annotations": results}
            coco_dt.createIndex()
        coco_eval = eval_class(coco_gt, coco_dt, iou_type)
        if image_ids is not None:
            coco_eval.params.imgIds = image_ids
        coco_eval.evaluate()
        coco_eval.accumulate()
        coco_eval.summarize()
    stats = np.asarray(coco_eval.stats, dtype=np.float64)[: len(COCO_STATS)]
    images = all_images if image_ids is None else set(image_ids)
    return CocoScores(
        stats={
            k: None if s == -1 else 100.0 * float(s) for k, s in zip(COCO_STATS, stats, strict=True)
        },
        per_class=_per_class(coco_eval, gt_copy, results, images),
    )
