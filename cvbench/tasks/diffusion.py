"""Denoising diffusion (Ho, Jain and Abbeel, NeurIPS 2020, "Denoising Diffusion Probabilistic
Models") on :class:`~cvbench.data.batches.ImageBatch` batches, sampled with DDPM's ancestral
sampler or DDIM's (Song, Meng and Ermon, ICLR 2021), and evaluated as every generation task
(``cvbench.tasks.generation``).

Training (Ho et al.'s "simple" objective, Algorithm 1): images x_0 scaled to [-1, 1], t drawn
uniformly from {0, ..., T - 1}, eps ~ N(0, I),
x_t = sqrt(alpha-bar_t) x_0 + sqrt(1 - alpha-bar_t) eps (diffusers' ``add_noise``), and the
loss is the mean squared error between eps and the network's prediction eps_theta(x_t, t, y)
(y the class label of a class-conditional network). ``{stage}/loss`` is that MSE; at val and
test its noise and timesteps are seeded per image (eval seed, dataset index), so the number is
repeatable. With ``ema_decay`` an exponential moving average of the weights
(``torch.optim.swa_utils``) is kept and is what evaluation, the grid and ``cvbench sample`` use.

Sampling: x_T ~ N(0, I) seeded per sample index (``sample_noise``, stream 0), then
``eval_steps`` steps of DDIM (eta 0: deterministic given x_T) or DDPM (fresh noise each step
from the sample's own generator, stream 1), both diffusers' schedulers on the training schedule
(``cvbench.models.ddpm``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from cvbench.data.batches import ImageBatch
from cvbench.models.ddpm import SAMPLERS, build_scheduler, sample
from cvbench.tasks.base import STAGES
from cvbench.tasks.generation import GenerationTask, sample_noise, sample_seed

FAST_DEV_RUN_STEPS = 2
"""Sampling steps under ``trainer.fast_dev_run`` (a run that checks the plumbing, not FID)."""
LOSS_STREAM = 2  # the noise stream of the seeded eval loss (0: x_T, 1: DDPM's step noise)


class DiffusionTask(GenerationTask):
    """DDPM of one network ``net`` (``forward(noisy (B, C, H, W) on [-1, 1], timesteps (B,),
    labels (B,) | None) -> predicted noise (B, C, H, W)``, attributes ``image_size``,
    ``channels`` and ``num_classes``), trained and sampled as the module docstring says. Steps
    log ``train/loss_step``.

    Args:
        num_timesteps: T, the diffusion's training timesteps.
        beta_schedule: "linear" (Ho et al.) or "cosine" (Nichol and Dhariwal, 2021).
        beta_start: beta_1 of the linear schedule.
        beta_end: beta_T of the linear schedule.
        eval_sampler: "ddim" or "ddpm": how evaluation and the grid sample.
        eval_steps: their sampling steps (<= T; 2 under ``trainer.fast_dev_run``).
        eta: DDIM's stochasticity (0: deterministic).
        ema_decay: decay of the weights' EMA (None: no EMA, the network is sampled).
        **base: ``judge``, ``metric``, ... of :class:`~cvbench.tasks.generation.GenerationTask`
            and ``nets`` (``net``), ``optimization``.
    """

    sampled_network = "net"
    loss_stages = STAGES

    def __init__(
        self,
        *,
        num_timesteps: int = 1000,
        beta_schedule: str = "linear",
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        eval_sampler: str = "ddim",
        eval_steps: int = 50,
        eta: float = 0.0,
        ema_decay: float | None = None,
        **base: Any,
    ) -> None:
        super().__init__(**base)
        if eval_sampler not in SAMPLERS or not 1 <= eval_steps <= num_timesteps or eta < 0:
            raise ValueError(
                f"task.module.eval_sampler must be one of {list(SAMPLERS)}, eval_steps in [1, "
                f"num_timesteps={num_timesteps}] and eta >= 0, got {eval_sampler!r}, "
                f"{eval_steps} and {eta}"
            )
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise ValueError(f"task.module.ema_decay must be in (0, 1) or null, got {ema_decay}")
        self.schedule = {
            "num_timesteps": num_timesteps,
            "beta_schedule": beta_schedule,
            "beta_start": beta_start,
            "beta_end": beta_end,
        }
        self.noise_scheduler = build_scheduler("ddpm", **self.schedule)  # raises on bad names
        self.eval_sampler, self.eval_steps, self.eta = eval_sampler, eval_steps, eta
        self.num_classes = int(getattr(self.net, "num_classes", 0))
        self.image_shape = (
            int(self.net.channels),
            int(self.net.image_size),
            int(self.net.image_size),
        )
        self.net_ema = None
        if ema_decay is not None:
            self.net_ema = AveragedModel(
                self.net, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True
            ).requires_grad_(False)

    def sampling_network(self) -> nn.Module:
        """The EMA of the network when kept, else the network."""
        return self.net if self.net_ema is None else self.net_ema.module

    # --- training ------------------------------------------------------------------------------

    def denoising_loss(
        self, images: Tensor, labels: Tensor | None, noise: Tensor, timesteps: Tensor
    ) -> Tensor:
        """Per-image MSE between ``noise`` and ``net``'s prediction of it.

        Args:
            images: (B, C, H, W) float in [0, 1], the clean images.
            labels: (B,) int64 class ids (class-conditional ``net``) or None.
            noise: (B, C, H, W) float, the added standard normal noise.
            timesteps: (B,) int64 in [0, T).

        Returns:
            (B,) float.
        """
        clean = images * 2.0 - 1.0
        noisy = self.noise_scheduler.add_noise(clean, noise, timesteps)
        predicted = self.net(noisy, timesteps, labels)
        return F.mse_loss(predicted, noise, reduction="none").flatten(1).mean(1)

    def training_step(self, batch: ImageBatch, batch_idx: int) -> Tensor:
        images = batch.images
        noise = torch.randn_like(images)
        timesteps = torch.randint(
            0, self.schedule["num_timesteps"], (len(images),), device=images.device
        )
        labels = batch.labels if self.num_classes else None  # the net refuses -1 (unlabelled)
        loss = self.denoising_loss(images, labels, noise, timesteps).mean()
        self.update_loss("train", loss, weight=len(images))
        self.log_step(batch_idx, {"loss_step": loss.detach()}, batch_size=len(images))
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        super().on_train_batch_end(outputs, batch, batch_idx)
        if self.net_ema is not None:  # after the optimizer's step
            self.net_ema.update_parameters(self.net)

    # --- evaluation ----------------------------------------------------------------------------

    def _seeded_loss(self, batch: ImageBatch, stage: str) -> None:
        """The denoising loss of the eval images, noise and timestep seeded per dataset index."""
        images, indices = batch.images, batch.indices
        noise = sample_noise(
            indices, images.shape[1:], self.eval_seed, stream=LOSS_STREAM, device=images.device
        )
        steps = [
            sample_seed(self.eval_seed, int(i), LOSS_STREAM) % self.schedule["num_timesteps"]
            for i in indices.tolist()
        ]
        timesteps = torch.tensor(steps, dtype=torch.int64, device=images.device)
        labels = batch.labels if self.num_classes else None
        self.update_loss(stage, self.denoising_loss(images, labels, noise, timesteps))

    def validation_step(self, batch: ImageBatch, batch_idx: int) -> None:
        super().validation_step(batch, batch_idx)
        with torch.no_grad():
            self._seeded_loss(batch, "val")

    def test_step(self, batch: ImageBatch, batch_idx: int) -> None:
        super().test_step(batch, batch_idx)
        with torch.no_grad():
            self._seeded_loss(batch, "test")

    # --- sampling ------------------------------------------------------------------------------

    def sampling_protocol(self) -> str:
        """The evaluation sampler, its steps (as run) and the weights sampled."""
        weights = "the trained weights" if self.net_ema is None else "EMA of the weights"
        eta = f", eta {self.eta}" if self.eval_sampler == "ddim" else ""
        return (
            f"{self.eval_sampler} sampler, {self._steps(None)} of {self.schedule['num_timesteps']}"
            f" steps{eta}, {weights}"
        )

    def _steps(self, steps: int | None) -> int:
        """``steps`` (default: ``eval_steps``), at most ``FAST_DEV_RUN_STEPS`` in a fast dev run."""
        steps = self.eval_steps if steps is None else int(steps)
        if not 1 <= steps <= self.schedule["num_timesteps"]:
            raise ValueError(
                f"steps={steps}: expected 1 to num_timesteps={self.schedule['num_timesteps']}"
            )
        trainer = self._trainer
        if trainer is not None and trainer.fast_dev_run:
            steps = min(steps, FAST_DEV_RUN_STEPS)
        return steps

    def generate_from(
        self,
        net: nn.Module,
        indices: Tensor,
        labels: Tensor | None,
        seed: int,
        *,
        sampler: str | None = None,
        steps: int | None = None,
        eta: float | None = None,
        **options: Any,
    ) -> Tensor:
        """``net``'s samples (N, C, H, W) in [0, 1] for sample ``indices`` (N,): x_T seeded by
        (``seed``, j, stream 0), DDPM's step noise by (``seed``, j, stream 1).

        Args:
            sampler: "ddim" or "ddpm" (default: ``eval_sampler``).
            steps: sampling steps (default: ``eval_steps``).
            eta: DDIM's stochasticity (default: the task's ``eta``).
        """
        if options:
            raise ValueError(
                f"unknown sampling options {sorted(options)}: a diffusion model takes sampler, "
                "steps and eta"
            )
        sampler = sampler or self.eval_sampler
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler={sampler}: expected one of {list(SAMPLERS)}")
        noise = sample_noise(indices, self.image_shape, seed, device=self.device)
        generators = [
            torch.Generator().manual_seed(sample_seed(seed, int(j), 1)) for j in indices.tolist()
        ]
        scheduler = build_scheduler(sampler, **self.schedule)
        return sample(
            net,
            noise,
            scheduler,
            self._steps(steps),
            labels,
            generators,
            eta=self.eta if eta is None else float(eta),
        )
