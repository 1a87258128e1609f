"""Semantic segmentation as one LightningModule: an injected per-pixel classifier trained with
cross-entropy, scored by mIoU from one confusion matrix over the whole split (MMSegmentation's
``IoUMetric``; METRICS.md "Semantic segmentation").

Training batches are crops of one size, with the mask moved with the image. Evaluation batches
hold each image as the eval transform left it and its label map at the original size: the
logits of the whole image (or of overlapping windows, ``inference.mode: slide``) are resized
bilinearly to the label's size before the argmax, so scores are always at the label's own
resolution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvbench.data.batches import ClassNamesSource, Images, MaskBatch
from cvbench.metrics.segmentation import SegmentationMetric
from cvbench.tasks.base import EVAL_STAGES, STAGES, TaskModule
from cvbench.tasks.segmentation_inference import predict_logits

INFERENCE_MODES = ("whole", "slide")


@dataclass(frozen=True)
class SegmentationTestOutput:
    """The last test's scores, for the report.

    Attributes:
        per_class: one dict per class id 0..K-1: ``class_id``, ``name``, ``iou``, ``acc``
            (percent or None), ``gt_pixels``, ``pred_pixels``.
        confusion: (K, K) int64 pixel counts, rows ground truth, columns prediction.
    """

    per_class: list[dict[str, Any]]
    confusion: Tensor


def split_outputs(output: Tensor | Mapping[str, Tensor]) -> tuple[Tensor, Tensor | None]:
    """The main logits and the auxiliary ones of a network's output.

    torchvision's segmentation models return ``{"out": ..., "aux": ...}`` ("aux" only with
    ``aux_loss=True``); other networks return the logits tensor.
    """
    if isinstance(output, Mapping):
        return output["out"], output.get("aux")
    return output, None


def resize_to(logits: Tensor, size: Sequence[int]) -> Tensor:
    """Logits (B, K, h, w) bilinearly resized to ``size`` (H, W) (unchanged when equal)."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=tuple(size), mode="bilinear", align_corners=False)


class SegmentationTask(TaskModule):
    """Trains ``net`` on :class:`~cvbench.data.batches.MaskBatch` batches and reports per eval
    stage what its :class:`~cvbench.metrics.segmentation.SegmentationMetric` computes,
    ``{stage}/miou``, ``{stage}/pixel_acc``, ``{stage}/mean_acc``, ``{stage}/fwiou`` (percent,
    None where undefined) and ``{stage}/num_images``; ``{stage}/loss`` (mean per-image
    cross-entropy at the label's size) and the protocol string ``{stage}/inference``; and
    ``train/loss``. Class names come from a datamodule that is a
    :class:`~cvbench.data.batches.ClassNamesSource` (else class ids).
    ``test_output`` is a :class:`SegmentationTestOutput`.

    Args:
        loss: cross-entropy-like loss of (logits (B, K, H, W), masks (B, H, W) int64) that
            skips ``ignore_index`` (e.g. ``CrossEntropyLoss(ignore_index=255)``), mean-reduced.
        num_classes: number of classes K (labels 0..K-1).
        ignore_index: label value that is never trained on nor scored.
        aux_weight: weight of the auxiliary head's loss when the net has one.
        inference: evaluation mode: ``mode`` "whole" or "slide", ``crop_size`` and ``stride``
            (H, W) of the sliding windows, ``size_divisor`` (inputs padded to a multiple).
        **base: ``nets`` (one, ``net``: images (B, 3, H, W) float to logits (B, K, h, w)
            (h, w <= H, W; upsampled here), or to torchvision's dict with "out" (and "aux")),
            ``optimization`` and ``metrics`` (a ``SegmentationMetric``), see
            :class:`~cvbench.tasks.base.TaskModule`.
    """

    metric_stages = EVAL_STAGES
    loss_stages = STAGES
    progress_bar_key = "val/miou"

    def __init__(
        self,
        *,
        loss: nn.Module,
        num_classes: int,
        ignore_index: int = 255,
        aux_weight: float = 0.5,
        inference: Mapping[str, Any] | None = None,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        self.loss = loss
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.aux_weight = aux_weight
        self.inference = self._check_inference(dict(inference or {}))
        self.metric("test", SegmentationMetric)  # declared: fail at build time

    @staticmethod
    def _check_inference(inference: dict[str, Any]) -> dict[str, Any]:
        inference = {"mode": "whole", "crop_size": None, "stride": None, "size_divisor": 1} | (
            inference
        )
        unknown = sorted(set(inference) - {"mode", "crop_size", "stride", "size_divisor"})
        if unknown:
            raise ValueError(
                f"task.module.inference: unknown key(s) {unknown}; expected mode, crop_size, "
                "stride, size_divisor"
            )
        if inference["mode"] not in INFERENCE_MODES:
            raise ValueError(
                f"task.module.inference.mode must be one of {INFERENCE_MODES}, got "
                f"{inference['mode']!r}"
            )
        if inference["mode"] == "slide" and (
            inference["crop_size"] is None or inference["stride"] is None
        ):
            raise ValueError(
                "task.module.inference.mode=slide needs inference.crop_size and "
                "inference.stride, e.g. [512, 1024] and [341, 683]"
            )
        return inference

    def forward(self, images: Tensor) -> Tensor:
        """Logits (B, K, H, W) of images (B, 3, H, W), with the evaluation's inference mode."""
        return predict_logits(self.net, images, num_classes=self.num_classes, **self.inference)

    def _logits_at(self, images: Images, sizes: Sequence[Sequence[int]]) -> list[Tensor]:
        """Logits resized to the label sizes: one (B, K, H, W) tensor when ``images`` is a
        batch tensor and every label has one size, else one (1, K, H_i, W_i) per image."""
        if isinstance(images, Tensor) and all(tuple(s) == tuple(sizes[0]) for s in sizes):
            return [resize_to(self(images), sizes[0])]
        return [resize_to(self(im[None]), s) for im, s in zip(images, sizes, strict=True)]

    @torch.no_grad()
    def predict(self, images: Images, sizes: Sequence[Sequence[int]]) -> list[Tensor]:
        """Label maps of images (each (3, h, w)) at the labels' sizes (H, W): (H, W) int64 each."""
        return [p for logits in self._logits_at(images, sizes) for p in logits.argmax(dim=1)]

    def training_step(self, batch: MaskBatch, batch_idx: int) -> Tensor:
        images, masks = batch.images, batch.masks
        if isinstance(images, list) or isinstance(masks, list):
            raise ValueError(
                "training images of different sizes in one batch: set data.crop_size so that "
                "the train transform crops every image to one size"
            )
        logits, aux = split_outputs(self.net(images))
        loss = self.loss(resize_to(logits, masks.shape[-2:]), masks)
        if aux is not None and self.aux_weight:
            loss = loss + self.aux_weight * self.loss(resize_to(aux, masks.shape[-2:]), masks)
        self.update_loss("train", loss, weight=len(masks))
        self.log_step(batch_idx, {"loss_step": loss}, batch_size=len(masks))
        return loss

    def _eval_step(self, batch: MaskBatch, stage: str) -> None:
        images, masks = batch.images, list(batch.masks)
        preds, start = [], 0
        for logits in self._logits_at(images, [m.shape[-2:] for m in masks]):
            target = torch.stack(masks[start : start + len(logits)])
            start += len(logits)
            per_pixel = F.cross_entropy(
                logits, target, ignore_index=self.ignore_index, reduction="none"
            )
            valid = (target != self.ignore_index).flatten(1).sum(dim=1).clamp(min=1)
            self.update_loss(stage, per_pixel.flatten(1).sum(dim=1) / valid)
            preds.extend(logits.argmax(dim=1))
        self.metric(stage, SegmentationMetric).update(preds, masks, batch.indices)

    def validation_step(self, batch: MaskBatch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: MaskBatch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _set_class_names(self, stage: str) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        names = datamodule.class_names if isinstance(datamodule, ClassNamesSource) else None
        self.metric(stage, SegmentationMetric).class_names = list(names) if names else None

    def on_validation_epoch_start(self) -> None:
        self._set_class_names("val")

    def on_test_epoch_start(self) -> None:
        self._set_class_names("test")

    def epoch_extras(self, stage: str) -> dict[str, float | str | None]:
        if stage == "train":
            return {}
        if stage == "test":
            metric = self.metric(stage, SegmentationMetric)
            self.test_output = SegmentationTestOutput(
                per_class=metric.last_scores.per_class, confusion=metric.last_confusion.cpu()
            )
        return {f"{stage}/inference": self.inference["mode"]}
