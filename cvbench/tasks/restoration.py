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
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from cvbench.data.batches import PairBatch
from cvbench.metrics.restoration import RestorationMetric
from cvbench.tasks.base import EVAL_STAGES, STAGES, TaskModule

LOSS_SPACES = ("output", "image")


class Composer(Protocol):
    def compose(self, inputs: Tensor, outputs: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class RestorationTestOutput:
    """The last test's per-image scores, for the report.

    Attributes:
        per_image: one dict per test image, by dataset index: ``index``, ``psnr`` (dB),
            ``ssim``, and with a baseline ``baseline_psnr``, ``baseline_ssim``.
    """

    per_image: list[dict[str, Any]]


def image_groups(batch: PairBatch) -> Iterator[tuple[Tensor, Tensor, Tensor, Tensor]]:
    """``(inputs, targets, images, indices)`` of a batch: the whole batch when its tensors are
    stacked, else one image at a time (images of different sizes come as lists)."""
    if all(isinstance(x, Tensor) for x in (batch.input, batch.target, batch.image)):
        yield batch.input, batch.target, batch.image, batch.index
        return
    for i, index in enumerate(batch.index):
        yield batch.input[i][None], batch.target[i][None], batch.image[i][None], index[None]


class RestorationTask(TaskModule):
    """Trains ``net`` on :class:`~cvbench.data.batches.PairBatch` batches with ``loss`` and
    reports per eval stage what its :class:`~cvbench.metrics.restoration.RestorationMetric`
    computes, ``{stage}/psnr`` (dB), ``{stage}/ssim`` and ``{stage}/num_images``; the same of
    the baseline, ``{stage}/baseline_psnr``, ``{stage}/baseline_ssim``; ``{stage}/loss``; and
    the protocol ``{stage}/color``, ``{stage}/crop_border`` (the metric's) and
    ``{stage}/quantization`` ("8-bit": outputs are always rounded to 8 bits before scoring);
    and ``train/loss``. ``test_output`` is a :class:`RestorationTestOutput`.

    Args:
        loss: of (outputs, targets), mean-reduced (L1, MSE, perceptual).
        degradation: the data's degradation; its ``compose(inputs, outputs)`` gives the RGB
            image (B, 3, H, W) that is scored.
        baseline: the task's trivial restoration, a module like ``net`` without training
            (``cvbench.models.restoration_baselines``), or None.
        loss_on: "output": ``loss(outputs, targets)`` in the network's own space (a*b* for
            colorization); "image": ``loss(compose(inputs, outputs), images)``, on the RGB
            image that is scored (inpainting: only the hole's pixels can differ, so the
            network is not asked to reproduce the known ones).
        **base: ``nets`` (one, ``net``: inputs (B, C_in, h, w) in [0, 1] to outputs
            (B, C_out, H, W) in the target's space: RGB for super-resolution and inpainting,
            a*b* / 110 for colorization), ``optimization`` and ``metrics`` (a
            ``RestorationMetric``: ``color``, ``crop_border``), see
            :class:`~cvbench.tasks.base.TaskModule`.
    """

    metric_stages = EVAL_STAGES
    loss_stages = STAGES
    progress_bar_key = "val/psnr"
    not_logged = ("crop_border",)

    def __init__(
        self,
        *,
        loss: nn.Module,
        degradation: Composer,
        baseline: nn.Module | None = None,
        loss_on: str = "output",
        **base: Any,
    ) -> None:
        super().__init__(**base)
        if loss_on not in LOSS_SPACES:
            raise ValueError(f"task.module.loss_on must be one of {LOSS_SPACES}, got {loss_on!r}")
        self.loss = loss
        self.loss_on = loss_on
        self.degradation = degradation
        self.baseline = baseline
        scores = self.metric("test", RestorationMetric)
        self.color, self.crop_border = scores.color, scores.crop_border
        self._val_baseline: tuple[dict[str, Any], list[dict[str, Any]]] | None = None
        # The baseline is scored like the network, by a copy of the declared metric.
        self.baseline_metrics = nn.ModuleDict(
            {f"{s}_baseline": self.metric(s, RestorationMetric).clone() for s in EVAL_STAGES}
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

    def training_step(self, batch: PairBatch, batch_idx: int) -> Tensor:
        inputs, targets = batch.input, batch.target
        if isinstance(inputs, list):
            raise ValueError(
                "training images of different sizes in one batch: set data.patch_size so that "
                "the train transform crops every image to one size"
            )
        loss = self._loss(inputs, self.net(inputs), targets, batch.image)
        self.update_loss("train", loss, weight=len(targets))
        self.log_step(batch_idx, {"loss_step": loss}, batch_size=len(targets))
        return loss

    def _eval_step(self, batch: PairBatch, stage: str) -> None:
        for inputs, targets, images, indices in image_groups(batch):
            outputs = self.net(inputs)
            loss = self._loss(inputs, outputs, targets, images)
            self.update_loss(stage, loss, weight=len(inputs))
            restored = self.degradation.compose(inputs, outputs)
            self.metric(stage, RestorationMetric).update(restored, images, indices)
            if self.baseline is not None and not (stage == "val" and self._val_baseline):
                reference = self.degradation.compose(inputs, self.baseline(inputs))
                self.baseline_metrics[f"{stage}_baseline"].update(reference, images, indices)

    def validation_step(self, batch: PairBatch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: PairBatch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def epoch_extras(self, stage: str) -> dict[str, float | str | None]:
        """The baseline's PSNR / SSIM (computed once) and the protocol of ``stage``."""
        if stage == "train":
            return {}
        values: dict[str, float | str | None] = {}
        per_image = {
            row["index"]: dict(row) for row in self.metric(stage, RestorationMetric).last_per_image
        }
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
            self.test_output = RestorationTestOutput(
                per_image=[per_image[i] for i in sorted(per_image)]
            )
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
        reference = self.baseline_metrics[f"{stage}_baseline"]
        scored = reference.compute(), reference.last_per_image
        reference.reset()
        if stage == "val" and not self.trainer.sanity_checking:
            self._val_baseline = scored
        return scored
