"""Image restoration as one LightningModule: super-resolution, colorization and inpainting, each
a network from a degraded input to a clean image, scored by PSNR and SSIM per image and
averaged over images, as the papers compute them (METRICS.md "Image restoration": the output
rounded to 8 bits, ``crop_border`` pixels removed from each side, the Y channel of BT.601 or
RGB).

The data's degradation says how a network's output becomes the RGB image that is scored
(``compose``: the output itself for super-resolution, L* joined with the predicted a*b* for
colorization, the known pixels kept for inpainting). The task's trivial baseline (bicubic
upsampling, the gray image, the hole filled with the mean) runs through the same evaluation,
so every result is read against it: ``{stage}/baseline_psnr``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric

from cvbench.metrics.restoration import RestorationMetric
from cvbench.tasks.base import TaskModule
from cvbench.tasks.optimization import OptimizerFactory, SchedulerFactory

Batch = dict[str, Any]
EVAL_STAGES = ("val", "test")
LOSS_SPACES = ("output", "image")


class Composer(Protocol):
    def compose(self, inputs: Tensor, outputs: Tensor) -> Tensor: ...


def image_groups(batch: Batch) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
    """``(inputs, targets, images, indices)`` of a batch: the whole batch when its tensors are
    stacked, else one image at a time (images of different sizes come as lists)."""
    if all(isinstance(batch[k], Tensor) for k in ("input", "target", "image")):
        yield batch["input"], batch["target"], batch["image"], batch["index"]
        return
    for i, index in enumerate(batch["index"]):
        yield (
            batch["input"][i][None],
            batch["target"][i][None],
            batch["image"][i][None],
            index[None],
        )


class RestorationTask(TaskModule):
    """Trains ``net`` on batches ``{"input", "target", "image", "index"}`` with ``loss`` and
    reports per eval stage ``{stage}/psnr`` (dB), ``{stage}/ssim``, ``{stage}/baseline_psnr``,
    ``{stage}/baseline_ssim``, ``{stage}/loss``, ``{stage}/num_images`` and the protocol
    ``{stage}/color``, ``{stage}/crop_border``, ``{stage}/quantization`` ("8-bit": outputs are
    always rounded to 8 bits before scoring); and ``train/loss``.

    ``results[stage]`` holds the last values in float64; ``test_outputs["per_image"]`` the last
    test's per-image scores (dataset index, psnr, ssim, baseline_psnr, baseline_ssim), for the
    report.

    Args:
        net: maps inputs (B, C_in, h, w) in [0, 1] to outputs (B, C_out, H, W) in the
            target's space (RGB for super-resolution and inpainting, a*b* / 110 for
            colorization).
        loss: of (outputs, targets), mean-reduced (L1, MSE, perceptual).
        optimizer: builds the optimizer from the parameters (a ``functools.partial``).
        scheduler: builds the LR scheduler from the optimizer, or None.
        scheduler_interval: "epoch" or "step".
        degradation: the data's degradation; its ``compose(inputs, outputs)`` gives the RGB
            image (B, 3, H, W) that is scored.
        baseline: the task's trivial restoration, a module like ``net`` without training
            (``cvbench.models.restoration_baselines``), or None.
        color: "y" (BT.601 luma, as MATLAB's rgb2ycbcr) or "rgb": what PSNR and SSIM compare.
        crop_border: pixels removed from each side before scoring (the scale for
            super-resolution, 0 otherwise).
        loss_on: "output": ``loss(outputs, targets)`` in the network's own space (a*b* for
            colorization); "image": ``loss(compose(inputs, outputs), images)``, on the RGB
            image that is scored (inpainting: only the hole's pixels can differ, so the
            network is not asked to reproduce the known ones).
    """

    def __init__(
        self,
        *,
        net: nn.Module,
        loss: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: str = "epoch",
        degradation: Composer,
        baseline: nn.Module | None = None,
        color: str = "y",
        crop_border: int = 0,
        loss_on: str = "output",
    ) -> None:
        super().__init__(
            net=net,
            optimizer=optimizer,
            scheduler=scheduler,
            scheduler_interval=scheduler_interval,
        )
        if loss_on not in LOSS_SPACES:
            raise ValueError(f"task.module.loss_on must be one of {LOSS_SPACES}, got {loss_on!r}")
        self.loss = loss
        self.loss_on = loss_on
        self.degradation = degradation
        self.baseline = baseline
        self.color = color
        self.crop_border = crop_border
        self.test_outputs: dict[str, Any] = {}
        self._val_baseline: tuple[dict[str, Any], list[dict[str, Any]]] | None = None
        self.losses = nn.ModuleDict({f"{s}_loss": MeanMetric() for s in ("train", *EVAL_STAGES)})
        self.metrics = nn.ModuleDict(
            {
                f"{s}_{kind}": RestorationMetric(color=color, crop_border=crop_border)
                for s in EVAL_STAGES
                for kind in ("metrics", "baseline")
            }
        )

    def forward(self, inputs: Tensor) -> Tensor:
        """The network's outputs (B, C_out, H, W) of inputs (B, C_in, h, w)."""
        return self.net(inputs)

    @torch.no_grad()
    def restore(self, inputs: Tensor, *, baseline: bool = False) -> Tensor:
        """The restored RGB images (B, 3, H, W) in [0, 1] of inputs (B, C_in, h, w), by the
        network or (``baseline=True``) by the baseline."""
        model = self.baseline if baseline else self.net
        if model is None:
            raise ValueError("this task has no baseline (task.module.baseline is null)")
        return self.degradation.compose(inputs, model(inputs)).clamp(0, 1)

    def _loss(self, inputs: Tensor, outputs: Tensor, targets: Tensor, images: Tensor) -> Tensor:
        """The training loss, in the network's output space or on the composed image."""
        if self.loss_on == "image":
            return self.loss(self.degradation.compose(inputs, outputs), images)
        return self.loss(outputs, targets)

    def training_step(self, batch: Batch, batch_idx: int) -> Tensor:
        inputs, targets = batch["input"], batch["target"]
        if isinstance(inputs, list):
            raise ValueError(
                "training images of different sizes in one batch: set data.patch_size so that "
                "the train transform crops every image to one size"
            )
        loss = self._loss(inputs, self.net(inputs), targets, batch["image"])
        self.losses["train_loss"].update(loss.detach(), weight=len(targets))
        if (batch_idx + 1) % self.trainer.log_every_n_steps == 0:
            self.log("train/loss_step", loss, prog_bar=True, batch_size=len(targets))
        return loss

    def _eval_step(self, batch: Batch, stage: str) -> None:
        for inputs, targets, images, indices in image_groups(batch):
            outputs = self.net(inputs)
            loss = self._loss(inputs, outputs, targets, images)
            self.losses[f"{stage}_loss"].update(loss, weight=len(inputs))
            restored = self.degradation.compose(inputs, outputs)
            self.metrics[f"{stage}_metrics"].update(restored, images, indices)
            if self.baseline is not None and not (stage == "val" and self._val_baseline):
                reference = self.degradation.compose(inputs, self.baseline(inputs))
                self.metrics[f"{stage}_baseline"].update(reference, images, indices)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def _scores(self, stage: str) -> dict[str, float | str | None]:
        """The stage's PSNR / SSIM of the network and of the baseline, computed once."""
        metric = self.metrics[f"{stage}_metrics"]
        values: dict[str, float | str | None] = {
            f"{stage}/{k}": v for k, v in metric.compute().items()
        }
        per_image = {row["index"]: dict(row) for row in metric.last_per_image}
        if self.baseline is not None:
            scores, rows = self._baseline_scores(stage)
            values[f"{stage}/baseline_psnr"] = scores["psnr"]
            values[f"{stage}/baseline_ssim"] = scores["ssim"]
            for row in rows:
                if row["index"] in per_image:
                    per_image[row["index"]] |= {
                        "baseline_psnr": row["psnr"],
                        "baseline_ssim": row["ssim"],
                    }
        if stage == "test":
            self.test_outputs = {"per_image": [per_image[i] for i in sorted(per_image)]}
        metric.reset()
        values[f"{stage}/color"] = self.color
        values[f"{stage}/crop_border"] = float(self.crop_border)
        values[f"{stage}/quantization"] = "8-bit"  # outputs rounded to 0..255 before scoring
        return values

    def _baseline_scores(self, stage: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The baseline's scores and per-image rows of ``stage``. The baseline has no weights
        and the evaluation samples are fixed, so validation keeps its first full epoch's
        scores and later epochs skip the baseline (not the sanity check's few batches)."""
        if stage == "val" and self._val_baseline:
            return self._val_baseline
        reference = self.metrics[f"{stage}_baseline"]
        scored = reference.compute(), reference.last_per_image
        reference.reset()
        if stage == "val" and not self.trainer.sanity_checking:
            self._val_baseline = scored
        return scored

    def log_epoch(self, stage: str) -> None:
        loss_metric = self.losses[f"{stage}_loss"]
        # MeanMetric syncs across processes itself; an epoch without updates gives nan.
        values: dict[str, float | str | None] = {f"{stage}/loss": float(loss_metric.compute())}
        loss_metric.reset()
        if stage != "train":
            values |= self._scores(stage)
        self.results[stage] = values
        for key, value in values.items():
            if isinstance(value, int | float) and key != f"{stage}/crop_border":
                self.log(key, value, prog_bar=key == "val/psnr")
