"""EDSR (Lim, Son, Kim, Nah and Lee, 2017, "Enhanced Deep Residual Networks for Single Image
Super-Resolution", CVPRW), following the authors' code (github.com/sanghyun-son/EDSR-PyTorch).

Mean shift (subtract the training set's RGB mean), a 3x3 head conv, ``num_blocks`` residual
blocks without batch norm (conv-ReLU-conv, scaled by ``res_scale``, plus the block's input),
a 3x3 body conv and a long skip from the head, the upsampler (x2 and x3: one 3x3 conv to
s^2 * F maps and a pixel shuffle; x4, x8: log2(s) x2 steps), a 3x3 tail conv to RGB, and the
mean added back. All convs have biases and "same" padding.

Sizes of the paper: the baseline (16 blocks, 64 features, res_scale 1: 1.37 M parameters at
x2, 1.55 M at x3, 1.52 M at x4; the paper's Table 1 gives 1.5 M) and EDSR (32 blocks, 256
features, res_scale 0.1: 40.7 M at x2, 43.7 M at x3, 43.1 M at x4; the paper gives 43 M).

Inputs are in [0, 1], so the mean is the paper's DIV2K mean / 255 (the authors' code works in
[0, 255] and scales the mean). ``bicubic_skip=True`` (not in the paper) adds PyTorch's bicubic
upsampling of the input to the output instead of adding the mean back, so the network only
predicts the residual; it converges faster, which helps short CPU runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from cvbench.models.srcnn import bicubic_upsample, check_scale

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """3x3 convolution with bias and padding 1."""
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class ResBlock(nn.Module):
    """x + res_scale * conv(ReLU(conv(x))), without batch norm.

    Args:
        num_features: channels F, in and out.
        res_scale: scale of the residual branch (0.1 stabilises wide nets).
    """

    def __init__(self, num_features: int, res_scale: float) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv3x3(num_features, num_features),
            nn.ReLU(inplace=True),
            conv3x3(num_features, num_features),
        )
        self.res_scale = res_scale

    def forward(self, x: Tensor) -> Tensor:
        """(B, F, H, W) -> (B, F, H, W)."""
        return x + self.body(x) * self.res_scale


def upsampler(scale: int, num_features: int) -> nn.Sequential:
    """Sub-pixel upsampling by ``scale``: 3 in one step, powers of 2 in x2 steps (1: identity)."""
    if scale == 1:
        return nn.Sequential()
    if scale == 3:
        steps = [3]
    elif scale & (scale - 1) == 0:
        steps = [2] * int(math.log2(scale))
    else:
        raise ValueError(
            f"EDSR: scale (model.scale, usually ${{data.scale}}) must be 1, 3 or a power of 2, "
            f"got {scale}"
        )
    layers: list[nn.Module] = []
    for step in steps:
        layers += [conv3x3(num_features, step**2 * num_features), nn.PixelShuffle(step)]
    return nn.Sequential(*layers)


class EDSR(nn.Module):
    """Enhanced deep residual network for single-image super-resolution.

    Args:
        scale: upscaling factor s (``${data.scale}``): 1, 3 or a power of 2.
        channels: image channels C, in and out.
        num_blocks: residual blocks (baseline 16, EDSR 32).
        num_features: feature width F (baseline 64, EDSR 256).
        res_scale: residual scaling (baseline 1.0, EDSR 0.1).
        rgb_mean: per-channel mean subtracted from the input (C values in [0, 1]); DIV2K's.
        bicubic_skip: add the bicubic upsampled input to the output instead of the mean.
    """

    def __init__(
        self,
        *,
        scale: int,
        channels: int = 3,
        num_blocks: int = 16,
        num_features: int = 64,
        res_scale: float = 1.0,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
        bicubic_skip: bool = False,
    ) -> None:
        super().__init__()
        check_scale("EDSR", scale)
        if len(rgb_mean) != channels:
            raise ValueError(
                f"EDSR: model.rgb_mean needs one value per channel (model.channels = "
                f"{channels}), got {list(rgb_mean)}"
            )
        if num_blocks < 0 or num_features < 1:
            raise ValueError(
                f"EDSR: model.num_blocks must be >= 0 and model.num_features >= 1, got "
                f"{num_blocks} and {num_features}"
            )
        self.scale = scale
        self.bicubic_skip = bicubic_skip
        self.register_buffer("mean", torch.tensor([float(m) for m in rgb_mean]).view(1, -1, 1, 1))
        self.head = conv3x3(channels, num_features)
        self.body = nn.Sequential(
            *(ResBlock(num_features, res_scale) for _ in range(num_blocks)),
            conv3x3(num_features, num_features),
        )
        self.tail = nn.Sequential(upsampler(scale, num_features), conv3x3(num_features, channels))

    def forward(self, images: Tensor) -> Tensor:
        """Super-resolve.

        Args:
            images: (B, C, h, w) float low-resolution images in [0, 1].

        Returns:
            (B, C, h * s, w * s) float, [0, 1] range but not clamped.
        """
        x = self.head(images - self.mean)
        x = self.tail(x + self.body(x))
        if self.bicubic_skip:
            return x + bicubic_upsample(images, self.scale)
        return x + self.mean
