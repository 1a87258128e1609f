"""``CocoMAP``: COCO box and mask AP of a detector over a split, as a torchmetrics ``Metric``
that keeps every process's detections (masks as RLE) and scores them once with
:func:`cvbench.metrics.coco.coco_evaluate` (pycocotools ``COCOeval``, METRICS.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from pycocotools import mask as mask_utils
from torch import Tensor

from cvbench.metrics.coco import CocoScores, coco_evaluate, engine_classes
from cvbench.metrics.coco_files import IOU_TYPES
from cvbench.metrics.per_image import KeptImages, PerImageMetric


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


def encode_masks(masks: Tensor, threshold: float = 0.5) -> list[bytes]:
    """COCO compressed RLE counts of binarized masks, one per mask (pycocotools ``encode``).

    Args:
        masks: (N, 1, H, W) or (N, H, W); float probabilities (torchvision Mask R-CNN's
            output, pasted at image size) are foreground where > ``threshold`` (as
            torchvision's COCO reference does); bool or integer masks where nonzero.
        threshold: the probability above which a pixel is foreground.

    Returns:
        the ``counts`` bytes of each mask's RLE, whose ``size`` is [H, W].

    Runs go down the columns, starting with background: 5 off, 2 on, 5 off here.

    >>> mask = torch.zeros(1, 1, 4, 3)
    >>> mask[0, 0, 1:3, 1] = 0.9
    >>> encode_masks(mask)
    [b'525']
    """
    masks = masks.detach()
    if masks.ndim == 4:
        masks = masks[:, 0]
    binary = masks > threshold if masks.is_floating_point() else masks != 0
    if not len(binary):
        return []
    # (N, W, H) contiguous is (H, W, N) in Fortran order: what pycocotools encodes.
    fortran = binary.transpose(1, 2).to("cpu", torch.uint8).contiguous().numpy().transpose(2, 1, 0)
    return [rle["counts"] for rle in mask_utils.encode(fortran)]


def _iou_types(iou_types: Iterable[str]) -> tuple[str, ...]:
    """``("bbox",)`` or ``("bbox", "segm")``, checked."""
    chosen = tuple(dict.fromkeys(iou_types))
    if "bbox" not in chosen or any(t not in IOU_TYPES for t in chosen):
        raise ValueError(
            f"iou_types {list(iou_types)}; expected ['bbox'] or ['bbox', 'segm'] (boxes are "
            "always scored, masks too with 'segm')"
        )
    return tuple(t for t in IOU_TYPES if t in chosen)


class CocoMAP(PerImageMetric):
    """COCO box (and mask) AP/AR of a detector over a split, exact under distributed sampling.

    ``update`` keeps each image's dataset index and detections; ``compute`` gathers them from
    every process once, keeps one copy of each image (a ``DistributedSampler`` pads shards with
    repeated images, and an image may be predicted twice), converts them to COCO results with
    the dataset's ids through ``ground_truth``, and scores them with ``coco_evaluate`` on the
    images seen. ``last_results``, ``last_image_ids`` (the COCO ids of the images seen, sorted
    by dataset index) and ``last_scores`` (per-class AP) keep what compute saw.

    Each image's detections are rows of group ``det`` (``cvbench.metrics.per_image``): for an
    index seen more than once only the first copy's detections are kept, those of the images
    in dataset-index order, each image's in the order the detector gave them.

    With ``iou_types`` ``("bbox", "segm")`` each detection's mask is binarized and encoded as
    COCO RLE at ``update`` (no dense mask is kept): its bytes are rows of group ``rle`` (uint8)
    with per-detection lengths and [height, width], so the gather concatenates them like the
    boxes. ``compute`` then also returns the 12 stats of ``COCOeval(iouType="segm")`` prefixed
    ``mask_``; ``last_segm_results`` (COCO results with an RLE ``segmentation`` whose
    ``counts`` is a string) and ``last_segm_scores`` keep them.

    Call ``update``, not the metric itself: ``forward`` only updates (a per-batch COCO
    evaluation would be meaningless and slow).

    Args:
        ground_truth: the split's ground truth; may be set later, before ``compute``.
        engine: ``coco_evaluate``'s engine.
        iou_types: ``("bbox",)`` or ``("bbox", "segm")``.
        mask_threshold: a predicted mask probability above it is foreground.
    """

    higher_is_better = True

    def __init__(
        self,
        *,
        ground_truth: DetectionGroundTruth | None = None,
        engine: str = "faster_coco_eval",
        iou_types: Sequence[str] = ("bbox",),
        mask_threshold: float = 0.5,
    ) -> None:
        super().__init__()
        engine_classes(engine)
        self.ground_truth = ground_truth
        self.engine = engine
        self.iou_types = _iou_types(iou_types)
        self.mask_threshold = mask_threshold
        self.last_results: list[dict] = []
        self.last_image_ids: list[int] = []
        self.last_scores: CocoScores | None = None
        self.last_segm_results: list[dict] = []
        self.last_segm_scores: CocoScores | None = None
        self.add_field("box", torch.float64, (4,), rows="det")
        self.add_field("score", torch.float64, rows="det")
        self.add_field("label", torch.int64, rows="det")
        if "segm" in self.iou_types:
            self.add_field("rle_length", torch.int64, rows="det")
            self.add_field("rle_size", torch.int64, (2,), rows="det")
            self.add_field("rle_byte", torch.uint8, rows="rle")

    def update(self, preds: list[dict[str, Tensor]], indices: Tensor) -> None:
        """Add a batch of predictions.

        Args:
            preds: one dict per image: ``boxes`` (N, 4) float xyxy pixels, ``scores`` (N,),
                ``labels`` (N,) int64 in 1..K (torchvision detectors' output); with ``segm``
                also ``masks`` (N, 1, H, W) float probabilities in [0, 1] at the image's size
                (H, W), as torchvision's Mask R-CNN returns them (or bool (N, H, W)).
            indices: (B,) int64 dataset indices of the images, B = len(preds).
        """
        if len(preds) != len(indices):
            raise ValueError(f"{len(preds)} predictions for {len(indices)} dataset indices")
        if not preds:
            return
        # Masks first: a bad one raises before any state grows.
        masks = self._encoded_masks(preds, indices) if "segm" in self.iou_types else None
        values = {
            name: torch.cat([p[key].detach().reshape(shape) for p in preds])
            for name, key, shape in (
                ("box", "boxes", (-1, 4)),
                ("score", "scores", (-1,)),
                ("label", "labels", (-1,)),
            )
        }
        rows = {"det": [len(p["boxes"]) for p in preds]}
        if masks is not None:
            encoded, sizes, rows["rle"] = masks
            data = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
            values["rle_byte"] = torch.from_numpy(data)
            values["rle_length"] = torch.tensor([len(counts) for counts in encoded])
            values["rle_size"] = torch.tensor(sizes, dtype=torch.int64).reshape(-1, 2)
        self.add_images(indices, values, rows)

    def _encoded_masks(
        self, preds: list[dict[str, Tensor]], indices: Tensor
    ) -> tuple[list[bytes], list[list[int]], list[int]]:
        """Each detection's RLE counts and its mask's [height, width]; each image's number of
        RLE bytes."""
        encoded: list[bytes] = []
        sizes: list[list[int]] = []
        image_bytes: list[int] = []
        for pred, index in zip(preds, indices.tolist(), strict=True):
            masks = pred.get("masks")
            if masks is None or len(masks) != len(pred["boxes"]) or masks.ndim not in (3, 4):
                found = "none" if masks is None else f"shape {tuple(masks.shape)}"
                raise ValueError(
                    f"CocoMAP(iou_types=['bbox', 'segm']): the prediction of dataset index "
                    f"{index} has {len(pred['boxes'])} boxes and masks {found}; expected "
                    f"'masks' (N, 1, H, W) probabilities at the image's size, one per box"
                )
            mine = encode_masks(masks, self.mask_threshold)
            encoded += mine
            sizes += [list(masks.shape[-2:])] * len(masks)
            image_bytes.append(sum(len(counts) for counts in mine))
        return encoded, sizes, image_bytes

    def _results(self, images: KeptImages) -> list[dict]:
        """COCO results of the kept detections, with the dataset's image and category ids;
        boxes xywh float64."""
        truth = self.ground_truth
        assert truth is not None
        labels, index = images["label"], images.index[images.image_of_row("det")]
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
        box, score = images["box"], images["score"]
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

    def _segm_results(self, images: KeptImages, results: list[dict]) -> list[dict]:
        """The box results with their RLE mask instead of the box (``counts`` as a string),
        each checked to be the size of its ground-truth image."""
        assert self.ground_truth is not None
        lengths = images["rle_length"]
        sizes = images["rle_size"].tolist()
        data = images["rle_byte"].numpy().tobytes()
        ends = torch.cumsum(lengths, 0)
        spans = torch.stack([ends - lengths, ends], 1).tolist()
        truth_images = {image["id"]: image for image in self.ground_truth.coco["images"]}
        segm = []
        for result, (start, end), size in zip(results, spans, sizes, strict=True):
            image = truth_images[result["image_id"]]
            if size != [image.get("height"), image.get("width")]:
                raise ValueError(
                    f"CocoMAP: a mask of image {result['image_id']} is {size[1]}x{size[0]} "
                    f"(WxH) but the image is {image.get('width')}x{image.get('height')}; "
                    "masks must be pasted at the image's own size"
                )
            rle = {"size": size, "counts": data[start:end].decode("ascii")}
            segm.append(
                {
                    "image_id": result["image_id"],
                    "category_id": result["category_id"],
                    "segmentation": rle,
                    "score": result["score"],
                }
            )
        return segm

    def compute(self) -> dict[str, float | None]:
        """The 12 ``COCO_STATS`` of the boxes (percent, None where undefined), with ``segm``
        the 12 of the masks prefixed ``mask_``, and ``num_images``."""
        if self.ground_truth is None:
            raise ValueError(
                "CocoMAP.ground_truth is not set: give it the split's DetectionGroundTruth "
                "(COCO dict, image ids, category ids) before compute()"
            )
        images = self.kept_images(device="cpu")
        self.last_results = self._results(images)
        self.last_segm_results = []
        if "segm" in self.iou_types:
            self.last_segm_results = self._segm_results(images, self.last_results)
        self.last_image_ids = [self.ground_truth.image_ids[i] for i in images.index.tolist()]
        self.last_scores = coco_evaluate(
            self.ground_truth.coco,
            self.last_results,
            engine=self.engine,
            image_ids=self.last_image_ids,
        )
        stats = dict(self.last_scores.stats)
        if "segm" in self.iou_types:
            self.last_segm_scores = coco_evaluate(
                self.ground_truth.coco,
                self.last_segm_results,
                iou_type="segm",
                engine=self.engine,
                image_ids=self.last_image_ids,
            )
            stats |= {f"mask_{k}": v for k, v in self.last_segm_scores.stats.items()}
        return {**stats, "num_images": len(self.last_image_ids)}
