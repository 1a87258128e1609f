"""Image-to-image translation: what the translation tasks share (:class:`TranslationTask`) and
pix2pix (Isola, Zhu, Zhou and Efros, "Image-to-Image Translation with Conditional Adversarial
Networks", CVPR 2017) as :class:`Pix2PixTask`; CycleGAN is :mod:`cvbench.tasks.cyclegan`.

pix2pix, per training batch of aligned pairs (source x, target y), G the generator, D the
PatchGAN discriminator of (source, image) concatenated, L the GAN loss on D's patch logits
(``gan_loss``: "vanilla", binary cross-entropy as the paper, or "lsgan", least squares):

- discriminator: (L(D(x, y), 1) + L(D(x, G(x).detach()), 0)) / 2 (the paper halves D's loss);
- generator: L(D(x, G(x)), 1) + ``lambda_l1`` x |G(x) - y|_1 (lambda 100 in the paper).

Evaluation (val and test) translates each source of the split once (eval mode: dropout off,
deterministic) and reports:

- ``{stage}/psnr``, ``{stage}/ssim`` of the translations against their paired targets
  (:class:`~cvbench.metrics.restoration.RestorationMetric`, RGB, no crop);
- with a judge, FID / KID / precision / recall on its features
  (:class:`~cvbench.metrics.generative.GenerativeMetric`; real = the split's target images,
  fake = their translations, both indexed by the pair's dataset index): ``fid@<judge>`` ...;
- with a segmenter judge (``segment``) and data with label maps, the FCN-score of the paper
  (section 4.2): the segmenter's ``fcn_pixel_accuracy``, ``fcn_mean_accuracy``, ``fcn_miou``
  on the TRANSLATIONS against the source's label maps, next to ``fcn_real_pixel_accuracy``,
  ``fcn_real_mean_accuracy``, ``fcn_real_miou`` on the real targets (the segmenter's own
  ceiling), with :class:`~cvbench.metrics.segmentation.SegmentationMetric` (percent, one
  confusion matrix over the split, label -1 ignored) as semantic segmentation reports them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvbench.data.batches import TranslationBatch
from cvbench.metrics.generative import GenerativeMetric
from cvbench.metrics.restoration import RestorationMetric
from cvbench.metrics.segmentation import SegmentationMetric
from cvbench.tasks.base import EVAL_STAGES, TaskModule
from cvbench.tasks.generation import FROZEN
from cvbench.tasks.translation_judges import prepare_segmenter

GAN_LOSSES = ("vanilla", "lsgan")
FCN_KEYS = {"pixel_acc": "pixel_accuracy", "mean_acc": "mean_accuracy", "miou": "miou"}


def gan_loss(kind: str, logits: Tensor, real: bool) -> Tensor:
    """The GAN loss of patch logits against all-real (1) or all-fake (0) targets: "vanilla"
    (binary cross-entropy on logits) or "lsgan" (mean squared error, Mao et al. 2017)."""
    target = torch.full_like(logits, float(real))
    if kind == "lsgan":
        return F.mse_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)


class TranslationTask(TaskModule):
    """Base of the translation tasks: the frozen judge (trained or loaded in ``setup``, never
    in checkpoints), ``translate`` (``cvbench sample input=DIR``), ``grid_images`` (the
    ``SampleGrid`` callback's) and the protocol strings.

    A subclass sets ``translator`` (the network that maps A to B), implements
    ``prepare_judge(judge, trainer)`` and ``grid_rows(batch) -> list of (N, 3, H, W)``.

    Args:
        judge: the feature network (judge protocol of :mod:`cvbench.models.judge`), or None.
        grid_size: evaluation samples in the grid (the first of the val split).
        **base: ``nets``, ``optimization``, ``metrics`` of
            :class:`~cvbench.tasks.base.TaskModule`.
    """

    metric_stages = EVAL_STAGES
    frozen_prefixes = FROZEN
    translator: str = "generator"

    def __init__(self, *, judge: nn.Module | None, grid_size: int = 8, **base: Any) -> None:
        if grid_size < 1:
            raise ValueError(f"task.module.grid_size must be >= 1, got {grid_size}")
        super().__init__(**base)
        if self.translator not in self.network_names:
            raise ValueError(
                f"{type(self).__name__} translates with model.{self.translator}, but model has "
                f"{list(self.network_names)}"
            )
        self.judge = None if judge is None else judge.requires_grad_(False).eval()
        self.grid_size = grid_size
        self._judge_ready = False
        self._grid_batch: Any = None

    def prepare_judge(self, judge: nn.Module, trainer: Any) -> None:
        """Train (once, cached) or load the judge on the run's data."""
        raise NotImplementedError

    def grid_rows(self, batch: Any) -> list[Tensor]:
        """The grid's columns for a batch of N evaluation samples: (N, 3, H, W) in [0, 1]."""
        raise NotImplementedError

    def setup(self, stage: str) -> None:
        if self.judge is not None and not self._judge_ready:
            self.prepare_judge(self.judge, self.trainer)
            self._judge_ready = True

    def train(self, mode: bool = True) -> TranslationTask:
        """Lightning's ``train()``, the judge kept in eval mode."""
        super().train(mode)
        if self.judge is not None:
            self.judge.eval()
        return self

    def forward(self, images: Tensor) -> Tensor:
        """The translations (B, 3, H, W) in [0, 1] of images (B, 3, H, W) in [0, 1]."""
        return getattr(self, self.translator)(images).clamp(0, 1)

    @torch.no_grad()
    def translate(self, images: Tensor) -> Tensor:
        """A -> B translations of images of any size (``cvbench sample input=DIR``): padded
        (edge pixels repeated) to the network's size multiple, translated, cropped back.

        Args:
            images: (B, 3, H, W) float in [0, 1].

        Returns:
            (B, 3, H, W) float in [0, 1].
        """
        net = getattr(self, self.translator)
        step = int(getattr(net, "size_multiple", 1))
        h, w = images.shape[-2:]
        pad = (0, -w % step, 0, -h % step)
        padded = F.pad(images, pad, mode="replicate") if any(pad) else images
        was_training = net.training
        net.eval()
        try:
            return net(padded.to(self.device))[..., :h, :w].clamp(0, 1)
        finally:
            net.train(was_training)

    @torch.no_grad()
    def grid_images(self) -> tuple[Tensor, int]:
        """The first ``grid_size`` samples of the val split, one row each with the columns of
        ``grid_rows`` (pix2pix: input | output | target).

        Returns:
            (N * columns, 3, H, W) float in [0, 1] on the CPU, and the columns per row.
        """
        if self._grid_batch is None:
            datamodule = self.trainer.datamodule
            dataset = datamodule.split("val")
            count = min(self.grid_size, len(dataset))
            self._grid_batch = datamodule.collate_fn([dataset[i] for i in range(count)])
        batch = type(self._grid_batch)(
            *(f.to(self.device) if isinstance(f, Tensor) else f for f in self._grid_batch)
        )
        columns = [c.clamp(0, 1).cpu() for c in self.grid_rows(batch)]
        return torch.stack(columns, dim=1).flatten(0, 1), len(columns)

    def protocol_extras(self, stage: str, metric: GenerativeMetric, real: str, fake: str) -> str:
        """One line: what is real, what is generated, the judge and the metric's settings."""
        judge = self.judge.protocol if self.judge is not None else "none"
        return f"real: {real}; generated: {fake}; judge: {judge}; {metric.protocol}"


class Pix2PixTask(TranslationTask):
    """pix2pix of ``generator`` (source (B, 3, H, W) -> image, in [0, 1]) and
    ``discriminator`` (source and image concatenated, (B, 6, H, W) -> patch logits (B, 1, h,
    w)), trained and evaluated as the module docstring says. Steps log ``train/d_loss``,
    ``train/g_gan``, ``train/g_l1``.

    Args:
        gan_loss: "vanilla" (BCE, the paper) or "lsgan".
        lambda_l1: weight of the L1 loss (the paper: 100).
        judge: the feature network, or None (PSNR / SSIM only); a segmenter
            (:class:`~cvbench.models.segmenter_judge.SegmenterJudge`) adds the FCN-score.
        metric: builds the judge's metric (a partial of ``GenerativeMetric``).
        fcn_metric: builds the FCN-score's metric (a partial of ``SegmentationMetric`` with
            ``ignore_index`` -1), called with the segmenter's ``num_classes``.
        **base: ``grid_size`` of :class:`TranslationTask`; ``nets`` (``generator``,
            ``discriminator``), ``optimization``, ``metrics`` (a ``RestorationMetric``).
    """

    def __init__(
        self,
        *,
        gan_loss: str = "vanilla",
        lambda_l1: float = 100.0,
        judge: nn.Module | None = None,
        metric: Callable[..., GenerativeMetric] | None = None,
        fcn_metric: Callable[..., SegmentationMetric] | None = None,
        **base: Any,
    ) -> None:
        if gan_loss not in GAN_LOSSES or lambda_l1 < 0:
            raise ValueError(
                f"task.module.gan_loss must be one of {GAN_LOSSES} and lambda_l1 >= 0, got "
                f"{gan_loss!r}, {lambda_l1}"
            )
        metrics = dict(base.pop("metrics", None) or {})
        if judge is not None and metric is not None:
            metrics["generative"] = metric(
                network=judge.name, feature_dim=judge.feature_dim, num_logits=judge.num_logits
            )
        super().__init__(judge=judge, metrics=metrics, **base)
        if set(self.network_names) != {"generator", "discriminator"}:
            raise ValueError(
                f"Pix2PixTask needs model.generator and model.discriminator, got "
                f"{list(self.network_names)}"
            )
        self.gan_loss, self.lambda_l1 = gan_loss, lambda_l1
        segments = judge is not None and hasattr(judge, "segment") and fcn_metric is not None
        self.fcn = nn.ModuleDict(
            {
                f"{s}_{kind}": fcn_metric(num_classes=judge.num_classes)
                for s in EVAL_STAGES
                for kind in ("fake", "real")
            }
            if segments
            else {}
        )

    def prepare_judge(self, judge: nn.Module, trainer: Any) -> None:
        prepare_segmenter(judge, trainer)

    def training_step(self, batch: TranslationBatch, batch_idx: int) -> None:
        source, target = batch.source, batch.target
        fake = self.generator(source)
        logits_real = self.discriminator(torch.cat([source, target], 1))
        logits_fake = self.discriminator(torch.cat([source, fake.detach()], 1))
        d_loss = 0.5 * (
            gan_loss(self.gan_loss, logits_real, True) + gan_loss(self.gan_loss, logits_fake, False)
        )
        self.optimize("discriminator", d_loss)

        self.discriminator.requires_grad_(False)  # G's step needs no gradient of D's weights
        g_gan = gan_loss(self.gan_loss, self.discriminator(torch.cat([source, fake], 1)), True)
        self.discriminator.requires_grad_(True)
        g_l1 = F.l1_loss(fake, target)
        self.optimize("generator", g_gan + self.lambda_l1 * g_l1)
        self.log_step(
            batch_idx,
            {"d_loss": d_loss.detach(), "g_gan": g_gan.detach(), "g_l1": g_l1.detach()},
            batch_size=len(source),
        )

    def _eval_step(self, batch: TranslationBatch, stage: str) -> None:
        fake = self(batch.source)
        metrics = self.stage_metrics(stage)
        for metric in metrics.values():
            if isinstance(metric, RestorationMetric):
                metric.update(fake, batch.target, batch.index)
        if self.judge is None:
            return
        if "generative" in metrics:
            real_features, _ = self.judge(batch.target)
            fake_features, fake_logits = self.judge(fake)
            metrics["generative"].update_real(real_features, batch.index)
            metrics["generative"].update_fake(fake_features, batch.index, fake_logits)
        if self.fcn:
            for kind, images in (("fake", fake), ("real", batch.target)):
                labels = self.judge.segment(images).argmax(1)
                self.fcn[f"{stage}_{kind}"].update(labels, batch.label_map, batch.index)

    def validation_step(self, batch: TranslationBatch, batch_idx: int) -> None:
        with torch.no_grad():
            self._eval_step(batch, "val")

    def test_step(self, batch: TranslationBatch, batch_idx: int) -> None:
        with torch.no_grad():
            self._eval_step(batch, "test")

    def grid_rows(self, batch: TranslationBatch) -> list[Tensor]:
        return [batch.source, self(batch.source), batch.target]

    def epoch_extras(self, stage: str) -> dict[str, float | str | None]:
        """The FCN-scores and the protocol strings of ``stage``."""
        if stage == "train":
            return {}
        values: dict[str, float | str | None] = {}
        for kind, infix in (("fake", "fcn_"), ("real", "fcn_real_")):
            if f"{stage}_{kind}" not in self.fcn:
                continue
            metric = self.fcn[f"{stage}_{kind}"]
            scores = metric.compute()
            metric.reset()
            for key, name in FCN_KEYS.items():
                values[f"{stage}/{infix}{name}"] = scores[key]
        if self.fcn:
            values[f"{stage}/fcn_protocol"] = (
                f"FCN-score: the judge's segmentation of each translation (fcn_*) and of its real "
                f"target (fcn_real_*) against the source's label map over the {stage} split, one "
                f"confusion matrix, percent, label -1 ignored; segmenter: {self.judge.protocol}"
            )
        metrics = self.stage_metrics(stage)
        if "generative" in metrics:
            values[f"{stage}/fid_protocol"] = self.protocol_extras(
                stage,
                metrics["generative"],
                f"the {stage} split's target images, each once",
                f"the translation of each source of the {stage} split (eval mode, one each)",
            )
            values[f"{stage}/judge"] = self.judge.name
        return values
