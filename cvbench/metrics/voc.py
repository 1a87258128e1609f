"""Pascal VOC detection average precision, as the VOC devkit computes it (Everingham et al., 2010).

Reference: the devkit's ``VOCevaldet.m`` (matching) and ``VOCap.m`` (VOC2010+ AP); the
11-point AP of VOC2007 is the ``VOCopts.VOC2007`` branch of ``VOCevaldet.m``. Per class:

- Detections are sorted by descending score; ties keep their input order (MATLAB's ``sort`` is
  stable, as is ``numpy.argsort(-score, kind="stable")``).
- Each detection goes to the ground-truth box of its image with the highest IoU (ties: the
  first box in annotation order; boxes that do not overlap are never candidates). If that IoU
  is >= ``iou_threshold``: a difficult box makes the detection neither a true nor a false
  positive; an unmatched box makes it a true positive (and the box matched); an already
  matched box makes it a false positive. Otherwise it is a false positive (also in images
  without ground truth of the class).
- Recall is over the non-difficult boxes; precision is TP / (TP + FP) after each detection
  that counted (a detection that counted as neither adds no point to the curve; the devkit
  adds a repeated point, or a NaN one before the first TP/FP, which changes no AP except that
  the devkit gives NaN for a class whose detections all hit difficult boxes, and this gives 0).
- VOC2007-2009: 11-point interpolated AP, the mean over t in ``0:0.1:1`` of the highest
  precision at recall >= t (0 if none). VOC2010 and later: the area under the monotone
  (non-increasing) envelope of the precision-recall curve.

Boxes: COCO ``bbox`` [x, y, w, h] gives x0 = x, x1 = x + w. IoU uses the devkit's formula with
``pixel_offset`` added to every width and height (intersection and areas): 1.0 reproduces the
devkit's "+1" on raw 1-based integer boxes (``bbox = [xmin, ymin, xmax - xmin, ymax - ymin]``),
0.0 is for continuous boxes. cvbench reads VOC boxes as continuous 0-based coordinates
(x0 = xmin - 1, x1 = xmax), for which 0.0 gives exactly the devkit's IoU.

Difficult objects: an annotation's ``difficult`` key, or when it has none, its ``iscrowd``.
A class without non-difficult ground truth (in the evaluated images) has AP None and is left
out of the mean; the devkit's classes always have ground truth, so it never meets this case.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# MATLAB's ``0:0.1:1``, the devkit's thresholds: the first half is k * 0.1, the second half
# 1 - (10 - k) * 0.1, so t = 0.3 is 0.30000000000000004 (recall exactly 3/10 is below it) while
# 0.6 and 0.7 are the doubles nearest 0.6 and 0.7. Python ports such as py-faster-rcnn's
# ``voc_eval`` use ``np.arange(0, 1.1, 0.1)``, whose 0.6 and 0.7 are one ulp higher as well.
VOC07_RECALL_THRESHOLDS = tuple(
    [k * 0.1 for k in range(5)] + [0.5] + [1.0 - (10 - k) * 0.1 for k in range(6, 11)]
)
ELEVEN_POINT_VERSIONS = ("2007", "2008", "2009")
AREA_VERSIONS = ("2010", "2011", "2012")


def voc_ap(
    recall: Sequence[float] | np.ndarray, precision: Sequence[float] | np.ndarray, version: str
) -> float:
    """Average precision of one class from its precision-recall curve.

    Args:
        recall: (D,) float in [0, 1], cumulative recall after each counted detection in
            descending score order (non-decreasing).
        precision: (D,) float in [0, 1], cumulative precision at the same points.
        version: VOC year: "2007" to "2009" give the 11-point interpolated AP, "2010" to
            "2012" the area under the monotone precision envelope.

    Returns:
        AP as a fraction in [0, 1]; 0 for an empty curve.

    Three ground-truth boxes, detections TP, FP, TP: recall 1/3, 1/3, 2/3 and precision
    1, 1/2, 2/3. 11-point: t = 0..0.3 give 1, t = 0.4..0.6 give 2/3, the rest 0, so
    (4 + 3 * 2/3) / 11 = 6/11. Area: 1/3 * 1 + 1/3 * 2/3 = 5/9.

    >>> rec, prec = [1 / 3, 1 / 3, 2 / 3], [1.0, 0.5, 2 / 3]
    >>> round(voc_ap(rec, prec, "2007"), 6), round(6 / 11, 6)
    (0.545455, 0.545455)
    >>> round(voc_ap(rec, prec, "2010"), 6), round(5 / 9, 6)
    (0.555556, 0.555556)
    """
    rec = np.asarray(recall, dtype=np.float64).reshape(-1)
    prec = np.asarray(precision, dtype=np.float64).reshape(-1)
    if rec.shape != prec.shape:
        raise ValueError(
            f"recall has {rec.size} points and precision {prec.size}; expected the same number"
        )
    if version in ELEVEN_POINT_VERSIONS:
        total = 0.0
        for t in VOC07_RECALL_THRESHOLDS:
            above = prec[rec >= t]
            total += (above.max() if above.size else 0.0) / 11
        return float(total)
    if version in AREA_VERSIONS:
        mrec = np.concatenate([[0.0], rec, [1.0]])
        mpre = np.concatenate([[0.0], prec, [0.0]])
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]  # the monotone envelope
        steps = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
        return float(np.sum((mrec[steps] - mrec[steps - 1]) * mpre[steps]))
    raise ValueError(
        f"VOC version {version!r} is unknown; expected one of "
        f"{ELEVEN_POINT_VERSIONS + AREA_VERSIONS}"
    )


@dataclass
class VocScores:
    """Result of ``voc_evaluate``.

    Attributes:
        map_50: mean AP over the classes with non-difficult ground truth, percent; None if no
            class has any. The AP is at ``iou_threshold`` (0.5 in the VOC protocol).
        per_class: one dict per category, by ascending id: ``category_id``, ``name``, ``ap``
            (percent, None without non-difficult ground truth) and ``num_gt`` (non-difficult
            ground-truth boxes).
        version: the VOC year whose AP definition was used.
        iou_threshold: the IoU a true positive needs.
        pixel_offset: added to widths and heights in the IoU (1.0: the devkit's integer boxes).
    """

    map_50: float | None
    per_class: list[dict]
    version: str
    iou_threshold: float
    pixel_offset: float = 0.0


def voc_evaluate(
    gt: dict,
    results: list[dict],
    *,
    version: str = "2010",
    iou_threshold: float = 0.5,
    image_ids: Sequence[int] | None = None,
    pixel_offset: float = 0.0,
) -> VocScores:
    """Pascal VOC AP per class and their mean (see the module docstring for the protocol).

    Args:
        gt: COCO instances dict; annotations may carry ``difficult`` (else ``iscrowd`` says).
        results: COCO results: dicts with ``image_id``, ``category_id``, ``bbox`` [x, y, w, h]
            and ``score``; every image and category must be the ground truth's.
        version: VOC year, "2007" to "2012" (see ``voc_ap``).
        iou_threshold: IoU in (0, 1] a detection needs to match a box.
        image_ids: evaluate only these images (ground truth and results); None: all images.
        pixel_offset: added to box widths and heights in the IoU: 1.0 for the devkit's raw
            1-based integer boxes, 0.0 for continuous boxes.

    Returns:
        VocScores.

    Raises:
        ValueError: a result record is malformed or names an unknown image or category, an id
            of ``image_ids`` is not in the ground truth, or an option is out of range.
    """
    if version not in ELEVEN_POINT_VERSIONS + AREA_VERSIONS:
        raise ValueError(
            f"VOC version {version!r} is unknown; expected one of "
            f"{ELEVEN_POINT_VERSIONS + AREA_VERSIONS}"
        )
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold is {iou_threshold}; expected a value in (0, 1]")
    all_images = {image["id"] for image in gt["images"]}
    keep = all_images if image_ids is None else set(image_ids)
    if missing := sorted(keep - all_images):
        raise ValueError(f"image_ids: image ids {missing[:10]} are not in the ground truth")
    categories = sorted(gt["categories"], key=lambda category: category["id"])
    gt_boxes = _ground_truth(gt, keep)
    detections = _detections(results, all_images, {c["id"] for c in categories}, keep)

    per_class = []
    for category in categories:
        boxes = gt_boxes.get(category["id"], {})
        num_gt = int(sum((~difficult).sum() for _, difficult in boxes.values()))
        ap = None
        if num_gt > 0:
            det_images, det_boxes, scores = detections.get(category["id"], ([], [], []))
            outcome = _match(det_images, det_boxes, scores, boxes, iou_threshold, pixel_offset)
            tp = np.cumsum(outcome[outcome >= 0])
            fp = np.cumsum(1 - outcome[outcome >= 0])
            ap = voc_ap(tp / num_gt, tp / (tp + fp), version)
        per_class.append(
            {"category_id": category["id"], "name": category["name"], "ap": ap, "num_gt": num_gt}
        )
    aps = [row["ap"] for row in per_class if row["ap"] is not None]
    for row in per_class:
        row["ap"] = None if row["ap"] is None else 100.0 * row["ap"]
    return VocScores(
        map_50=100.0 * math.fsum(aps) / len(aps) if aps else None,
        per_class=per_class,
        version=version,
        iou_threshold=iou_threshold,
        pixel_offset=pixel_offset,
    )


def _ground_truth(gt: dict, keep: set[int]) -> dict[int, dict[int, tuple[np.ndarray, ...]]]:
    """category id -> image id -> (boxes (N, 4) float64 xyxy, difficult (N,) bool)."""
    rows: dict[int, dict[int, list]] = {}
    for ann in gt["annotations"]:
        if ann["image_id"] not in keep:
            continue
        x, y, w, h = (float(v) for v in ann["bbox"])
        difficult = bool(ann.get("difficult", ann.get("iscrowd", 0)))
        per_image = rows.setdefault(ann["category_id"], {}).setdefault(ann["image_id"], [])
        per_image.append((x, y, x + w, y + h, difficult))
    return {
        category: {
            image: (np.array([r[:4] for r in boxes], np.float64), np.array([r[4] for r in boxes]))
            for image, boxes in images.items()
        }
        for category, images in rows.items()
    }


def _detections(
    results: list[dict], all_images: set[int], category_ids: set[int], keep: set[int]
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """category id -> (image ids (D,), boxes (D, 4) float64 xyxy, scores (D,)), input order."""
    rows: dict[int, list] = {}
    for i, result in enumerate(results):
        where = f"results[{i}] (image_id {result.get('image_id')})"
        try:
            image, category = result["image_id"], result["category_id"]
            x, y, w, h = (float(v) for v in result["bbox"])
            score = float(result["score"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(
                f"{where}: {result!r} is malformed; expected image_id, category_id, "
                "bbox [x, y, w, h] (4 numbers) and score"
            ) from None
        if image not in all_images:
            raise ValueError(f"{where}: the image is not in the ground truth")
        if category not in category_ids:
            raise ValueError(
                f"{where}: category_id {category} is not a ground-truth category; expected one "
                f"of {sorted(category_ids)}"
            )
        if not all(math.isfinite(v) for v in (x, y, w, h, score)):
            raise ValueError(f"{where}: bbox {result['bbox']} or score {score} is not finite")
        if image in keep:
            rows.setdefault(category, []).append((image, x, y, x + w, y + h, score))
    out = {}
    for category, dets in rows.items():
        table = np.array([d[1:] for d in dets], np.float64)
        out[category] = (np.array([d[0] for d in dets]), table[:, :4], table[:, 4])
    return out


def _match(
    det_images: Sequence[int] | np.ndarray,
    det_boxes: Sequence | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    gt_boxes: dict[int, tuple[np.ndarray, np.ndarray]],
    iou_threshold: float,
    pixel_offset: float,
) -> np.ndarray:
    """Greedy matching of one class's detections, as ``VOCevaldet.m``.

    Returns:
        (D,) int8 in descending score order (stable): 1 true positive, 0 false positive,
        -1 neither (its best box is difficult).
    """
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    images = np.asarray(det_images)[order]
    boxes = np.asarray(det_boxes, np.float64).reshape(-1, 4)[order]
    outcome = np.zeros(len(order), np.int8)
    if len(order) == 0:
        return outcome
    by_image = np.argsort(images, kind="stable")  # groups images, keeps the score order
    starts = np.flatnonzero(np.r_[True, images[by_image][1:] != images[by_image][:-1]])
    for rows in np.split(by_image, starts[1:]):
        if images[rows[0]] not in gt_boxes:
            continue  # no box of the class in the image: false positives
        gt, difficult = gt_boxes[images[rows[0]]]
        overlaps = box_overlaps(boxes[rows], gt, pixel_offset)
        best, best_iou = overlaps.argmax(axis=1), overlaps.max(axis=1)
        matched = np.zeros(len(gt), bool)
        for row, j, iou in zip(rows, best, best_iou, strict=True):
            if iou < iou_threshold:
                continue
            if difficult[j]:
                outcome[row] = -1
            elif not matched[j]:
                outcome[row], matched[j] = 1, True
    return outcome


def box_overlaps(boxes: np.ndarray, gt: np.ndarray, pixel_offset: float = 0.0) -> np.ndarray:
    """IoU with the devkit's formula, -inf where the boxes do not overlap.

    Args:
        boxes: (D, 4) float xyxy.
        gt: (G, 4) float xyxy.
        pixel_offset: added to every width and height (1.0: the devkit's "+1").

    Returns:
        (D, G) float64 IoU, -inf where the intersection's width or height is <= 0.

    >>> box_overlaps(np.array([[0.0, 0, 10, 10]]), np.array([[5.0, 0, 15, 10], [10, 0, 20, 10]]))
    array([[0.33333333,       -inf]])
    """
    d, g = boxes[:, None, :], gt[None, :, :]
    iw = np.minimum(d[..., 2], g[..., 2]) - np.maximum(d[..., 0], g[..., 0]) + pixel_offset
    ih = np.minimum(d[..., 3], g[..., 3]) - np.maximum(d[..., 1], g[..., 1]) + pixel_offset
    area_d = (d[..., 2] - d[..., 0] + pixel_offset) * (d[..., 3] - d[..., 1] + pixel_offset)
    area_g = (g[..., 2] - g[..., 0] + pixel_offset) * (g[..., 3] - g[..., 1] + pixel_offset)
    overlap = (iw > 0) & (ih > 0)
    union = area_d + area_g - iw * ih
    iou = np.full(overlap.shape, -np.inf)
    np.divide(iw * ih, union, out=iou, where=overlap)
    return iou
