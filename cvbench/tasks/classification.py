"""Image classification as one LightningModule: injected net, loss, optimizer; ILSVRC top-k."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cvbench.metrics.classification import TopKError
from cvbench.tasks.base import TaskModule
from cvbench.tasks.optimization import OptimizerFactory, SchedulerFactory

STAGES = ("train", "val", "test")


class ClassificationTask(TaskModule):
    """Trains ``net`` on batches ``(images, targets, indices)`` and reports per stage
    ``{stage}/top1_error``, ``{stage}/top5_error`` (percent), ``{stage}/loss`` and
    ``{stage}/num_images``; ``results[stage]`` holds the last values in float64 and
    ``test_per_image`` the last test's per-image guesses (for reports).

    Args:
        net: maps (B, C, H, W) float images to (B, num_classes) logits.
        loss: maps (logits, targets) to (B,) per-sample losses (e.g. CrossEntropyLoss with
            ``reduction="none"``); the task averages them.
        optimizer: builds the optimizer from the parameters (a ``functools.partial``).
        scheduler: builds the LR scheduler from the optimizer, or None.
        scheduler_interval: "epoch" or "step".
        num_classes: number of classes.
        topk: the k values of the reported top-k errors.
        channels_last: use the NHWC memory format for net and inputs.
    """

    def __init__(
        self,
        *,
        net: nn.Module,
        loss: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: str = "epoch",
        num_classes: int,
        topk: tuple[int, ...] = (1, 5),
        channels_last: bool = False,
    ) -> None:
        memory_format = torch.channels_last if channels_last else torch.contiguous_format
        super().__init__(
            net=net.to(memory_format=memory_format),
            optimizer=optimizer,
            scheduler=scheduler,
            scheduler_interval=scheduler_interval,
        )
        self.memory_format = memory_format
        self.loss = loss
        self.test_per_image: dict[str, Tensor] = {}  # see TopKError.per_image
        self.metrics = nn.ModuleDict(
            {
                f"{s}_metrics": TopKError(
                    topk=tuple(topk), num_classes=num_classes, keep_guesses=s == "test"
                )
                for s in STAGES
            }
        )

    def forward(self, images: Tensor) -> Tensor:
        """Logits (B, num_classes) of images (B, C, H, W)."""
        return self.net(images.contiguous(memory_format=self.memory_format))

    def _step(self, batch: tuple[Tensor, Tensor, Tensor], stage: str) -> Tensor:
        images, targets, indices = batch
        logits = self(images)
        losses = self.loss(logits, targets)
        self.metrics[f"{stage}_metrics"].update(logits, targets, indices, losses)
        return losses.mean()

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        loss = self._step(batch, "train")
        # Each self.log costs ~1 ms: log the step loss only as often as the loggers write.
        if (batch_idx + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss_step", loss, prog_bar=True, on_step=True, on_epoch=False)
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> None:
        self._step(batch, "test")

    def log_epoch(self, stage: str) -> None:
        # The metric gathers every process's per-image results itself: no sync_dist here.
        metric = self.metrics[f"{stage}_metrics"]  # "train" alone would clash with nn.Module.train
        values = {f"{stage}/{k}": float(v) for k, v in metric.compute().items()}
        if stage == "test":
            self.test_per_image = {k: v.cpu() for k, v in metric.last_images.items()}
        metric.reset()
        # Lightning keeps logged values as float32; ``results`` keeps the float64 ones.
        self.results[stage] = values
        for key, value in values.items():
            self.log(key, value, prog_bar=key == "val/top1_error")
