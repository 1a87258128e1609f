"""ICDAR 2015 text detection: precision, recall and H-mean of polygons at IoU 0.5, "don't care"
ground truth ignored, one-to-one matching, as MMOCR's ``HmeanIOUMetric(strategy='vanilla')``
(mmocr/evaluation/metrics/hmean_iou_metric.py, mmocr/evaluation/functional/hmean.py) and the
Robust Reading Competition's challenge 4 script do.

Per image (:func:`match_icdar2015`):

1. predictions scoring below the score threshold are dropped (a score equal to it is kept);
2. a prediction is "don't care" and dropped when the area it shares with one "don't care"
   (``###``) ground-truth polygon, divided by its own area (+ 1e-5), is above
   ``ignore_threshold`` (0.5); "don't care" ground truth is dropped too;
3. IoU between the remaining ground truth and predictions (shapely; a self-intersecting polygon
   is first mended with ``buffer(0)``, as MMOCR's ``poly_make_valid``; IoU 0 where the union is
   empty); a pair can match when its IoU is strictly above ``iou_threshold``;
4. one-to-one, first come first matched: pairs in order of ground truth, then prediction (file
   order, not score order), each taken if neither is matched yet.

Over the split the counts are summed, then (MMOCR's ``compute_hmean``) recall = matched / gt and
precision = matched / predictions, except without ground truth: recall 1 and precision 1 if
there is no prediction either, else 0 (the RRC script reports 0 and 0 there); H-mean = 2PR /
(P + R), 0 when P + R = 0. The numbers are given at the configured score threshold; the best
H-mean over a list of thresholds only as ``hmean_best_thr`` with its ``best_thr`` (the lowest
threshold on ties), never under the plain names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import shapely
import torch
from torch import Tensor

from cvbench.metrics.per_image import PerImageMetric

__all__ = [
    "DEFAULT_THRESHOLDS",
    "TextDetectionMetric",
    "dont_care_predictions",
    "hmean_scores",
    "match_icdar2015",
    "one_to_one_matches",
    "polygon_iou",
]

DEFAULT_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
EPS_AREA = 1e-5  # MMOCR adds it to the prediction's area in the "don't care" test


def _points(points: Any) -> np.ndarray:
    """(M, K, 2) float64 points; any empty input as (0, 4, 2)."""
    array = np.asarray(points, dtype=np.float64)
    return array.reshape(0, 4, 2) if array.size == 0 else array


def _polygons(points: Any) -> np.ndarray:
    """(M,) shapely polygons of (M, K, 2) points; an invalid one mended with ``buffer(0)``."""
    points = _points(points)
    if not len(points):
        return np.empty(0, dtype=object)
    if points.ndim != 3 or points.shape[1] < 3 or points.shape[2] != 2:
        raise ValueError(f"polygons of shape {points.shape}; expected (M, K, 2) with K >= 3")
    if not np.isfinite(points).all():
        raise ValueError("a polygon coordinate is not finite")
    polygons = shapely.polygons(points)
    invalid = ~shapely.is_valid(polygons)
    if invalid.any():
        polygons[invalid] = shapely.buffer(polygons[invalid], 0)
    return polygons


def polygon_iou(gt: Any, pred: Any) -> np.ndarray:
    """IoU of every ground-truth polygon with every prediction.

    Args:
        gt: (N, K, 2) xy points.
        pred: (M, K, 2) xy points.

    Returns:
        (N, M) float64 in [0, 1]; 0 where the union is empty.

    >>> square = [[[0, 0], [2, 0], [2, 2], [0, 2]]]
    >>> polygon_iou(square, [[[1, 0], [3, 0], [3, 2], [1, 2]]]).round(4).tolist()
    [[0.3333]]
    """
    a, b = _polygons(gt), _polygons(pred)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    inter = shapely.area(shapely.intersection(a[:, None], b[None, :]))
    union = shapely.area(a)[:, None] + shapely.area(b)[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def dont_care_predictions(pred: Any, dont_care: Any, ignore_threshold: float = 0.5) -> np.ndarray:
    """Predictions lying mostly inside one "don't care" ground-truth polygon.

    Args:
        pred: (M, K, 2) predicted polygons.
        dont_care: (D, K, 2) "don't care" ground-truth polygons.
        ignore_threshold: share of a prediction's area (+ 1e-5) above which it is dropped.

    Returns:
        (M,) bool. The denominator is the prediction's area as given (shapely's area of the
        unmended polygon, as MMOCR), the intersection that of the mended polygons.

    >>> inside = [[[1, 0], [4, 0], [4, 2], [1, 2]]]  # 2/3 of its area in the region
    >>> dont_care_predictions(inside, [[[0, 0], [3, 0], [3, 9], [0, 9]]]).tolist()
    [True]
    """
    raw = _points(pred)
    mended, care = _polygons(raw), _polygons(dont_care)
    if not len(mended) or not len(care):
        return np.zeros(len(mended), dtype=bool)
    inter = shapely.area(shapely.intersection(mended[:, None], care[None, :]))
    area = shapely.area(shapely.polygons(raw)) + EPS_AREA
    return (inter / area[:, None] > ignore_threshold).any(axis=1)


def one_to_one_matches(can_match: np.ndarray) -> int:
    """Matched pairs, first come first matched in (ground truth, prediction) order (MMOCR's
    ``vanilla`` strategy, the RRC script's loop); not a maximum matching.

    Args:
        can_match: (N, M) bool, True where the IoU is above the threshold.

    >>> one_to_one_matches(np.array([[True, True], [True, False]]))  # the maximum would be 2
    1
    """
    gts: set[int] = set()
    preds: set[int] = set()
    for g, p in zip(*np.nonzero(can_match), strict=True):
        if g not in gts and p not in preds:
            gts.add(int(g))
            preds.add(int(p))
    return len(gts)


def match_icdar2015(
    gt: Any,
    gt_ignore: Any,
    pred: Any,
    iou_threshold: float = 0.5,
    ignore_threshold: float = 0.5,
) -> tuple[int, int, int]:
    """ICDAR 2015 matching of one image (predictions already filtered by score).

    Args:
        gt: (N, K, 2) ground-truth polygons, xy pixels.
        gt_ignore: (N,) bool, True for "don't care" (``###``).
        pred: (M, K, 2) predicted polygons in the same pixels, in the detector's order.
        iou_threshold: a pair matches when its IoU is strictly above it.
        ignore_threshold: see :func:`dont_care_predictions`.

    Returns:
        ``(num_gt_care, num_pred_care, num_matched)``.

    >>> gt = [[[0, 0], [10, 0], [10, 10], [0, 10]], [[20, 0], [30, 0], [30, 10], [20, 10]]]
    >>> pred = [[[1, 0], [10, 0], [10, 10], [1, 10]], [[21, 1], [29, 1], [29, 9], [21, 9]],
    ...         [[0, 0], [10, 0], [10, 10], [0, 10]]]
    >>> match_icdar2015(gt, [False, True], pred)
    (1, 2, 1)
    """
    gt_ignore = np.asarray(gt_ignore, dtype=bool).reshape(-1)
    gt_points, pred_points = _points(gt), _points(pred)
    if len(gt_ignore) != len(gt_points):
        raise ValueError(f"{len(gt_points)} ground-truth polygons, {len(gt_ignore)} ignore flags")
    dropped = dont_care_predictions(pred_points, gt_points[gt_ignore], ignore_threshold)
    care_gt, care_pred = gt_points[~gt_ignore], pred_points[~dropped]
    iou = polygon_iou(care_gt, care_pred)
    return len(care_gt), len(care_pred), one_to_one_matches(iou > iou_threshold)


def hmean_scores(num_gt: int, num_pred: int, num_matched: int) -> tuple[float, float, float]:
    """``(precision, recall, hmean)`` in [0, 1] from summed counts (MMOCR's ``compute_hmean``).

    >>> hmean_scores(4, 2, 2), hmean_scores(0, 0, 0), hmean_scores(0, 3, 0)
    ((1.0, 0.5, 0.6666666666666666), (1.0, 1.0, 1.0), (0.0, 1.0, 0.0))
    """
    if num_gt == 0:
        recall, precision = 1.0, (0.0 if num_pred else 1.0)
    else:
        recall = num_matched / num_gt
        precision = num_matched / num_pred if num_pred else 0.0
    total = precision + recall
    return precision, recall, (2 * precision * recall / total if total else 0.0)


def _numpy(value: Any, dtype: type | None) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=dtype)


class TextDetectionMetric(PerImageMetric):
    """ICDAR 2015 precision, recall and H-mean of a split (see the module), each image once.

    ``update`` matches each image at the score threshold and at each of ``thresholds`` and keeps
    its counts (T + 1, 3): ground truth, predictions and matches that count; ``compute`` gathers
    them from every process once (``cvbench.metrics.per_image``), sums and scores. After
    ``compute``, ``last_per_image`` holds one dict per image at the score threshold, sorted by
    index: ``index``, ``num_gt``, ``num_pred``, ``num_matched``, ``precision``, ``recall``,
    ``hmean``.

    Args:
        iou_threshold: a pair matches when its IoU is strictly above it.
        ignore_threshold: a prediction whose area lies in a "don't care" region by more than
            this share is dropped.
        score_threshold: predictions scoring below it are dropped for the reported numbers.
        thresholds: score thresholds searched for ``hmean_best_thr`` / ``best_thr``.
        prefix: put before each key of ``compute``.

    >>> metric = TextDetectionMetric()
    >>> box = torch.tensor([[[0., 0.], [10., 0.], [10., 10.], [0., 10.]]])
    >>> metric.update([box, box], [torch.tensor([0.9]), torch.tensor([0.3])], [box, box],
    ...               [torch.tensor([False]), torch.tensor([False])], torch.tensor([0, 1]))
    >>> result = metric.compute()
    >>> result["precision"], result["recall"], result["hmean_best_thr"], result["best_thr"]
    (1.0, 0.5, 1.0, 0.1)
    """

    higher_is_better = True

    def __init__(
        self,
        *,
        iou_threshold: float = 0.5,
        ignore_threshold: float = 0.5,
        score_threshold: float = 0.5,
        thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
        prefix: str = "",
    ) -> None:
        super().__init__()
        for name, value in (
            ("iou_threshold", iou_threshold),
            ("ignore_threshold", ignore_threshold),
        ):
            if not 0 <= value < 1:
                raise ValueError(f"{name}={value}: expected a value in [0, 1)")
        self.iou_threshold = float(iou_threshold)
        self.ignore_threshold = float(ignore_threshold)
        self.score_threshold = float(score_threshold)
        self.thresholds = tuple(float(t) for t in thresholds)
        if not self.thresholds:
            raise ValueError("thresholds=(): expected at least one score threshold")
        self.prefix = prefix
        self.last_per_image: list[dict[str, Any]] = []
        self.add_field("counts", torch.int64, (len(self.thresholds) + 1, 3))

    def image_counts(self, pred: Any, scores: Any, gt: Any, gt_ignore: Any) -> np.ndarray:
        """(T + 1, 3) int64 ``(num_gt_care, num_pred_care, num_matched)`` of one image at the
        score threshold, then at each of ``thresholds``."""
        pred, scores = _points(_numpy(pred, np.float64)), _numpy(scores, None).reshape(-1)
        if not np.issubdtype(scores.dtype, np.floating):
            scores = scores.astype(np.float64)
        gt, gt_ignore = _points(_numpy(gt, np.float64)), _numpy(gt_ignore, bool).reshape(-1)
        if len(scores) != len(pred) or len(gt_ignore) != len(gt):
            raise ValueError(
                f"{len(pred)} predicted polygons with {len(scores)} scores, {len(gt)} "
                f"ground-truth polygons with {len(gt_ignore)} ignore flags; expected one each"
            )
        # the "don't care" test and the IoU do not depend on the threshold: once per image
        dropped = dont_care_predictions(pred, gt[gt_ignore], self.ignore_threshold)
        care_gt = gt[~gt_ignore]
        iou = polygon_iou(care_gt, pred)
        rows = []
        for threshold in (self.score_threshold, *self.thresholds):
            # compared in the scores' precision: a float32 0.7 is kept at threshold 0.7
            keep = ~dropped & (scores >= scores.dtype.type(threshold))
            matches = one_to_one_matches(iou[:, keep] > self.iou_threshold)
            rows.append((len(care_gt), int(keep.sum()), matches))
        return np.asarray(rows, dtype=np.int64)

    def update(
        self,
        pred_polygons: Sequence[Tensor],
        pred_scores: Sequence[Tensor],
        gt_polygons: Sequence[Tensor],
        gt_ignore: Sequence[Tensor],
        index: Tensor,
    ) -> None:
        """Match a batch of images.

        Args:
            pred_polygons: B tensors (M_i, 4, 2) xy pixels, the detector's order.
            pred_scores: B tensors (M_i,) scores.
            gt_polygons: B tensors (N_i, 4, 2) xy pixels (the same pixels as the predictions).
            gt_ignore: B tensors (N_i,) bool, True for "don't care".
            index: (B,) int64 dataset indices.

        Raises:
            ValueError: counts or shapes that disagree, a coordinate that is not finite;
                naming the image.
        """
        index = torch.as_tensor(index).reshape(-1)
        lengths = {len(pred_polygons), len(pred_scores), len(gt_polygons), len(gt_ignore)}
        if lengths != {len(index)}:
            raise ValueError(
                f"TextDetectionMetric: {len(pred_polygons)} predictions, {len(pred_scores)} "
                f"score lists, {len(gt_polygons)} ground truths, {len(gt_ignore)} ignore lists, "
                f"{len(index)} dataset indices; expected one of each per image"
            )
        counts = []
        for i, parts in enumerate(
            zip(pred_polygons, pred_scores, gt_polygons, gt_ignore, strict=True)
        ):
            try:
                counts.append(self.image_counts(*parts))
            except ValueError as err:
                raise ValueError(
                    f"TextDetectionMetric: image {i} of the batch (dataset index "
                    f"{int(index[i])}): {err}"
                ) from None
        shape = (0, len(self.thresholds) + 1, 3)
        stacked = np.stack(counts) if counts else np.zeros(shape, dtype=np.int64)
        self.add_images(index, {"counts": torch.from_numpy(stacked)})

    def compute(self) -> dict[str, float | int | None]:
        """``precision``, ``recall``, ``hmean`` (in [0, 1], at the score threshold),
        ``hmean_best_thr`` and ``best_thr`` (the best over ``thresholds``), ``num_images``;
        each key prefixed; None without images."""
        images = self.kept_images(device="cpu")
        counts = images["counts"]  # (N, T + 1, 3)
        self.last_per_image = []
        for i, (num_gt, num_pred, matched) in zip(
            images.index.tolist(), counts[:, 0].tolist(), strict=True
        ):
            precision, recall, hmean = hmean_scores(num_gt, num_pred, matched)
            self.last_per_image.append(
                {
                    "index": i,
                    "num_gt": num_gt,
                    "num_pred": num_pred,
                    "num_matched": matched,
                    "precision": precision,
                    "recall": recall,
                    "hmean": hmean,
                }
            )
        result: dict[str, float | int | None] = dict.fromkeys(
            ("precision", "recall", "hmean", "hmean_best_thr", "best_thr")
        )
        if len(counts):
            totals = counts.sum(0).tolist()
            result["precision"], result["recall"], result["hmean"] = hmean_scores(*totals[0])
            best = [hmean_scores(*row)[2] for row in totals[1:]]
            at = max(range(len(best)), key=lambda k: (best[k], -self.thresholds[k]))
            result["hmean_best_thr"], result["best_thr"] = best[at], self.thresholds[at]
        result["num_images"] = len(counts)
        return {f"{self.prefix}{k}": v for k, v in result.items()}
