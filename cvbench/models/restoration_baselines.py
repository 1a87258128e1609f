"""Trivial image-restoration baselines with no trainable parameters, one per task: MATLAB's
bicubic ``imresize`` for super-resolution (the reference every SR paper reports), the gray
image (zero ab channels) for colorization, and per-channel mean filling for inpainting.

They share the learned models' interface (plain ``nn.Module``, inputs in [0, 1]), so a task
scores them like any model. Having no parameters, they cannot be trained: run them with
``train=false`` (``cvbench train model=super_resolution/bicubic train=false`` only tests);
the restoration task also uses them as its reference.

MATLAB's ``imresize(x, s, 'bicubic')``: Keys' cubic kernel with a = -0.5, antialiasing (kernel
widened when shrinking), symmetric (mirror) padding at the borders, normalized weights. The
``resize_right`` package (Shocher et al., "From Discrete to Continuous Convolutions")
reproduces it to ~1e-13 on NumPy float64 with ``pad_mode="symmetric"``, which its torch path
lacks; so :class:`Bicubic` goes through NumPy, on the CPU, one batch at a time.
"""

from __future__ import annotations

import numpy as np
import torch
from resize_right import interp_methods, resize
from torch import Tensor, nn


def matlab_imresize(images: Tensor, scale: int) -> Tensor:
    """MATLAB ``imresize(images, scale, 'bicubic')`` on each image of a batch.

    Computed in float64 with NumPy on the CPU (not differentiable); the result is returned
    on the input's device and dtype.

    Args:
        images: (B, C, h, w) float in [0, 1].
        scale: integer upscaling factor s >= 1.

    Returns:
        (B, C, h * s, w * s), not clamped (bicubic overshoots near edges).
    """
    if scale == 1:
        return images.clone()
    array = images.detach().to(device="cpu", dtype=torch.float64).numpy()
    resized = resize(
        array,
        scale_factors=[1, 1, scale, scale],
        interp_method=interp_methods.cubic,
        antialiasing=True,
        pad_mode="symmetric",
    )
    return torch.from_numpy(np.ascontiguousarray(resized)).to(images.device, images.dtype)


class Bicubic(nn.Module):
    """Super-resolution baseline: MATLAB's bicubic ``imresize`` by ``scale``.

    Args:
        scale: integer upscaling factor s >= 1 (``${data.scale}``).
        uint8: treat the images as 8-bit, as the benchmarks' MATLAB scripts do on uint8
            images: inputs are snapped to the 8-bit grid first (undoing float32 noise) and
            outputs rounded half away from zero (MATLAB's ``uint8``), clamped to [0, 255], then
            divided by 255 again. Without it the output is the exact float resize, which 8-bit
            scoring then rounds half to even: the two differ on exact ties, which integer
            inputs and bicubic weights (multiples of 1/128 at x2) produce.
    """

    def __init__(self, *, scale: int, uint8: bool = True) -> None:
        super().__init__()
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError(
                f"Bicubic: scale (model.scale, usually ${{data.scale}}) must be an integer "
                f">= 1, got {scale!r}"
            )
        self.scale = scale
        self.uint8 = uint8

    def forward(self, images: Tensor) -> Tensor:
        """Upsample.

        Args:
            images: (B, C, h, w) float low-resolution images in [0, 1].

        Returns:
            (B, C, h * s, w * s) float, no gradient; in [0, 1] on the 8-bit grid with
            ``uint8``, else not clamped.
        """
        if not self.uint8:
            return matlab_imresize(images, self.scale)
        levels = torch.round(images.detach().double() * 255)
        resized = matlab_imresize(levels, self.scale)
        return (torch.floor(resized.clamp(0, 255) + 0.5) / 255).to(images.dtype)


class Gray(nn.Module):
    """Colorization baseline: predicts no color (a, b = 0), i.e. the gray input itself."""

    def forward(self, lightness: Tensor) -> Tensor:
        """Zero chrominance.

        Args:
            lightness: (B, 1, H, W) float, the L channel (any scaling).

        Returns:
            (B, 2, H, W) zeros: the ab channels, in the input's dtype and device.
        """
        if lightness.ndim != 4 or lightness.shape[1] != 1:
            raise ValueError(
                f"Gray: expects the L channel (B, 1, H, W), got shape {tuple(lightness.shape)}"
            )
        batch, _, height, width = lightness.shape
        return lightness.new_zeros(batch, 2, height, width)


class MeanFill(nn.Module):
    """Inpainting baseline: each missing pixel gets its image's per-channel mean of the known
    pixels; known pixels are returned unchanged. An image with no known pixel is filled with
    0.5 (mid gray)."""

    def forward(self, inputs: Tensor) -> Tensor:
        """Fill the holes.

        Args:
            inputs: (B, 4, H, W) float: RGB in [0, 1] with the hole set to 0, then the mask
                (1 = missing, 0 = known; values > 0.5 count as missing).

        Returns:
            (B, 3, H, W) float RGB in [0, 1].
        """
        if inputs.ndim != 4 or inputs.shape[1] != 4:
            raise ValueError(
                f"MeanFill: expects RGB + mask (B, 4, H, W), got shape {tuple(inputs.shape)}"
            )
        rgb, missing = inputs[:, :3], inputs[:, 3:] > 0.5
        known = (~missing).to(rgb.dtype)
        count = known.sum(dim=(2, 3), keepdim=True)
        mean = (rgb * known).sum(dim=(2, 3), keepdim=True) / count.clamp(min=1)
        mean = torch.where(count > 0, mean, torch.full_like(mean, 0.5))
        return torch.where(missing, mean, rgb)
