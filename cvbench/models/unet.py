"""A small U-Net (Ronneberger, Fischer and Brox, 2015, "U-Net: Convolutional Networks for
Biomedical Image Segmentation"), written by cvbench for tests and CPU runs.

The encoder is ``depth`` stages of 2x2 max pooling and a double 3x3 conv block (conv-norm-ReLU
twice, padding 1, so unlike the paper's valid convolutions no border is lost); widths double
at each stage. Each decoder stage halves the width with a 1x1 convolution, upsamples
bilinearly (``align_corners=False``) to exactly the skip's size, concatenates the skip and
applies a double conv block; a linear 1x1 head (no activation) gives ``out_channels`` maps:
class logits for segmentation, regression targets for restoration (colorization: the ab
channels; inpainting: RGB).

Choices that differ from the paper, and why:

- Bilinear upsampling instead of the paper's 2x2 "up-convolution" (transposed convolution):
  no checkerboard artefacts, and upsampling to the skip's exact size handles any input size.
  The 1x1 convolution runs before the upsampling, at the low resolution, where it is 4x
  cheaper; both are linear and bilinear weights sum to 1, so the order does not change what
  the layer can express.
- Inputs of any H, W: max pooling floors odd sizes (33 -> 16), and the decoder upsamples to
  the skip's size (16 -> 33), so no padding is needed and the output has the input's size.
  Sizes divisible by ``2 ** depth`` keep the pixel grids exactly aligned.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Norm = Literal["batch", "group", "none"]
NORMS = ("batch", "group", "none")


def norm_layer(norm: Norm, channels: int) -> nn.Module:
    """BatchNorm2d, GroupNorm (up to 8 groups, for batches of one image) or identity."""
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    if norm == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)
    return nn.Identity()


def double_conv(in_channels: int, out_channels: int, norm: Norm) -> nn.Sequential:
    """(3x3 conv, norm, ReLU) twice; padding 1 keeps H, W. Convs have a bias only without norm."""
    bias = norm == "none"
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=bias),
        norm_layer(norm, out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=bias),
        norm_layer(norm, out_channels),
        nn.ReLU(inplace=True),
    )


class UpBlock(nn.Module):
    """Halve the width (1x1 conv), upsample bilinearly to the skip's size, concatenate, double conv.

    Args:
        in_channels: channels C of the deeper features; the skip has C // 2.
        norm: normalization of the double conv block.
    """

    def __init__(self, in_channels: int, norm: Norm) -> None:
        super().__init__()
        out_channels = in_channels // 2
        self.reduce = nn.Conv2d(in_channels, out_channels, 1)
        self.conv = double_conv(2 * out_channels, out_channels, norm)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        """(B, C, h, w) deeper features and (B, C // 2, H, W) skip -> (B, C // 2, H, W)."""
        x = F.interpolate(
            self.reduce(x), size=skip.shape[-2:], mode="bilinear", align_corners=False
        )
        return self.conv(torch.cat([skip, x], dim=1))


class UNet(nn.Module):
    """U-Net with ``depth`` poolings, widths ``base_channels * 2**i`` (i = 0..depth).

    Parameters: about 1.8 M for base_channels=16, depth=4 (the paper's net, base 64, has 31 M);
    the count grows with ``base_channels**2`` and about 4x per extra level.

    Args:
        in_channels: channels of the input image.
        out_channels: output channels: the number of classes K (logits) for segmentation
            (``data.num_classes``), the number of predicted maps for regression.
        base_channels: width of the first (full-resolution) stage.
        depth: number of 2x2 poolings (and of decoder stages), >= 1.
        norm: "batch" (the default, as in most U-Net reimplementations), "group" (GroupNorm,
            for training batches of one image) or "none".
    """

    def __init__(
        self,
        *,
        in_channels: int = 3,
        out_channels: int,
        base_channels: int = 16,
        depth: int = 4,
        norm: Norm = "batch",
    ) -> None:
        super().__init__()
        if out_channels < 1:
            raise ValueError(
                f"UNet: out_channels (model.out_channels; data.num_classes for segmentation) "
                f"must be >= 1, got {out_channels}"
            )
        if depth < 1 or base_channels < 1:
            raise ValueError(
                f"UNet: depth and base_channels must be >= 1, got depth={depth}, "
                f"base_channels={base_channels}"
            )
        if norm not in NORMS:
            raise ValueError(f"UNet: norm must be one of {NORMS}, got {norm!r}")
        widths = [base_channels * 2**i for i in range(depth + 1)]
        self.stem = double_conv(in_channels, widths[0], norm)
        self.down = nn.ModuleList(
            nn.Sequential(nn.MaxPool2d(2), double_conv(widths[i], widths[i + 1], norm))
            for i in range(depth)
        )
        self.up = nn.ModuleList(UpBlock(widths[i + 1], norm) for i in reversed(range(depth)))
        self.head = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, images: Tensor) -> Tensor:
        """Class logits (or regression maps) at the input's resolution.

        Args:
            images: (B, in_channels, H, W) float, normalized; any H, W >= 2**depth
                (smaller ones pool to nothing).

        Returns:
            (B, out_channels, H, W) float, linear (no activation).
        """
        if min(images.shape[-2:]) < 2 ** len(self.down):
            raise ValueError(
                f"UNet: input of size {tuple(images.shape[-2:])} is smaller than 2**depth = "
                f"{2 ** len(self.down)}; use a smaller model.depth or larger images"
            )
        skips = [self.stem(images)]
        for down in self.down:
            skips.append(down(skips[-1]))
        x = skips.pop()
        for up in self.up:
            x = up(x, skips.pop())
        return self.head(x)
