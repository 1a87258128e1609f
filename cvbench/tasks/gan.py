"""DCGAN training (Radford et al., ICLR 2016) with the usual stabilisers, on
:class:`~cvbench.data.batches.ImageBatch` batches, evaluated as every generation task
(``cvbench.tasks.generation``).

Per training batch of real images x (and z ~ N(0, I) of the batch's size), with D's logits
and BCE the binary cross-entropy on logits:

- discriminator: BCE(D(x), ``real_label``) + BCE(D(G(z)), 0) + (``r1_gamma`` / 2) *
  E ||grad_x D(x)||^2 (the R1 penalty of Mescheder et al., ICML 2018, on real images);
  ``real_label`` 0.9 is one-sided label smoothing (Salimans et al., NeurIPS 2016);
- generator: the non-saturating loss BCE(D(G(z)), 1) (Goodfellow et al., 2014);
- spectral norm of D (Miyato et al., 2018) is a model option, two-timescale learning rates
  (Heusel et al., NeurIPS 2017) are per-network ``optim`` entries;
- with ``ema_decay`` an exponential moving average of G's weights (and batch-norm buffers) is
  kept (``torch.optim.swa_utils``; Karras et al.) and is what evaluation, the grid and
  ``cvbench sample`` use.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.functional import binary_cross_entropy_with_logits as bce
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from cvbench.data.batches import ImageBatch
from cvbench.tasks.generation import GenerationTask, sample_noise


class GANTask(GenerationTask):
    """A GAN of ``generator`` (``forward(noise (B, nz), labels (B,) | None) -> (B, 3, H, W) in
    [0, 1]``, attributes ``nz`` and ``num_classes``) and ``discriminator`` (``forward(images,
    labels | None) -> (B,) logits``), trained as the module docstring says. Steps log
    ``train/d_loss``, ``train/g_loss``, ``train/d_real`` and ``train/d_fake`` (D's mean
    probabilities of real on real and generated images) and ``train/r1``.

    Args:
        real_label: D's target for real images (1.0; 0.9: one-sided label smoothing).
        r1_gamma: weight of the R1 penalty (0: none).
        ema_decay: decay of the generator's EMA (None: no EMA, the generator is evaluated).
        **base: ``judge``, ``metric``, ... of :class:`~cvbench.tasks.generation.GenerationTask`
            and ``nets`` (``generator``, ``discriminator``), ``optimization``.
    """

    sampled_network = "generator"

    def __init__(
        self,
        *,
        real_label: float = 1.0,
        r1_gamma: float = 0.0,
        ema_decay: float | None = None,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        if set(self.network_names) != {"generator", "discriminator"}:
            raise ValueError(
                f"GANTask needs model.generator and model.discriminator, got "
                f"{list(self.network_names)}"
            )
        if not 0.5 < real_label <= 1.0 or r1_gamma < 0:
            raise ValueError(
                f"task.module.real_label must be in (0.5, 1] and r1_gamma >= 0, got {real_label} "
                f"and {r1_gamma}"
            )
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"task.module.ema_decay must be in (0, 1) or null, got {ema_decay}")
        self.real_label, self.r1_gamma = real_label, r1_gamma
        self.num_classes = int(getattr(self.generator, "num_classes", 0))
        self.nz = int(self.generator.nz)
        self.generator_ema = None
        self.ema_decay = ema_decay
        if ema_decay is not None:
            self.generator_ema = AveragedModel(
                self.generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True
            ).requires_grad_(False)

    def sampling_network(self) -> nn.Module:
        """The EMA of the generator when kept, else the generator."""
        return self.generator if self.generator_ema is None else self.generator_ema.module

    def sampling_protocol(self) -> str:
        """The evaluated generator: the trained weights or their EMA."""
        if self.generator_ema is None:
            return "the trained weights"
        return f"EMA of the weights (decay {self.ema_decay})"

    def generate_from(
        self, net: nn.Module, indices: Tensor, labels: Tensor | None, seed: int, **options: Any
    ) -> Tensor:
        """``net``'s images (N, 3, H, W) in [0, 1] of noise (N, nz) seeded per sample index."""
        if options:
            raise ValueError(f"a GAN takes no sampling options, got {sorted(options)}")
        noise = sample_noise(indices, (self.nz,), seed, device=self.device)
        return net(noise, labels)

    def training_step(self, batch: ImageBatch, batch_idx: int) -> None:
        real = batch.images
        labels = batch.labels if self.num_classes else None
        noise = torch.randn(len(real), self.nz, device=real.device)
        fake = self.generator(noise, labels)

        real = real.detach().requires_grad_(self.r1_gamma > 0)
        logits_real = self.discriminator(real, labels)
        logits_fake = self.discriminator(fake.detach(), labels)
        d_loss = bce(logits_real, torch.full_like(logits_real, self.real_label)) + bce(
            logits_fake, torch.zeros_like(logits_fake)
        )
        r1 = torch.zeros((), device=real.device)
        if self.r1_gamma > 0:
            (grad,) = torch.autograd.grad(logits_real.sum(), real, create_graph=True)
            r1 = grad.square().flatten(1).sum(1).mean()
            d_loss = d_loss + self.r1_gamma / 2 * r1
        self.optimize("discriminator", d_loss)

        logits_gen = self.discriminator(fake, labels)
        g_loss = bce(logits_gen, torch.ones_like(logits_gen))
        self.optimize("generator", g_loss)
        if self.generator_ema is not None:
            self.generator_ema.update_parameters(self.generator)
        self.log_step(
            batch_idx,
            {
                "d_loss": d_loss.detach(),
                "g_loss": g_loss.detach(),
                "d_real": torch.sigmoid(logits_real.detach()).mean(),
                "d_fake": torch.sigmoid(logits_fake.detach()).mean(),
                "r1": r1.detach(),
            },
            batch_size=len(real),
        )
