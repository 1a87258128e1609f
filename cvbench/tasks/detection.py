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

from collections.abc import Sequence

from torch import Tensor, nn
from torchmetrics import MeanMetric

from cvbench.metrics.coco_map import CocoMAP, DetectionGroundTruth
from cvbench.metrics.voc import voc_evaluate
from cvbench.tasks.base import TaskModule
from cvbench.tasks.optimization import OptimizerFactory, SchedulerFactory

Batch = tuple[list[Tensor], list[dict[str, Tensor]], Tensor]
EVAL_STAGES = ("val", "test")


def object_detections(detections: list[dict[str, Tensor]]) -> list[dict[str, Tensor]]:
    """Drop detections of torchvision's background label 0 (FCOS and RetinaNet score it like
    any class; it is no object class of the dataset), with their masks if any."""
    return [{k: v[d["labels"] > 0] for k, v in d.items()} for d in detections]


class DetectionTask(TaskModule):
    """Trains ``net`` on batches ``(images, targets, indices)``; reports per eval stage the 12
    COCO stats ``{stage}/map``, ``{stage}/map_50``, ... ``{stage}/mar_large`` (percent, None
    where COCOeval gives -1), ``{stage}/num_images``, optionally ``{stage}/voc_map_50``; and
    ``train/loss`` (mean summed detector loss of the epoch).

    With ``iou_types`` [bbox, segm] (instance segmentation: targets carry ``masks``, the net
    returns ``masks`` (N, 1, H, W) probabilities) it also reports the 12 stats of the masks,
    ``{stage}/mask_map``, ``{stage}/mask_map_50``, ... ``{stage}/mask_mar_large``, and
    ``{stage}/iou_type`` says what was scored: "bbox" or "bbox+segm".

    ``results[stage]`` holds the last values in float64; ``test_outputs`` the last test's
    COCO results (original ids; ``segm_results`` with RLE masks) and per-class APs (with
    ``mask_ap``, ``mask_ap_50``, ``mask_ap_75`` when masks are scored), for the report.

    Args:
        net: a detector with torchvision's interface and labels 1..K (see
            :func:`cvbench.models.detection.with_background_class`).
        optimizer: builds the optimizer from the parameters (a ``functools.partial``).
        scheduler: builds the LR scheduler from the optimizer, or None.
        scheduler_interval: "epoch" or "step".
        engine: COCO evaluation engine, "faster_coco_eval" or "pycocotools" (same numbers).
        voc_version: also report ``voc_map_50`` with the VOC "2007" (11-point) or "2010"
            (area) AP; None: COCO metrics only.
        iou_types: ["bbox"] (detection) or ["bbox", "segm"] (instance segmentation).
    """

    takes_image_lists = True

    def __init__(
        self,
        *,
        net: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: str = "epoch",
        engine: str = "faster_coco_eval",
        voc_version: str | None = None,
        iou_types: Sequence[str] = ("bbox",),
    ) -> None:
        super().__init__(
            net=net,
            optimizer=optimizer,
            scheduler=scheduler,
            scheduler_interval=scheduler_interval,
        )
        if voc_version not in (None, "2007", "2010"):
            raise ValueError(
                f"task.module.voc_version must be null, '2007' or '2010', got {voc_version!r}"
            )
        self.voc_version = voc_version
        self.test_outputs: dict = {}
        self.train_loss = MeanMetric()
        self.metrics = nn.ModuleDict(
            {f"{s}_metrics": CocoMAP(engine=engine, iou_types=iou_types) for s in EVAL_STAGES}
        )
        self.iou_types = self.metrics["val_metrics"].iou_types  # checked, in canonical order

    def forward(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        """Detections of images (each (3, H, W) float in [0, 1]): per image ``boxes (N, 4)``
        xyxy pixels, ``scores (N,)``, ``labels (N,)`` in 1..K (Mask R-CNN: and ``masks``
        (N, 1, H, W) float in [0, 1])."""
        return self.net(images)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        images, targets, _ = batch
        losses = self.net(images, targets)
        loss = sum(losses.values())
        self.train_loss.update(loss.detach(), weight=len(images))
        # Each self.log costs ~1 ms: log step losses only as often as the loggers write.
        if (batch_idx + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss_step", loss, prog_bar=True, batch_size=len(images))
            for name, value in losses.items():
                self.log(f"train/{name}", value, batch_size=len(images))
        return loss

    def _eval_step(self, batch: Batch, stage: str) -> None:
        images, _, indices = batch
        self.metrics[f"{stage}_metrics"].update(object_detections(self.net(images)), indices)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _set_ground_truth(self, stage: str) -> None:
        records = self.trainer.datamodule.records_of(stage)
        self.metrics[f"{stage}_metrics"].ground_truth = DetectionGroundTruth(
            coco=records.coco, image_ids=records.image_ids, category_ids=records.category_ids
        )

    def on_validation_epoch_start(self) -> None:
        self._set_ground_truth("val")

    def on_test_epoch_start(self) -> None:
        self._set_ground_truth("test")

    def log_epoch(self, stage: str) -> None:
        if stage == "train":  # the detector's losses only: no detections in training mode
            loss = float(self.train_loss.compute())
            self.train_loss.reset()
            self.results["train"] = {"train/loss": loss}
            self.log("train/loss", loss)
            return
        # The metric gathers every process's detections itself: no sync_dist here.
        metric = self.metrics[f"{stage}_metrics"]
        values: dict[str, float | str | None] = {
            f"{stage}/{k}": v for k, v in metric.compute().items()
        }
        values[f"{stage}/iou_type"] = "+".join(self.iou_types)
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
            self.test_outputs = {"results": metric.last_results, "per_class": per_class}
            if "segm" in self.iou_types:
                self.test_outputs["segm_results"] = metric.last_segm_results
        metric.reset()
        self.results[stage] = values
        for key, value in values.items():
            if isinstance(value, int | float):  # Lightning logs numbers; None: no ground truth
                self.log(key, value, prog_bar=key == "val/map_50")
