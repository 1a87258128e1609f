"""SRCNN (Dong, Loy, He and Tang, 2014/2016, "Image Super-Resolution Using Deep Convolutional
Networks", ECCV 2014 and TPAMI 2016): three convolutions on the bicubically upsampled image.

The network of the paper's 9-5-5 variant (64 and 32 feature maps): patch extraction (9x9 conv,
ReLU), non-linear mapping (5x5 conv, ReLU) and reconstruction (5x5 conv, linear).

Choices that differ from the paper, and why:

- The bicubic upsampling runs inside the model (``torch.nn.functional.interpolate``,
  ``mode="bicubic"``, ``align_corners=False``: Keys' cubic with a = -0.75, no antialiasing),
  so the model maps the low-resolution image to the high-resolution one like every other
  super-resolution model here; the paper upsamples beforehand with MATLAB's ``imresize``.
- Zero padding keeps the size ("same" convolutions), so the output has exactly ``scale``
  times the input's size; the paper trains on valid convolutions and a cropped target.
- RGB in, RGB out (``channels=3``); the paper's main models work on the Y channel only.
- PyTorch's default initialisation instead of the paper's Gaussian (std 0.001); train with
  Adam, not the paper's SGD with per-layer learning rates.
- ``residual=True`` adds the upsampled input to the output (the network then predicts the
  missing detail, as in VDSR); off by default, as in the paper.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


def check_scale(model: str, scale: int) -> None:
    """Raise a ValueError naming ``data.scale`` unless ``scale`` is an integer >= 1."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(
            f"{model}: scale (model.scale, usually ${{data.scale}}) must be an integer >= 1, "
            f"got {scale!r}"
        )


def bicubic_upsample(images: Tensor, scale: int) -> Tensor:
    """PyTorch's bicubic upsampling by an integer factor (align_corners=False, no antialias).

    Args:
        images: (B, C, h, w) float.
        scale: integer factor s >= 1.

    Returns:
        (B, C, h * s, w * s) float, not clamped (cubic interpolation overshoots at edges).
    """
    if scale == 1:
        return images
    height, width = images.shape[-2:]
    return F.interpolate(
        images, size=(height * scale, width * scale), mode="bicubic", align_corners=False
    )


class SRCNN(nn.Module):
    """Bicubic upsampling, then conv-ReLU, conv-ReLU, conv ("same" padding).

    Parameters: 69,251 for RGB with the defaults (the paper's Y-channel 9-5-5 net: 57,184
    weights without biases).

    Args:
        scale: upscaling factor s (``${data.scale}``).
        channels: image channels C, in and out.
        features: widths of the two hidden layers (the paper's n1, n2).
        kernel_sizes: the three kernel sizes (the paper's f1, f2, f3), odd.
        residual: add the upsampled input to the output.
    """

    def __init__(
        self,
        *,
        scale: int,
        channels: int = 3,
        features: Sequence[int] = (64, 32),
        kernel_sizes: Sequence[int] = (9, 5, 5),
        residual: bool = False,
    ) -> None:
        super().__init__()
        check_scale("SRCNN", scale)
        if len(features) != 2 or len(kernel_sizes) != 3:
            raise ValueError(
                f"SRCNN: model.features needs 2 widths and model.kernel_sizes 3 sizes, got "
                f"{list(features)} and {list(kernel_sizes)}"
            )
        if any(k % 2 == 0 or k < 1 for k in kernel_sizes):
            raise ValueError(
                f"SRCNN: model.kernel_sizes must be odd (same padding), got {list(kernel_sizes)}"
            )
        self.scale = scale
        self.residual = residual
        widths = [channels, *features, channels]
        layers: list[nn.Module] = []
        for i, k in enumerate(kernel_sizes):
            layers.append(nn.Conv2d(widths[i], widths[i + 1], k, padding=k // 2))
            if i < 2:
                layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)

    def forward(self, images: Tensor) -> Tensor:
        """Super-resolve.

        Args:
            images: (B, C, h, w) float low-resolution images in [0, 1].

        Returns:
            (B, C, h * s, w * s) float, [0, 1] range but not clamped.
        """
        upsampled = bicubic_upsample(images, self.scale)
        output = self.body(upsampled)
        return output + upsampled if self.residual else output
