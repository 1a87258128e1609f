"""CycleGAN (Zhu, Park, Isola and Efros, "Unpaired Image-to-Image Translation using
Cycle-Consistent Adversarial Networks", ICCV 2017) on
:class:`~cvbench.data.batches.UnpairedBatch` batches.

Networks: ``generator_ab`` (G: A -> B), ``generator_ba`` (F: B -> A), ``discriminator_b``
(D_B: real B against G(a)) and ``discriminator_a`` (D_A: real A against F(b)). Per training
batch (a, b), with the least-squares GAN loss L (Mao et al. 2017, as the paper):

- generators: L(D_B(G(a)), 1) + L(D_A(F(b)), 1) + ``lambda_cycle`` (|F(G(a)) - a|_1 +
  |G(F(b)) - b|_1) + ``lambda_identity`` x ``lambda_cycle`` (|G(b) - b|_1 + |F(a) - a|_1)
  (the paper: lambda 10, identity 0.5 x lambda);
- discriminators: (L(D_B(b), 1) + L(D_B(pool_B(G(a))), 0)) / 2, the same for D_A, where the
  pools return generated images of earlier steps (:class:`ImagePool`, 50 images).

Optimizers: the paper's code steps ONE Adam over both generators' parameters and one over both
discriminators'. cvbench gives each network its own optimizer (one per ``model`` name); the
task zeroes both generators' optimizers, backpropagates the joint generator loss once and steps
both, and steps each discriminator on its own loss. Adam's update is elementwise, so with the
same hyperparameters (one ``optim`` node for all) this is the paper's update exactly.

Evaluation (val and test) takes the split's pairs (every A and every B image at least once)
and reports, with a judge, ``ab_fid@<judge>`` ... (A -> B translations against the real B
images) and ``ba_fid@<judge>`` ... (B -> A against real A), each image and each translation
counted once by its dataset index; with a judge that classifies the two domains (2 logits:
A 0, B 1) also ``ab_as_b`` and ``ba_as_a``, the percentage of translations it takes for the
target domain.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cvbench.data.batches import UnpairedBatch
from cvbench.metrics.generative import GenerativeMetric
from cvbench.metrics.judged_share import JudgedShare
from cvbench.tasks.translation import TranslationTask, gan_loss
from cvbench.tasks.translation_judges import prepare_domain_classifier

NETWORKS = ("generator_ab", "generator_ba", "discriminator_a", "discriminator_b")


class ImagePool:
    """A history of generated images (Shrivastava et al., CVPR 2017; CycleGAN section 4): the
    discriminators see, for each new image, with probability 1/2 an older one (which the new
    one replaces in the pool) once ``size`` are kept. Written here because no library
    (torchvision, Lightning, kornia, torchmetrics) has one: the reference is a file of the
    CycleGAN repository, not a package. Draws come from torch's global generator (seeded by the
    run); the pool is not in checkpoints (a resumed run starts with an empty one).

    Args:
        size: images kept (the paper: 50; 0: no pool, the new images pass through).
    """

    def __init__(self, size: int = 50) -> None:
        if size < 0:
            raise ValueError(f"task.module.pool_size must be >= 0, got {size}")
        self.size = size
        self.images: list[Tensor] = []

    def query(self, images: Tensor) -> Tensor:
        """(B, C, H, W) new generated images -> (B, C, H, W) images for the discriminator,
        detached."""
        images = images.detach()
        if self.size == 0:
            return images
        out = []
        for image in images:
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand(()) < 0.5:
                k = int(torch.randint(self.size, ()))
                out.append(self.images[k])
                self.images[k] = image
            else:
                out.append(image)
        return torch.stack(out)


class CycleGANTask(TranslationTask):
    """CycleGAN as the module docstring says; ``translate`` and the FLOP count use
    ``generator_ab``. Steps log ``train/g_gan``, ``train/cycle``, ``train/identity``,
    ``train/d_a``, ``train/d_b``.

    Args:
        lambda_cycle: weight of the cycle losses (10).
        lambda_identity: weight of the identity losses, relative to ``lambda_cycle`` (0.5).
        pool_size: images of each :class:`ImagePool` (50).
        judge: the feature network, or None (no scores).
        metric: builds the judge's metrics (a partial of ``GenerativeMetric``; called with
            ``prefix`` "ab_" and "ba_").
        **base: ``grid_size`` of :class:`~cvbench.tasks.translation.TranslationTask`;
            ``nets`` (``NETWORKS``), ``optimization``, ``metrics``.
    """

    translator = "generator_ab"

    def __init__(
        self,
        *,
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        judge: nn.Module | None = None,
        metric: Callable[..., GenerativeMetric] | None = None,
        **base: Any,
    ) -> None:
        if lambda_cycle < 0 or lambda_identity < 0:
            raise ValueError(
                f"task.module.lambda_cycle and lambda_identity must be >= 0, got {lambda_cycle}, "
                f"{lambda_identity}"
            )
        metrics = dict(base.pop("metrics", None) or {})
        if judge is not None and metric is not None:
            for prefix in ("ab_", "ba_"):
                metrics[f"{prefix}generative"] = metric(
                    network=judge.name,
                    feature_dim=judge.feature_dim,
                    num_logits=judge.num_logits,
                    prefix=prefix,
                )
        if judge is not None and judge.num_logits == 2:
            metrics["ab_as_b"] = JudgedShare(name="ab_as_b", target_class=1)
            metrics["ba_as_a"] = JudgedShare(name="ba_as_a", target_class=0)
        super().__init__(judge=judge, metrics=metrics, **base)
        if set(self.network_names) != set(NETWORKS):
            raise ValueError(
                f"CycleGANTask needs model.{', model.'.join(NETWORKS)}, got "
                f"{list(self.network_names)}"
            )
        self.lambda_cycle, self.lambda_identity = lambda_cycle, lambda_identity
        self.pool_a, self.pool_b = ImagePool(pool_size), ImagePool(pool_size)

    def prepare_judge(self, judge: nn.Module, trainer: Any) -> None:
        prepare_domain_classifier(judge, trainer)

    def _generator_step(self, loss: Tensor) -> None:
        """One step of both generators' optimizers on their joint loss."""
        optimizers = [self.optimizer_of(name) for name in ("generator_ab", "generator_ba")]
        for optimizer in optimizers:
            optimizer.zero_grad()
        self.manual_backward(loss)
        for optimizer in optimizers:
            optimizer.step()

    def training_step(self, batch: UnpairedBatch, batch_idx: int) -> None:
        a, b = batch.images_a, batch.images_b
        fake_b, fake_a = self.generator_ab(a), self.generator_ba(b)
        discriminators = (self.discriminator_a, self.discriminator_b)
        for net in discriminators:  # the generators' step needs no gradient of D's weights
            net.requires_grad_(False)
        g_gan = gan_loss("lsgan", self.discriminator_b(fake_b), True) + gan_loss(
            "lsgan", self.discriminator_a(fake_a), True
        )
        for net in discriminators:
            net.requires_grad_(True)
        cycle = F.l1_loss(self.generator_ba(fake_b), a) + F.l1_loss(self.generator_ab(fake_a), b)
        identity = torch.zeros((), device=a.device)
        if self.lambda_identity > 0:
            identity = F.l1_loss(self.generator_ab(b), b) + F.l1_loss(self.generator_ba(a), a)
        weight = self.lambda_cycle
        self._generator_step(g_gan + weight * cycle + weight * self.lambda_identity * identity)

        losses = {}
        for name, net, real, fake, pool in (
            ("d_b", self.discriminator_b, b, fake_b, self.pool_b),
            ("d_a", self.discriminator_a, a, fake_a, self.pool_a),
        ):
            loss = 0.5 * (
                gan_loss("lsgan", net(real), True) + gan_loss("lsgan", net(pool.query(fake)), False)
            )
            self.optimize(f"discriminator_{name[-1]}", loss)
            losses[name] = loss.detach()
        self.log_step(
            batch_idx,
            {"g_gan": g_gan.detach(), "cycle": cycle.detach(), "identity": identity.detach()}
            | losses,
            batch_size=len(a),
        )

    def _eval_step(self, batch: UnpairedBatch, stage: str) -> None:
        if self.judge is None:
            return
        metrics = self.stage_metrics(stage)
        a, b, index_a, index_b = batch
        fake_b, fake_a = self(a), self.generator_ba(b).clamp(0, 1)
        features = {name: self.judge(x) for name, x in (("a", a), ("b", b))}
        features |= {name: self.judge(x) for name, x in (("fake_a", fake_a), ("fake_b", fake_b))}
        # A -> B: the translation of A image i (index i) against the real B images, and back.
        for key, real, fake, real_index, fake_index in (
            ("ab_", "b", "fake_b", index_b, index_a),
            ("ba_", "a", "fake_a", index_a, index_b),
        ):
            if f"{key}generative" in metrics:
                metric = metrics[f"{key}generative"]
                metric.update_real(features[real][0], real_index)
                metric.update_fake(features[fake][0], fake_index, features[fake][1])
        if "ab_as_b" in metrics:
            metrics["ab_as_b"].update(features["fake_b"][1], index_a)
            metrics["ba_as_a"].update(features["fake_a"][1], index_b)

    def validation_step(self, batch: UnpairedBatch, batch_idx: int) -> None:
        with torch.no_grad():
            self._eval_step(batch, "val")

    def test_step(self, batch: UnpairedBatch, batch_idx: int) -> None:
        with torch.no_grad():
            self._eval_step(batch, "test")

    def grid_rows(self, batch: UnpairedBatch) -> list[Tensor]:
        """A | G(A) | F(G(A)) | B | F(B) | G(F(B))."""
        a, b = batch.images_a, batch.images_b
        fake_b, fake_a = self(a), self.generator_ba(b).clamp(0, 1)
        return [a, fake_b, self.generator_ba(fake_b), b, fake_a, self(fake_a)]

    def epoch_extras(self, stage: str) -> dict[str, float | str | None]:
        """The protocol strings of ``stage``."""
        metrics = self.stage_metrics(stage)
        if stage == "train" or "ab_generative" not in metrics:
            return {}
        return {
            f"{stage}/fid_protocol": self.protocol_extras(
                stage,
                metrics["ab_generative"],
                f"ab_*: the {stage} split's B images, ba_*: its A images, each once",
                "ab_*: the translation G(a) of each A image, ba_*: F(b) of each B image (eval "
                "mode, one each)",
            ),
            f"{stage}/judge": self.judge.name,
        }
