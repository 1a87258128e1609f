"""Classification with localization (ILSVRC CLS-LOC) as one LightningModule.

The net predicts class scores and one class-agnostic box per image; the task's guesses are
the 5 best classes, each with that box. An image is correctly localized when one guess has the
image's class and IoU >= 0.5 with one of its ground-truth boxes (Russakovsky et al., 2015).
Batches come from the detection datamodule: every box of an image must have the image's class.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import box_convert, generalized_box_iou_loss

from cvbench.data.batches import DetectionBatch
from cvbench.metrics.classification import top_guesses
from cvbench.metrics.localization import LocalizationError
from cvbench.tasks.base import TaskModule


def image_labels(targets: list[dict[str, Tensor]], indices: Tensor) -> Tensor:
    """(B,) int64 0-based class of each image from detection targets (labels 1..K).

    Raises:
        ValueError: an image has no box, or boxes of several classes (naming its index).
    """
    labels = []
    for target, index in zip(targets, indices.tolist(), strict=True):
        classes = target["labels"].unique()
        if len(classes) != 1:
            raise ValueError(
                f"localization needs one class per image, but record {index} has "
                f"{'no box' if len(classes) == 0 else f'{len(classes)} classes'}; use data "
                f"with one labelled object class per image (e.g. data=detection/shapes with "
                f"data.records.min_objects=1 data.records.max_objects=1)"
            )
        labels.append(int(classes[0]) - 1)
    return torch.tensor(labels, dtype=torch.int64, device=indices.device)


class LocalizationTask(TaskModule):
    """Trains ``net`` with cross-entropy on the class and L1 + GIoU on the box; reports per
    stage what its :class:`~cvbench.metrics.localization.LocalizationError` computes,
    ``{stage}/top1_error``, ``{stage}/top5_error``, ``{stage}/top1_loc_error``,
    ``{stage}/top5_loc_error`` (percent) and ``{stage}/num_images``; and ``train/loss``.

    Args:
        num_guesses: guesses per image (ILSVRC: 5).
        box_loss_weight: weight of the box losses against the class loss.
        **base: ``nets`` (one, ``net``: (B, 3, H, W) images to ``{"logits": (B, K),
            "boxes": (B, 4)}``, boxes as normalized (cx, cy, w, h) in [0, 1]),
            ``optimization`` and ``metrics`` (a ``LocalizationError``), see
            :class:`~cvbench.tasks.base.TaskModule`.
    """

    loss_stages = ("train",)
    progress_bar_key = "val/top5_loc_error"

    def __init__(self, *, num_guesses: int = 5, box_loss_weight: float = 1.0, **base: Any) -> None:
        super().__init__(**base)
        self.num_guesses = num_guesses
        self.box_loss_weight = box_loss_weight
        self.metric("test", LocalizationError)  # declared: fail at build time

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        """Class logits (B, K) and normalized (cx, cy, w, h) boxes (B, 4) of (B, 3, H, W)."""
        return self.net(images)

    def _step(self, batch: DetectionBatch, stage: str) -> Tensor:
        images, targets, indices = batch
        if len({tuple(im.shape) for im in images}) != 1:
            raise ValueError(
                "localization batches need images of one size: add a Resize to the data's "
                "transforms (data.transforms.<split>)"
            )
        x = torch.stack(images)
        height, width = x.shape[-2:]
        labels = image_labels(targets, indices)
        scale = x.new_tensor([width, height, width, height])
        # The regression target: the image's largest box of its class.
        gt = [t["boxes"] for t in targets]
        largest = torch.stack([b[(b[:, 2:] - b[:, :2]).prod(dim=1).argmax()] for b in gt])
        out = self(x)
        pred_xyxy = box_convert(out["boxes"], "cxcywh", "xyxy") * scale
        loss = F.cross_entropy(out["logits"], labels) + self.box_loss_weight * (
            F.l1_loss(pred_xyxy / scale, largest / scale)
            + generalized_box_iou_loss(pred_xyxy, largest, reduction="mean")
        )
        k = min(self.num_guesses, out["logits"].shape[1])
        guesses = top_guesses(out["logits"].detach(), k)
        boxes = pred_xyxy.detach()[:, None, :].expand(-1, k, -1)
        self.metric(stage, LocalizationError).update(guesses, boxes, labels, gt, indices)
        return loss

    def training_step(self, batch: DetectionBatch, batch_idx: int) -> Tensor:
        loss = self._step(batch, "train")
        self.update_loss("train", loss, weight=len(batch.images))
        self.log_step(batch_idx, {"loss_step": loss}, batch_size=len(batch.images))
        return loss

    def validation_step(self, batch: DetectionBatch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: DetectionBatch, batch_idx: int) -> None:
        self._step(batch, "test")
