"""Object detection and instance segmentation as one LightningModule: an injected
torchvision-style detector (Faster R-CNN, FCOS, ..., Mask R-CNN), scored by COCO mAP as
pycocotools ``COCOeval`` computes it, of boxes and with ``iou_types`` [bbox, segm] of masks
(He et al., "Mask R-CNN", ICCV 2017); and Pascal VOC AP50 on VOC data.

The detector owns its losses (torchvision detectors return a dict of losses in training
mode) and its post-processing (score threshold, NMS, at most 100 detections per image). The
task sums the losses, collects the evaluation detections of every process once, and scores
them against the split's original COCO ground truth (original image and category ids).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import Tensor

from cvbench.data.batches import DetectionBatch, DetectionGroundTruthSource
from cvbench.metrics.coco_map import CocoMAP, DetectionGroundTruth
from cvbench.metrics.voc import voc_evaluate
from cvbench.tasks.base import EVAL_STAGES, TaskModule

VOC_VERSIONS = (None, "2007", "2010")


@dataclass(frozen=True)
class DetectionTestOutput:
    """The last test's detections and per-class APs, for the report.

    Attributes:
        results: COCO results (``image_id``, ``category_id`` original ids, ``bbox`` [x, y, w, h]
            pixels, ``score``).
        per_class: one dict per category: ``category_id``, ``name``, ``num_gt``, ``num_det``,
            ``ap``, ``ap_50``, ``ap_75`` (percent or None), with masks also ``mask_ap``,
            ``mask_ap_50``, ``mask_ap_75``, on VOC data ``voc_ap_50``.
        segm_results: with masks, ``results`` with an RLE ``segmentation`` each; else None.
    """

    results: list[dict[str, Any]]
    per_class: list[dict[str, Any]]
    segm_results: list[dict[str, Any]] | None = None


def object_detections(detections: list[dict[str, Tensor]]) -> list[dict[str, Tensor]]:
    """Drop detections of torchvision's background label 0 (FCOS and RetinaNet score it like
    any class; it is no object class of the dataset), with their masks if any."""
    return [{k: v[d["labels"] > 0] for k, v in d.items()} for d in detections]


class DetectionTask(TaskModule):
    """Trains ``net`` on :class:`~cvbench.data.batches.DetectionBatch` batches; reports per
    eval stage what its :class:`~cvbench.metrics.coco_map.CocoMAP` computes, the 12 COCO stats
    ``{stage}/map``, ``{stage}/map_50``, ... ``{stage}/mar_large`` (percent, None where
    COCOeval gives -1) and ``{stage}/num_images``, optionally ``{stage}/voc_map_50``; and
    ``train/loss`` (mean summed detector loss of the epoch).

    With the metric's ``iou_types`` [bbox, segm] (instance segmentation: targets carry
    ``masks``, the net returns ``masks`` (N, 1, H, W) probabilities) it also reports the 12
    stats of the masks, ``{stage}/mask_map``, ... ``{stage}/mask_mar_large``, and
    ``{stage}/iou_type`` says what was scored: "bbox" or "bbox+segm". The ground truth comes
    from the datamodule, a :class:`~cvbench.data.batches.DetectionGroundTruthSource`.
    ``test_output`` is a :class:`DetectionTestOutput`.

    Args:
        voc_version: also report ``voc_map_50`` with the VOC "2007" (11-point) or "2010"
            (area) AP; None: COCO metrics only.
        **base: ``nets`` (one, ``net``: a detector with torchvision's interface and labels
            1..K, see :func:`cvbench.models.detection.with_background_class`),
            ``optimization`` and ``metrics`` (a ``CocoMAP``), see
            :class:`~cvbench.tasks.base.TaskModule`.
    """

    takes_image_lists = True
    metric_stages = EVAL_STAGES
    loss_stages = ("train",)
    progress_bar_key = "val/map_50"

    def __init__(self, *, voc_version: str | None = None, **base: Any) -> None:
        super().__init__(**base)
        if voc_version not in VOC_VERSIONS:
            raise ValueError(
                f"task.module.voc_version must be null, '2007' or '2010', got {voc_version!r}"
            )
        self.voc_version = voc_version
        self.iou_types = self.metric("val", CocoMAP).iou_types  # checked, in canonical order

    def forward(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        """Detections of images (each (3, H, W) float in [0, 1]): per image ``boxes (N, 4)``
        xyxy pixels, ``scores (N,)``, ``labels (N,)`` in 1..K (Mask R-CNN: and ``masks``
        (N, 1, H, W) float in [0, 1])."""
        return self.net(images)

    def training_step(self, batch: DetectionBatch, batch_idx: int) -> Tensor:
        losses = self.net(batch.images, batch.targets)
        loss = sum(losses.values())
        batch_size = len(batch.images)
        self.update_loss("train", loss, weight=batch_size)
        self.log_step(batch_idx, {"loss_step": loss, **losses}, batch_size=batch_size)
        return loss

    def _eval_step(self, batch: DetectionBatch, stage: str) -> None:
        detections = object_detections(self.net(batch.images))
        self.metric(stage, CocoMAP).update(detections, batch.indices)

    def validation_step(self, batch: DetectionBatch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: DetectionBatch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _set_ground_truth(self, stage: str) -> None:
        records = self.data_source(DetectionGroundTruthSource).records_of(stage)
        self.metric(stage, CocoMAP).ground_truth = DetectionGroundTruth(
            coco=records.coco, image_ids=records.image_ids, category_ids=records.category_ids
        )

    def on_validation_epoch_start(self) -> None:
        self._set_ground_truth("val")

    def on_test_epoch_start(self) -> None:
        self._set_ground_truth("test")

    def epoch_extras(self, stage: str) -> dict[str, float | str | None]:
        if stage == "train":  # the detector's losses only: no detections in training mode
            return {}
        metric = self.metric(stage, CocoMAP)
        values: dict[str, float | str | None] = {f"{stage}/iou_type": "+".join(self.iou_types)}
        per_class = metric.last_scores.per_class
        if "segm" in self.iou_types:
            mask_ap = {c["category_id"]: c for c in metric.last_segm_scores.per_class}
            per_class = [
                c | {f"mask_{k}": mask_ap[c["category_id"]][k] for k in ("ap", "ap_50", "ap_75")}
                for c in per_class
            ]
        if self.voc_version is not None:
            voc = voc_evaluate(
                metric.ground_truth.coco,
                metric.last_results,
                version=self.voc_version,
                image_ids=metric.last_image_ids,
            )
            values[f"{stage}/voc_map_50"] = voc.map_50
            values[f"{stage}/voc_version"] = self.voc_version
            voc_ap = {c["category_id"]: c["ap"] for c in voc.per_class}
            per_class = [c | {"voc_ap_50": voc_ap.get(c["category_id"])} for c in per_class]
        if stage == "test":
            self.test_output = DetectionTestOutput(
                results=metric.last_results,
                per_class=per_class,
                segm_results=metric.last_segm_results if "segm" in self.iou_types else None,
            )
        return values
