"""``CocoMAP``: COCO box and mask AP of a detector over a split, as a torchmetrics ``Metric``
that keeps every process's detections (masks as RLE) and scores them once with
:func:`cvbench.metrics.coco.coco_evaluate` (pycocotools ``COCOeval``, METRICS.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from pycocotools import mask as mask_utils
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from cvbench.metrics.coco import CocoScores, coco_evaluate, engine_classes
from cvbench.metrics.coco_files import IOU_TYPES
from cvbench.metrics.gather import gather_states


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


class CocoMAP(Metric):
    """COCO box (and mask) AP/AR of a detector over a split, exact under distributed sampling.

    ``update`` keeps each image's dataset index and detections; ``compute`` gathers them from
    every process once, keeps one copy of each image (a ``DistributedSampler`` pads shards with
    repeated images, and an image may be predicted twice), converts them to COCO results with
    the dataset's ids through ``ground_truth``, and scores them with ``coco_evaluate`` on the
    images seen. ``last_results``, ``last_image_ids`` (the COCO ids of the images seen, sorted
    by dataset index) and ``last_scores`` (per-class AP) keep what compute saw.

    Each image gets a slot, ``(rank << 40) + counter`` (rank of this process, counter of this
    metric); its detections carry the slot, and for an index seen more than once only the
    copy with the smallest slot is kept. A process that saw no image gathers like the others
    (``cvbench.metrics.gather``).

    With ``iou_types`` ``("bbox", "segm")`` each detection's mask is binarized and encoded as
    COCO RLE at ``update`` (no dense mask is kept): its bytes are appended to one uint8 state
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

    full_state_update = False
    higher_is_better = True

    def __init__(
        self,
        *,
        ground_truth: DetectionGroundTruth | None = None,
        engine: str = "faster_coco_eval",
        iou_types: Sequence[str] = ("bbox",),
        mask_threshold: float = 0.5,
    ) -> None:
        super().__init__(dist_sync_fn=gather_states)
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
        self._counter = 0
        for name in ("image_index", "image_slot", "det_slot", "det_label", "det_box", "det_score"):
            self.add_state(name, default=[], dist_reduce_fx="cat")
        if "segm" in self.iou_types:
            for name in ("det_rle_bytes", "det_rle_length", "det_rle_size"):
                self.add_state(name, default=[], dist_reduce_fx="cat")

    def forward(self, preds: list[dict[str, Tensor]], indices: Tensor) -> None:
        """Same as ``update``."""
        self.update(preds, indices)

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
        if masks is not None:
            encoded, sizes = masks
            data = np.frombuffer(b"".join(encoded), dtype=np.uint8).copy()
            self.det_rle_bytes.append(torch.from_numpy(data).to(device))
            lengths = [len(counts) for counts in encoded]
            self.det_rle_length.append(torch.tensor(lengths, dtype=torch.int64, device=device))
            self.det_rle_size.append(
                torch.tensor(sizes, dtype=torch.int64, device=device).reshape(-1, 2)
            )

    def _encoded_masks(
        self, preds: list[dict[str, Tensor]], indices: Tensor
    ) -> tuple[list[bytes], list[list[int]]]:
        """Each detection's RLE counts and its mask's [height, width]."""
        encoded: list[bytes] = []
        sizes: list[list[int]] = []
        for pred, index in zip(preds, indices.tolist(), strict=True):
            masks = pred.get("masks")
            if masks is None or len(masks) != len(pred["boxes"]) or masks.ndim not in (3, 4):
                found = "none" if masks is None else f"shape {tuple(masks.shape)}"
                raise ValueError(
                    f"CocoMAP(iou_types=['bbox', 'segm']): the prediction of dataset index "
                    f"{index} has {len(pred['boxes'])} boxes and masks {found}; expected "
                    f"'masks' (N, 1, H, W) probabilities at the image's size, one per box"
                )
            encoded += encode_masks(masks, self.mask_threshold)
            sizes += [list(masks.shape[-2:])] * len(masks)
        return encoded, sizes

    def _kept(self) -> tuple[Tensor, Tensor, Tensor]:
        """Dataset indices seen (sorted, once each), the (D,) bool of the detections of their
        kept copies and each detection's dataset index; all on the CPU."""
        index, slot = dim_zero_cat(self.image_index).cpu(), dim_zero_cat(self.image_slot).cpu()
        unique, inverse = torch.unique(index, return_inverse=True)
        first = torch.full((len(unique),), torch.iinfo(torch.int64).max, dtype=torch.int64)
        first = first.scatter_reduce(0, inverse, slot, reduce="amin")  # smallest slot per index
        kept_slots, order = first.sort()
        det_slot = dim_zero_cat(self.det_slot).cpu()
        position = torch.searchsorted(kept_slots, det_slot).clamp(max=len(kept_slots) - 1)
        keep = kept_slots[position] == det_slot
        return unique, keep, unique[order[position]]

    def _detections(self, keep: Tensor, det_index: Tensor) -> dict[str, Tensor]:
        """The kept detections' boxes, scores, labels and dataset index."""
        dets = {
            name: dim_zero_cat(getattr(self, f"det_{name}")).cpu()[keep]
            for name in ("box", "score", "label")
        }
        dets["index"] = det_index[keep]
        return dets

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

    def _segm_results(self, keep: Tensor, results: list[dict]) -> list[dict]:
        """The box results with their RLE mask instead of the box (``counts`` as a string),
        each checked to be the size of its ground-truth image."""
        assert self.ground_truth is not None
        lengths = dim_zero_cat(self.det_rle_length).cpu()
        sizes = dim_zero_cat(self.det_rle_size).cpu()[keep].tolist()
        data = dim_zero_cat(self.det_rle_bytes).cpu().numpy().tobytes()
        ends = torch.cumsum(lengths, 0)
        spans = torch.stack([ends - lengths, ends], 1)[keep].tolist()
        images = {image["id"]: image for image in self.ground_truth.coco["images"]}
        segm = []
        for result, (start, end), size in zip(results, spans, sizes, strict=True):
            image = images[result["image_id"]]
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
        self.last_segm_results = []
        if not len(self.image_index):  # nothing was updated: nothing to score
            unique, self.last_results = torch.zeros(0, dtype=torch.int64), []
        else:
            unique, keep, det_index = self._kept()
            self.last_results = self._results(self._detections(keep, det_index))
            if "segm" in self.iou_types:
                self.last_segm_results = self._segm_results(keep, self.last_results)
        self.last_image_ids = [self.ground_truth.image_ids[i] for i in unique.tolist()]
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
