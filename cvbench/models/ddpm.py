"""A small denoising U-Net for DDPM (Ho, Jain and Abbeel, 2020, "Denoising Diffusion Probabilistic
Models") and the samplers that turn it into images: DDPM's ancestral sampling and DDIM's (Song,
Meng and Ermon, 2021, "Denoising Diffusion Implicit Models") deterministic one.

The network is diffusers' ``UNet2DModel`` (residual blocks with GroupNorm and SiLU, sinusoidal
timestep embedding, optional self-attention, class embedding added to the time embedding)
built from plain arguments; the noise schedules and the update rules are diffusers'
``DDPMScheduler`` / ``DDIMScheduler``. cvbench writes none of them by hand: it only fixes the
conventions, the model predicts the noise (``prediction_type="epsilon"``) of images scaled to
[-1, 1], and the samplers return images in [0, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from diffusers import DDIMScheduler, DDPMScheduler, UNet2DModel
from torch import Tensor, nn


class DenoisingUNet(nn.Module):
    """Predicts the noise of a noisy image at a diffusion timestep (class-conditional if
    ``num_classes`` > 0).

    Args:
        image_size: the images' height and width, divisible by ``2 ** (len(widths) - 1)``.
        channels: the images' channels.
        widths: the channels of each resolution level, from full resolution down; each
            level but the last halves the resolution.
        layers_per_block: residual blocks per level (the decoder has one more).
        attention_levels: the levels (indices into ``widths``) with self-attention after each
            residual block; none by default (CPU runs).
        num_classes: 0 for an unconditional model, else the number of classes whose
            learned embedding is added to the timestep embedding.
        norm_groups: GroupNorm groups; must divide every width.
        dropout: dropout in the residual blocks.
    """

    def __init__(
        self,
        *,
        image_size: int = 32,
        channels: int = 3,
        widths: Sequence[int] = (32, 64, 64),
        layers_per_block: int = 1,
        attention_levels: Sequence[int] = (),
        num_classes: int = 0,
        norm_groups: int = 8,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if image_size % 2 ** (len(widths) - 1) or any(w % norm_groups for w in widths):
            raise ValueError(
                f"model: image_size {image_size} must be divisible by 2 ** (len(widths) - 1) and "
                f"every width of {list(widths)} by norm_groups {norm_groups}"
            )
        if any(not 0 <= level < len(widths) for level in attention_levels):
            raise ValueError(
                f"model.attention_levels {list(attention_levels)}: levels are 0..{len(widths) - 1}"
            )
        attention = [level in attention_levels for level in range(len(widths))]
        self.image_size, self.channels, self.num_classes = image_size, channels, num_classes
        self.unet = UNet2DModel(
            sample_size=image_size,
            in_channels=channels,
            out_channels=channels,
            block_out_channels=widths,
            layers_per_block=layers_per_block,
            down_block_types=tuple("AttnDownBlock2D" if a else "DownBlock2D" for a in attention),
            up_block_types=tuple(
                "AttnUpBlock2D" if a else "UpBlock2D" for a in reversed(attention)
            ),
            add_attention=bool(attention_levels),  # in the middle block
            attention_head_dim=None,  # one head per attention layer
            norm_num_groups=norm_groups,
            dropout=dropout,
            num_class_embeds=num_classes or None,
        )

    def forward(self, noisy: Tensor, timesteps: Tensor, labels: Tensor | None = None) -> Tensor:
        """The predicted noise.

        Args:
            noisy: (B, C, H, W) float, noisy images on the [-1, 1] scale.
            timesteps: (B,) int64 diffusion timesteps in [0, T).
            labels: (B,) int64 class ids in [0, num_classes); required by a class-conditional
                model, ignored by an unconditional one.

        Returns:
            (B, C, H, W) float, the predicted unit-variance noise.
        """
        if not self.num_classes:
            labels = None
        elif labels is None or bool(((labels < 0) | (labels >= self.num_classes)).any()):
            raise ValueError(
                f"a class-conditional denoiser ({self.num_classes} classes) needs labels in "
                f"[0, {self.num_classes}), got {None if labels is None else labels.tolist()}"
            )
        return self.unet(noisy, timesteps, class_labels=labels).sample


Scheduler = DDPMScheduler | DDIMScheduler
BETA_SCHEDULES = {"linear": "linear", "cosine": "squaredcos_cap_v2"}
"""cvbench's names of the noise schedules and diffusers' (cosine: Nichol and Dhariwal, 2021)."""
SAMPLERS = ("ddpm", "ddim")


def build_scheduler(
    sampler: str,
    *,
    num_timesteps: int = 1000,
    beta_schedule: str = "linear",
    beta_start: float = 1e-4,
    beta_end: float = 0.02,
) -> Scheduler:
    """The diffusion schedule of T = ``num_timesteps`` steps as a diffusers scheduler: a
    ``DDPMScheduler`` (training noise and ancestral sampling) or a ``DDIMScheduler``.

    Both predict epsilon, clip the predicted clean image to [-1, 1] at each step and space
    fewer sampling steps "trailing" (the last one at t = T - 1, Lin et al. 2024); DDPM's
    posterior variance is beta-tilde ("fixed_small", the paper's sigma_t^2 choice that
    matches x_0 ~ data), DDIM's last step goes to alpha-bar = 1.

    Args:
        sampler: "ddpm" or "ddim".
        num_timesteps: T, the training timesteps.
        beta_schedule: "linear" (Ho et al.: betas from ``beta_start`` to ``beta_end``) or
            "cosine" (Nichol and Dhariwal; ignores the betas' range).
        beta_start: beta_1 of the linear schedule.
        beta_end: beta_T of the linear schedule.
    """
    if sampler not in SAMPLERS or beta_schedule not in BETA_SCHEDULES:
        raise ValueError(
            f"sampler must be one of {list(SAMPLERS)} and beta_schedule one of "
            f"{list(BETA_SCHEDULES)}, got {sampler!r} and {beta_schedule!r}"
        )
    kind = DDPMScheduler if sampler == "ddpm" else DDIMScheduler
    return kind(
        num_train_timesteps=num_timesteps,
        beta_schedule=BETA_SCHEDULES[beta_schedule],
        beta_start=beta_start,
        beta_end=beta_end,
        prediction_type="epsilon",
        clip_sample=True,
        timestep_spacing="trailing",
    )


@torch.no_grad()
def sample(
    net: nn.Module,
    noise: Tensor,
    scheduler: Scheduler,
    steps: int,
    labels: Tensor | None = None,
    generators: list[torch.Generator] | None = None,
    *,
    eta: float = 0.0,
) -> Tensor:
    """Images from the initial noise by the reverse process of ``scheduler``.

    With a ``DDIMScheduler`` and ``eta`` 0 the result depends on the noise alone; DDPM (and DDIM
    with ``eta`` > 0) draws fresh noise at each step from ``generators``, one per sample, so
    sample i is the same whatever batch it is drawn in. Sets the scheduler's timesteps.

    Args:
        net: ``forward(noisy (B, C, H, W), timesteps (B,), labels (B,) | None)`` -> noise.
        noise: (B, C, H, W) float, the standard normal x_T.
        scheduler: the training schedule as a ``DDPMScheduler`` (ancestral sampling) or a
            ``DDIMScheduler``.
        steps: the number of denoising steps (at most the schedule's T).
        labels: (B,) int64 class ids for a class-conditional ``net``, else None.
        generators: B generators for the per-step noise (None: the global RNG).
        eta: DDIM's stochasticity (0: deterministic, 1: DDPM-like); ignored by DDPM.

    Returns:
        (B, C, H, W) float in [0, 1].
    """
    if generators is not None and len(generators) != len(noise):
        raise ValueError(f"sample: {len(generators)} generators for {len(noise)} samples")
    scheduler.set_timesteps(steps, device=noise.device)
    images = noise
    for t in scheduler.timesteps:
        predicted = net(images, t.expand(len(images)), labels)
        if isinstance(scheduler, DDIMScheduler):
            step = scheduler.step(predicted, t, images, eta=eta, generator=generators)
        else:
            step = scheduler.step(predicted, t, images, generator=generators)
        images = step.prev_sample
    return ((images.clamp(-1.0, 1.0) + 1.0) / 2.0).clamp(0.0, 1.0)
