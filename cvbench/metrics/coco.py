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
and collapses repeated ids), and a missing ``iscrowd`` means 0. For ``segm`` the results'
``bbox`` is dropped before loading, so the detection's area is its mask area (as detectron2
and MMDetection do; pycocotools would take the box area when a bbox is present).
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
import torch
import torch.distributed as dist
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from cvbench.metrics.coco_files import (
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


@dataclass
class DetectionGroundTruth:
    """A split's ground truth as ``CocoMAP`` needs it.

    Attributes:
        coco: the COCO instances dict (original ids).
        image_ids: dataset index i -> COCO image id.
        category_ids: contiguous label l (1-based) -> category id ``category_ids[l - 1]``.
    """

    coco: dict
    image_ids: list[int]
    category_ids: list[int]


def _engine(engine: str) -> tuple[type, type]:
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
    coco_class, eval_class = _engine(engine)
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
    else:
        results = [{k: v for k, v in r.items() if k != "bbox"} for r in results]
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
        if iou_type == "segm" and results:  # loadRes computes the masks' areas
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


class CocoMAP(Metric):
    """COCO box AP/AR of a detector over a split, exact under distributed sampling.

    ``update`` keeps each image's dataset index and detections; ``compute`` gathers them from
    every process once, keeps one copy of each image (a ``DistributedSampler`` pads shards with
    repeated images, and an image may be predicted twice), converts them to COCO results with
    the dataset's ids through ``ground_truth``, and scores them with ``coco_evaluate`` on the
    images seen. ``last_results``, ``last_image_ids`` (the COCO ids of the images seen, sorted
    by dataset index) and ``last_scores`` (per-class AP) keep what compute saw.

    Each image gets a slot, ``(rank << 40) + counter`` (rank of this process, counter of this
    metric); its detections carry the slot, and for an index seen more than once only the
    copy with the smallest slot is kept.

    Call ``update``, not the metric itself: ``forward`` only updates (a per-batch COCO
    evaluation would be meaningless and slow).

    Args:
        ground_truth: the split's ground truth; may be set later, before ``compute``.
        engine: ``coco_evaluate``'s engine.
    """

    full_state_update = False
    higher_is_better = True

    def __init__(
        self, *, ground_truth: DetectionGroundTruth | None = None, engine: str = "faster_coco_eval"
    ) -> None:
        super().__init__()
        _engine(engine)
        self.ground_truth = ground_truth
        self.engine = engine
        self.last_results: list[dict] = []
        self.last_image_ids: list[int] = []
        self.last_scores: CocoScores | None = None
        self._counter = 0
        for name in ("image_index", "image_slot", "det_slot", "det_label", "det_box", "det_score"):
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def forward(self, preds: list[dict[str, Tensor]], indices: Tensor) -> None:
        """Same as ``update``."""
        self.update(preds, indices)

    def update(self, preds: list[dict[str, Tensor]], indices: Tensor) -> None:
        """Add a batch of predictions.

        Args:
            preds: one dict per image: ``boxes`` (N, 4) float xyxy pixels, ``scores`` (N,),
                ``labels`` (N,) int64 in 1..K (torchvision detectors' output).
            indices: (B,) int64 dataset indices of the images, B = len(preds).
        """
        if len(preds) != len(indices):
            raise ValueError(f"{len(preds)} predictions for {len(indices)} dataset indices")
        if not preds:
            return
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        device = self.device  # every state on the metric's device, as the gather needs
        slots = (rank << 40) + self._counter + torch.arange(len(preds), device=device)
        self._counter += len(preds)
        counts = torch.tensor([len(p["boxes"]) for p in preds], device=device)
        self.image_index.append(indices.detach().to(device, torch.int64).reshape(-1))
        self.image_slot.append(slots)
        self.det_slot.append(torch.repeat_interleave(slots, counts))
        for name, key, dtype, shape in (
            ("det_box", "boxes", torch.float64, (-1, 4)),
            ("det_score", "scores", torch.float64, (-1,)),
            ("det_label", "labels", torch.int64, (-1,)),
        ):
            values = [p[key].detach().to(device, dtype).reshape(shape) for p in preds]
            getattr(self, name).append(torch.cat(values))

    def _kept(self) -> tuple[Tensor, dict[str, Tensor]]:
        """Dataset indices seen (sorted, once each) and the detections of their kept copies,
        with ``index`` the dataset index of each detection; all on the CPU."""
        index, slot = dim_zero_cat(self.image_index).cpu(), dim_zero_cat(self.image_slot).cpu()
        unique, inverse = torch.unique(index, return_inverse=True)
        first = torch.full((len(unique),), torch.iinfo(torch.int64).max, dtype=torch.int64)
        first = first.scatter_reduce(0, inverse, slot, reduce="amin")  # smallest slot per index
        kept_slots, order = first.sort()
        det_slot = dim_zero_cat(self.det_slot).cpu()
        position = torch.searchsorted(kept_slots, det_slot).clamp(max=len(kept_slots) - 1)
        keep = kept_slots[position] == det_slot
        dets = {
            name: dim_zero_cat(getattr(self, f"det_{name}")).cpu()[keep]
            for name in ("box", "score", "label")
        }
        dets["index"] = unique[order[position[keep]]]
        return unique, dets

    def _results(self, dets: dict[str, Tensor]) -> list[dict]:
        """COCO results with the dataset's image and category ids; boxes xywh float64."""
        truth = self.ground_truth
        assert truth is not None
        labels, index = dets["label"], dets["index"]
        num_labels = len(truth.category_ids)
        bad = (labels < 1) | (labels > num_labels)
        if bad.any():
            raise ValueError(
                f"CocoMAP: label {int(labels[bad][0])}; expected 1..{num_labels} "
                "(0 is the background; label l is category_ids[l - 1])"
            )
        if len(index) and int(index.max()) >= len(truth.image_ids):
            raise ValueError(
                f"CocoMAP: dataset index {int(index.max())} but the ground truth has "
                f"{len(truth.image_ids)} images"
            )
        box, score = dets["box"], dets["score"]
        finite = torch.isfinite(box).all(dim=1) & torch.isfinite(score)
        if not finite.all():
            i = int(index[~finite][0])
            raise ValueError(
                f"CocoMAP: a detection of image {truth.image_ids[i]} (dataset index {i}) has a "
                "non-finite box or score"
            )
        xywh = torch.cat([box[:, :2], box[:, 2:] - box[:, :2]], dim=1).tolist()
        image_ids = np.asarray(truth.image_ids)[index.numpy()].tolist()
        category_ids = np.asarray(truth.category_ids)[labels.numpy() - 1].tolist()
        return [
            {"image_id": i, "category_id": c, "bbox": b, "score": s}
            for i, c, b, s in zip(image_ids, category_ids, xywh, score.tolist(), strict=True)
        ]

    def compute(self) -> dict[str, float | None]:
        """The 12 ``COCO_STATS`` (percent, None where undefined) and ``num_images``."""
        if self.ground_truth is None:
            raise ValueError(
                "CocoMAP.ground_truth is not set: give it the split's DetectionGroundTruth "
                "(COCO dict, image ids, category ids) before compute()"
            )
        if not len(self.image_index):  # nothing was updated: nothing to score
            unique, self.last_results = torch.zeros(0, dtype=torch.int64), []
        else:
            unique, dets = self._kept()
            self.last_results = self._results(dets)
        self.last_image_ids = [self.ground_truth.image_ids[i] for i in unique.tolist()]
        self.last_scores = coco_evaluate(
            self.ground_truth.coco,
            self.last_results,
            engine=self.engine,
            image_ids=self.last_image_ids,
        )
        return {**self.last_scores.stats, "num_images": len(self.last_image_ids)}
