"""Image classification as one LightningModule: injected net, loss and metrics; ILSVRC top-k."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from cvbench.data.batches import ClassificationBatch
from cvbench.metrics.classification import TopKError
from cvbench.tasks.base import TaskModule


@dataclass(frozen=True)
class ClassificationTestOutput:
    """The last test's guesses, each test image once, in dataset-index order.

    Attributes:
        index: (N,) int64 dataset indices.
        target: (N,) int64 class ids.
        guesses: (N, k) int64 class ids best first; ``NO_GUESS`` (-1) throughout the row of an
            image whose scores had a NaN or inf.
    """

    index: Tensor
    target: Tensor
    guesses: Tensor


class ClassificationTask(TaskModule):
    """Trains ``net`` on :class:`~cvbench.data.batches.ClassificationBatch` batches and reports
    per stage what its :class:`~cvbench.metrics.classification.TopKError` computes:
    ``{stage}/top1_error``, ``{stage}/top5_error`` (percent), ``{stage}/loss`` and
    ``{stage}/num_images``. With ``keep_guesses`` the metric keeps each image's guesses and
    ``test_output`` is a :class:`ClassificationTestOutput` (the report's devkit files).

    Args:
        loss: maps (logits, targets) to (B,) per-sample losses (e.g. CrossEntropyLoss with
            ``reduction="none"``); the task averages them.
        channels_last: use the NHWC memory format for net and inputs.
        **base: ``nets`` (one, ``net``: (B, C, H, W) float images to (B, num_classes) logits),
            ``optimization`` and ``metrics`` (a ``TopKError``), see
            :class:`~cvbench.tasks.base.TaskModule`.
    """

    progress_bar_key = "val/top1_error"

    def __init__(self, *, loss: nn.Module, channels_last: bool = False, **base: Any) -> None:
        super().__init__(**base)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.net.to(memory_format=self.memory_format)
        self.loss = loss
        self.metric("test", TopKError)  # declared: fail at build time, not after training

    def forward(self, images: Tensor) -> Tensor:
        """Logits (B, num_classes) of images (B, C, H, W)."""
        return self.net(images.contiguous(memory_format=self.memory_format))

    def _step(self, batch: ClassificationBatch, stage: str) -> Tensor:
        logits = self(batch.images)
        losses = self.loss(logits, batch.targets)
        self.metric(stage, TopKError).update(logits, batch.targets, batch.indices, losses)
        return losses.mean()

    def training_step(self, batch: ClassificationBatch, batch_idx: int) -> Tensor:
        loss = self._step(batch, "train")
        self.log_step(batch_idx, {"loss_step": loss}, batch_size=len(batch.targets))
        return loss

    def validation_step(self, batch: ClassificationBatch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: ClassificationBatch, batch_idx: int) -> None:
        self._step(batch, "test")

    def epoch_extras(self, stage: str) -> dict[str, float | str | None]:
        images = self.metric(stage, TopKError).last_images  # every process's, once each
        if stage == "test" and "guesses" in images:
            self.test_output = ClassificationTestOutput(
                index=images["index"].cpu(),
                target=images["target"].cpu(),
                guesses=images["guesses"].cpu(),
            )
        return {}
